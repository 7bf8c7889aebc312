"""Is ΔW low-rank? The update full fine-tuning makes, taken apart by its singular values (lesson 09).

LoRA's premise (Hu et al. 2021, §4.1; Aghajanyan et al. 2021; the article's §3.2): the change
fine-tuning makes, ΔW = W_tuned − W_base (out, in), has a low "intrinsic rank", so ΔW ≈ B·A with
B (out, r), A (r, in). Measured here for every matrix, from its SVD ΔW = U Σ Vᵀ, σ₁ ≥ σ₂ ≥ …:

    share(r)   = Σ_{i≤r} σᵢ² / Σᵢ σᵢ²         the part of ‖ΔW‖²_F the top r directions hold
    eff. rank  = exp(−Σᵢ pᵢ log pᵢ), pᵢ = σᵢ / Σⱼ σⱼ   (Roy & Vetterli 2007): 1 for rank one,
                 min(out, in) for a flat spectrum
    [ΔW]_r     = U_r Σ_r V_rᵀ                  the best rank-r approximation (Eckart–Young 1936):
                 share(r) of ‖ΔW‖² is kept, and it has r·(out + in) numbers, as LoRA at rank r

The baseline: a random ΔW of the same Frobenius norm with i.i.d. normal entries. Its spectrum is
flat-ish (Marchenko–Pastur), so share(r) ≈ r / min(out, in) grows slowly; a fine-tuning ΔW whose
share(r) sits far above that line is low-rank in the sense LoRA needs.

LoRA's own analysis of its adapters (Hu et al. 2021, §7; lesson 12): subspace_similarity (their Figure 3)
and amplification (their Table 7).
"""

from __future__ import annotations

import copy

import torch

from .model import Linear
from .quant import dequantize_nf4, quantize_nf4, state_bytes


def kind_and_layer(name: str) -> tuple[str, int]:
    """'h.2.attn.q_proj' -> ('q', 2); 'h.0.mlp.down_proj' -> ('down', 0)."""
    return name.rsplit(".", 1)[-1].removesuffix("_proj"), int(name.split(".")[1])


def linear_weights(model) -> dict[str, torch.Tensor]:
    """{module name: W (out, in)} for every Linear of the model, in the model's order."""
    return {n: m.weight.detach() for n, m in model.named_modules() if isinstance(m, Linear)}


def delta_weights(base, tuned) -> dict[str, torch.Tensor]:
    """{name: ΔW = W_tuned − W_base} for every Linear (out, in)."""
    w0, w1 = linear_weights(base), linear_weights(tuned)
    if w0.keys() != w1.keys():
        raise ValueError("base and tuned model have different Linear modules; compare two models of one shape")
    return {n: w1[n] - w0[n] for n in w0}


def energy_share(s: torch.Tensor, r: int) -> float:
    """Σ_{i≤r} σᵢ² / Σ σᵢ²: the share of ‖ΔW‖²_F in the top r singular directions."""
    e = s.double() ** 2
    return float(e[:r].sum() / e.sum())


def effective_rank(s: torch.Tensor) -> float:
    """exp of the entropy of σᵢ / Σσⱼ (Roy & Vetterli 2007)."""
    p = s.double() / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def rank_for(s: torch.Tensor, share: float = 0.9) -> int:
    """The smallest r whose top r directions hold `share` of ‖ΔW‖²."""
    e = (s.double() ** 2).cumsum(0)
    return int((e < share * e[-1]).sum()) + 1


def truncate(dw: torch.Tensor, r: int) -> torch.Tensor:
    """[ΔW]_r = U_r Σ_r V_rᵀ (out, in): the closest rank-r matrix to ΔW in ‖·‖_F."""
    U, S, Vh = torch.linalg.svd(dw, full_matrices=False)  # (out, k), (k,), (k, in)
    return (U[:, :r] * S[:r]) @ Vh[:r]


