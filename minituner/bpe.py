"""GPT-2's byte-level BPE tokenizer, written out: encode, decode, read and write its files, train.

Byte-pair encoding (Sennrich et al. 2016) on bytes (Radford et al. 2019, §2.2):
text is turned into UTF-8 bytes, so any string — English, Chinese, emoji — can be
encoded with no unknown token, and a learned list of merges glues frequent neighbours
into longer tokens. Four pieces, each a few lines below:

1. ``bytes_to_unicode``: GPT-2 writes each of the 256 bytes as one printable character
   (the byte for a space is "Ġ", a newline "Ċ"), so vocab.json and merges.txt are
   plain text with one visible character per byte.
2. ``PATTERN``: before merging, text is cut into chunks (words with their leading space,
   runs of digits, of punctuation, of spaces, and English contractions); merges never
   cross a chunk boundary, so "dog." and "dog!" share the token "Ġdog".
3. ``merge loop`` (``BPETokenizer.bpe``): within a chunk, repeatedly find the adjacent
   pair with the lowest rank (learned earliest) and merge every occurrence, left to right;
   stop when no adjacent pair is a learned merge.
4. ``train_bpe``: learn the merges from text — count every adjacent pair over all chunks
   (weighted by how often the chunk occurs), merge the most frequent pair, repeat.

Files (the Hugging Face GPT-2 format, read by transformers' ``GPT2Tokenizer``):
    vocab.json   {"token string": id}; ids 0..255 are the bytes, then the merges' tokens,
                 then "<|endoftext|>" (GPT-2 has 50,257 entries: 256 + 50,000 + 1)
    merges.txt   "#version: 0.2" then one merge per line, "Ġ d" means Ġ + d → "Ġd", in rank order

Special token: "<|endoftext|>" is GPT-2's only one; it is the end-of-text id, and (as is
usual for GPT-2, which has no pad token) the pad id too. In ``encode`` the literal text
"<|endoftext|>" becomes that id, as in transformers.

References: 1) Sennrich, Haddow, Birch 2016, Neural Machine Translation of Rare Words with
Subword Units. 2) Radford et al. 2019, Language Models are Unsupervised Multitask Learners.
3) Karpathy, minbpe (the layout of this file). 4) OpenAI gpt-2 ``encoder.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import regex
import torch

from .checkpoint import atomic_write
from .files import read_json, read_text

EOT = "<|endoftext|>"
# GPT-2's pre-tokenising pattern: contractions, letters, numbers, other symbols (each with an
# optional leading space), then runs of spaces; \s+(?!\S) leaves the last space to the next word.
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
SPLIT = regex.compile(PATTERN)


def bytes_to_unicode() -> dict[int, str]:
    """byte -> one printable character: the 188 printable Latin-1 bytes stand for themselves,
    the other 68 (control bytes, space, 0x7f-0xa0, 0xad) are shifted to chr(256 + n) in order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, n = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table  # keys in GPT-2's order: the printable bytes first, then the shifted ones


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def chunks(text: str) -> list[str]:
    """Pre-tokenise: 'the cat's 2 dogs!' -> ['the', ' cat', "'s", ' 2', ' dogs', '!'], each then
    written as byte characters ('Ġcat' for ' cat')."""
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8")) for piece in SPLIT.findall(text)]


def merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Merge every non-overlapping occurrence of pair in word, left to right: (a, a, a) + (a, a) -> (aa, a)."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


