"""Adapters in Hugging Face PEFT's own format, for GPT-2-shaped bases: both directions.

    save_peft_format(model, dir, base_folder)   # LoRA, prompt tuning, prefix tuning / P-Tuning v2
    peft.PeftModel.from_pretrained(transformers.GPT2LMHeadModel.from_pretrained(base_folder), dir)
    load_peft_format(base, dir)                 # a folder PEFT saved (or save_peft_format wrote)

minituner's own ``save_pretrained`` uses PEFT's file names but its own tensor names and
config; this file writes and reads what PEFT writes and reads (adapter_config.json with
``peft_type``, adapter_model.safetensors with PEFT's tensor names):

LoRA. GPT-2 has one fused ``c_attn`` (C -> 3C, c_attn(x) = [q | k | v]) where minituner has
q_proj, k_proj, v_proj. Adapters of rank r on a set S of them become one PEFT adapter of
rank r_e = |S|·r on c_attn:
    A = [A_q; A_v]   (r_e, C)          stacked in q, k, v order
    B                (3C, r_e)         B_q in the q rows and the first r columns, B_v in the v
                                       rows and the next r: block-diagonal, so
    B·A = [B_q A_q; 0; B_v A_v]        each part's ΔW in its own rows, nothing across.
PEFT's scale is lora_alpha/r_e (lora_alpha/√r_e with rsLoRA), ours α/r (α/√r), so c_attn
gets lora_alpha = α·r_e/r (α·√(r_e/r)) through PEFT's ``alpha_pattern`` (and r_e through
``rank_pattern``); o_proj, up_proj, down_proj map one to one onto attn.c_proj, mlp.c_fc,
mlp.c_proj (a Conv1D: PEFT's lora_A is (r, in), lora_B (out, r), as ours). Beside A and B, the
trained biases (``bias``: GPT-2's names, [b_q | b_k | b_v] as c_attn's) and each copy of a module to save
(``modules_to_save``: under the module's own name) are written and read as PEFT's save_pretrained does.
Prompt tuning: ``prompt_embeddings`` (k, C) is our P. Prefix tuning / P-Tuning v2:
``prompt_embeddings`` (k, 2·L·C), row t = [P_k(layer 0), P_v(layer 0), P_k(layer 1), …] of
virtual token t; a prefix with the MLP is saved as the prefixes it makes, P = MLP(E) (what
PEFT itself saves), so the folder says prefix_projection false.

Loading a PEFT folder: prompt and prefix map back exactly. A PEFT LoRA on c_attn of rank R
becomes q, k and v adapters of rank R sharing A (B's row blocks), the same ΔW; a folder written
by save_peft_format carries minituner's own config in the safetensors metadata and is split
back into the adapters it came from, after the base fingerprint is checked.
tests/test_peft_format.py runs both directions against transformers + PEFT.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch

from .checkpoint import (
    ADAPTER_CONFIG,
    ADAPTER_TENSORS,
    check_folder,
    fingerprint,
    load_pair,
    record_sha256,
    save_folder,
    tensors_sha256,
)
from .files import check_weights, read_json
from .gpt2 import is_gpt2_folder, load_gpt2
from .methods import LoraConfig, PeftModel, PrefixTuningConfig, PromptTuningConfig, get_peft_model
from .methods.lora import lora_layers
from .methods.peft_model import FORMATS
from .model import Linear

EXPORTS = (LoraConfig, PromptTuningConfig, PrefixTuningConfig)  # methods PEFT has with the same computation
ONE_TO_ONE = {"attn.o_proj": "attn.c_proj", "mlp.up_proj": "mlp.c_fc", "mlp.down_proj": "mlp.c_proj"}
QKV = ("q_proj", "k_proj", "v_proj")  # c_attn's parts, in its output order
PREFIX = "base_model.model."  # PEFT's name of the wrapped GPT2LMHeadModel
COPY = "adapter_config"  # the tensors file's copy of adapter_config.json (see checkpoint's module docstring)
LORA_KEY = re.compile(r"base_model\.model\.transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)"
                      r"\.lora_([AB])\.weight")
BESIDE_KEY = re.compile(r"base_model\.model\.transformer\.(h\.\d+\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)"
                        r"|ln_f|wte|wpe)(\.base_layer)?\.(weight|bias)")


def lora_to_peft(model) -> tuple[dict, dict]:
    """(PEFT LoraConfig fields, PEFT tensors) of a LoraModel's active adapter on a GPT-2-shaped base."""
    cfg, C = model.config, model.gpt_config.n_embd
    parts: dict[str, list] = {}  # PEFT module name -> [(part index in c_attn or None, A, B)]
    for name, layer in lora_layers(model.base).items():
        if model.active_adapter not in layer.lora_A:
            continue
        A, B = layer.lora_A[model.active_adapter].detach(), layer.lora_B[model.active_adapter].detach()
        block, _, kind = name.rpartition(".")  # "h.0.attn", "q_proj"
        if kind in QKV:
            parts.setdefault(f"transformer.{block}.c_attn", []).append((QKV.index(kind), A, B))
        else:
            i, sub = name.split(".", 2)[1], name.split(".", 2)[2]
            parts[f"transformer.h.{i}.{ONE_TO_ONE[sub]}"] = [(None, A, B)]
    tensors, ranks, alphas = {}, {}, {}
    for module, pieces in parts.items():
        A = torch.cat([a for _, a, _ in pieces])  # (r_e, in): [A_q; A_k; A_v] of the parts present
        B = pieces[0][2] if pieces[0][0] is None else torch.zeros(3 * C, A.size(0))  # (out, r_e)
        if pieces[0][0] is not None:  # block-diagonal: part j's B in its rows, its own r columns
            for s, (j, _, b) in enumerate(pieces):
                B[j * C:(j + 1) * C, s * cfg.r:(s + 1) * cfg.r] = b
        tensors[f"{PREFIX}{module}.lora_A.weight"], tensors[f"{PREFIX}{module}.lora_B.weight"] = A, B
        if A.size(0) != cfg.r:  # scale α/r kept: PEFT's lora_alpha/r_e (or /√r_e) must equal it
            ranks[module] = A.size(0)
            alphas[module] = cfg.lora_alpha * (math.sqrt(A.size(0) / cfg.r) if cfg.use_rslora else A.size(0) / cfg.r)
    tensors.update(beside_lora_to_peft(model, set(parts)))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": cfg.r, "lora_alpha": cfg.lora_alpha,
              "target_modules": sorted(parts), "lora_dropout": cfg.lora_dropout, "use_rslora": cfg.use_rslora,
              "fan_in_fan_out": True, "bias": cfg.bias, "rank_pattern": ranks, "alpha_pattern": alphas,
              "modules_to_save": list(cfg.modules_to_save) if cfg.modules_to_save else None}
    return config, tensors


