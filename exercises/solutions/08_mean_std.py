"""Solution · Lesson 08 · mean ± std over seeds. Check: minituner check 08_mean_std
"""


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with n − 1); the std of one value is 0.0.
    """
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
