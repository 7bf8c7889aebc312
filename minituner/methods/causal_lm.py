"""PEFT's call of a causal language model: ``model(input_ids=..., labels=...)`` returns an output with
``.loss`` and ``.logits``, the loss computed as transformers' ForCausalLMLoss does:

    loss = mean over t of  −log softmax(logits[t])[labels[t + 1]],   labels == −100 not counted

(the labels are the inputs themselves; the shift by one happens here, not in the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CausalLMOutput:
    """What PEFT's (transformers') causal LM returns: the mean next-token loss when labels are given, and logits."""

    loss: torch.Tensor | None
    logits: torch.Tensor


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """transformers' ForCausalLMLoss: position t predicts labels[t + 1]; label -100 is ignored.
    logits (B, T, V), labels (B, T) -> the mean cross-entropy over the counted positions."""
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]  # (B, T): the next token's label
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), shifted.flatten(), ignore_index=-100)