def gpt2_module(name: str) -> str:
    """Our module name -> GPT-2's ("h.0.attn.o_proj" -> "transformer.h.0.attn.c_proj"; q, k, v -> c_attn)."""
    block, _, kind = name.rpartition(".")
    if kind in QKV:
        return f"transformer.{block}.c_attn"
    sub = name.split(".", 2)[-1]
    return f"transformer.{block.rpartition('.')[0]}.{ONE_TO_ONE[sub]}" if sub in ONE_TO_ONE else f"transformer.{name}"


def plain_bias(base, module: str) -> torch.Tensor:
    """The bias module holds now, wherever it sits (inside a LoRALinear or a ModulesToSaveWrapper)."""
    m = base.get_submodule(module)
    return getattr(m, "base_layer", getattr(m, "original_module", m)).bias


def beside_lora_to_peft(model, targeted: set) -> dict:
    """PEFT's tensors for what the active adapter trains beside lora_A, lora_B: its biases (bias "all" or
    "lora_only", GPT-2's names, q, k, v's as one c_attn bias; a targeted module's under base_layer) and its
    copies of modules_to_save (PEFT saves each under the module's own name)."""
    state = model.adapter_state_dict()
    biases = {n.removeprefix("base.").replace(".base_layer", "").removesuffix(".bias"): t.detach()
              for n, t in state.items() if n.startswith("base.")}
    out = {}
    for module in biases:
        gpt2, (block, _, kind) = gpt2_module(module), module.rpartition(".")
        t = torch.cat([biases.get(f"{block}.{q}", plain_bias(model.base, f"{block}.{q}")).detach() for q in QKV]) \
            if kind in QKV else biases[module]  # c_attn's (3C,) bias: [b_q | b_k | b_v]
        out[f"{PREFIX}{gpt2}{'.base_layer' if gpt2 in targeted else ''}.bias"] = t
    for n, t in state.items():
        module, _, param = n.partition(".modules_to_save.")
        if not param:
            continue
        if isinstance(model.base.get_submodule(module).original_module, Linear):
            raise ValueError(f"modules_to_save={module!r} is a Linear: GPT-2 stores it as a Conv1D (q, k, v fused into "
                             f"c_attn), which PEFT's format would need; save with model.save_pretrained(dir)")
        out[f"{PREFIX}transformer.{module}.{param}"] = t.detach()
    return out


