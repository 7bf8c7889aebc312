"""Solution · Lesson 10 · GPT-2's BPE: one merge step. Check: minituner check 10_bpe_merge

参考答案 · 第 10 课 · GPT-2 的 BPE：一步合并。检查：minituner check 10_bpe_merge --lang zh
"""


def merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Merge every non-overlapping occurrence of `pair` in `word`, left to right.

    ('a', 'a', 'a') with ('a', 'a') -> ('aa', 'a').

    从左到右，把 `word` 中每一处不重叠的 `pair` 合并成一个符号。

    例：('a', 'a', 'a') 按 ('a', 'a') 合并 -> ('aa', 'a')。
    """
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)
