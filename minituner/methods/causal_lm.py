"""PEFT's call of a causal language model: ``model(input_ids=..., labels=...)`` returns an output with
``.loss`` and ``.logits``, the loss computed as transformers' ForCausalLMLoss does:

    loss = mean over t of  −log softmax(logits[t])[labels[t + 1]],   labels == −100 not counted

(the labels are the inputs themselves; the shift by one happens here, not in the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..functional import cross_entropy


@dataclass
class CausalLMOutput:
    """What PEFT's (transformers') causal LM returns: the mean next-token loss when labels are given, and logits."""

    loss: torch.Tensor | None
    logits: torch.Tensor


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """transformers' ForCausalLMLoss: position t predicts labels[t + 1]; label -100 is ignored.
    logits (B, T, V), labels (B, T) -> the mean cross-entropy over the counted positions."""
    shifted = torch.cat([labels[:, 1:], labels.new_full((labels.size(0), 1), -100)], dim=1)  # (B, T): next label
    counted = shifted != -100  # (B, T)
    return cross_entropy(logits.float(), shifted.clamp(min=0), mask=counted)  # mean over the counted rows