def to_peft(model) -> tuple[dict, dict]:
    """(adapter_config.json fields, adapter_model.safetensors tensors) as PEFT writes them."""
    method, c = model.config.method, model.gpt_config
    if type(model.config) not in EXPORTS:  # exactly these (DoRA's and QLoRA's configs extend LoraConfig)
        raise ValueError(f"PEFT's format is written for {', '.join(c.method for c in EXPORTS)}, not {method!r} (minituner's DoRA, "
                         f"QLoRA, IA3, BitFit, freeze and full compute differently or have no PEFT adapter); "
                         f"use model.save_pretrained(dir)")
    if method == "lora":
        return lora_to_peft(model)
    shared = {"task_type": "CAUSAL_LM", "num_virtual_tokens": model.num_virtual_tokens, "token_dim": c.n_embd,
              "num_layers": c.n_layer, "num_attention_heads": c.n_head, "num_transformer_submodules": 1}
    if method == "prompt_tuning":
        return dict(shared, peft_type="PROMPT_TUNING", prompt_tuning_init="RANDOM"), \
            {"prompt_embeddings": model.prompt.detach()}  # (k, C)
    P = model.prefix_tensor().detach()  # (L, 2, k, C)
    return dict(shared, peft_type="PREFIX_TUNING", prefix_projection=False, encoder_hidden_size=c.n_embd), \
        {"prompt_embeddings": P.permute(2, 0, 1, 3).reshape(P.size(2), -1)}  # (k, 2·L·C)


