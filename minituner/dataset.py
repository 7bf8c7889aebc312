"""Datasets: (prompt, answer) pairs turned into token rows, in three disjoint splits.

A ``Dataset`` holds a ``train``, a ``val`` and a ``test`` split (the article's §4
step 2: the data prepared, with a validation set to watch training and a test set
to report once). The built-in tasks come from ``minituner.make_task``; your own
pairs come from ``Dataset.from_pairs`` or ``Dataset.from_jsonl``:

    data = minituner.Dataset.from_pairs([("2+2=", "4"), ...], val=0.2, test=0.2)
    data = minituner.Dataset.from_jsonl("pairs.jsonl")   # {"prompt": ..., "answer": ...} per line

Each answer gets the end-of-answer marker (``tokenizer.END``, a newline, the way every
sentence of the pretraining corpus ends) so a model learns where to stop, and the loss
counts the answer's tokens only (as PEFT and LLaMA-Factory train).
"""

from __future__ import annotations

import json
import numbers
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import chat
from .checks import boolean
from .files import read_bytes
from .tokenizer import END, CharTokenizer


@dataclass
class Split:
    """Token rows ready to train on: x (N, L) inputs, y (N, L) next tokens, mask (N, L) where the loss counts.

    ``examples`` keeps the (prompt, answer) text of each row (for tasks) or the row's text (corpus).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    examples: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # where each row came from ("FILE, line N", "pairs[i]")

    def __len__(self) -> int:
        return self.x.size(0)

    def lengths(self) -> torch.Tensor:
        """(N,) the positions each row fills: up to its last position where the loss counts."""
        positions = torch.arange(1, self.mask.size(1) + 1)  # (L,)
        return ((self.mask > 0) * positions).amax(dim=1)  # (N,)

    def check_context(self, block_size: int, num_virtual_tokens: int = 0) -> None:
        """A ValueError naming the longest row (its file and line) when a row needs more positions
        than a model with this block_size has: a row filling L positions needs num_virtual_tokens + L."""
        lengths = self.lengths()  # (N,)
        n = int(lengths.argmax())
        if num_virtual_tokens + int(lengths[n]) > block_size:
            where = self.sources[n] if n < len(self.sources) else f"{self.name} row {n}"
            virtual = f" + {num_virtual_tokens} virtual tokens" if num_virtual_tokens else ""
            too_long = int((lengths + num_virtual_tokens > block_size).sum())
            raise ValueError(f"{where}: the row fills {int(lengths[n])} positions{virtual}, more than the model's "
                             f"context block_size={block_size} ({too_long} row(s) of the {self.name} split are "
                             f"too long); shorten them{' or use fewer virtual tokens' if virtual else ''}")

    def batch(self, batch_size: int, generator: torch.Generator):
        """A random batch (rows drawn with replacement by the seeded generator)."""
        i = torch.randint(len(self), (batch_size,), generator=generator)
        return self.x[i], self.y[i], self.mask[i]


def encode_examples(name: str, examples: list[tuple[str, str]], tok: CharTokenizer, end: str = END,
                    sources: list[str] | None = None) -> Split:
    """(prompt, answer) pairs -> a Split whose mask covers the answer tokens only.

    Row text = prompt + answer + end; x = text[:-1], y = text[1:], right-padded with <pad>.
    mask[t] = 1 where y[t] is a character of the answer (the end marker included).
    sources: where each pair came from, for error messages (default "NAME pair n").
    """
    if not examples:
        raise ValueError(f"the {name} split has no rows; every split needs at least one (prompt, answer) pair")
    rows = []
    for n, (p, a) in enumerate(examples):
        try:
            p, a = tok.encode(p), tok.encode(a) + tok.encode(end)  # the marker one token of its own
        except ValueError as e:
            raise ValueError(f"{sources[n] if sources else f'{name} pair {n}'}: {e}") from None
        rows.append((p + a, [0] * len(p) + [1] * len(a)))
    return encode_rows(name, rows, list(examples), list(sources or [f"{name} pair {n}" for n in range(len(rows))]),
                       tok)


def encode_rows(name: str, rows: list[tuple[list[int], list[int]]], examples: list, sources: list[str],
                tok) -> Split:
    """[(ids, mask)] -> a Split: x = ids[:-1], y = ids[1:], mask[1:] (mask[i] = 1: token i is a trained
    target), right-padded with <pad>."""
    L = max(len(ids) for ids, _ in rows) - 1
    x = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
    y = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), L)
    for n, (ids, m) in enumerate(rows):
        ids = torch.tensor(ids)
        x[n, : len(ids) - 1] = ids[:-1]
        y[n, : len(ids) - 1] = ids[1:]
        mask[n, : len(ids) - 1] = torch.tensor(m[1:], dtype=torch.float)
    return Split(name, x, y, mask, examples, sources)


def encode_conversations(name: str, conversations: list[list[dict]], tok, template, sources: list[str],
                         train_on_prompt: bool = False, mask_history: bool = False) -> Split:
    """Conversations -> a Split through a chat template (chat.render_ids gives each row's mask);
    examples: each row's (generation prompt, last answer), as a pair's."""
    if not conversations:
        raise ValueError(f"the {name} split has no rows; every split needs at least one conversation")
    rows = [chat.render_ids(c, template, tok, train_on_prompt, mask_history) for c in conversations]
    return encode_rows(name, rows, [chat.prompt_and_answer(c, template) for c in conversations], list(sources), tok)


def _check_pair(pair, where: str, tok: CharTokenizer, lowercase: bool) -> tuple[str, str]:
    """One (prompt, answer) pair checked: two non-empty strings, every character known to the tokenizer."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{where}: a pair must be a (prompt, answer) tuple of two strings, got {pair!r:.60}")
    prompt, ans = pair
    for field_name, text in (("prompt", prompt), ("answer", ans)):
        if not isinstance(text, str):
            raise TypeError(f"{where}: the {field_name} must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError(f"{where}: the {field_name} is empty")
    if lowercase:
        prompt, ans = prompt.lower(), ans.lower()
    if END in ans:
        raise ValueError(f"{where}: the answer contains a newline, the end-of-answer marker; "
                         f"use one line per answer")
    for field_name, text in (("prompt", prompt), ("answer", ans)):
        _check_text(text, where, f"the {field_name}", tok)
    return prompt, ans


def _check_text(text: str, where: str, what: str, tok) -> str:
    """text, when the tokenizer writes every character of it; else a ValueError naming where and what."""
    if not isinstance(tok, CharTokenizer):  # GPT-2's byte-level BPE writes any text
        return text
    alphabet = "".join(tok.itos[2:])
    for pos, ch in enumerate(text):
        if ch not in tok.stoi or ch in tok.itos[:2]:
            hint = " (pass lowercase=True to lower-case the text)" if ch.lower() in tok.stoi else ""
            raise ValueError(f"{where}: character {ch!r} at position {pos} of {what} is not in the tokenizer's "
                             f"alphabet {alphabet!r}{hint}")
    return text


@dataclass
class Dataset:
    """Three disjoint splits (train, val, test) and the tokenizer; tasks, the corpus and a
    user's own pairs look alike to train() and evaluate().

    train() trains on ``train`` and scores ``val`` (selection, early stopping); ``test`` is
    scored once, at the end, by whoever reports.
    """

    name: str
    train: Split
    val: Split
    test: Split
    tokenizer: CharTokenizer
    world: object = None  # the mini-world a built-in task came from (None for your own pairs)
    template: str | None = None  # the chat template its conversations are rendered with (None: pairs)

    def check_context(self, block_size: int, num_virtual_tokens: int = 0) -> None:
        """Refuse, before training, a row longer than a model's context: call it with the model's
        ``gpt_config.block_size`` and the virtual tokens its method adds (prompt or prefix length).
        The ValueError names the row's file and line (or pairs[i])."""
        for split in (self.train, self.val, self.test):
            split.check_context(block_size, num_virtual_tokens)

    @classmethod
    def from_pairs(cls, pairs, val=0.2, test=0.2, seed: int = 0, lowercase: bool = False,
                   name: str = "pairs", tokenizer: CharTokenizer | None = None) -> Dataset:
        """Your own (prompt, answer) pairs as a Dataset.

        val, test: fractions of the distinct prompts (dealt by a shuffle seeded with the int
        `seed`, so one prompt never lands in two splits), or lists of pairs of their own (then
        `pairs` is all train). lowercase: lower-case prompts and answers first (the tokenizer
        knows lower case only). A prompt given twice must have the same answer both times.
        """
        if isinstance(pairs, (str, bytes, dict)) or not isinstance(pairs, (list, tuple)):
            raise TypeError(f"pairs must be a list of (prompt, answer) pairs, got {type(pairs).__name__}")
        rows = [(f"pairs[{i}]", p) for i, p in enumerate(pairs)]
        return cls._from_rows(rows, val, test, seed, lowercase, name, tokenizer or CharTokenizer())

    @classmethod
    def from_conversations(cls, conversations, val=0.2, test=0.2, seed: int = 0, lowercase: bool = False,
                           name: str = "conversations", tokenizer: CharTokenizer | None = None,
                           template=chat.DEFAULT, train_on_prompt: bool = False,
                           mask_history: bool = False) -> Dataset:
        """Your own conversations (each a list of {"role", "content"} turns, see minituner.chat) as a
        Dataset, rendered with a chat template. The train split's mask follows train_on_prompt and
        mask_history (chat.render_ids); the val and test splits score the last assistant turn only
        (its exact match is the accuracy). Splits are dealt by conversation (its text up to the last
        answer), as from_pairs deals prompts; val, test, seed and lowercase as there."""
        if isinstance(conversations, (str, bytes, dict)) or not isinstance(conversations, (list, tuple)):
            raise TypeError(f"conversations must be a list of conversations (lists of turns), "
                            f"got {type(conversations).__name__}")
        rows = [(f"conversations[{i}]", c) for i, c in enumerate(conversations)]
        return cls._from_rows(rows, val, test, seed, lowercase, name, tokenizer or CharTokenizer(),
                              (chat.get_template(template).name, train_on_prompt, mask_history))

    @classmethod
    def _from_rows(cls, items: list, val, test, seed, lowercase: bool, name: str, tok: CharTokenizer,
                   conversations: tuple | None = None) -> Dataset:
        """items: [(where it came from, a (prompt, answer) pair)], or with conversations = (template,
        train_on_prompt, mask_history) [(where, a conversation)]; val, test: fractions or lists of items."""
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int (the same seed gives the same splits), got {seed!r}")
        boolean("lowercase", lowercase)  # "no" is text, not False
        rows = {"pairs": items}
        for what, given in (("val", val), ("test", test)):
            if isinstance(given, (list, tuple)):
                rows[what] = [(f"{what}[{i}]", p) for i, p in enumerate(given)]
        if conversations is None:
            check = lambda item, where: (item := _check_pair(item, where, tok, lowercase), item)  # noqa: E731
        else:
            check = lambda item, where: _check_conversation(item, where, tok, lowercase, conversations[0])  # noqa: E731
        # checked rows: (where, (prompt, answer) the splits are dealt by, the item itself)
        checked = {what: [(where, *check(p, where)) for where, p in given] for what, given in rows.items()}
        _check_one_answer_per_prompt([r[:2] for given in checked.values() for r in given])
        train_rows = checked["pairs"]
        fractions = {w: f for w, f in (("val", val), ("test", test)) if w not in checked}
        for what, f in fractions.items():
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
                raise ValueError(f"{what} must be a fraction strictly between 0 and 1 or a list of pairs, got {f!r}")
        if sum(fractions.values()) >= 1:
            raise ValueError(f"val + test must leave rows to train on, got {fractions}")
        prompts = sorted({p for _, (p, _), _ in train_rows})  # split by prompt: one prompt, one split
        random.Random(seed).shuffle(prompts)
        start = 0
        for what, f in fractions.items():
            k = round(len(prompts) * f)
            if k < 1 or start + k >= len(prompts):
                raise ValueError(f"{len(prompts)} distinct prompts with {what}={f} leave a split empty; "
                                 f"give more pairs or larger fractions")
            chosen = set(prompts[start:start + k])
            checked[what] = [r for r in train_rows if r[1][0] in chosen]
            start += k
        kept = set(prompts[start:])
        train_rows = [r for r in train_rows if r[1][0] in kept]
        prompts_of = {w: {p for _, (p, _), _ in r} for w, r in (("train", train_rows), ("val", checked["val"]),
                                                                  ("test", checked["test"]))}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):  # pairwise
            shared = prompts_of[a] & prompts_of[b]
            if shared:
                raise ValueError(f"{len(shared)} prompt(s) are in both {a} and {b}, e.g. "
                                 f"{sorted(shared)[0]!r}; the splits must be disjoint")
        given = (("train", train_rows), ("val", checked["val"]), ("test", checked["test"]))
        if conversations is None:
            splits = [encode_examples(s, [pair for _, pair, _ in r], tok, sources=[where for where, _, _ in r])
                      for s, r in given]
            return cls(name, *splits, tok)
        template, train_on_prompt, mask_history = conversations
        splits = [encode_conversations(s, [c for _, _, c in r], tok, template, [where for where, _, _ in r],
                                       *((train_on_prompt, mask_history) if s == "train" else (False, True)))
                  for s, r in given]  # val and test: the last answer only, the one scored
        return cls(name, *splits, tok, template=template)

    @classmethod
    def from_jsonl(cls, path, val=0.2, test=0.2, seed: int = 0, lowercase: bool = False,
                   tokenizer=None, template=None, train_on_prompt: bool = False,
                   mask_history: bool = False) -> Dataset:
        """One example per line (blank lines skipped), UTF-8, in one of three layouts:
        {"prompt": ..., "answer": ...}; OpenAI's {"messages": [{"role": ..., "content": ...}, ...]};
        LLaMA-Factory's "sharegpt" {"conversations": [{"from": "human" | "gpt" | "system", "value": ...}]}.
        A file of conversations is rendered with `template` (default chat.DEFAULT; train_on_prompt and
        mask_history as in from_conversations); with a template, pairs become one-turn conversations.
        A line that does not decode or parse, a bad turn, or a character the tokenizer lacks, is a
        ValueError naming the file, the line and the field. tokenizer: the base's (default
        CharTokenizer; a BPETokenizer for a GPT-2 base)."""
        path = Path(path)
        tok = tokenizer or CharTokenizer()
        rows, layouts = [], {}
        for n, raw in enumerate(read_bytes(path).split(b"\n"), start=1):
            where = f"{path}, line {n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                                 f"save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: each line must be an object: {{\"prompt\": ..., \"answer\": ...}}, "
                                 f"{{\"messages\": [...]}} or {{\"conversations\": [...]}}; got {line[:60]!r}")
            layout = next((k for k in ("messages", "conversations") if k in obj), "prompt/answer")
            layouts.setdefault(layout, where)
            if len(layouts) > 1:
                other = next(k for k in layouts if k != layout)
                raise ValueError(f"{where}: a {layout!r} line in a file of {other!r} lines (as {layouts[other]}); "
                                 f"one layout per file")
            if layout == "prompt/answer":
                if not isinstance(obj.get("prompt"), str) or not isinstance(obj.get("answer"), str):
                    raise ValueError(f"{where}: each line must be an object with string fields \"prompt\" and "
                                     f"\"answer\" (or a conversation: \"messages\" or \"conversations\"), "
                                     f"got {line[:60]!r}")
                rows.append((where, (obj["prompt"], obj["answer"])))
            else:
                rows.append((where, chat.read_conversation(obj, where, clean=lambda text, at, where=where: _check_text(
                    text.lower() if lowercase else text, where, at, tok))))
        if not rows:
            raise ValueError(f"{path}: no (prompt, answer) or conversation lines found")
        if template is not None and "prompt/answer" in layouts:
            rows = [(where, chat.pair_to_messages(*_check_pair(pair, where, tok, lowercase))) for where, pair in rows]
        conversations = None
        if template is not None or "prompt/answer" not in layouts:
            conversations = (chat.get_template(template or chat.DEFAULT).name, train_on_prompt, mask_history)
        try:
            return cls._from_rows(rows, val, test, seed, lowercase, path.stem, tok, conversations)
        except ValueError as e:  # the splits' errors too name the file (a row's error names it already)
            raise ValueError(str(e) if str(path) in str(e) else f"{path}: {e}") from None


def _check_conversation(messages, where: str, tok, lowercase: bool, template: str) -> tuple[tuple[str, str], list]:
    """((generation prompt, last answer), the conversation) checked: its turns (chat.check_messages),
    every character known to the tokenizer, markers of the template nowhere in a content."""
    def clean(text: str, field_name: str) -> str:
        return _check_text(text.lower() if lowercase else text, where, field_name, tok)

    messages = chat.check_messages(messages, where, clean=clean)
    try:
        return chat.prompt_and_answer(messages, template), messages
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _check_one_answer_per_prompt(rows: list[tuple[str, tuple[str, str]]]) -> None:
    """A ValueError naming both places when one prompt is given two different answers
    (exact-match accuracy could not score it, and training would pull two ways)."""
    first = {}
    for where, (prompt, answer) in rows:
        other = first.setdefault(prompt, (where, answer))
        if other[1] != answer:
            raise ValueError(f"{other[0]} and {where}: the prompt {prompt!r} has two answers, {other[1]!r} and "
                             f"{answer!r}; give each prompt one answer")


from_pairs = Dataset.from_pairs
