"""Solution · Lesson 10 · GPT-2's BPE: one merge step. Check: minituner check 10_bpe_merge
"""


def merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Merge every non-overlapping occurrence of `pair` in `word`, left to right.

    ('a', 'a', 'a') with ('a', 'a') -> ('aa', 'a').
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
