"""Serving many tasks from one frozen base: each request names its adapter, one batch mixes them.

The article (§3.2) keeps one W for every task and, per task, a few trained parameters that
are called on demand (按需调用), put before W (在 W 前面拼接一些参数) or added to it (ΔW).
A ``Server`` holds the base once and every task's adapter by name. In a batch of B requests
row b names its adapter a_b, and each row is computed with its own, as if it ran alone:

    soft prompt   X'_b = [P_{a_b}; X_b]                        prompt=(B, k, C), row b its P
    prefix        K'_b = [P_k,{a_b}; K_b],  V'_b = [P_v,{a_b}; V_b]
                                                               prefixes=[(B, k, C) pair] * L
    LoRA          y_b = W x_b + b + s_a · B_a A_a x_b,  a = a_b
                  in every LoRALinear the rows of adapter a get that adapter's s·(x Aᵀ)Bᵀ
                  (Hugging Face PEFT's mixed batch, ``adapter_names=`` per row)

One forward per group: soft prompts of one length k, prefixes of one length k, and the LoRA
adapters (any ranks and targets) together with BASE, the base alone. A batch that mixes
groups runs one forward per group and puts each row's logits back in its place.
"""

from __future__ import annotations

import contextlib

import torch

from .checkpoint import fingerprint
from .methods import LoraModel, PrefixTuningModel, PromptTuningModel, get_peft_model
from .methods.lora import lora_layers
from .model import GPT

BASE = "base"  # the name that asks for no adapter: the base alone


@contextlib.contextmanager
def lora_rows(model: LoraModel, names: list[str]):
    """Inside, model(idx) gives row b the ΔW of adapter names[b] (BASE: none), in every LoRALinear."""
    rows = {n: torch.tensor([b for b, m in enumerate(names) if m == n]) for n in dict.fromkeys(names) if n != BASE}

    def add_rows(layer, inputs, y):  # y (B, T, out) = W x + b: the adapters are disabled inside
        (x,) = inputs  # (B, T, in)
        for name, b in rows.items():
            if name in layer.lora_A:
                A, B = layer.lora_A[name], layer.lora_B[name]  # (r, in), (out, r)
                y = y.index_add(0, b.to(y.device), layer.scale[name] * (x[b] @ A.T) @ B.T)  # rows b: + s·x Aᵀ Bᵀ
        return y

    handles = [layer.register_forward_hook(add_rows) for layer in lora_layers(model.base).values()]
    try:
        with model.disable_adapter():  # W alone (a merged W is unmerged inside), plus each row's own ΔW
            yield model
    finally:
        for h in handles:
            h.remove()


class Server:
    """One frozen base and adapters by name; ``server(idx, names)`` -> logits (B, T, V), row b with names[b]."""

    def __init__(self, base: GPT):
        if not isinstance(base, GPT):
            raise TypeError(f"a Server needs the plain GPT the adapters were trained on, got {type(base).__name__}")
        self.base, self.fingerprint = base, fingerprint(base)
        self.prompts: dict[str, torch.Tensor] = {}  # name -> P (k, C)
        self.prefixes: dict[str, torch.Tensor] = {}  # name -> (L, 2, k, C)
        self.lora: LoraModel | None = None  # every LoRA adapter, on one copy of the base

    @property
    def names(self) -> list[str]:
        return [BASE, *self.prompts, *self.prefixes, *(self.lora.list_adapters() if self.lora else [])]

    @torch.no_grad()
    def add(self, name: str, model) -> None:
        """Add a trained PromptTuningModel, PrefixTuningModel or LoraModel (its active adapter) as `name`."""
        if not isinstance(name, str) or not name or "." in name or name in self.names:
            raise ValueError(f"an adapter name is a new non-empty string without dots; taken: {self.names}, got {name!r}")
        if getattr(model, "base_fingerprint", None) != self.fingerprint:
            raise ValueError(f"{name!r} was trained on another base (fingerprint "
                             f"{getattr(model, 'base_fingerprint', None)}, this one {self.fingerprint})")
        if isinstance(model, PromptTuningModel):
            self.prompts[name] = model.prompt.detach().clone()  # (k, C)
        elif isinstance(model, PrefixTuningModel):
            self.prefixes[name] = model.prefix_tensor().detach().clone()  # (L, 2, k, C)
        elif type(model) is LoraModel:
            if self.lora is None:
                self.lora = get_peft_model(self.base, model.config, name).eval()
            else:
                self.lora.add_adapter(name, model.config)
                self.lora.set_adapter(name)  # PEFT's add_adapter keeps the active one: the tensors load into `name`
            self.lora.load_adapter_state_dict(model.adapter_state_dict(), f"LoRA adapter {name!r}")
        else:
            raise TypeError(f"a Server serves prompt tuning, prefix tuning (P-Tuning v2) and LoRA adapters, "
                            f"got {type(model).__name__}")

    def group(self, name: str) -> tuple[str, int]:
        """The forward a row of adapter `name` joins: (kind, k)."""
        if name in self.prompts:
            return "prompt", self.prompts[name].size(0)
        if name in self.prefixes:
            return "prefix", self.prefixes[name].size(2)
        return "weights", 0  # LoRA adapters and the base alone

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor, names: list[str]) -> torch.Tensor:
        """idx (B, T) token ids, names: one adapter name per row (BASE for none) -> logits (B, T, V)."""
        if len(names) != idx.size(0):
            raise ValueError(f"one adapter name per row: {idx.size(0)} rows, {len(names)} names")
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise ValueError(f"no adapter named {unknown}; the server has {self.names}")
        groups: dict[tuple[str, int], list[int]] = {}
        for b, name in enumerate(names):
            groups.setdefault(self.group(name), []).append(b)
        out = None
        for (kind, _), rows in groups.items():
            x, mine = idx[rows], [names[b] for b in rows]  # (B_g, T)
            if kind == "prompt":
                logits = self.base(x, prompt=torch.stack([self.prompts[n] for n in mine]))  # prompt (B_g, k, C)
            elif kind == "prefix":
                P = torch.stack([self.prefixes[n] for n in mine], dim=2)  # (L, 2, B_g, k, C)
                logits = self.base(x, prefixes=[(p[0], p[1]) for p in P])  # [(P_k, P_v)] * L, (B_g, k, C) each
            elif self.lora is None:
                logits = self.base(x)
            else:
                with lora_rows(self.lora, mine):
                    logits = self.lora(x)
            if out is None:
                out = logits.new_empty(idx.size(0), *logits.shape[1:])  # (B, T, V)
            out[rows] = logits
        return out