def save_peft_format(model: PeftModel, path, base_folder) -> Path:
    """Write model's adapter into path in PEFT's format, for the GPT-2 folder base_folder it was trained
    on (checked by fingerprint), through checkpoint's one save: a kill at any instant leaves the old
    adapter or the new one, and the tensors file carries a copy of the config (COPY) for that."""
    check_folder(path)  # before any work: a folder holding other files, or files minituner did not write
    if not is_gpt2_folder(base_folder):
        raise ValueError(f"base_folder {base_folder} is not a Hugging Face GPT-2 folder (config.json, "
                         f"model.safetensors): PEFT loads the adapter onto GPT2LMHeadModel.from_pretrained(base_folder)")
    if fingerprint(load_gpt2(base_folder)) != model.base_fingerprint:
        raise ValueError(f"the model was not trained on {base_folder} (the base fingerprints differ)")
    config, tensors = to_peft(model)
    config.update(base_model_name_or_path=str(base_folder), inference_mode=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    own = {"method": model.config.method, "config": model.config.to_dict(), "base_fingerprint": model.base_fingerprint}
    own["sha256"] = record_sha256(own)  # so a damaged record is refused, not read as another config
    meta = {"format": "pt", "minituner": json.dumps(own), "tensors_sha256": tensors_sha256(tensors)}
    return save_folder(path, config, tensors, meta, copy_key=COPY)  # the one locked, atomic save


def read_peft_folder(path) -> tuple[dict, dict, dict]:
    """(PEFT config, tensors, safetensors metadata) of a PEFT adapter folder, read by checkpoint's one
    reader (no lock; an interrupted save_peft_format reads as the adapter it was writing); a ValueError
    naming the file when it is not one, or a tensor is damaged, not floating point or not finite."""
    path = Path(path)
    cfg_path, st = path / ADAPTER_CONFIG, path / ADAPTER_TENSORS
    for p in (cfg_path, st):
        if not os.path.lexists(p):
            raise ValueError(f"{path} is not a PEFT adapter folder: it needs {ADAPTER_CONFIG} and {ADAPTER_TENSORS}, "
                             f"and {p.name} is missing")
    config, meta, tensors = load_pair(st, cfg_path, COPY)
    if "peft_type" not in config:
        raise ValueError(f"{cfg_path} has no peft_type: not written by PEFT (minituner's own folders load with "
                         f"PeftModel.from_pretrained)")
    if "tensors_sha256" in meta and meta["tensors_sha256"] != tensors_sha256(tensors):
        raise ValueError(f"{st}: the tensors' sha256 differs from the one recorded; the file is damaged")
    check_weights(tensors, st)
    return config, tensors, meta


def pattern_value(patterns: dict, module: str, default):
    """PEFT's rank_pattern / alpha_pattern lookup: the first key that matches the end of the module's name."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def check_lora_tensors(found: dict, base, where) -> None:
    """A ValueError naming the tensor when one of a module's lora_A, lora_B is missing or does not fit the
    base: A (r, in), B (out, r), in and out those of the GPT-2 module on this base, one layer it has."""
    C, L = base.config.n_embd, base.config.n_layer
    sizes = {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C), "mlp.c_fc": (C, 4 * C), "mlp.c_proj": (4 * C, C)}
    for (i, module), AB in sorted(found.items()):
        key = f"{PREFIX}transformer.h.{i}.{module}.lora_"
        if i >= L:
            raise ValueError(f"{where}: {key}A.weight is for layer {i}, but the base has {L} layers (0..{L - 1})")
        for ab, other in (("A", "B"), ("B", "A")):
            if ab not in AB:
                raise ValueError(f"{where}: {key}{ab}.weight is missing (its lora_{other} is there)")
        (n_in, n_out), A, B = sizes[module], AB["A"], AB["B"]
        if A.dim() != 2 or B.dim() != 2 or A.size(1) != n_in or B.size(0) != n_out or B.size(1) != A.size(0):
            raise ValueError(f"{where}: {key}A.weight has shape {tuple(A.shape)} and lora_B.weight {tuple(B.shape)}; "
                             f"{module} of this base needs (r, {n_in}) and ({n_out}, r)")


def lora_from_peft(base, config: dict, tensors: dict, own: dict | None, where,
                   adapter_name: str = "default") -> PeftModel:
    """A LoraModel on base with PEFT's LoRA tensors (GPT-2 names): split back exactly (own: our export's
    config), or each c_attn adapter as q, k, v adapters sharing A. where: the tensors file, for errors."""
    bad = {k: config.get(k) for k in ("use_dora", "layer_replication", "lora_bias") if config.get(k)}
    saved = [m.removeprefix("transformer.") for m in config.get("modules_to_save") or ()]
    beside = {k: t for k, t in tensors.items() if not LORA_KEY.fullmatch(k)}  # biases, modules to save
    unknown = [k for k in beside if not BESIDE_KEY.fullmatch(k)]
    if any(".original_module." in k for k in unknown):  # PEFT's bias="all" beside modules_to_save on one module
        raise ValueError(f"this PEFT LoRA trained the bias of a module to save's original ({unknown[0]}); minituner "
                         f"never trains the original, only the adapter's copy: give bias='none' or leave it out of "
                         f"modules_to_save")
    if bad or unknown:
        raise ValueError(f"this PEFT LoRA has what minituner's LoRA cannot hold: {bad or unknown[:3]}; "
                         f"only lora_A/lora_B on c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, GPT-2's biases "
                         f"and LayerNorms or embeddings as modules_to_save")
    tensors = {k: t for k, t in tensors.items() if k not in beside}
    C, found = base.config.n_embd, {}
    for key, t in tensors.items():
        i, module, ab = LORA_KEY.fullmatch(key).groups()
        found.setdefault((int(i), module), {})[ab] = t
    if not found:
        raise ValueError(f"{where}: no LoRA tensors in it")
    check_lora_tensors(found, base, where)
    rs = {A_B["A"].size(0) for A_B in found.values()}
    if own is None:
        alphas = {pattern_value(config.get("alpha_pattern") or {}, f"transformer.h.{i}.{m}", config.get("lora_alpha", 8))
                  for i, m in found}
        if len(rs) != 1 or len(alphas) != 1:
            raise ValueError(f"this PEFT LoRA has ranks {sorted(rs)} and lora_alphas {sorted(alphas)} across "
                             f"modules; minituner's LoraConfig has one r and one lora_alpha")
        targets = [f"h.{i}.{sub}" for i, m in sorted(found) for sub in
                   (["attn." + q for q in QKV] if m == "attn.c_attn" else [k for k, v in ONE_TO_ONE.items() if v == m])]
        own = dict(r=rs.pop(), lora_alpha=alphas.pop(), target_modules=targets,
                   lora_dropout=config.get("lora_dropout", 0.0), use_rslora=config.get("use_rslora", False),
                   bias=config.get("bias", "none"), modules_to_save=saved or None)
    model = get_peft_model(base, LoraConfig.from_dict(own), adapter_name)
    beside_lora_from_peft(model, beside, adapter_name)
    with torch.no_grad():
        for name, layer in lora_layers(model.base).items():
            block, _, kind = name.rpartition(".")
            i, sub = int(name.split(".")[1]), name.split(".", 2)[2]
            AB = found.get((i, "attn.c_attn" if kind in QKV else ONE_TO_ONE[sub]))
            if AB is None:
                raise ValueError(f"the PEFT folder has no LoRA tensors for {name}")
            A, B = AB["A"], AB["B"]
            if kind in QKV:  # this part's rows of B; its own columns (and rows of A) when split back
                parts = [q for q in QKV if f"{block}.{q}" in lora_layers(model.base)]
                j, r = QKV.index(kind), layer.lora_A[adapter_name].size(0)
                cols = slice(parts.index(kind) * r, (parts.index(kind) + 1) * r) if A.size(0) != r else slice(None)
                A, B = A[cols], B[j * C:(j + 1) * C, cols]
            layer.lora_A[adapter_name].copy_(A)
            layer.lora_B[adapter_name].copy_(B)
    return model


def beside_lora_from_peft(model, beside: dict, adapter_name: str) -> None:
    """Copy PEFT's biases and modules_to_save tensors (beside_lora_to_peft's names) into the model's own;
    a ValueError for a tensor it has no place for (a bias the config does not train, a part of c_attn's
    bias that differs from the base where this model does not train it)."""
    C, live = model.gpt_config.n_embd, model.trained_tensors(adapter_name)
    wrappers = {n.partition(".modules_to_save.")[0] for n in live if ".modules_to_save." in n}
    with torch.no_grad():
        for key, t in beside.items():
            name = key.removeprefix(PREFIX + "transformer.").replace(".base_layer", "")
            module, _, param = name.rpartition(".")
            if module in wrappers:
                live[f"{module}.modules_to_save.{param}"].copy_(t)
                continue
            if param != "bias":
                raise ValueError(f"{key}: {module} is not among this adapter's modules_to_save {list(wrappers)}")
            block, _, kind = module.rpartition(".")
            ours = ([f"{block}.{q}" for q in QKV] if kind == "c_attn" else
                    [f"{block.rpartition('.')[0]}.{k}" for k, v in ONE_TO_ONE.items() if v == f"{block.rpartition('.')[2]}.{kind}"]
                    or [module])
            for j, m in enumerate(ours):
                part = t[j * C:(j + 1) * C] if kind == "c_attn" else t
                target = [v for n, v in live.items() if n.startswith("base.") and
                          n.removeprefix("base.").replace(".base_layer", "") == f"{m}.bias"]
                if target:
                    target[0].copy_(part)
                elif not torch.equal(part, plain_bias(model.base, m)):
                    raise ValueError(f"{key}: the PEFT folder changes the bias of {m}, which this adapter's bias="
                                     f"{model.config.bias!r} does not train")


def load_peft_format(base, path, adapter_name: str = "default", is_trainable: bool = False) -> PeftModel:
    """A folder in PEFT's format (LoRA, prompt tuning, prefix tuning on a GPT-2 base) as a minituner model
    on base; as PeftModel.from_pretrained (which reads this format too): frozen and in eval mode unless
    is_trainable=True."""
    read_peft_folder(path)  # a ValueError naming what is missing unless path is a PEFT folder
    return PeftModel.from_pretrained(base, path, adapter_name, is_trainable)


def read_peft_format(base, path, adapter_name: str = "default") -> PeftModel:
    """The model a PEFT folder holds, built on base (trainable, as get_peft_model makes it)."""
    config, tensors, meta = read_peft_folder(path)
    try:
        own = json.loads(meta["minituner"]) if "minituner" in meta else None
    except ValueError:
        own = []  # refused just below
    if own is not None and not (isinstance(own, dict) and isinstance(own.get("config"), dict)
                                and isinstance(own.get("base_fingerprint"), str)
                                and own.get("sha256") == record_sha256(own)):
        raise ValueError(f"{Path(path) / ADAPTER_TENSORS}: minituner's record in it is damaged")
    if own is not None and own["base_fingerprint"] != fingerprint(base):
        raise ValueError(f"{path} was trained on the base with fingerprint {own['base_fingerprint']}, "
                         f"not on this one ({fingerprint(base)}); load it onto that base")
    kind, c = config["peft_type"], base.config
    if kind == "LORA":
        return lora_from_peft(base, config, tensors, own and own["config"], Path(path) / ADAPTER_TENSORS, adapter_name)
    if kind not in ("PROMPT_TUNING", "PREFIX_TUNING"):
        raise ValueError(f"{path}: PEFT type {kind} is not read; minituner reads LORA, PROMPT_TUNING, PREFIX_TUNING")
    P, k = tensors.get("prompt_embeddings"), config.get("num_virtual_tokens")
    width = c.n_embd if kind == "PROMPT_TUNING" else 2 * c.n_layer * c.n_embd
    if P is None or tuple(P.shape) != (k, width) or config.get("num_transformer_submodules", 1) != 1:
        raise ValueError(f"{path}: expected prompt_embeddings of shape ({k}, {width}) for this base "
                         f"(C={c.n_embd}, L={c.n_layer}), got {None if P is None else tuple(P.shape)}")
    with torch.no_grad():
        if kind == "PROMPT_TUNING":
            model = get_peft_model(base, PromptTuningConfig(num_virtual_tokens=k), adapter_name)
            model.prompt.copy_(P)
        else:
            model = get_peft_model(base, PrefixTuningConfig(num_virtual_tokens=k, prefix_projection=False), adapter_name)
            model.prefix.copy_(P.view(k, c.n_layer, 2, c.n_embd).permute(1, 2, 0, 3))  # (L, 2, k, C)
    return model


def is_peft_folder(path) -> bool:
    """True when path/adapter_config.json has a peft_type (PEFT's format); its errors name the file."""
    cfg = Path(path) / ADAPTER_CONFIG
    return os.path.lexists(cfg) and "peft_type" in read_json(cfg)


FORMATS["PEFT's format"] = (is_peft_folder, read_peft_format)  # PeftModel.from_pretrained reads it too


def save_adapter(model: PeftModel, path, base_path=None) -> Path:
    """What `minituner finetune` saves: PEFT's format when the base is a GPT-2 folder and PEFT has the
    method (EXPORTS), else minituner's own save_pretrained."""
    if is_gpt2_folder(base_path) and type(model.config) in EXPORTS:
        return save_peft_format(model, path, base_path)
    return Path(model.save_pretrained(path))
