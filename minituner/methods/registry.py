"""The one list of methods: each method file registers itself (as PEFT's ``register_peft_method``),
and every entry point reads METHODS — the command line, the comparison and its sweep, the memory
model, the distributed runner, the benchmarks and the lessons. A new method is one new file in
minituner/methods/ that calls ``register`` (the package imports every module in it).

    register(Method("lora", "LoRA", LoraConfig, LoraModel, order=6, grid={**ranks(4, 8), "lr": [3e-3, 1e-2]},
                    memory="lora"))

An entry: ``key`` (the command line's --method and the comparison's name), ``label`` (tables),
the config and model classes, ``fixed`` (config fields that define this entry: P-Tuning v2 is
PrefixTuningConfig with prefix_projection=False), ``defaults`` (this entry's own defaults, which a
user may override), ``grid`` (what the sweep tries: config fields and "lr"; a tuple of names
takes tuples of values that go together), ``memory`` (the layout memory.estimate_memory counts,
or None), ``note`` (what the table's setting column says beside the swept values) and ``order``.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from ..model import GPT

METHODS: dict = {}  # key -> Method, in registration order; sorted by .order where order matters
MODELS: dict = {}  # config class -> model class (several entries may share one config)


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    config: type
    model: type
    order: float
    grid: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    memory: str | None = None
    note: str = ""

    def fields(self) -> list[dataclasses.Field]:
        """The config fields a user sets for this method (its options): not the ones it fixes."""
        return [f for f in dataclasses.fields(self.config) if "help" in f.metadata and f.name not in self.fixed]

    def make_config(self, **values):
        """The config of this entry: the config's defaults, this entry's defaults, values, the fixed fields."""
        fixed = sorted(set(values) & set(self.fixed))
        if fixed:
            raise ValueError(f"{self.key} fixes {', '.join(f'{k}={self.fixed[k]!r}' for k in fixed)}; "
                             f"that is what makes it {self.label}")
        defaults = dict(self.defaults)
        if values.get("init", defaults.get("init")) != defaults.get("init"):
            defaults.pop("init_text", None)  # an entry's default text goes with its default init only
        return self.config(**{**defaults, **values, **self.fixed})

    def default(self, name: str):
        """This entry's default for a config field."""
        if name in self.defaults:
            return self.defaults[name]
        return {f.name: f.default for f in dataclasses.fields(self.config)}[name]

    def settings(self) -> list[dict]:
        """Every combination of the grid, as {config field or "lr": value}."""
        keys = list(self.grid)
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            setting = {}
            for k, v in zip(keys, values):
                setting.update(zip(k, v) if isinstance(k, tuple) else [(k, v)])
            out.append(setting)
        return out

    def describe(self, setting: dict) -> str:
        """A setting in words for tables, e.g. 'r=8, α=32, q,v, lr=0.003' (short names from option())."""
        short = {f.name: f.metadata.get("short") or f.name for f in dataclasses.fields(self.config)}
        parts = [f"{short[k]}={v:g}" if isinstance(v, float) else f"{short[k]}={v}"
                 for k, v in setting.items() if k != "lr"]
        return ", ".join(parts + ([self.note] if self.note else []) + [f"lr={setting['lr']:g}"])


def register(method: Method) -> Method:
    """Add a method to METHODS (a ValueError if its key is taken or its config has no ``method`` name)."""
    if method.key in METHODS:
        raise ValueError(f"a method with key {method.key!r} is already registered ({METHODS[method.key].label})")
    if not isinstance(getattr(method.config, "method", None), str):
        raise ValueError(f"{method.config.__name__} needs a class attribute `method` (its name in saved files)")
    unknown = set(method.fixed) | set(method.defaults) | {n for k in method.grid for n in (k if isinstance(k, tuple) else (k,))}
    unknown -= {f.name for f in dataclasses.fields(method.config)} | {"lr"}
    if unknown:
        raise ValueError(f"{method.key}: {sorted(unknown)} are not fields of {method.config.__name__}")
    METHODS[method.key] = method
    MODELS.setdefault(method.config, method.model)
    return method


def ordered() -> list[Method]:
    """The methods in the order tables show them (the article's first)."""
    return sorted(METHODS.values(), key=lambda m: m.order)


def by_config_name(name: str) -> tuple[type, type]:
    """(config class, model class) for a saved file's ``method`` name (e.g. "prompt_tuning")."""
    for config, model in MODELS.items():
        if config.method == name:
            return config, model
    known = sorted({c.method for c in MODELS})
    raise ValueError(f"unknown method {name!r}; known: {', '.join(known)}")


def get_peft_model(base: GPT, config, adapter_name: str = "default"):
    """The model to train: config's method applied to a copy of base (a plain GPT: methods do not stack)."""
    if isinstance(base, tuple(MODELS.values())):  # a PeftModel: every one of them is registered
        raise ValueError(f"methods do not stack: this is already a {type(base).__name__} ({base.config.method}). "
                         "Apply the method to its base instead (model.base is a frozen copy of the GPT; "
                         "for LoRA, model.merge_and_unload() gives a plain GPT with ΔW inside)")
    if not isinstance(base, GPT):
        raise TypeError(f"get_peft_model needs a GPT, got {type(base).__name__}")
    if any(hasattr(m, "lora_A") for m in base.modules()):  # a LoRALinear
        raise ValueError("this GPT has LoRA layers inside (it is a LoraModel's .base); methods do not stack: "
                         "use lora_model.merge_and_unload() for a plain GPT, or add_adapter() for another LoRA")
    if type(config) not in MODELS:
        raise TypeError(f"config must be one of {', '.join(c.__name__ for c in MODELS)}, got {type(config).__name__}")
    model = MODELS[type(config)](base, config.validate(), adapter_name)
    if getattr(config, "inference_mode", False):  # PEFT's: the adapter built frozen
        model.set_inference_mode()
    return model


def low_rank(r: int) -> dict:
    """A low-rank setting: rank r with α = 4r (a scale α/r of 4 at every rank, as the sweeps use)."""
    return {"r": r, "lora_alpha": 4 * r}


def ranks(*rs: int) -> dict:
    """The low-rank grid over ranks rs, each with low_rank's α."""
    return {("r", "lora_alpha"): [tuple(low_rank(r).values()) for r in rs]}
