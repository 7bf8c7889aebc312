"""Intrinsic dimension (minituner/intrinsic.py) and LoRA §7's measures (analysis.py): each formula against
an independent computation at a small size."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minituner
from minituner.analysis import amplification, subspace_similarity, top_singular
from minituner.functional import cross_entropy
from minituner.intrinsic import Fastfood, IntrinsicModel, d90, hadamard, head, job


@pytest.mark.parametrize("L", [1, 2, 4, 32, 128])
def test_butterfly_is_the_sylvester_hadamard_matrix(L):
    x = torch.randn(3, 5, L, dtype=torch.float64)
    # Sylvester's matrix entry by entry: H[i, j] = (-1)^popcount(i & j), independent of the butterfly
    H = torch.tensor([[(-1) ** bin(i & j).count("1") for j in range(L)] for i in range(L)], dtype=torch.float64)
    assert torch.allclose(hadamard(x), x @ H.T, atol=1e-12)
    with pytest.raises(ValueError, match="power-of-2"):
        hadamard(torch.ones(12))


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 40), D=st.integers(1, 300), seed=st.integers(0, 2**16))
def test_fastfood_is_its_dense_matrix_for_any_size(d, D, seed):
    if d > D:
        with pytest.raises(ValueError, match="must not exceed"):
            Fastfood(d, D, seed)
        return
    f = Fastfood(d, D, seed)
    P = f.dense()  # (D, d) multiplied out of H, G, Π, B
    assert P.shape == (D, d)
    assert torch.allclose(f(torch.eye(d)).T, P, atol=1e-5)  # column i = fastfood(eᵢ)
    theta = torch.randn(2, d, generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(f(theta), theta @ P.T, atol=1e-5)  # linear, batched


def test_fastfood_keeps_length():
    P = Fastfood(24, 4096, seed=0)(torch.eye(24)).T  # L = 32 divides D: every column has length 1 exactly
    assert torch.allclose(P.norm(dim=0), torch.ones(24), atol=1e-5)
    big = Fastfood(100, 20_000, seed=1)  # L = 128 does not divide D: close to 1, and PᵀP close to I
    Q = big(torch.eye(100)).T
    assert (Q.norm(dim=0) - 1).abs().max() < 0.01
    assert (Q.T @ Q - torch.eye(100)).abs().max() < 0.08  # off-diagonal ~ 1/√D each
    theta = torch.randn(64, 100, generator=torch.Generator().manual_seed(2))
    ratio = (big(theta).norm(dim=1) / theta.norm(dim=1)) ** 2
    assert abs(ratio.mean().item() - 1) < 0.01  # E‖Pθ‖² = ‖θ‖²


def test_fastfood_is_seeded_and_refuses_bad_sizes():
    assert torch.equal(Fastfood(8, 100, 5)(torch.ones(8)), Fastfood(8, 100, 5)(torch.ones(8)))
    assert not torch.equal(Fastfood(8, 100, 5)(torch.ones(8)), Fastfood(8, 100, 6)(torch.ones(8)))
    for d, D in ((0, 10), (True, 10), (4, 0), (2.0, 10)):
        with pytest.raises(ValueError, match="positive int"):
            Fastfood(d, D)
    with pytest.raises(ValueError, match="must end in 8"):
        Fastfood(8, 100)(torch.ones(7))


def test_intrinsic_model_starts_at_the_base_and_trains_only_theta_d(tiny, classify):
    before = copy.deepcopy(tiny.state_dict())
    model = IntrinsicModel(tiny, 16, seed=0)
    x = classify.val.x[:4]
    assert torch.equal(model(x), tiny(x))  # θ_d = 0: θ = θ₀ exactly
    assert minituner.count_parameters(model)[0] == 16 == model.projection.d
    minituner.train(model, classify, steps=3, lr=1e-2, batch_size=4, progress=False)
    assert model.theta_d.abs().min() > 0  # every number of θ_d moved
    for name, t in model.base.state_dict().items():  # the copy and the given base: bit-identical
        assert torch.equal(t, before[name]) and torch.equal(tiny.state_dict()[name], before[name]), name
    with torch.no_grad():
        assert torch.allclose(model.merged()(x), model(x), atol=1e-5)  # the same θ₀ + Pθ_d as a plain GPT


def test_gradient_of_theta_d_is_the_projected_full_gradient(tiny, classify):
    x, y, m = classify.train.batch(4, torch.Generator().manual_seed(0))
    model = IntrinsicModel(tiny, 8, seed=1)
    model.theta_d.data.normal_(0, 0.1)  # away from θ₀: the gradient at θ₀ + Pθ_d
    cross_entropy(model(x), y, m).backward()
    at = model.merged().requires_grad_(True)
    cross_entropy(at(x), y, m).backward()
    g = torch.cat([p.grad.flatten() for p in at.parameters()])  # (D,)
    assert torch.allclose(model.theta_d.grad, model.projection.dense().T @ g, rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in model.base.parameters())


def test_job_refuses_an_unknown_init_or_kind_before_any_work():
    for init, kind in (("pretrained", "prompt"), ("scratch", "full")):
        with pytest.raises(ValueError, match="init is 'pretrained' or 'random'"):
            job(init, kind, 8, 1e-3, steps=1, batch_size=2, seed=0)


def test_d90_is_the_smallest_d_on_the_bar():
    assert d90([1024, 64, 256], [0.70, 0.30, 0.66], full_score=0.72) == 256  # 0.9 · 0.72 = 0.648
    assert d90([64, 256], [0.1, 0.2], full_score=0.72) is None
    assert d90([8, 16], [0.5, 0.9], full_score=1.0, share=0.5) == 8


def test_head_keeps_the_first_rows(classify):
    part = head(classify.val, 5)
    assert len(part) == 5 and part.examples == classify.val.examples[:5] and torch.equal(part.x, classify.val.x[:5])
    assert head(classify.val, 0) is classify.val


def brute_phi(u1, u2, i, j):
    return (torch.linalg.matrix_norm(u1[:, :i].T @ u2[:, :j]) ** 2 / min(i, j)).item()


def test_subspace_similarity_is_lora_figure_3s_formula():
    g = torch.Generator().manual_seed(0)
    a1, a2 = torch.randn(4, 20, generator=g), torch.randn(9, 20, generator=g)  # two lora_A (r, in)
    u1, u2 = top_singular(a1, "right"), top_singular(a2, "right")  # (20, 4), (20, 9)
    phi = subspace_similarity(u1, u2)
    assert phi.shape == (4, 9)
    for i in range(1, 5):
        for j in range(1, 10):
            assert phi[i - 1, j - 1].item() == pytest.approx(brute_phi(u1, u2, i, j), abs=1e-12)
    assert torch.allclose(subspace_similarity(u2, u2), torch.ones(9, 9, dtype=torch.float64))  # the same space: 1
    e = torch.eye(20, dtype=torch.float64)
    assert subspace_similarity(e[:, :3], e[:, 3:7]).abs().max() == 0  # orthogonal spaces: 0
    with pytest.raises(ValueError, match="two"):
        subspace_similarity(u1, torch.randn(19, 2))
    with pytest.raises(ValueError, match="side"):
        top_singular(a1, "top")


def test_amplification_is_lora_table_7s_ratio():
    g = torch.Generator().manual_seed(0)
    w, dw = torch.randn(12, 10, generator=g), torch.randn(12, 10, generator=g) * 0.1
    row = amplification(w, dw, r=3)
    U, V = top_singular(dw, "left")[:, :3], top_singular(dw, "right")[:, :3]
    assert row["‖UᵀWV‖ ΔW dirs"] == pytest.approx((U.T @ w.double() @ V).norm().item())
    assert row["amplification"] == pytest.approx(dw.norm().item() / row["‖UᵀWV‖ ΔW dirs"])
    s = torch.linalg.svdvals(w.double())
    assert row["‖UᵀWV‖ W dirs"] == pytest.approx(s[:3].norm().item())  # W's own top 3 catch the most
    assert row["‖UᵀWV‖ random dirs"] < row["‖UᵀWV‖ W dirs"]
    same = amplification(w, w, r=3)  # ΔW along W's own top directions amplifies nothing new
    assert same["‖UᵀWV‖ ΔW dirs"] == pytest.approx(same["‖UᵀWV‖ W dirs"])
