"""Lesson 08 · mean ± std over seeds. Check: minituner check 08_mean_std

Write each function's body; the docstring states the formula and the shapes.
"""


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with n − 1); the std of one value is 0.0.
    """
    raise NotImplementedError
