"""PeftModel: the one shape every method's model has, as in Hugging Face PEFT.

    model = get_peft_model(base, config)        # a copy of base inside, as model.base
    model(idx) -> logits (B, T, V)              # the LanguageModel interface, like GPT
    model(input_ids=idx, labels=idx)            # PEFT's call: an output with .loss and .logits
    model.print_trainable_parameters()          # prints; get_nb_trainable_parameters() -> (trainable, all)
    with model.disable_adapter(): model(idx)    # the base's own logits, for every method
    model.save_pretrained(dir)                  # dir/adapter_config.json (the config with inference_mode=True,
                                                #   as PEFT writes it; the base's fingerprint) + adapter_model.safetensors
    again = PeftModel.from_pretrained(base, dir)   # checked (sha256, method, base fingerprint, names and shapes),
                                                #   then frozen, in eval mode (is_trainable=True: to train on)

The base passed in is never modified: every method works on a deep copy (frozen unless the
method trains it). ``.config`` is the method's config; the GPT's own is ``.base.config``.
What is saved is ``adapter_state_dict()``: detached tensors (as PEFT's get_peft_model_state_dict) of the
tensors the method adds (not those of the base), and of ``in_place``, the base's own tensors a method trains
where they are (full, freeze, BitFit, LoRA's bias); ``trained_tensors()`` gives the live ones. Setting
``in_place`` keeps the base's values of those tensors (``base_values``), which ``disable_adapter`` puts in.
A method computes its logits in ``logits(idx, kv_cache)``; ``forward`` adds PEFT's keywords.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch

from ..checkpoint import check_state, fingerprint, load_folder, save_folder
from ..model import GPT, LanguageModel, count_parameters, print_trainable_parameters
from ..version import __version__
from .causal_lm import CausalLMOutput, causal_lm_loss
from .registry import by_config_name, get_peft_model


def adapter_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype of the tensors a method adds beside t, the base's: PEFT's autocast_adapter_dtype, float32
    beside a float16 or bfloat16 base (so small updates are not rounded away), else the base's own."""
    return torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else t.dtype


# Other folder formats from_pretrained reads: {name: (recognises(path), load(base, path, adapter_name))}.
# minituner/peft_format.py adds PEFT's own (adapter_config.json with peft_type) when minituner is imported.
FORMATS: dict = {}


