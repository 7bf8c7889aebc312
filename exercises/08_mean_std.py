"""Lesson 08 · mean ± std over seeds. Check: minituner check 08_mean_std

Write each function's body; the docstring states the formula and the shapes.

第 08 课 · 多个随机种子上的均值 ± 标准差。检查：minituner check 08_mean_std --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with n − 1); the std of one value is 0.0.

    返回 (mean, std)：均值与样本标准差（分母为 n − 1）；只有一个值时标准差为 0.0。
    """
    raise NotImplementedError
