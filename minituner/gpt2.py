"""Real GPT-2 weights in minituner's own GPT: read a Hugging Face GPT-2 folder, nothing downloaded.

A Hugging Face GPT-2 folder (what ``GPT2LMHeadModel.save_pretrained`` writes, or what the
hub's ``openai-community/gpt2`` holds) has ``config.json`` and ``model.safetensors``
(or shards listed in ``model.safetensors.index.json``). Its tensors map onto ours so:

    HF GPT-2 (Radford et al. 2019)          minituner            note
    wte.weight          (V, C)              wte.weight           the head is tied to it: no lm_head
    wpe.weight          (n_positions, C)    wpe.weight           block_size = n_positions (1024)
    h.i.ln_1 / ln_2 / ln_f                  same names           LayerNorm, ε = 1e-5
    h.i.attn.c_attn.weight  (C, 3C)         h.i.attn.{q,k,v}_proj.weight (C, C) each
    h.i.attn.c_proj.weight  (C, C)          h.i.attn.o_proj.weight
    h.i.mlp.c_fc.weight     (C, 4C)         h.i.mlp.up_proj.weight  (4C, C)
    h.i.mlp.c_proj.weight   (4C, C)         h.i.mlp.down_proj.weight (C, 4C)

Two conversions: (1) GPT-2's ``Conv1D`` stores its weight as (in, out) and computes
y = x W + b, where our ``Linear`` stores (out, in) and computes y = x Wᵀ + b, so every
matrix is transposed; (2) ``c_attn`` is q, k and v side by side along its output:
c_attn(x) = [q | k | v], so its (C, 3C) weight splits into three (C, C) column blocks
(and its (3C,) bias into three (C,) pieces), in that order.

GPT-2's nonlinearity is GELU's tanh form ("gelu_new") and its LayerNorm ε is 1e-5:
both are what ``functional.gelu`` and ``functional.layer_norm`` already compute, so a
config asking for anything else is refused rather than loaded into a different model.

``load_any_base(path)`` is what the command line's ``--base`` reads: a GPT-2 folder (with its
BPE tokenizer from vocab.json + merges.txt), a folder or path stem from ``minituner pretrain``
(with the character tokenizer), or None for the shipped base. The tokenizer follows the base.

References: 1) Radford et al. 2019, Language Models are Unsupervised Multitask Learners
(GPT-2). 2) Hugging Face transformers, ``modeling_gpt2.py`` (the tensor names and Conv1D).
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import files
from .bpe import BPETokenizer
from .checkpoint import BASE_NAME, check_state, load_base
from .files import read_json
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer

# config.json values minituner's GPT computes exactly; any other value would silently change the model
FIXED = {
    "activation_function": ("gelu_new", "gelu_pytorch_tanh"),  # tanh GELU, as functional.gelu
    "layer_norm_epsilon": (1e-5,),  # as functional.layer_norm's eps
    "scale_attn_weights": (True,),  # scores / sqrt(hs)
    "scale_attn_by_inverse_layer_idx": (False,),
    "reorder_and_upcast_attn": (False,),
    "add_cross_attention": (False,),
    "n_inner": (None,),  # None means 4C, the width of our MLP
    "tie_word_embeddings": (True,),
}
SIZES = {"vocab_size": "vocab_size", "n_positions": "block_size", "n_layer": "n_layer", "n_head": "n_head",
         "n_embd": "n_embd"}  # config.json's key -> GPTConfig's field
BUFFERS = (".attn.bias", ".attn.masked_bias")  # the causal mask old transformers saved; not weights


def gpt2_config(folder) -> GPTConfig:
    """GPTConfig of the GPT-2 in folder/config.json; a ValueError for other architectures."""
    path = Path(folder) / "config.json"
    cfg = read_json(path)
    if cfg.get("model_type") != "gpt2":
        raise ValueError(f"{path}: model_type is {cfg.get('model_type')!r}; load_gpt2 reads GPT-2 "
                         f"checkpoints only (model_type 'gpt2', architectures like GPT2LMHeadModel)")
    for key, allowed in FIXED.items():
        if key in cfg and cfg[key] not in allowed:
            raise ValueError(f"{path}: {key}={cfg[key]!r}, but minituner's GPT computes only "
                             f"{' or '.join(map(repr, allowed))}")
    sizes = {}
    for key in SIZES:
        if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int):
            raise ValueError(f"{path}: {key!r} must be an integer, got {cfg.get(key, 'nothing')!r:.40}; a GPT-2 "
                             f"config.json gives {', '.join(SIZES)}")
        sizes[SIZES[key]] = cfg[key]
    try:
        return GPTConfig(**sizes)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of model.safetensors, or of the shards its index names (files inside folder)."""
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.exists():
        return files.read_safetensors(single)[1]
    if index.exists():
        shards = read_json(index).get("weight_map")
        if not isinstance(shards, dict) or not all(isinstance(s, str) and Path(s).name == s for s in shards.values()):
            raise ValueError(f"{index}: 'weight_map' must map tensor names to shard file names in {folder}")
        state = {}
        for shard in sorted(set(shards.values())):
            state.update(files.read_safetensors(folder / shard)[1])
        return state
    found = sorted(p.name for p in folder.iterdir())
    raise FileNotFoundError(f"{folder} has no model.safetensors (nor model.safetensors.index.json); "
                            f"found {found[:8]}. pytorch_model.bin is not read: minituner never unpickles, "
                            "save the model again with save_pretrained(..., safe_serialization=True)")


