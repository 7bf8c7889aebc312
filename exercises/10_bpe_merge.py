"""Lesson 10 · GPT-2's BPE: one merge step. Check: minituner check 10_bpe_merge

Write each function's body; the docstring states the formula and the shapes.
"""


def merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Merge every non-overlapping occurrence of `pair` in `word`, left to right.

    ('a', 'a', 'a') with ('a', 'a') -> ('aa', 'a').
    """
    raise NotImplementedError
