"""Bad rows are found when the data is loaded, named by file and line (issue 24)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minituner import CharTokenizer, Dataset
from minituner.dataset import encode_examples

WORDS = [(f"say {w}:", f" {w}") for w in ("cat", "dog", "owl", "fox", "hen", "cow", "pig", "ram", "bee", "elk")]


def jsonl(tmp_path, rows, name="pairs.jsonl"):
    f = tmp_path / name
    f.write_text("".join(json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in rows))
    return f


@settings(max_examples=40, deadline=None)
@given(block_size=st.integers(1, 40), virtual=st.integers(0, 20))
def test_check_context_refuses_exactly_the_rows_that_do_not_fit(block_size, virtual):
    rows = [("say it:", " yes"), ("say it again please:", " yes indeed")]
    split = encode_examples("train", rows, CharTokenizer(), sources=["a.jsonl, line 1", "a.jsonl, line 2"])
    need = max(len(p) + len(a) + 1 - 1 for p, a in rows)  # prompt + answer + end marker, less the last target
    assert int(split.lengths().max()) == need == split.x.size(1)
    if virtual + need <= block_size:
        split.check_context(block_size, virtual)
    else:
        with pytest.raises(ValueError, match=rf"a\.jsonl, line 2: the row fills {need} positions") as e:
            split.check_context(block_size, virtual)
        assert f"block_size={block_size}" in str(e.value) and (virtual == 0) == ("virtual" not in str(e.value))


def test_a_row_too_long_for_the_model_names_the_file_and_line(tmp_path):
    rows = WORDS + [("say a much longer thing than the others:", " ok")]
    data = Dataset.from_jsonl(jsonl(tmp_path, rows), val=[("say ant:", " ant")], test=[("say bat:", " bat")])
    data.check_context(96)
    need = len("say a much longer thing than the others: ok")  # + the end marker, less the last target
    with pytest.raises(ValueError, match=rf"pairs\.jsonl, line 11: the row fills {need} positions \+ 60 virtual tokens"):
        data.check_context(96, num_virtual_tokens=60)


def test_non_utf8_names_the_file_and_the_line(tmp_path):
    f = tmp_path / "latin1.jsonl"
    f.write_bytes(json.dumps({"prompt": "say cat:", "answer": " cat"}).encode() + b"\n"
                  + '{"prompt": "say café:", "answer": " x"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.jsonl, line 2: not UTF-8 text \(byte 0xe9"):
        Dataset.from_jsonl(f)


def test_one_prompt_with_two_answers_is_refused_naming_both_lines(tmp_path):
    rows = WORDS[:4] + [("say cat:", " dog")] + WORDS[4:]
    with pytest.raises(ValueError, match=r"pairs\.jsonl, line 1 and .*pairs\.jsonl, line 5: the prompt 'say cat:' "
                                         r"has two answers, ' cat' and ' dog'"):
        Dataset.from_jsonl(jsonl(tmp_path, rows))
    with pytest.raises(ValueError, match=r"pairs\[0\] and val\[0\]: the prompt 'say cat:'"):
        Dataset.from_pairs(WORDS, val=[("say cat:", " kitten")], test=0.2)
    with pytest.raises(ValueError, match=r"pairs\[0\] and pairs\[1\]"):  # the same once lower-cased
        Dataset.from_pairs([("Say cat:", " cat"), ("say cat:", " Dog"), *WORDS[1:]], lowercase=True)
    again = Dataset.from_pairs(WORDS + WORDS[:3])  # the same answer twice is a repeat, not a conflict
    assert len(again.train) + len(again.val) + len(again.test) == 13


@pytest.mark.parametrize("seed", [None, 1.5, "0", True])
def test_the_seed_must_be_an_int(seed, tmp_path):
    with pytest.raises(TypeError, match="seed must be an int"):
        Dataset.from_pairs(WORDS, seed=seed)
    with pytest.raises(TypeError, match="seed must be an int"):
        Dataset.from_jsonl(jsonl(tmp_path, WORDS), seed=seed)


def test_the_same_seed_gives_the_same_splits_and_rows_keep_their_source(tmp_path):
    f = jsonl(tmp_path, WORDS)
    one, two = Dataset.from_jsonl(f, seed=3), Dataset.from_jsonl(f, seed=3)
    for s in ("train", "val", "test"):
        assert getattr(one, s).examples == getattr(two, s).examples
        for (p, a), where in zip(getattr(one, s).examples, getattr(one, s).sources, strict=True):
            n = int(where.rsplit("line ", 1)[1])
            assert WORDS[n - 1] == (p, a)
