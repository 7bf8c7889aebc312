"""GPT-2's byte-level BPE: trained on the mini-world, written as vocab.json/merges.txt, and
checked against transformers' GPT2Tokenizer reading the same files."""

import json
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optional import HUGGING_FACE, optional

from minituner.bpe import BYTE_TO_CHAR, EOT, BPETokenizer, bytes_to_unicode, chunks, train_bpe
from minituner.data import corpus_sentences, make_world

transformers = optional("transformers")
pytestmark = HUGGING_FACE

PIECES = ["全量微调", "提示微调和前缀微调", "低秩适配 LoRA", "猫吃鱼。", "你好，世界！", "café", "naïve", "straße",
          "Ørsted", "🐱🐶", "привет", "αβγ", "e\u0301", "12345", "3.14", "it's", "we'll", "they've", "I'd",
          "DON'T", "'S", "  ", "\t", "\n\n", " \n ", "\u00a0", "\u3000", "\x00", "\x7f", "!!!", "...", "a-b",
          "the cat eats fish", "dog's", "   lots   of   space   "]


def strings(n: int = 1200, seed: int = 0) -> list[str]:
    """n strings: the corpus's sentences, then random mixes of its words with non-ASCII, Chinese,
    digits, contractions and odd whitespace."""
    rng = random.Random(seed)
    sentences = corpus_sentences(make_world(0))
    words = sorted({w for s in sentences for w in s.split()})
    out = list(sentences)
    while len(out) < n:
        parts = [rng.choice(PIECES if rng.random() < 0.4 else words) for _ in range(rng.randint(1, 12))]
        out.append("".join(p + rng.choice([" ", "", "  ", "\n", ", "]) for p in parts))
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 300-merge vocabulary learned from the mini-world corpus, saved, and both tokenizers on it."""
    folder = tmp_path_factory.mktemp("bpe")
    train_bpe(corpus_sentences(make_world(0)), num_merges=300).save(folder)
    ours = BPETokenizer.from_files(folder)
    theirs = transformers.GPT2Tokenizer.from_pretrained(folder)
    return ours, theirs, folder


def test_byte_table_is_a_bijection_onto_printable_characters():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("a")] == "a"


def test_chunks_follow_gpt2s_pattern():
    assert chunks("the cat's 2 dogs!  ok") == ["the", "Ġcat", "'s", "Ġ2", "Ġdogs", "!", "Ġ", "Ġok"]


def test_the_first_merge_is_the_most_frequent_pair():
    texts = corpus_sentences(make_world(0))
    pairs = Counter(p for t in texts for c in chunks(t) for p in zip(c, c[1:]))
    tok = train_bpe(texts, num_merges=1)
    assert tok.merges == [max(pairs, key=pairs.get)]


def test_files_are_gpt2s_format(files):
    ours, _, folder = files
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#version") and len(lines) == 301
    assert [vocab[c] for c in BYTE_TO_CHAR.values()] == list(range(256))  # bytes first, GPT-2's order
    assert vocab[EOT] == ours.eos_id == max(vocab.values())


def test_ids_equal_transformers_and_round_trip_on_1200_strings(files):
    ours, theirs, _ = files
    texts = strings()
    assert len(texts) >= 1000 and sum(any(ord(c) > 0x4e00 for c in t) for t in texts) > 100
    n_tokens = n_bytes = 0
    for text in texts:
        ids = ours.encode(text)
        assert ids == theirs.encode(text), text
        assert ours.decode(ids) == text == theirs.decode(ids, clean_up_tokenization_spaces=False)
        n_tokens, n_bytes = n_tokens + len(ids), n_bytes + len(text.encode())
    assert n_tokens < 0.6 * n_bytes  # the merges learned from the corpus compress its words


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_text_matches_transformers_and_round_trips(files, text):
    ours, theirs, _ = files
    assert ours.encode(text) == theirs.encode(text)
    assert ours.decode(ours.encode(text)) == text


def test_end_of_text_is_one_id_and_ends_decoding(files):
    ours, theirs, _ = files
    ids = ours.encode(f"the cat{EOT} eats")
    assert ids == theirs.encode(f"the cat{EOT} eats") and ids.count(ours.eos_id) == 1
    assert ours.decode(ids) == "the cat"


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        BPETokenizer.from_files(tmp_path)
    with pytest.raises(ValueError, match="byte tokens"):
        BPETokenizer({"a": 0, EOT: 1}, [])
