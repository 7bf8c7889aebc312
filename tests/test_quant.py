"""NF4 (QLoRA's NormalFloat-4): the code book, packing, the round-trip bound, the bytes, the frozen layer."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minituner.analysis import linear_weights, quantization_rows
from minituner.model import Linear
from minituner.quant import (
    NF4,
    Linear4bit,
    dequantize_nf4,
    error_bound,
    nf4_code_book,
    normalized_blocks,
    pack4,
    quantize_nf4,
    state_bytes,
    unpack4,
)

# QLoRA (Dettmers et al. 2023), Appendix E: the NF4 data type's 16 values, as the paper lists them.
PAPER_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
             -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
             0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
             0.7229568362236023, 1.0]


def test_code_book_is_the_papers():
    q = nf4_code_book()
    assert q.shape == (16,) and q.dtype == torch.float32
    torch.testing.assert_close(q, torch.tensor(PAPER_NF4), atol=3e-7, rtol=0)
    assert q[7].item() == 0.0 and q[0].item() == -1.0 and q[15].item() == 1.0  # exact zero, ±1
    assert (q > 0).sum() == 8 and (q < 0).sum() == 7  # asymmetric: 8 positive, 7 negative


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=1, max_size=200))
def test_pack_unpack_inverse(codes):
    c = torch.tensor(codes)
    packed = pack4(c)
    assert packed.dtype == torch.uint8 and packed.numel() == (len(codes) + 1) // 2
    assert torch.equal(unpack4(packed, len(codes)), c)


def test_pack_puts_the_first_code_in_the_high_nibble():
    assert pack4(torch.tensor([0xA, 0x3])).tolist() == [0xA3]


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 300), std=st.floats(1e-3, 10.0),
       double_quant=st.booleans(), seed=st.integers(0, 2**16))
def test_round_trip_error_is_bounded(rows, cols, std, double_quant, seed):
    """|w − ŵ| ≤ c·g/2 + |c − ĉ| for every weight, and that bound is itself small (≤ 0.152·c + scale error)."""
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * std
    state = quantize_nf4(w, double_quant=double_quant)
    w_hat = dequantize_nf4(state)
    assert w_hat.shape == w.shape and w_hat.dtype == torch.float32
    bound = error_bound(w, state)
    assert ((w - w_hat).abs() <= bound * (1 + 1e-5) + 1e-7).all()
    assert bound.max() <= 0.152 * w.abs().max() + (0.0 if not double_quant else w.abs().max() / 127)


def test_normal_weights_keep_most_of_their_energy():
    """On N(0, σ) weights NF4's relative error is about 9% (4 bits; the scales cost 0.127 bits more)."""
    w = torch.randn(256, 256, generator=torch.Generator().manual_seed(0)) * 0.02
    err = (w - dequantize_nf4(quantize_nf4(w))).norm() / w.norm()
    assert 0.05 < err < 0.11


def test_bytes_per_weight():
    """64×64 fp32 = 16384 bytes; NF4 with double quantisation: 2048 codes + 64 int8 scales + 1 c₂ + μ."""
    state = quantize_nf4(torch.randn(64, 64))
    assert state_bytes(state) == 2048 + 64 + 4 + 4
    assert state_bytes(quantize_nf4(torch.randn(64, 64), double_quant=False)) == 2048 + 64 * 4


def test_zeros_and_exact_code_values_survive():
    w = torch.zeros(3, 64)
    w[1, :16] = torch.tensor(PAPER_NF4) * 0.5  # a block whose values are code book points
    torch.testing.assert_close(dequantize_nf4(quantize_nf4(w, double_quant=False)), w, atol=1e-7, rtol=0)


def test_bad_input():
    with pytest.raises(ValueError, match="float tensor"):
        quantize_nf4(torch.ones(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="non-empty"):
        quantize_nf4(torch.zeros(0))


def test_linear4bit_holds_codes_not_parameters():
    lin = Linear(64, 32)
    with torch.no_grad():
        lin.weight.normal_(0, 0.02, generator=torch.Generator().manual_seed(0))
        lin.bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    q = Linear4bit(lin)
    assert [n for n, p in q.named_parameters() if p.requires_grad] == []
    assert q.packed.dtype == torch.uint8 and q.packed.numel() == 64 * 32 // 2
    x = torch.randn(5, 64, requires_grad=True)
    y = q(x)
    torch.testing.assert_close(y, x @ dequantize_nf4(q.quant_state()).T + lin.bias)
    y.sum().backward()  # the gradient flows through the dequantised weight to the input
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_quantization_rows_bytes_and_errors(tiny):
    """One row per Linear (q, k, v, o, up, down per block); bytes: n/2 codes + 4 per block of 64 (fp32
    scales), or + 1 per block, 4 per 256 blocks and μ (DQ); every error within error_bound, and above 0."""
    rows, weights = quantization_rows(tiny), linear_weights(tiny)
    kinds = ("q", "k", "v", "o", "up", "down")
    assert [(r["kind"], r["layer"]) for r in rows] == [(k, i) for i in range(tiny.config.n_layer) for k in kinds]
    for row in rows:
        w = weights[row["matrix"]]
        n = w.numel()
        blocks = math.ceil(n / 64)
        assert (row["fp32 bytes"], row["NF4 bytes"]) == (4 * n, n // 2 + 4 * blocks)
        assert row["NF4 DQ bytes"] == n // 2 + blocks + 4 * math.ceil(blocks / 256) + 4
        for tag, double_quant in (("NF4", False), ("NF4 DQ", True)):
            bound = error_bound(w, quantize_nf4(w, double_quant=double_quant))
            assert 0 < row[f"{tag} max|W−Ŵ|"] <= bound.max() * (1 + 1e-5)
            assert 0 < row[f"{tag} ‖W−Ŵ‖/‖W‖"] <= bound.norm() / w.norm() * (1 + 1e-5)


def test_normalized_blocks_are_what_nf4_rounds():
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0)) * 0.02
    u = normalized_blocks(w)  # (n_blocks, 64)
    assert u.abs().amax(dim=1).eq(1).all()  # each block's absmax maps to ±1
    state = quantize_nf4(w, double_quant=False)
    nearest = NF4[(u.reshape(-1, 1) - NF4).abs().argmin(dim=1)]  # the level each w/c rounds to
    torch.testing.assert_close(dequantize_nf4(state).reshape(-1) / state["scales"].repeat_interleave(64), nearest)