class BPETokenizer:
    """GPT-2's tokenizer from a vocabulary {token: id} and a ranked list of merges.

    Same interface as CharTokenizer: encode, decode, vocab_size, pad_id, eos_id, stoi, itos.
    """

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        missing = [c for c in BYTE_TO_CHAR.values() if c not in vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks {len(missing)} of the 256 byte tokens (e.g. {missing[0]!r}): "
                             "a byte-level BPE must be able to write every byte")
        if EOT not in vocab:
            raise ValueError(f"the vocabulary has no {EOT!r}, GPT-2's end-of-text token")
        for a, b in merges:
            if a + b not in vocab:
                raise ValueError(f"merge {a!r} + {b!r} makes {a + b!r}, which is not in the vocabulary")
        self.stoi = dict(vocab)
        self.itos = {i: s for s, i in vocab.items()}
        self.ranks = {pair: r for r, pair in enumerate(merges)}  # lower rank: learned earlier, merged first
        self.eos_id = self.pad_id = vocab[EOT]
        self.cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return max(self.itos) + 1

    @property
    def merges(self) -> list[tuple[str, str]]:
        return sorted(self.ranks, key=self.ranks.get)

    def bpe(self, chunk: str) -> list[int]:
        """The merge loop on one chunk (already in byte characters) -> its token ids."""
        if chunk not in self.cache:
            word = tuple(chunk)
            while len(word) > 1:
                pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, float("inf")))
                if pair not in self.ranks:
                    break  # no adjacent pair was ever merged in training: done
                word = merge_pair(word, pair)
            self.cache[chunk] = [self.stoi[t] for t in word]
        return self.cache[chunk]

    def encode(self, text: str) -> list[int]:
        """text -> token ids; the literal '<|endoftext|>' is the end-of-text id."""
        if not isinstance(text, str):
            raise TypeError(f"encode needs a str, got {type(text).__name__}")
        ids = []
        for n, part in enumerate(text.split(EOT)):
            if n:
                ids.append(self.eos_id)
            for chunk in chunks(part):
                ids += self.bpe(chunk)
        return ids

    def decode(self, ids) -> str:
        """token ids -> text, stopping at the first end-of-text id (the pad id too: rows are
        right-padded). Bytes that are not valid UTF-8 (a cut multi-byte character) become '�'."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = bytearray()
        for i in ids:
            if i not in self.itos:
                raise ValueError(f"token id {i} is not in the vocabulary (0..{self.vocab_size - 1})")
            if i == self.eos_id:
                break
            out += bytes(CHAR_TO_BYTE[c] for c in self.itos[i])
        return out.decode("utf-8", errors="replace")

    @classmethod
    def from_files(cls, folder) -> BPETokenizer:
        """Read folder/vocab.json and folder/merges.txt (GPT-2's files, or save()'s)."""
        folder = Path(folder)
        vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
        vocab = read_json(vocab_path)
        bad = next(((k, v) for k, v in vocab.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0), None)
        if bad:
            raise ValueError(f"{vocab_path}: token {bad[0]!r} has id {bad[1]!r}; ids are integers >= 0")
        if len(set(vocab.values())) != len(vocab):
            raise ValueError(f"{vocab_path}: two tokens share an id; each id names one token")
        merges = []
        for n, line in enumerate(read_text(merges_path).splitlines()):
            if line.startswith("#version") or not line.strip():
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{merges_path}:{n + 1}: a merge is two tokens separated by one space, got {line!r}")
            merges.append((parts[0], parts[1]))
        try:
            return cls(vocab, merges)
        except ValueError as e:
            raise ValueError(f"{vocab_path} and {merges_path.name}: {e}") from None

    def save(self, folder) -> None:
        """Write folder/vocab.json and folder/merges.txt, each atomically."""
        folder = Path(folder)
        vocab = json.dumps(self.stoi, ensure_ascii=False)
        merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges)
        atomic_write(folder / "vocab.json", lambda tmp: Path(tmp).write_text(vocab, encoding="utf-8"))
        atomic_write(folder / "merges.txt", lambda tmp: Path(tmp).write_text(merges, encoding="utf-8"))


def train_bpe(texts: list[str], num_merges: int) -> BPETokenizer:
    """Learn up to num_merges merges from texts (stops early when no pair occurs twice).

    Each step: count every adjacent pair inside every chunk, weighted by the chunk's count;
    merge the most frequent pair (ties: the pair seen first) everywhere; record the merge.
    A merged string already in the vocabulary keeps its id (two merges may spell one token).
    """
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0, got {num_merges}")
    words = Counter(tuple(c) for text in texts for c in chunks(text))  # chunk (as symbols) -> count
    vocab = {c: i for i, c in enumerate(BYTE_TO_CHAR.values())}
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs or max(pairs.values()) < 2:
            break
        best = max(pairs, key=pairs.get)  # the first of the most frequent (Counter keeps insertion order)
        merges.append(best)
        vocab.setdefault(best[0] + best[1], len(vocab))
        merged = Counter()
        for word, count in words.items():
            merged[merge_pair(word, best)] += count
        words = merged
    vocab[EOT] = len(vocab)
    return BPETokenizer(vocab, merges)

