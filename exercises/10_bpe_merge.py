"""Lesson 10 · GPT-2's BPE: one merge step. Check: minituner check 10_bpe_merge

Write each function's body; the docstring states the formula and the shapes.

第 10 课 · GPT-2 的 BPE：一步合并。检查：minituner check 10_bpe_merge --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""


def merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Merge every non-overlapping occurrence of `pair` in `word`, left to right.

    ('a', 'a', 'a') with ('a', 'a') -> ('aa', 'a').

    从左到右，把 `word` 中每一处不重叠的 `pair` 合并成一个符号。

    例：('a', 'a', 'a') 按 ('a', 'a') 合并 -> ('aa', 'a')。
    """
    raise NotImplementedError
