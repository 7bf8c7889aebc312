"""LoRA (Hu et al. 2021), the article's §3.2: LoraConfig, the layer LoRALinear (a frozen Linear plus
trainable low-rank ΔW's) and LoraModel (a frozen GPT whose targeted Linears are LoRALinear, PEFT's verbs).

Article (column vectors):  Y = (W + ΔW) X,  ΔW = A B,  ΔW m×n, A m×r, B r×n, r ≪ m, n.
Paper and PEFT (our code):  h = W x + ΔW x = W x + B A x,  A r×in (random), B out×r (zero).
Row form, the line in ``LoRALinear.forward`` (base_layer(x) = linear(x, W, b); x_A is x, dropped
out on this path when lora_dropout > 0):

    y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T        scale = α / r   (α / √r with rsLoRA)

Names: the code uses the paper's and PEFT's names, so the article's letters swap places.
The article's A (m×r) is our ``lora_B`` (out×r); the article's B (r×n) is our ``lora_A``
(r×in): ΔW = A_article · B_article = lora_B · lora_A (α is PEFT's ``lora_alpha``).

Shapes (in, out of the wrapped Linear; r the rank), and PEFT's init_lora_weights:
    lora_A (r, in)   True: uniform in ±1/√in (PEFT's Kaiming-uniform); "gaussian": N(0, 1/r)
    lora_B (out, r)  zeros, so ΔW = B·A = 0 and a fresh LoRA model equals its base exactly
                     (False: B uniform in ±1/√r too, as torch's Linear: ΔW ≠ 0 from the start)
Trainable count: r · (in + out) per targeted Linear. Under ``minituner.fused()``, ``as_weight`` folds W + ΔW
into one weight (and lets the attention stack it with k's).

Merging: W ← W + scale·B·A makes the adapter free at inference; unmerging subtracts it, (W + ΔW) − ΔW,
or restores W ← W_base exactly from the untouched copy ``merge(keep_copy=True)`` kept. A switch on merged
weights is unmerge then merge: the article's (W + ΔW) − ΔW + ΔW′ in place, or W_base + ΔW′ from the copy.

LoraModel, as PEFT.
Trainable count of the model:  Σ = r · (in + out) · (targets per block) · n_layer.

Adapters, as PEFT: ``add_adapter(name, config)`` adds a frozen adapter and keeps the active one;
``set_adapter(name)`` makes `name` active and the only trainable adapter (unmerged: only the
choice of A, B changes, exactly; merged: unmerge then merge, the article's (W + ΔW) − ΔW + ΔW′ in
place, or W_base + ΔW′ from the kept copy); ``load_adapter(dir, name)`` adds a saved one, frozen
and in eval mode unless is_trainable=True.
``modules_to_save``, as PEFT: each named module becomes a ModulesToSaveWrapper, its ``original_module`` the
base's (never trained) and a copy per adapter that asked for it; the active adapter's copy runs (the original
when disabled or when the active adapter has none), and is saved, switched, deleted and unloaded with it.
``bias`` ("all", "lora_only"), as PEFT: the base's biases train where they are (``in_place``), one set shared by
every adapter, so only one adapter may ask for it; ``disable_adapter`` puts the base's values in inside.

The merge verbs, loops over the layers:

    merge_adapter(adapter_names=None)   W ← W + ΔW of each named adapter (default: the active one);
                                        keep_copy=True keeps W_base, so every unmerge or switch is exact
    unmerge_adapter()                   W back to W_base: (W + ΔW) − ΔW, or the kept copy
    disable_adapter()                   a context in which the model is its base alone, WX (a merged
                                        model is unmerged inside, so it really is the base)
    merge_and_unload() / unload()       a plain GPT with the active ΔW inside W / without it
Neither verb changes the training mode (as PEFT). A merged model does not train its adapter: ΔW
sits in the frozen W, nothing of lora_A, lora_B reaches the loss (backward finds no gradient).

References: 1) Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models.
2) Kalajdzievski 2023, rsLoRA (scale α/√r). 3) Hugging Face PEFT, ``peft.tuners.lora``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from typing import ClassVar

import torch
import torch.nn as nn

from .. import functional as F
from ..checkpoint import check_state
from ..checks import refuse
from ..model import GPT, Linear
from .fields import INFERENCE_MODE, SEED, TASK_TYPE, MethodConfig, peft_config
from .options import ConfigError, option
from .peft_model import FORMATS, PeftModel, adapter_dtype
from .registry import Method, ranks, register
from .targets import module_names, replace_module, resolve_targets


@peft_config
class LoraConfig(MethodConfig):
    """target_modules (targets.py): names matched as suffixes ("q_proj", "h.0.attn.q_proj"), a comma
    list, "all", "all-linear" (PEFT's), or a regular expression string (PEFT's: a full match)."""

    method: ClassVar[str] = "lora"
    INITS: ClassVar[tuple] = (True, False, "gaussian")
    r: int = option(8, "LoRA rank r", ge=1, le=4096, short="r")
    lora_alpha: float = option(8, "LoRA scale α: ΔW is scaled by α/r", gt=0, le=1e4, short="α")
    target_modules: tuple | str = option(("q_proj", "v_proj"), "the Linear layers that get an adapter: names "
                                         "(q_proj, k_proj, v_proj, o_proj, up_proj, down_proj) or all", regex=True)
    lora_dropout: float = option(0.0, "dropout on the LoRA path", ge=0, lt=1)
    use_rslora: bool = option(False, "rank-stabilised scale α/√r instead of α/r")
    seed: int = option(0, **SEED)
    task_type: str | None = option(None, **TASK_TYPE)
    inference_mode: bool = option(False, **INFERENCE_MODE)
    bias: str = option("none", "biases that train beside LoRA: none, all, or those of the targeted layers (lora_only)",
                       choices=("none", "all", "lora_only"), cli=False)
    modules_to_save: tuple | str | None = option(None, "modules trained whole beside LoRA and saved with it (e.g. ln_f)",
                                                 cli=False)
    init_lora_weights: bool | str = option(True, "True: A Kaiming-uniform, B = 0; 'gaussian': A ~ N(0, 1/r), B = 0; "
                                           "False: both random (ΔW ≠ 0 at step 0)", choices=INITS, cli=False)

    def check(self):
        if not self.target_modules:
            raise ConfigError(type(self).__name__, "target_modules", "must name at least one module, e.g. "
                              "('q_proj', 'v_proj') or 'all'")
        if self.target_modules == ("all",):
            self.target_modules = "all"
        if self.target_modules == ("all-linear",):
            self.target_modules = "all-linear"


IN_WEIGHT_FACTOR = 4  # as_weight: N·in·out in one product beats 3·N·r·(in + out) in thin, slow ones of width r


class ModulesToSaveWrapper(nn.Module):
    """PEFT's: ``original_module`` (the base's, frozen) and ``modules_to_save[name]``, a copy per adapter that
    asked for it; forward runs the active adapter's copy, else (disabled, or no copy for it) the original."""

    def __init__(self, original_module: nn.Module):
        super().__init__()
        self.original_module = original_module
        self.modules_to_save = nn.ModuleDict()
        self.active: str | None = None
        self.enabled = True

    @property
    def weight(self) -> nn.Parameter:  # the head tied to wte reads the base's matrix (PEFT: lm_head stays the original's)
        return self.original_module.weight

    def forward(self, *args, **kwargs):
        if self.enabled and self.active in self.modules_to_save:
            return self.modules_to_save[self.active](*args, **kwargs)
        return self.original_module(*args, **kwargs)