def random_like(dw: torch.Tensor, seed: int) -> torch.Tensor:
    """A matrix of ΔW's shape and Frobenius norm with i.i.d. N(0, 1) entries, rescaled."""
    z = torch.randn(dw.shape, generator=torch.Generator().manual_seed(seed))
    return z * (dw.norm() / z.norm())


def spectrum_rows(deltas: dict[str, torch.Tensor], base, ranks=(1, 2, 4, 8, 16), seed: int = 0) -> list[dict]:
    """One row per matrix: its kind and layer, ‖ΔW‖/‖W‖, share(r) for each r (ΔW and the random
    baseline of the same norm), effective rank, and the rank holding 90% of ‖ΔW‖²."""
    w0, rows = linear_weights(base), []
    for i, (name, dw) in enumerate(deltas.items()):
        s = torch.linalg.svdvals(dw)  # (min(out, in),)
        s_rand = torch.linalg.svdvals(random_like(dw, seed + i))
        kind, layer = kind_and_layer(name)
        row = {"matrix": name, "kind": kind, "layer": layer, "shape": tuple(dw.shape),
               "‖ΔW‖/‖W‖": float(dw.norm() / w0[name].norm())}
        for r in ranks:
            row[f"share r={r}"] = energy_share(s, r)
            row[f"random r={r}"] = energy_share(s_rand, r)
        row |= {"eff. rank": effective_rank(s), "eff. rank random": effective_rank(s_rand),
                "r for 90%": rank_for(s), "full rank": min(dw.shape), "σ": s}
        rows.append(row)
    return rows


def summarise(rows: list[dict], by: str, columns: list[str]) -> list[dict]:
    """Mean of `columns` over the rows that share `by` ("kind" or "layer"), in first-seen order."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    return [{by: key, "matrices": len(g), **{c: sum(r[c] for r in g) / len(g) for c in columns}}
            for key, g in groups.items()]


@torch.no_grad()
def with_deltas(base, deltas: dict[str, torch.Tensor]):
    """A copy of base with W ← W_base + ΔW for each named Linear; every other tensor is the base's."""
    model = copy.deepcopy(base)
    for name, dw in deltas.items():
        model.get_submodule(name).weight += dw
    return model


def truncated_model(base, deltas: dict[str, torch.Tensor], r: int):
    """The base plus every ΔW cut to rank r (the same r·(out + in) numbers per matrix as LoRA at rank r)."""
    return with_deltas(base, {n: truncate(dw, r) for n, dw in deltas.items()})



def quantization_rows(model) -> list[dict]:
    """Per Linear of model (QLoRA's frozen base, minituner/quant.py): its kind and layer, its bytes in
    fp32 and in NF4, and the error NF4 makes, ‖W − Ŵ‖_F / ‖W‖_F and max |W − Ŵ|; each NF4 column
    twice, with the scales c kept in fp32 and with them double-quantised ("DQ")."""
    rows = []
    for name, w in linear_weights(model).items():
        kind, layer = kind_and_layer(name)
        row = {"matrix": name, "kind": kind, "layer": layer, "shape": tuple(w.shape), "fp32 bytes": 4 * w.numel()}
        for tag, double_quant in (("NF4", False), ("NF4 DQ", True)):
            state = quantize_nf4(w, double_quant=double_quant)
            err = w - dequantize_nf4(state)  # (out, in)
            row |= {f"{tag} bytes": state_bytes(state), f"{tag} ‖W−Ŵ‖/‖W‖": float(err.norm() / w.norm()),
                    f"{tag} max|W−Ŵ|": float(err.abs().max())}
        rows.append(row)
    return rows


def magnitude_direction(w0: torch.Tensor, w: torch.Tensor) -> tuple[float, float]:
    """How far W moved from W₀, split as DoRA's analysis splits it (Liu et al. 2024, §3.2), one norm
    per output row (our (out, in) layout; the paper's columns):
        ΔM = mean_i |‖W_i‖ − ‖W₀_i‖|        ΔD = mean_i (1 − cos(W_i, W₀_i))
    A pure rescaling of rows moves only ΔM, a rotation that keeps lengths only ΔD."""
    if w0.shape != w.shape or w0.dim() != 2:
        raise ValueError(f"need two matrices of one shape, got {tuple(w0.shape)} and {tuple(w.shape)}")
    dm = (w.norm(dim=1) - w0.norm(dim=1)).abs().mean()  # (out,) -> ()
    dd = (1 - torch.nn.functional.cosine_similarity(w, w0, dim=1)).mean()  # (out,) -> ()
    return float(dm), float(dd)


