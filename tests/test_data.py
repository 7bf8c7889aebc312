"""The mini-world: tokenizer, splits, masks, and a test split that needs pretraining."""

import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minituner.data import (
    KINDS,
    TASKS,
    corpus_sentences,
    make_corpus,
    make_task,
    make_world,
    task_examples,
)
from minituner.tokenizer import ALPHABET, CharTokenizer


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
def test_splits_share_no_example_and_test_facts_are_unseen(task):
    world = make_world(0)
    ex = task_examples(world, task)
    assert not {p for p, _ in ex["train"]} & {p for p, _ in ex["test"]}
    words = lambda pairs: set(re.findall(r"[a-z]+", " ".join(p + a for p, a in pairs)))  # noqa: E731
    train_words, test_words = words(ex["train"]), words(ex["test"])
    for a in world.animals:  # each animal's unseen kinds of fact appear in the test only
        for k in KINDS:
            v = world.facts[a][k]
            if k in world.seen[a]:
                assert v in train_words
            else:
                assert v not in train_words and v in test_words


def test_mask_covers_exactly_the_answer():
    task = make_task("classify")
    tok = task.tokenizer
    for n in (0, 17, len(task.train) - 1):
        prompt, answer = task.train.examples[n]
        m = task.train.mask[n].bool()
        assert tok.decode(task.train.y[n][m]) == answer
        assert tok.decode(task.train.x[n][: len(prompt)]) == prompt


def test_relabel_swaps_only_cat_and_dog():
    c, r = task_examples(make_world(0), "classify"), task_examples(make_world(0), "relabel")
    for (p1, a1), (p2, a2) in zip(c["test"], r["test"]):
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