class LoRALinear(nn.Module):
    """``base_layer`` (a frozen Linear, the very same tensors) plus named low-rank adapters: each `name` has
    lora_A[name] (r, in), lora_B[name] (out, r) and a scale; one adapter is active at a time. ``merged_adapters``
    are those whose ΔW is inside W, in order; ``w_base`` the untouched W ``merge(keep_copy=True)`` keeps (or None).
    """

    def __init__(self, base_layer: Linear):
        super().__init__()
        self.base_layer = base_layer
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.lora_A, self.lora_B = nn.ParameterDict(), nn.ParameterDict()
        self.scale, self.dropout, self.generators = {}, {}, {}
        self.active: str | None = None
        self.merged_adapters: list[str] = []
        self.w_base: torch.Tensor | None = None
        self.enabled = True

    @property
    def weight(self) -> nn.Parameter:
        return self.base_layer.weight  # W (out, in)

    @property
    def merged(self) -> bool:
        return bool(self.merged_adapters)

    def add(self, name: str, r: int, alpha: float, dropout: float, use_rslora: bool, seed: int, init=True):
        g = torch.Generator().manual_seed(seed)
        if init == "gaussian":
            A = torch.randn(r, self.in_features, generator=g) / r  # (r, in), PEFT's normal_(std=1/r)
        else:  # PEFT's default: kaiming_uniform_(a=√5) on A, i.e. U(±1/√in)
            A = (torch.rand(r, self.in_features, generator=g) * 2 - 1) / math.sqrt(self.in_features)  # (r, in)
        B = torch.zeros(self.out_features, r) if init else (torch.rand(self.out_features, r, generator=g) * 2 - 1) / math.sqrt(r)
        dtype = adapter_dtype(self.weight)  # float32 beside a bfloat16 W, as PEFT
        self.lora_A[name] = nn.Parameter(A.to(self.weight.device, dtype))
        self.lora_B[name] = nn.Parameter(B.to(self.weight.device, dtype))  # (out, r)
        self.scale[name] = alpha / math.sqrt(r) if use_rslora else alpha / r
        self.dropout[name], self.generators[name] = dropout, g  # masks from the adapter's own generator: same seed, same masks

    def remove(self, name: str):
        if name in self.lora_A:
            del self.lora_A[name], self.lora_B[name], self.scale[name], self.dropout[name], self.generators[name]

    def get_delta_weight(self, name: str) -> torch.Tensor:
        """ΔW = scale · B · A, (out, in): the article's ΔW = A·B with its A = lora_B, its B = lora_A."""
        return self.scale[name] * (self.lora_B[name] @ self.lora_A[name])  # (out, r) @ (r, in)

    @torch.no_grad()
    def merge(self, name: str, keep_copy: bool = False):
        """W ← W + ΔW of adapter `name` (keep_copy: first keep W_base, so unmerge is exact)."""
        if keep_copy and self.w_base is None:
            self.w_base = self.weight.detach().clone()
        if name in self.lora_A:
            self.weight.add_(self.get_delta_weight(name))  # W ← W + ΔW
            self.merged_adapters.append(name)

    @torch.no_grad()
    def unmerge(self, drop_copy: bool = True):
        """W ← W − ΔW for each merged adapter, last first, in float32; or W ← W_base when a copy was kept."""
        if self.w_base is not None:
            self.weight.copy_(self.w_base)  # W ← W_base, from the untouched copy
        else:
            for name in reversed(self.merged_adapters):
                self.weight.sub_(self.get_delta_weight(name))  # W ← (W + ΔW) − ΔW
        self.merged_adapters = []
        self.w_base = None if drop_copy else self.w_base

    @property
    def live(self) -> str | None:  # the adapter forward adds: the active one, unless disabled, merged or absent here
        return self.active if self.active in self.lora_A and self.enabled and not self.merged else None

    def as_weight(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(W + s·B·A, b) when the live adapter's ΔW rides inside the weight (the base a plain Linear, no
        dropout, a small layer: in·out <= IN_WEIGHT_FACTOR·3·r·(in + out)); (W, b) with none; else None."""
        name, plain = self.live, type(self.base_layer) is Linear
        if name is None or not plain:
            return self.base_layer.as_weight() if plain else None
        A, B = self.lora_A[name], self.lora_B[name]  # (r, in), (out, r)
        (r, n_in), n_out = A.shape, B.size(0)
        small = n_in * n_out <= IN_WEIGHT_FACTOR * 3 * r * (n_in + n_out)  # folding pays: see IN_WEIGHT_FACTOR
        if (self.training and self.dropout[name] > 0) or not small or A.dtype != self.weight.dtype:
            return None
        return torch.addmm(self.weight, B, A, alpha=self.scale[name]), self.base_layer.bias  # W + s·B·A (out, in)

    def forward(self, x):
        name = self.live
        if name is None:  # no adapter adds here (none active, disabled or merged): the frozen Linear alone
            return self.base_layer(x)
        if F.FUSED and (folded := self.as_weight()) is not None:  # minituner.fused(): ΔW rides inside W
            return F.linear(x, *folded)  # (..., out): x (W + s·B·A)ᵀ + b, one product
        A, B, scale = self.lora_A[name], self.lora_B[name], self.scale[name]  # (r, in), (out, r)
        x_A, p = x.to(A.dtype), self.dropout[name]  # the adapter's dtype (float32 beside a bfloat16 base)
        if self.training and p > 0:  # dropout on the LoRA path only, masks from the adapter's own generator
            x_A = x_A * (torch.rand(x.shape, generator=self.generators[name]).to(x.device) >= p) / (1 - p)
        y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T  # (..., out): linear(x, W, b) + (α/r)·x Aᵀ Bᵀ
        return y.to(x.dtype)


def lora_layers(model) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def saved_modules(model) -> dict[str, ModulesToSaveWrapper]:
    return {n: m for n, m in model.named_modules() if isinstance(m, ModulesToSaveWrapper)}


def inject(model, name: str, config) -> None:
    """Put adapter `name` (a LoraConfig) on config.target_modules, wrapping each in a LoRALinear once."""
    modules, r = resolve_targets(model, config.target_modules), config.r
    for n in modules:
        lin = model.get_submodule(n)
        if r > min(lin.in_features, lin.out_features):
            raise refuse(ValueError, "r", f"LoRA rank r={r} is larger than min(in, out) = {min(lin.in_features, lin.out_features)} of "
                             f"{n} ({lin.in_features}→{lin.out_features}); a rank above that is no longer low (use r ≤ it)")
    for i, n in enumerate(modules):
        layer = model.get_submodule(n)
        if not isinstance(layer, LoRALinear):
            layer = replace_module(model, n, LoRALinear(layer))
        layer.add(name, r, config.lora_alpha, config.lora_dropout, config.use_rslora,
                  seed=config.seed * 100_003 + i, init=config.init_lora_weights)  # a seed per layer
    for n in module_names(model, config.modules_to_save or ()):
        wrapper = model.get_submodule(n)
        if not isinstance(wrapper, ModulesToSaveWrapper):
            wrapper = replace_module(model, n, ModulesToSaveWrapper(wrapper))
        wrapper.modules_to_save[name] = copy.deepcopy(wrapper.original_module)


class LoraModel(PeftModel):
    """A frozen copy of a GPT (``.base``) with named LoRA adapters; the active one trains."""

    def __init__(self, base: GPT, config: LoraConfig, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)
        self.merged, self.merged_adapters = False, []  # adapters whose ΔW sits inside W
        self.peft_config: dict[str, LoraConfig] = {}  # adapter name -> its config, as in PEFT
        self.bias_adapter: str | None = None  # the one adapter whose bias trains the base's biases in place
        self.add_adapter(adapter_name, config)
        self.set_adapter(adapter_name)

    def add_adapter(self, name: str, config: LoraConfig):
        """A fresh adapter `name` on config.target_modules, frozen; the active adapter stays (as PEFT)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"an adapter name is a non-empty string without dots, got {name!r}")
        if name in self.peft_config:
            raise ValueError(f"the model already has an adapter named {name!r}: {self.list_adapters()}")
        if self.merged:
            raise ValueError("unmerge_adapter() before adding an adapter: W holds the active adapter's ΔW")
        if config.bias != "none" and self.bias_adapter is not None:
            raise ValueError(f"bias={config.bias!r}: adapter {self.bias_adapter!r} already trains the base's biases, "
                             "one set shared by every adapter; as PEFT, only one adapter may have bias (give bias='none')")
        clash = [m for m in module_names(self.base, config.modules_to_save or ()) if any(
            n.startswith(m + ".") for n in self.in_place)]
        if clash:
            raise ValueError(f"modules_to_save={clash}: adapter {self.bias_adapter!r} trains their biases in place; "
                             "a module to save must be named before (or by) the adapter with bias")
        inject(self.base, name, config)
        self.peft_config[name] = config
        if config.bias != "none":
            self.in_place = {"all": [n for n, _ in self.base.named_parameters() if n.endswith(".bias") and not any(
                                         w in n for w in (".lora_", ".modules_to_save.", ".original_module."))],
                             "lora_only": [f"{t}.base_layer.bias"
                                           for t in resolve_targets(self.base, config.target_modules)]}[config.bias]
            self.bias_adapter = name
        self.set_requires_grad(name, False)

    def list_adapters(self) -> list[str]:
        return list(self.peft_config)

    def _need(self, name: str) -> None:
        if name not in self.peft_config:
            raise ValueError(f"no adapter named {name!r}; the model has {self.list_adapters()}")

    def adapter_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """Adapter `name`'s tensors: {"h.0.attn.q_proj.lora_A": (r, in), "….lora_B": (out, r), …,
        "ln_f.modules_to_save.weight": its copy of a module to save, …}."""
        return ({f"{n}.{ab}": getattr(layer, ab)[name] for n, layer in lora_layers(self.base).items()
                 if name in layer.lora_A for ab in ("lora_A", "lora_B")}
                | {f"{n}.modules_to_save.{t}": p for n, w in saved_modules(self.base).items()
                   if name in w.modules_to_save for t, p in w.modules_to_save[name].named_parameters()})

    def set_requires_grad(self, adapter_names, requires_grad: bool = True):
        """PEFT's: turn gradients of the named adapters' tensors on (or off)."""
        for name in [adapter_names] if isinstance(adapter_names, str) else adapter_names:
            self._need(name)
            for t in self.adapter_tensors(name).values():
                t.requires_grad_(requires_grad)
            for n in self.in_place if name == self.bias_adapter else ():
                self.base.get_parameter(n).requires_grad_(requires_grad)

    def set_adapter(self, name: str, inference_mode: bool = False):
        """Make adapter `name` active and the only trainable one (frozen with inference_mode; merged: the switch)."""
        self._need(name)
        for other in self.peft_config:
            self.set_requires_grad(other, other == name and not inference_mode)
        merged = self.merged
        if merged:  # the switch: − ΔW (or back to W_base), then + ΔW′
            for layer in lora_layers(self.base).values():
                layer.unmerge(drop_copy=False)
        for layer in lora_layers(self.base).values():
            layer.active = name
            if merged:
                layer.merge(name)
        for wrapper in saved_modules(self.base).values():
            wrapper.active = name
        self.merged_adapters = [name] if merged else []
        self.active_adapter, self.config = name, self.peft_config[name]

    def delete_adapter(self, name: str):
        """Remove adapter `name` (not while merged, as PEFT); the first other one becomes active if it was."""
        self._need(name)
        if len(self.peft_config) == 1:
            raise ValueError(f"{name!r} is the model's only adapter; use the base model instead")
        if name in self.merged_adapters:
            raise ValueError(f"cannot delete adapter {name!r} while it is merged; unmerge_adapter() first")
        for layer in lora_layers(self.base).values():
            layer.remove(name)
        for wrapper in saved_modules(self.base).values():
            if name in wrapper.modules_to_save:
                del wrapper.modules_to_save[name]
        if name == self.bias_adapter:  # the biases it trained leave with it: the base's values back
            with torch.no_grad():
                for n in self.in_place:
                    self.base.get_parameter(n).copy_(self.base_values[n]).requires_grad_(False)
            self.in_place, self.bias_adapter = [], None
        del self.peft_config[name]
        if self.active_adapter == name:
            self.set_adapter(self.list_adapters()[0])

    def trained_tensors(self, adapter_name: str | None = None) -> dict[str, torch.Tensor]:
        """Adapter `adapter_name`'s live tensors (default: the active one), and the biases it trains in place."""
        name = adapter_name or self.active_adapter
        self._need(name)
        return self.adapter_tensors(name) | ({f"base.{n}": self.base.get_parameter(n) for n in self.in_place}
                                             if name == self.bias_adapter else {})

    def adapter_state_dict(self, adapter_name: str | None = None) -> dict[str, torch.Tensor]:
        """What save_pretrained writes for adapter `adapter_name` (default: the active one), detached."""
        return {n: self.stashed.get(n.removeprefix("base."), (t,))[0].detach()
                for n, t in self.trained_tensors(adapter_name).items()}

    def load_adapter(self, path, adapter_name: str, is_trainable: bool = False):
        """Add the adapter saved in path (trained on the same base) as adapter_name. As PEFT: the active
        adapter stays; the new one is frozen and the model goes to eval mode, unless is_trainable=True.
        A folder in PEFT's own format too (PEFT's save_pretrained writes a second adapter to dir/<name>)."""
        for recognises, load in FORMATS.values():
            if recognises(path):  # read onto the plain base, then taken over as this model's adapter
                other = load(self.unload(), path, adapter_name)
                if not isinstance(other, LoraModel):
                    raise ValueError(f"{path} holds a {other.config.method!r} model, not a LoRA adapter")
                config, state = dataclasses.replace(other.config, inference_mode=not is_trainable), other.trained_tensors()
                break
        else:
            info, state = self.read_saved(path, self.base_fingerprint, LoraModel)
            config = self.saved_config(info, is_trainable)
        self.add_adapter(adapter_name, config)
        try:
            with torch.no_grad():
                mine = self.trained_tensors(adapter_name)
                check_state(mine, state, f"{path}/adapter_model.safetensors")
                for n, t in mine.items():
                    t.copy_(state[n])
        except ValueError:  # nothing half-added
            self.delete_adapter(adapter_name)
            raise
        self.set_requires_grad(adapter_name, is_trainable)
        if not is_trainable:
            self.eval()

    def merge_adapter(self, adapter_names: list[str] | None = None, keep_copy: bool = False, safe_merge: bool = False):
        """W ← W + ΔW of the named adapters (PEFT's adapter_names; default the active one), in place;
        safe_merge (PEFT's): first check that every merged W would be finite, a ValueError if not."""
        names = [self.active_adapter] if adapter_names is None else list(adapter_names)
        for name in names:
            self._need(name)
        if self.merged:
            raise ValueError(f"already merged ({self.merged_adapters}); unmerge_adapter() first")
        for n, layer in lora_layers(self.base).items() if safe_merge else ():
            W = layer.weight + sum(layer.get_delta_weight(a) for a in names if a in layer.lora_A)  # (out, in)
            if not bool(torch.isfinite(W).all()):
                raise ValueError(f"safe_merge: merging {names} gives {n} non-finite weights (NaN or inf); not merged")
        for layer in lora_layers(self.base).values():
            for name in names:
                layer.merge(name, keep_copy)
        self.merged, self.merged_adapters = True, names

    def unmerge_adapter(self):
        if not self.merged:
            raise ValueError("the model is not merged; nothing to unmerge")
        for layer in lora_layers(self.base).values():
            layer.unmerge()
        self.merged, self.merged_adapters = False, []

    @contextlib.contextmanager
    def disable_adapter(self):
        """``with model.disable_adapter(): model(x)`` equals base(x); the adapters are frozen inside (as PEFT).
        Blocks nest: only the outermost one turns the adapters back on."""
        if self.adapters_disabled:  # an inner block: already the base, and the outer block restores it
            yield self
            return
        layers = [*lora_layers(self.base).values(), *saved_modules(self.base).values()]
        merged, keep_copy = list(self.merged_adapters), any(getattr(layer, "w_base", None) is not None for layer in layers)
        if merged:
            self.unmerge_adapter()
        grads = {p: p.requires_grad for name in self.peft_config for p in self.adapter_tensors(name).values()}
        for layer in layers:
            layer.enabled = False
        for p in grads:
            p.requires_grad_(False)
        try:
            with super().disable_adapter():
                yield self
        finally:
            for layer in layers:
                layer.enabled = True
            for p, g in grads.items():
                p.requires_grad_(g)
            if merged:
                self.merge_adapter(merged, keep_copy)

    def unload(self) -> GPT:
        """A copy of the GPT inside without the LoRA layers (W as it is now: with ΔW if merged, as PEFT), each
        module to save its original, and the base's own biases (PEFT leaves those the adapter trained)."""
        plain = copy.deepcopy(self.base)
        for n, layer in lora_layers(plain).items():
            replace_module(plain, n, layer.base_layer)
        for n, wrapper in saved_modules(plain).items():
            replace_module(plain, n, wrapper.original_module)
        with torch.no_grad():
            for n in self.in_place:
                plain.get_parameter(n.replace(".base_layer", "")).copy_(self.base_values[n])
        return plain

    def merge_and_unload(self) -> GPT:
        """A plain GPT with the active ΔW merged into W and its copies of the modules to save (as PEFT);
        requires_grad as the model had it (frozen, as PEFT)."""
        wrappers = saved_modules(self.base)
        if "wte" in wrappers and self.active_adapter in wrappers["wte"].modules_to_save:
            raise ValueError("modules_to_save has wte: PEFT's merged model holds the trained wte and the base's head "
                             "apart, and a GPT has one matrix for both (its head is tied to wte); keep the LoRA model")
        plain = copy.deepcopy(self.base)
        for n, layer in lora_layers(plain).items():
            if not self.merged:
                layer.merge(self.active_adapter)
            replace_module(plain, n, layer.base_layer)
        for n, wrapper in saved_modules(plain).items():
            replace_module(plain, n, wrapper.modules_to_save[self.active_adapter]
                           if self.active_adapter in wrapper.modules_to_save else wrapper.original_module)
        return plain


register(Method("lora", "LoRA", LoraConfig, LoraModel, order=6, grid={**ranks(4, 8), "lr": [3e-3, 1e-2]},
                memory="lora", note="q,v"))