class PeftModel(LanguageModel):
    """A copy of a GPT (``.base``), frozen, plus what the method trains; ``.config`` says how."""

    def __init__(self, base: GPT, config, adapter_name: str = "default"):
        super().__init__()
        self.active_adapter = adapter_name  # the name PEFT gives it; only LoRA holds several
        self.base_fingerprint = fingerprint(base)  # of the base as given: a save refuses any other
        self.base = copy.deepcopy(base)  # train the copy: the base's tensors stay as they are
        self.base.requires_grad_(False)
        self.config = config
        self.in_place: list[str] = []  # the base's tensors this method trains where they are
        self.adapters_disabled, self.stashed = False, {}  # inside disable_adapter: the trained in_place values

    @property
    def in_place(self) -> list[str]:
        return self._in_place

    @in_place.setter
    def in_place(self, names):
        """The base's tensors trained where they are; their values now (the base's) are kept for disable_adapter."""
        self._in_place = list(names)
        self.base_values = {n: self.base.get_parameter(n).detach().clone() for n in self._in_place}
        self.chat_template: str | None = None  # the chat template it trains with (minituner.chat), saved with it

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

    def forward(self, idx=None, kv_cache=None, *, input_ids=None, labels=None, attention_mask=None,
                output_hidden_states: bool = False):
        """model(idx) -> logits (B, T, V) of the real tokens; PEFT's model(input_ids=, labels=) -> CausalLMOutput."""
        if output_hidden_states:
            raise ValueError("transformers' output_hidden_states is not offered: read a block's output with a forward "
                             "hook, model.base.h[i].register_forward_hook(...)")
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

    def generate(self, idx=None, max_new_tokens: int | None = None, *, input_ids=None, attention_mask=None,
                 do_sample: bool | None = None, **kw):
        """LanguageModel.generate, also as PEFT calls it: generate(input_ids=..., max_new_tokens=...), with
        transformers' do_sample (False: greedy; True: temperature 1, top_k 50 unless given) and attention_mask
        (B, T) of 1 for a token and 0 for padding, on the left or on the right, as ``**tokenizer(texts,
        padding=True)`` gives it: each row is continued as it is alone (its real tokens only, numbered from 0),
        laid out as given (left padding stays in front; right padding moves behind the new tokens)."""
        if (idx is None) == (input_ids is None):
            raise TypeError("give the prompt once: generate(idx, n) or generate(input_ids=..., max_new_tokens=n)")
        if max_new_tokens is None:
            raise TypeError("generate needs max_new_tokens")
        idx = idx if idx is not None else input_ids
        if do_sample is not None and not isinstance(do_sample, bool):
            raise TypeError(f"do_sample must be True or False, got {do_sample!r}")
        if do_sample is False and (kw.get("temperature") or kw.get("top_k")):
            raise ValueError("do_sample=False is greedy decoding: temperature and top_k would have no effect")
        if do_sample:
            kw = {"temperature": 1.0, "top_k": min(50, self.gpt_config.vocab_size)} | kw  # transformers' defaults
        if attention_mask is None or bool((attention_mask == 1).all()):
            return super().generate(idx, max_new_tokens, **kw)
        mask = attention_mask.bool()
        if mask.shape != idx.shape or not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise ValueError(f"attention_mask must be 0s and 1s of the shape of input_ids {tuple(idx.shape)}, "
                             f"got {tuple(attention_mask.shape)}")
        steps = mask.long().diff(dim=1).abs().sum(dim=1)  # (B,): 0 → 1 or 1 → 0 changes along each row
        if not bool(mask.any(dim=1).all()) or bool((steps > 1).any()):
            raise ValueError("attention_mask: each row needs one run of 1s, padded on the left or on the right")
        rows = []
        for ids, m in zip(idx, mask):  # each row alone: its real tokens, positions from 0
            real = ids[m]
            new = super().generate(real[None], max_new_tokens, **kw)[0, real.numel():]
            rows.append(torch.cat([ids, new]) if not m[0] else torch.cat([real, new, ids[~m]]))
        return torch.stack(rows)  # (B, T + new)

    @contextlib.contextmanager
    def disable_adapter(self):
        """``with model.disable_adapter(): model(x)`` equals base(x) for every method: what the method adds
        is skipped, and the base's tensors it trains in place hold the base's own values inside (frozen; the
        trained values are kept aside, and saved by save_pretrained inside). Blocks nest: only the outermost
        one turns the adapter back on."""
        if self.adapters_disabled:  # an inner block: already the base
            yield self
            return
        with torch.no_grad():
            self.stashed = {n: (self.base.get_parameter(n).detach().clone(), self.base.get_parameter(n).requires_grad)
                            for n in self.in_place}
            for n in self.in_place:
                self.base.get_parameter(n).copy_(self.base_values[n]).requires_grad_(False)
        self.adapters_disabled = True
        try:
            yield self
        finally:
            self.adapters_disabled = False
            with torch.no_grad():
                for n, (value, grad) in self.stashed.items():
                    self.base.get_parameter(n).copy_(value).requires_grad_(grad)
            self.stashed = {}

    def trained_tensors(self) -> dict[str, torch.Tensor]:
        """The live tensors save_pretrained writes (Parameters): those the method adds, and the base's it
        trains in place (as base.<name>)."""
        return ({n: p for n, p in self.named_parameters() if not n.startswith("base.")}
                | {f"base.{n}": self.base.get_parameter(n) for n in self.in_place})

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """What save_pretrained writes, detached (sharing storage, as PEFT's get_peft_model_state_dict); inside
        disable_adapter the in_place tensors' trained values, not the base's they hold there."""
        return {n: self.stashed.get(n.removeprefix("base."), (t,))[0].detach()
                for n, t in self.trained_tensors().items()}

    @torch.no_grad()
    def load_adapter_state_dict(self, state: dict[str, torch.Tensor], what: str = "state") -> None:
        """Copy state into the model's tensors; a ValueError for a missing, extra or misshapen tensor."""
        mine = self.trained_tensors()
        check_state(mine, state, what)
        for name, t in mine.items():
            t.copy_(state[name])

    def set_inference_mode(self) -> None:
        """PEFT's inference_mode=True: the adapter's tensors frozen (prompt and prefix tuning too, as PEFT >= 0.22)."""
        for p in self.trained_tensors().values():
            p.requires_grad_(False)

    def save_pretrained(self, path, selected_adapters: list[str] | None = None) -> str:
        """Write path/adapter_config.json and path/adapter_model.safetensors, as one atomic pair (the config
        with inference_mode=True, as PEFT writes it): the active adapter. selected_adapters (PEFT's): those
        adapters, laid out as PEFT does, "default" in path and any other in path/<name>."""
        if selected_adapters is None:
            return self.write_adapter(path, self.config, self.adapter_state_dict())
        names = [selected_adapters] if isinstance(selected_adapters, str) else list(selected_adapters)
        configs = getattr(self, "peft_config", {self.active_adapter: self.config})
        unknown = [n for n in names if n not in configs]
        if unknown or not names:
            raise ValueError(f"selected_adapters={selected_adapters!r}: the model's adapters are {list(configs)}")
        for name in names:  # only LoRA (peft_config) holds several adapters
            state = self.adapter_state_dict(name) if hasattr(self, "peft_config") else self.adapter_state_dict()
            self.write_adapter(Path(path) / name if name != "default" else path, configs[name], state)
        return str(path)

    def write_adapter(self, path, config, state: dict) -> str:
        config_dict = config.validate().to_dict() | ({"inference_mode": True} if hasattr(config, "inference_mode") else {})
        info = {"method": config.method, "config": config_dict,
                "base_fingerprint": self.base_fingerprint, "minituner_version": __version__}
        if self.chat_template is not None:  # the template it was trained with (minituner.chat), for generate
            info["chat_template"] = self.chat_template
        return str(save_folder(path, info, state))

    @property
    def device(self) -> torch.device:
        """transformers' model.device: where the base's tensors are."""
        return self.base.wte.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """transformers' model.dtype: the base's."""
        return self.base.wte.weight.dtype

    def get_input_embeddings(self):
        """transformers' name for the token embedding: the base's wte (V, C)."""
        return self.base.wte

    @property
    def active_peft_config(self):
        """PEFT's: the config of the active adapter."""
        return self.config

    def gradient_checkpointing_enable(self, **kwargs):
        raise ValueError("transformers' gradient_checkpointing_enable is not offered: minituner's GPT keeps every "
                         "activation; for less memory lower the batch size (docs/memory.md shows what each costs)")

    def add_weighted_adapter(self, *args, **kwargs):
        raise ValueError("PEFT's add_weighted_adapter is not offered: merge_adapter(adapter_names=[a, b]) adds the "
                         "named adapters' ΔW (weights 1), or train one adapter on both tasks")

    @staticmethod
    def read_saved(path, base_fingerprint: str, model_cls: type) -> tuple[dict, dict]:
        """(info, tensors) saved in path, checked: tensors' sha256 (load_folder), method, base fingerprint."""
        info, state = load_folder(path)
        method = info["method"]
        if not isinstance(method, str):
            raise ValueError(f"{path}: 'method' must be a method's name (a string), got {method!r}")
        if not issubclass(by_config_name(method)[1], model_cls):
            raise ValueError(f"{path} holds a {method!r} model, not a {model_cls.__name__}; "
                             f"load it with PeftModel.from_pretrained(base, path)")
        if info["base_fingerprint"] != base_fingerprint:
            raise ValueError(f"{path} was trained on the base with fingerprint {info['base_fingerprint']}, "
                             f"not on this one ({base_fingerprint}); load it onto that base")
        return info, state

    @staticmethod
    def saved_config(info: dict, is_trainable: bool):
        """The saved config, with PEFT's inference_mode = not is_trainable where the config has it."""
        config_cls, d = by_config_name(info["method"])[0], dict(info["config"])
        if "inference_mode" in {f for f in config_cls.__dataclass_fields__}:
            d["inference_mode"] = not is_trainable
        return config_cls.from_dict(d)

    @classmethod
    def from_pretrained(cls, base: GPT, path, adapter_name: str = "default", is_trainable: bool = False):
        """The model saved in path, rebuilt on base (the GPT it was trained on), checked before use:
        the tensors' sha256, the method, the base's fingerprint, the tensor names and shapes.
        As PEFT: frozen and in eval mode, unless is_trainable=True (then trainable, in training mode).
        A folder in PEFT's own format (peft_type in adapter_config.json) is read too."""
        if not isinstance(base, GPT):
            raise TypeError(f"from_pretrained needs the plain GPT the model was trained on, got {type(base).__name__}")
        if not isinstance(is_trainable, bool):
            raise TypeError(f"is_trainable must be True or False, got {is_trainable!r}")
        for recognises, load in FORMATS.values():
            if recognises(path):
                return cls.as_loaded(load(base, path, adapter_name), is_trainable)
        info, state = cls.read_saved(path, fingerprint(base), cls)
        model = get_peft_model(base, cls.saved_config(info, is_trainable), adapter_name)
        model.load_adapter_state_dict(state, f"{path}/adapter_model.safetensors")
        model.chat_template = info.get("chat_template")
        return cls.as_loaded(model, is_trainable)

    @staticmethod
    def as_loaded(model, is_trainable: bool):
        """A loaded model as PEFT hands it out, whatever the folder's format: frozen and in eval mode
        unless is_trainable=True (then trainable, in training mode)."""
        if is_trainable and model.config.method in ("prompt_tuning", "prefix_tuning"):
            raise ValueError("is_trainable=True is refused for prompt and prefix tuning, as PEFT; they load frozen. "
                             "To train on, make a new model with get_peft_model(base, config) and copy the saved "
                             "tensors in with model.load_adapter_state_dict(tensors)")
        if not is_trainable:
            model.set_inference_mode() if hasattr(model.config, "inference_mode") else model.requires_grad_(False)
            model.eval()
        return model
