"""A character tokenizer for the mini-world.

Every character of the mini-world's text is one token. Two ids are special:

- ``<pad>`` (id 0) fills the short rows of a batch; it never counts in a loss
  (its mask is 0) and the model never has to predict it.
- ``<eos>`` (id 1) ends a text in ``decode``; the pretraining corpus never uses it.

The end-of-answer marker is ``END``, a newline: every sentence of the pretraining
corpus ends with one, so the base already stops there, and every dataset adds it
after each answer (an answer therefore may not contain a newline; a prompt may).
``answer()`` and ``generate(stop_id=...)`` stop at it.

A character outside the alphabet is a ``ValueError`` that names it: the model
has no embedding row for it, and silently dropping it would change the text.
"""

from __future__ import annotations

import torch

PAD, EOS = "<pad>", "<eos>"
END = "\n"  # the end-of-answer marker
SPECIALS = (PAD, EOS)
ALPHABET = "\n ,.?:'abcdefghijklmnopqrstuvwxyz"


class CharTokenizer:
    """Maps text to token ids and back, one character per token."""

    def __init__(self, alphabet: str = ALPHABET):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("the alphabet has a repeated character; each character needs one id")
        self.itos = list(SPECIALS) + list(alphabet)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pad_id = self.stoi[PAD]
        self.eos_id = self.stoi[EOS]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """'the cat' -> [ids]; an unknown character is a ValueError naming it."""
        try:
            return [self.stoi[ch] for ch in text]  # one character never equals a special's name ("<pad>")
        except KeyError:
            pos, ch = next((i, ch) for i, ch in enumerate(text) if ch not in self.stoi)
            raise ValueError(
                f"unknown character {ch!r} at position {pos} of {text[:40]!r}; "
                f"the tokenizer knows only {''.join(self.itos[len(SPECIALS):])!r}"
            ) from None

    def decode(self, ids) -> str:
        """[ids] -> text; <pad> is dropped and <eos> ends the text."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary 0..{self.vocab_size - 1}")
            if i == self.eos_id:
                break
            if i != self.pad_id:
                out.append(self.itos[i])
        return "".join(out)
