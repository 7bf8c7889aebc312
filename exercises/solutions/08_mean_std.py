"""Solution · Lesson 08 · mean ± std over seeds. Check: minituner check 08_mean_std

参考答案 · 第 08 课 · 多个随机种子上的均值 ± 标准差。检查：minituner check 08_mean_std --lang zh
"""


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with n − 1); the std of one value is 0.0.

    返回 (mean, std)：均值与样本标准差（分母为 n − 1）；只有一个值时标准差为 0.0。
    """
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