def convert(hf: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    """HF GPT-2 tensors (names with or without 'transformer.') -> minituner GPT's state dict."""
    hf = {k.removeprefix("transformer."): v.float() for k, v in hf.items() if not k.endswith(BUFFERS)}
    head = hf.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, hf.get("wte.weight", head)):
        raise ValueError("lm_head.weight differs from wte.weight: minituner's GPT ties the head "
                         "to the token embedding, as GPT-2 does")
    C = config.n_embd
    out = {}
    for name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"):
        out[name] = hf.pop(name, None)
    for i in range(config.n_layer):
        p = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            out[p + ln + ".weight"], out[p + ln + ".bias"] = hf.pop(p + ln + ".weight", None), hf.pop(p + ln + ".bias", None)
        w, b = hf.pop(p + "attn.c_attn.weight", None), hf.pop(p + "attn.c_attn.bias", None)
        if w is None or b is None:
            raise ValueError(f"the checkpoint has no {p}attn.c_attn: not a GPT-2 with {config.n_layer} layers")
        if tuple(w.shape) != (C, 3 * C) or tuple(b.shape) != (3 * C,):
            raise ValueError(f"tensor {p}attn.c_attn has shapes {tuple(w.shape)} and {tuple(b.shape)}; "
                             f"n_embd={C} needs ({C}, {3 * C}) and ({3 * C},)")
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):  # c_attn(x) = [q | k | v]
            out[p + f"attn.{name}.weight"] = w[:, j * C:(j + 1) * C].T  # (C, C): Conv1D (in, out) -> (out, in)
            out[p + f"attn.{name}.bias"] = b[j * C:(j + 1) * C]  # (C,)
        for hf_name, name in (("attn.c_proj", "attn.o_proj"), ("mlp.c_fc", "mlp.up_proj"), ("mlp.c_proj", "mlp.down_proj")):
            w = hf.pop(p + hf_name + ".weight", None)
            out[p + name + ".weight"] = None if w is None else w.T  # Conv1D (in, out) -> Linear (out, in)
            out[p + name + ".bias"] = hf.pop(p + hf_name + ".bias", None)
    missing = sorted(k for k, v in out.items() if v is None)
    if missing or hf:
        raise ValueError(f"not a GPT-2 checkpoint of this config: missing {missing[:5]}, "
                         f"unexpected {sorted(hf)[:5]}")
    return {k: v.contiguous() for k, v in out.items()}


def load_gpt2(folder) -> GPT:
    """A Hugging Face GPT-2 folder (config.json + model.safetensors) -> minituner's GPT, in eval mode.

    Weights are converted to float32. Nothing is downloaded: point it at a folder you have,
    e.g. one written by transformers' ``GPT2LMHeadModel.save_pretrained``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; load_gpt2 needs a Hugging Face GPT-2 folder")
    config = gpt2_config(folder)
    weights = read_weights(folder)
    try:
        state = convert(weights, config)
    except ValueError as e:
        raise ValueError(f"{folder}: {e}") from None
    model = GPT(config)
    check_state(model.state_dict(), state, str(folder))
    model.load_state_dict(state)
    model.name_or_path = str(folder)  # transformers' name: where the weights came from, and the tokenizer (vocab.json)
    return model.eval()


def is_gpt2_folder(path) -> bool:
    """True for a folder with a config.json (a Hugging Face checkpoint); load_gpt2 checks the rest."""
    return path is not None and Path(path).is_dir() and (Path(path) / "config.json").is_file()


def load_any_base(path=None) -> tuple[GPT, CharTokenizer | BPETokenizer]:
    """(base model, its tokenizer) from any base minituner reads; the tokenizer follows the base:

    None                                 the shipped base, CharTokenizer
    a Hugging Face GPT-2 folder          load_gpt2(folder), BPETokenizer of its vocab.json + merges.txt
    a folder from `minituner pretrain`   folder/base.safetensors + base.json, CharTokenizer
    a path stem NAME                     NAME.safetensors + NAME.json (save_model's pair), CharTokenizer
    """
    if path is None:
        return load_base(), CharTokenizer()
    path = Path(path)
    if is_gpt2_folder(path):
        model, tok = load_gpt2(path), BPETokenizer.from_files(path)
        if tok.vocab_size > model.config.vocab_size:
            raise ValueError(f"{path}: vocab.json has ids up to {tok.vocab_size - 1}, but the model's "
                             f"vocab_size is {model.config.vocab_size}; the tokenizer is not this model's")
        return model, tok
    stem = path / BASE_NAME if path.is_dir() else path
    if not Path(f"{stem}.safetensors").is_file():  # "d/base.v2" is d/base.v2.safetensors
        raise FileNotFoundError(f"{path} is not a base: give a Hugging Face GPT-2 folder (config.json, "
                                f"model.safetensors, vocab.json, merges.txt) or a folder written by "
                                f"`minituner pretrain --out` ({BASE_NAME}.safetensors + {BASE_NAME}.json)")
    return load_base(stem), CharTokenizer()
