"""The mini-world: tokenizer, splits, masks, and a test split that needs pretraining."""

import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minituner
from minituner.data import (
    KINDS,
    TASKS,
    corpus_sentences,
    make_corpus,
    make_task,
    make_world,
    task_examples,
)
from minituner.dataset import Dataset
from minituner.tokenizer import ALPHABET, END, CharTokenizer


@given(st.text(alphabet=ALPHABET, max_size=60))
def test_tokenizer_round_trip(text):
    tok = CharTokenizer()
    assert tok.decode(tok.encode(text)) == text


def test_unknown_character_is_named():
    with pytest.raises(ValueError, match="'Z'"):
        CharTokenizer().encode("the Zebra")


def test_world_is_seeded_and_every_value_names_one_animal():
    assert make_world(3).facts == make_world(3).facts
    assert make_world(3).facts != make_world(4).facts
    w = make_world(0)
    for kind in KINDS:
        values = [w.facts[a][kind] for a in w.animals]
        assert len(set(values)) == len(values)
    assert {"cat", "dog"} <= set(w.animals) and len(w.animals) >= 20


@pytest.mark.parametrize("task", TASKS)
def test_three_splits_are_disjoint_and_val_and_test_ask_only_unseen_facts(task):
    world = make_world(0)
    ex = task_examples(world, task)
    prompts = {s: {p for p, _ in ex[s]} for s in ex}
    assert not (prompts["train"] & prompts["val"] or prompts["train"] & prompts["test"] or prompts["val"] & prompts["test"])
    words = lambda pairs: set(re.findall(r"[a-z]+", " ".join(p + a for p, a in pairs)))  # noqa: E731
    seen = {s: words(ex[s]) for s in ex}
    for a in world.animals:  # seen kinds in train only; held-out kinds in val (val animals) or test
        held_in = "val" if a in world.val_animals else "test"
        for k in KINDS:
            v = world.facts[a][k]
            if k in world.seen[a]:
                assert v in seen["train"] and v not in seen["val"] | seen["test"]
            else:
                assert v not in seen["train"] and v in seen[held_in]
                assert v not in seen["test" if held_in == "val" else "val"]  # val and test share no fact


def test_split_sizes_give_a_test_standard_error_of_at_most_0_02_at_p_0_85():
    task = make_task("classify")
    assert (len(task.train), len(task.val), len(task.test)) == (128, 160, 352)
    assert (0.85 * 0.15 / len(task.test)) ** 0.5 <= 0.02
    world = task.world
    assert len(world.animals) * len(KINDS) == 192 and len(world.val_animals) == 10
    for kind in KINDS:  # every kind is shown in training for some animals, held out for others
        assert 5 <= sum(kind in world.seen[a] for a in world.animals) <= 16


def test_qa_shows_four_kinds_per_animal_with_the_same_validation_animals():
    qa, classify = make_task("qa"), make_task("classify")
    assert (len(qa.train), len(qa.val), len(qa.test)) == (256, 40, 88)  # each fact asked both ways
    assert qa.world.val_animals == classify.world.val_animals and qa.world.facts == classify.world.facts
    assert all(len(qa.world.seen[a]) == 4 and len(classify.world.seen[a]) == 2 for a in qa.world.animals)
    a = next(a for a in qa.world.animals if "food" in qa.world.seen[a])  # answers name only what was asked
    food = qa.world.facts[a]["food"]
    assert (f"q: what does the {a} eat?\na:", f" it eats {food}.") in qa.train.examples
    assert (f"q: which animal eats {food}?\na:", f" the {a}.") in qa.train.examples
    with pytest.raises(ValueError, match="shown must be 1..5"):
        make_world(0, shown=6)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("rows", [1, 7, 48, 1000])
