"""What prompt tuning and prefix tuning share: n_virtual tokens put before the real ones.

Both add n_virtual = num_virtual_tokens positions that no text fills: the attention length
n_virtual + T may not exceed ``block_size`` (model.py raises ValueError at run time; here the
count is checked once, when the model is built, so that one real token still fits).
Both can start from text (init="text"): ``init_text`` is encoded by the base's own tokenizer (the BPE of
the GPT-2 folder the base was loaded from, its ``name_or_path``; else the character tokenizer) and, as PEFT
does, repeated or cut to n_virtual tokens ("the cat" for 10 tokens: "the catthe").
"""

from __future__ import annotations

import math

import torch

from ..bpe import BPETokenizer
from ..checks import refuse
from ..model import GPT, KVCache
from ..tokenizer import CharTokenizer


def check_room(n_virtual: int, base: GPT) -> None:
    """n_virtual must leave room for at least one real token: 1 <= n_virtual < block_size."""
    bs = base.config.block_size
    if not 1 <= n_virtual < bs:
        raise refuse(ValueError, "num_virtual_tokens", f"num_virtual_tokens must be an integer in 1..{bs - 1} (virtual "
                                                       f"+ real positions may not exceed block_size={bs}), got {n_virtual}")


def init_text_ids(init_text: str, n_virtual: int, base: GPT) -> torch.Tensor:
    """The ids of init_text in the base's tokenizer, repeated or cut to n_virtual, (n_virtual,); a ValueError
    naming a character the tokenizer lacks."""
    folder = getattr(base, "name_or_path", None)  # a GPT-2 folder's base: its BPE, as PEFT's tokenizer_name_or_path
    try:
        ids = (BPETokenizer.from_files(folder) if folder else CharTokenizer()).encode(init_text)
    except ValueError as e:
        raise ValueError(f"init_text cannot be encoded: {e}") from None
    return torch.tensor((ids * math.ceil(n_virtual / len(ids)))[:n_virtual])  # (n_virtual,)


@torch.no_grad()
def text_keys_values(base: GPT, ids: torch.Tensor) -> torch.Tensor:
    """Each layer's own keys and values of a phrase: (L, 2, n_virtual, C), read from a KVCache."""
    cache = KVCache(base.config.n_layer)
    base(ids.view(1, -1).to(base.wte.weight.device), kv_cache=cache)
    n, C = ids.numel(), base.config.n_embd
    return torch.stack([torch.stack([t[0].transpose(0, 1).reshape(n, C) for t in (layer.k, layer.v)])
                        for layer in cache.layers])  # (nh, n, hs) -> (n, C) per tensor; (L, 2, n, C)


def uniform_(t: torch.Tensor, fan_in: int, g: torch.Generator) -> None:
    """U(−1/sqrt(fan_in), 1/sqrt(fan_in)): torch's (and so PEFT's) default for a Linear."""
    bound = 1.0 / math.sqrt(fan_in)
    t.copy_((torch.rand(t.shape, generator=g) * 2 - 1) * bound)
