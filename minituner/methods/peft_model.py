"""PeftModel: the one shape every method's model has, as in Hugging Face PEFT.

    model = get_peft_model(base, config)        # a copy of base inside, as model.base
    model(idx) -> logits (B, T, V)              # the LanguageModel interface, like GPT
    model(input_ids=idx, labels=idx)            # PEFT's call: an output with .loss and .logits
    model.print_trainable_parameters()          # prints; get_nb_trainable_parameters() -> (trainable, all)
    with model.disable_adapter(): model(idx)    # the base's own logits, for every method
    model.save_pretrained(dir)                  # dir/adapter_config.json + adapter_model.safetensors
    again = PeftModel.from_pretrained(base, dir)   # frozen, in eval mode (is_trainable=True: to train on)

The base passed in is never modified: every method works on a deep copy (frozen unless the
method trains it). ``.config`` is the method's config; the GPT's own is ``.base.config``.
What is saved is ``adapter_state_dict()``: the tensors the method adds (not those of the base),
and ``in_place``, the base's own tensors a method trains where they are (full, freeze, BitFit).
A method computes its logits in ``logits(idx, kv_cache)``; ``forward`` adds PEFT's keywords.
"""

from __future__ import annotations

import contextlib
import copy
import weakref

import torch

from ..checkpoint import check_state, fingerprint
from ..model import GPT, LanguageModel
from ..report import count_parameters, print_trainable_parameters
from .causal_lm import CausalLMOutput, causal_lm_loss
from .saving import Saving


class PeftModel(Saving, LanguageModel):
    """A copy of a GPT (``.base``), frozen, plus what the method trains; ``.config`` says how."""

    def __init__(self, base: GPT, config, adapter_name: str = "default"):
        super().__init__()
        self.active_adapter = adapter_name  # the name PEFT gives it; only LoRA holds several
        self.base_fingerprint = fingerprint(base)  # of the base as given: a save refuses any other
        self.origin = weakref.ref(base)  # the base as given, for disable_adapter (never changed)
        self.base = copy.deepcopy(base)  # train the copy: the base's tensors stay as they are
        self.base.requires_grad_(False)
        self.config = config
        self.in_place: list[str] = []  # the base's tensors this method trains where they are
        self.adapters_disabled = False

    @property
    def gpt_config(self):
        return self.base.config

    @property
    def active_adapters(self) -> list[str]:
        return [self.active_adapter]

    def get_base_model(self) -> GPT:
        """The GPT inside (PEFT's name): our copy of the base, with the method's layers in it."""
        return self.base

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, all) numbers of elements, as PEFT."""
        return count_parameters(self)

    def print_trainable_parameters(self) -> None:
        """Print PEFT's line 'trainable params: N || all params: M || trainable%: P' (returns None, as PEFT)."""
        print_trainable_parameters(self)

    def logits(self, idx, kv_cache=None):
        return self.base(idx, kv_cache=kv_cache)  # (B, T, V)

    def forward(self, idx=None, kv_cache=None, *, input_ids=None, labels=None, attention_mask=None):
        """model(idx) -> logits (B, T, V) of the real tokens; PEFT's model(input_ids=, labels=) -> CausalLMOutput."""
        if input_ids is None and labels is None and attention_mask is None:
            return self.base(idx, kv_cache=kv_cache) if self.adapters_disabled else self.logits(idx, kv_cache)
        if idx is not None or input_ids is None:
            raise TypeError("give the tokens once: model(idx) or model(input_ids=..., labels=...)")
        if attention_mask is not None and not bool((attention_mask == 1).all()):
            raise ValueError("attention_mask must be all ones: minituner's GPT has no padding (cut or batch by length)")
        logits = self.base(input_ids) if self.adapters_disabled else self.causal_logits(input_ids)
        return CausalLMOutput(None if labels is None else self.causal_loss(logits, labels), logits)

    def causal_logits(self, input_ids):
        """The logits PEFT's causal LM returns: one row per position (prompt tuning adds its k virtual rows)."""
        return self.logits(input_ids)  # (B, T, V)

    def causal_loss(self, logits, labels):
        return causal_lm_loss(logits, labels)

    def generate(self, idx=None, max_new_tokens: int | None = None, *, input_ids=None, **kw):
        """LanguageModel.generate, also as PEFT calls it: generate(input_ids=..., max_new_tokens=...)."""
        if (idx is None) == (input_ids is None):
            raise TypeError("give the prompt once: generate(idx, n) or generate(input_ids=..., max_new_tokens=n)")
        if max_new_tokens is None:
            raise TypeError("generate needs max_new_tokens")
        return super().generate(idx if idx is not None else input_ids, max_new_tokens, **kw)

    @contextlib.contextmanager
    def disable_adapter(self):
        """``with model.disable_adapter(): model(x)`` equals base(x) for every method: what the method adds
        is skipped, and the base's tensors it trains in place hold the base's own values inside (frozen)."""
        saved = self._swap_in_origin()
        self.adapters_disabled = True
        try:
            yield self
        finally:
            self.adapters_disabled = False
            with torch.no_grad():
                for n, (value, grad) in saved.items():
                    self.base.get_parameter(n).copy_(value).requires_grad_(grad)

    @torch.no_grad()
    def _swap_in_origin(self) -> dict:
        """Put the base's own values into the in_place tensors; returns {name: (trained value, requires_grad)}."""
        if not self.in_place:
            return {}
        origin = self.origin()
        if origin is None or fingerprint(origin) != self.base_fingerprint:
            raise ValueError("disable_adapter needs the base this model was made from, unchanged (the method "
                             "trains the base's own tensors); it is gone or was modified")
        saved = {}
        for n in self.in_place:
            p = self.base.get_parameter(n)
            saved[n] = (p.detach().clone(), p.requires_grad)
            p.copy_(origin.get_parameter(n.replace(".base_layer", ""))).requires_grad_(False)
        return saved

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Exactly what save_pretrained writes: the tensors the method adds, and the base's it trains in place."""
        return ({n: p for n, p in self.named_parameters() if not n.startswith("base.")}
                | {f"base.{n}": self.base.get_parameter(n) for n in self.in_place})

    @torch.no_grad()
    def load_adapter_state_dict(self, state: dict[str, torch.Tensor], what: str = "state") -> None:
        """Copy state into the model's tensors; a ValueError for a missing, extra or misshapen tensor."""
        mine = self.adapter_state_dict()
        check_state(mine, state, what)
        for name, t in mine.items():
            t.copy_(state[name])

    def set_inference_mode(self) -> None:
        """PEFT's inference_mode=True: the adapter's tensors frozen (prompt and prefix tuning too, as PEFT >= 0.22)."""
        for p in self.adapter_state_dict().values():
            p.requires_grad_(False)