def test_rows_keeps_an_evenly_spread_subsequence_of_each_split(task, rows):
    full, few = make_task(task), make_task(task, rows=rows)
    for name in ("train", "val", "test"):
        whole, kept = getattr(full, name).examples, getattr(few, name).examples
        assert len(kept) == min(rows, len(whole))
        at = [whole.index(pair) for pair in kept]  # where each kept pair stands in the full split
        step = -(-len(whole) // rows)  # evenly spread: no gap wider than ceil(N / rows), from the first row to the end
        assert at[0] == 0 and all(0 < b - a <= step for a, b in zip(at, at[1:])) and at[-1] >= len(whole) - step
        assert getattr(few, name).x.shape[0] == len(kept)
    assert make_task("relabel", rows=rows).test.examples == [(p, {" cat.": " dog.", " dog.": " cat."}.get(a, a))
                                                             for p, a in make_task("classify", rows=rows).test.examples]


@pytest.mark.parametrize("rows", [0, -3, 2.5, "8", True])
def test_rows_other_than_a_positive_int_or_none_is_refused(rows):
    with pytest.raises(ValueError, match="rows must be an int >= 1"):
        make_task("classify", rows=rows)


def test_mask_covers_exactly_the_answer():
    task = make_task("classify")
    tok = task.tokenizer
    for n in (0, 17, len(task.train) - 1):
        prompt, answer = task.train.examples[n]
        m = task.train.mask[n].bool()
        assert tok.decode(task.train.y[n][m]) == answer + END  # the end-of-answer marker is learned too
        assert tok.decode(task.train.x[n][: len(prompt)]) == prompt


def test_relabel_swaps_only_cat_and_dog():
    c, r = task_examples(make_world(0), "classify"), task_examples(make_world(0), "relabel")
    for (p1, a1), (p2, a2) in zip(c["test"] + c["val"], r["test"] + r["val"], strict=True):
        assert p1 == p2
        assert a2 == {" cat.": " dog.", " dog.": " cat."}.get(a1, a1)


def test_corpus_states_facts_both_ways_and_rows_start_at_a_sentence():
    corpus = make_corpus(n_train=50, n_test=8, length=97)
    assert corpus.train.x.shape == (50, 96)
    assert torch.equal(corpus.train.x[:, 1:], corpus.train.y[:, :-1])
    text = "\n".join(corpus.train.examples)
    sentences = set(corpus_sentences(corpus.world))
    assert all(any(s.startswith(r.split("\n")[0]) for s in sentences) for r in corpus.train.examples)
    assert "the animal that" in text and " is the " in text
    with pytest.raises(ValueError):
        make_task("translate")


WORDS = [(f"say {w}:", f" {w}") for w in ("cat", "dog", "owl", "hen", "pig", "cow", "bee", "fox", "bat", "ant")]


def test_from_pairs_splits_by_prompt_with_the_seed_and_adds_the_end_marker():
    d = minituner.Dataset.from_pairs(WORDS, val=0.2, test=0.3, seed=1)
    assert (len(d.train), len(d.val), len(d.test)) == (5, 2, 3)
    assert sorted(d.train.examples + d.val.examples + d.test.examples) == sorted(WORDS)
    again = minituner.from_pairs(WORDS, val=0.2, test=0.3, seed=1)
    assert d.test.examples == again.test.examples
    assert minituner.from_pairs(WORDS, val=0.2, test=0.3, seed=2).test.examples != d.test.examples
    tok = d.tokenizer
    assert tok.decode(d.train.y[0][d.train.mask[0].bool()]) == d.train.examples[0][1] + END


def test_from_pairs_takes_its_own_val_and_test_lists_and_lowercases():
    d = Dataset.from_pairs([("Say Cat:", " CAT")], val=[("say dog:", " dog")], test=[("say owl:", " owl")],
                           lowercase=True)
    assert d.train.examples == [("say cat:", " cat")] and len(d.val) == len(d.test) == 1


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(pairs="cat"), TypeError, "pairs must be a list"),
    (dict(pairs=[("a", 3)]), TypeError, "answer must be a str"),
    (dict(pairs=[("a",)]), TypeError, "pair must be a"),
    (dict(pairs=[("", "b")]), ValueError, "prompt is empty"),
    (dict(pairs=[("a", "b\nc")]), ValueError, "newline"),
    (dict(pairs=[("the Cat", " x")]), ValueError, "'C' at position 4 of the prompt.*alphabet.*lowercase=True"),
    (dict(pairs=[("x", " é")]), ValueError, "pairs\\[0\\]: character 'é'"),
    (dict(pairs=WORDS, val=1.5), ValueError, "val must be a fraction"),
    (dict(pairs=WORDS, val=0.5, test=0.5), ValueError, "leave rows to train on"),
    (dict(pairs=WORDS[:2]), ValueError, "leave a split empty"),
    (dict(pairs=WORDS, val=[]), ValueError, "val split has no rows"),
    (dict(pairs=WORDS, val=WORDS[:1], test=WORDS[1:2]), ValueError, "in both train and val"),
])
def test_from_pairs_bad_input_is_a_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dataset.from_pairs(**kwargs)


def test_from_jsonl_reads_one_pair_per_line_and_names_the_file_and_line(tmp_path):
    import json

    good = tmp_path / "pairs.jsonl"
    good.write_text("\n".join(json.dumps({"prompt": p, "answer": a}) for p, a in WORDS) + "\n\n")
    d = Dataset.from_jsonl(good)
    assert d.name == "pairs" and len(d.train) + len(d.val) + len(d.test) == len(WORDS)
    for text, match in (('{"prompt": "a", "answer": "b"}\n{"prompt": "a"', "line 2: not valid JSON"),
                        ('{"prompt": "a", "answer": "b"}\n["a", "b"]', "line 2: each line must be an object"),
                        ('{"prompt": "a", "answer": "b"}\n{"prompt": "Zoo", "answer": "b"}', "line 2: character 'Z'"),
                        ('{"prompt": "a", "answer": 1}', "line 1: each line must be")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(ValueError, match=f"bad.jsonl, {match}"):
            Dataset.from_jsonl(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        Dataset.from_jsonl(tmp_path / "missing.jsonl")