def top_singular(m: torch.Tensor, side: str) -> torch.Tensor:
    """The singular vectors of m (out, in), strongest first, as columns: side "left" (out, k), "right" (in, k)."""
    if side not in ("left", "right"):
        raise ValueError(f"side is 'left' (the output space) or 'right' (the input space), got {side!r}")
    U, _, Vh = torch.linalg.svd(m.double(), full_matrices=False)  # (out, k), (k,), (k, in)
    return U if side == "left" else Vh.T


def subspace_similarity(u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """LoRA's normalised subspace similarity (Hu et al. 2021, §7.2, Figure 3), for every i and j at once:

        φ(A₁, A₂, i, j) = ‖U₁^{i⊤} U₂^{j}‖²_F / min(i, j)   ∈ [0, 1]

    u1 (n, k1), u2 (n, k2): orthonormal columns, strongest first (top_singular; the paper uses the right
    singular vectors of lora_A (r, in), our layout as theirs). U^i: the first i columns. 1 when the
    top-i space lies in the top-j one, 0 when they are orthogonal; two random spaces give max(i, j)/n
    on average. Returns φ (k1, k2), φ[i-1, j-1] = φ(·, ·, i, j)."""
    if u1.dim() != 2 or u2.dim() != 2 or u1.shape[0] != u2.shape[0]:
        raise ValueError(f"need two (n, k) bases of one space, got {tuple(u1.shape)} and {tuple(u2.shape)}")
    overlap = (u1.T.double() @ u2.double()) ** 2  # (k1, k2): squared cosines between the directions
    mass = overlap.cumsum(0).cumsum(1)  # (k1, k2): ‖U₁^{i⊤} U₂^{j}‖²_F for every i, j
    i = torch.arange(1, u1.shape[1] + 1, dtype=torch.float64)
    j = torch.arange(1, u2.shape[1] + 1, dtype=torch.float64)
    return mass / torch.minimum(i[:, None], j[None, :])


def amplification(w: torch.Tensor, dw: torch.Tensor, r: int, seed: int = 0) -> dict:
    """How strongly ΔW amplifies directions W already has (Hu et al. 2021, §7.3, Table 7).

    U (out, r), V (in, r): the top-r singular vectors of ΔW. W projected onto them is Uᵀ W V (r, r):

        amplification factor = ‖ΔW‖_F / ‖Uᵀ W V‖_F

    beside the same projection onto W's own top r directions (‖Σ_r(W)‖, the most any r can catch) and
    onto r random orthonormal directions (chance). Large when ΔW stresses directions W holds weakly."""
    def caught(u, v):
        return float((u.T @ w.double() @ v).norm())  # ‖Uᵀ W V‖_F

    g = torch.Generator().manual_seed(seed)
    q_out, _ = torch.linalg.qr(torch.randn(w.shape[0], r, generator=g, dtype=torch.float64))  # (out, r)
    q_in, _ = torch.linalg.qr(torch.randn(w.shape[1], r, generator=g, dtype=torch.float64))  # (in, r)
    by_dw = caught(top_singular(dw, "left")[:, :r], top_singular(dw, "right")[:, :r])
    return {"‖W‖": float(w.norm()), "‖ΔW‖": float(dw.norm()), "‖UᵀWV‖ ΔW dirs": by_dw,
            "‖UᵀWV‖ W dirs": caught(top_singular(w, "left")[:, :r], top_singular(w, "right")[:, :r]),
            "‖UᵀWV‖ random dirs": caught(q_out, q_in), "amplification": float(dw.norm()) / by_dw}
