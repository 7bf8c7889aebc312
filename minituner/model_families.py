"""The article's §5 table (LLaMA-Factory, 29 Oct 2023) as data: each model family's default LoRA
target modules, and what those modules compute, in minituner's names.

LoRA names the Linear layers it wraps by their module names, and each code base names its
attention projections its own way. Two layouts:

- split: q, k, v are three Linear layers (LLaMA's `q_proj`, `k_proj`, `v_proj`, as in
  minituner's GPT). The default `q_proj,v_proj` adapts the query and value projections
  only, the choice of the LoRA paper (Hu et al. 2021, §7.1: W_q and W_v at a fixed budget).
- fused: one Linear computes [q; k; v] for every head in one matrix product (`query_key_value`,
  `W_pack`, `c_attn`, `Wqkv`). There is no separate query matrix to name, so the default is the
  fused matrix, and one LoRA pair adapts q, k and v *together*: ΔW = B·A with one A (r × C)
  shared by all three, so [Δq; Δk; Δv] has rank ≤ r jointly. Its size is not always 3C × C:
  with multi-query or grouped-query attention, k and v have fewer heads than q, and the fused
  matrix is (C + 2·g·hs) × C for g key/value heads of size hs (Falcon-7B: g = 1, Shazeer 2019;
  ChatGLM3-6B: g = 2). With every head its own k and v (g = nh) it is 3C × C.

LoRA's trainable count on one (out × in) matrix is r·(in + out): on the fused 3C × C matrix
r·(C + 3C) = 4rC, the same number as on the split q_proj and v_proj, 2·r·(C + C) = 4rC; it is
spread over q, k and v instead of q and v. minituner's GPT keeps the projections split, so the
nearest minituner target for a fused family is ("q_proj", "k_proj", "v_proj"), each with its own
A (6rC numbers): the same modules adapted, not the same low-rank constraint.

Sources: the article's §5 table; each family's modelling code (Hugging Face model repositories
of the families: modeling_llama.py, modeling_bloom.py, modeling_falcon.py, Baichuan's and Qwen's
modeling files, ChatGLM3's modeling_chatglm.py, Phi-1.5's original modeling_mixformer_sequential.py).
"""

from __future__ import annotations

from dataclasses import dataclass

MINITUNER_NAMES = {"q": "q_proj", "k": "k_proj", "v": "v_proj"}


@dataclass(frozen=True)
class Family:
    name: str
    sizes: str  # as the article's table lists them
    targets: tuple[str, ...]  # LLaMA-Factory's default LoRA target modules (the table's "Default module")
    template: str  # the chat template's name in LLaMA-Factory ("-": none)
    computes: tuple[str, ...]  # which projections the targets compute: "q", "k", "v"
    fused: bool  # True: one Linear computes q, k and v together
    n_embd: int  # C of the size in `example`
    n_head: int  # query heads of that size
    kv_heads: int  # key/value heads g of that size (= n_head: every head its own k, v)
    example: str  # the size whose shapes are given


FAMILIES = [
    Family("LLaMA", "7B/13B/33B/65B", ("q_proj", "v_proj"), "-", ("q", "v"), False, 4096, 32, 32, "7B"),
    Family("LLaMA-2", "7B/13B/70B", ("q_proj", "v_proj"), "llama2", ("q", "v"), False, 4096, 32, 32, "7B"),
    Family("BLOOM", "560M/1.1B/1.7B/3B/7.1B/176B", ("query_key_value",), "-", ("q", "k", "v"), True, 4096, 32, 32,
           "7.1B"),
    Family("BLOOMZ", "560M/1.1B/1.7B/3B/7.1B/176B", ("query_key_value",), "-", ("q", "k", "v"), True, 4096, 32, 32,
           "7.1B"),
    Family("Falcon", "7B/40B", ("query_key_value",), "-", ("q", "k", "v"), True, 4544, 71, 1, "7B"),
    Family("Baichuan", "7B/13B", ("W_pack",), "baichuan", ("q", "k", "v"), True, 4096, 32, 32, "7B"),
    Family("Baichuan2", "7B/13B", ("W_pack",), "baichuan2", ("q", "k", "v"), True, 4096, 32, 32, "7B"),
    Family("InternLM", "7B/20B", ("q_proj", "v_proj"), "intern", ("q", "v"), False, 4096, 32, 32, "7B"),
    Family("Qwen", "7B/14B", ("c_attn",), "chatml", ("q", "k", "v"), True, 4096, 32, 32, "7B"),
    Family("ChatGLM3", "6B", ("query_key_value",), "chatglm3", ("q", "k", "v"), True, 4096, 32, 2, "6B"),
    Family("Phi-1.5", "1.3B", ("Wqkv",), "-", ("q", "k", "v"), True, 2048, 32, 32, "1.3B"),
]


def family(name: str) -> Family:
    for f in FAMILIES:
        if f.name == name:
            return f
    raise ValueError(f"unknown model family {name!r}; the article's table has {', '.join(f.name for f in FAMILIES)}")


def minituner_targets(f: Family) -> tuple[str, ...]:
    """minituner's module names for what the family's default targets compute."""
    return tuple(MINITUNER_NAMES[p] for p in f.computes)


def target_shapes(f: Family) -> list[tuple[str, int, int]]:
    """(module, out, in) of each default target at the `example` size: a split projection is C × C
    for q and (g·hs) × C for k or v; the fused matrix is (C + 2·g·hs) × C."""
    hs = f.n_embd // f.n_head
    kv = f.kv_heads * hs
    if f.fused:
        return [(f.targets[0], f.n_embd + 2 * kv, f.n_embd)]
    return [(t, f.n_embd if t == "q_proj" else kv, f.n_embd) for t in f.targets]


def lora_parameters_per_block(f: Family, r: int) -> int:
    """LoRA's trainable numbers in one block with the default targets: Σ r·(in + out)."""
    return sum(r * (n_in + out) for _, out, n_in in target_shapes(f))


def table(r: int = 8) -> list[dict]:
    """The article's table with what minituner adds: shapes, LoRA count per block, minituner's names."""
    return [{"family": f.name, "sizes": f.sizes, "default module": ",".join(f.targets),
             "layout": "fused q,k,v" if f.fused else "split",
             "adapts": ",".join(f.computes),
             "size": f.example, "target shape(s), out×in": ", ".join(f"{o}×{i}" for _, o, i in target_shapes(f)),
             f"LoRA r={r} per block": lora_parameters_per_block(f, r),
             "minituner targets": ",".join(minituner_targets(f))} for f in FAMILIES]
