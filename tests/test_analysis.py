"""analysis.py: the SVD facts lesson 09 rests on (Eckart–Young, shares, effective rank) and ΔW bookkeeping."""

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minituner.analysis import (
    delta_weights,
    effective_rank,
    energy_share,
    linear_weights,
    random_like,
    rank_for,
    spectrum_rows,
    summarise,
    truncate,
    truncated_model,
    with_deltas,
)


@settings(max_examples=20, deadline=None)
@given(out=st.integers(2, 24), inn=st.integers(2, 24), r=st.integers(1, 8), seed=st.integers(0, 999))
def test_truncation_is_eckart_young(out, inn, r, seed):
    """[ΔW]_r has rank ≤ r, keeps share(r) of ‖ΔW‖², and its error is Σ_{i>r} σᵢ²."""
    dw = torch.randn(out, inn, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s = torch.linalg.svdvals(dw)
    cut = truncate(dw, r)
    assert torch.linalg.matrix_rank(cut) <= r
    torch.testing.assert_close(cut.norm() ** 2, energy_share(s, r) * dw.norm() ** 2)
    torch.testing.assert_close((dw - cut).norm() ** 2, (s[r:] ** 2).sum())


def test_effective_rank_and_rank_for():
    u, v = torch.randn(10, 1), torch.randn(1, 7)
    assert abs(effective_rank(torch.linalg.svdvals(u @ v)) - 1) < 1e-4  # rank one
    assert abs(effective_rank(torch.ones(6)) - 6) < 1e-9  # a flat spectrum: full
    s = torch.tensor([3.0, 1.0, 1.0, 0.0])  # σ² = 9, 1, 1: 9/11 = 82% in the top one
    assert rank_for(s, 0.8) == 1 and rank_for(s, 0.9) == 2 and rank_for(s, 1.0) == 3


def test_random_baseline_has_the_norm_and_a_flat_spectrum():
    dw = torch.zeros(64, 64)
    dw[0, 0] = 5.0  # rank one: share(1) = 1
    rnd = random_like(dw, seed=0)
    torch.testing.assert_close(rnd.norm(), dw.norm())
    assert energy_share(torch.linalg.svdvals(rnd), 1) < 0.1  # i.i.d. entries spread ‖·‖² over many σ


def test_delta_weights_round_trip(tiny):
    tuned = copy.deepcopy(tiny)
    with torch.no_grad():
        tuned.h[1].attn.v_proj.weight.add_(torch.randn(16, 16))
        tuned.h[0].mlp.up_proj.weight.add_(1.0)
    deltas = delta_weights(tiny, tuned)
    assert len(deltas) == 6 * tiny.config.n_layer
    rebuilt = with_deltas(tiny, deltas)
    for name, w in linear_weights(tuned).items():
        torch.testing.assert_close(linear_weights(rebuilt)[name], w)
    assert torch.equal(linear_weights(truncated_model(tiny, deltas, 16))["h.0.mlp.up_proj"],
                       linear_weights(tiny)["h.0.mlp.up_proj"] + truncate(deltas["h.0.mlp.up_proj"], 16))
    rows = spectrum_rows(deltas, tiny, ranks=(1, 2))
    up = next(r for r in rows if r["matrix"] == "h.0.mlp.up_proj")  # ΔW = all ones: rank one
    assert up["kind"] == "up" and up["layer"] == 0 and abs(up["share r=1"] - 1) < 1e-6 and up["r for 90%"] == 1
    by_kind = summarise(rows, "kind", ["share r=1"])
    assert [r["kind"] for r in by_kind] == ["q", "k", "v", "o", "up", "down"] and by_kind[0]["matrices"] == 2
