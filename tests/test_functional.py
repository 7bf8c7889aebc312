"""Each op of functional.py against PyTorch's own as the oracle."""

import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from minituner import functional as F

torch.manual_seed(0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), i=st.integers(1, 9), o=st.integers(1, 9), bias=st.booleans())
def test_linear_is_y_equals_wx(n, i, o, bias):
    x, W, b = torch.randn(n, i, dtype=torch.float64), torch.randn(o, i, dtype=torch.float64), torch.randn(o, dtype=torch.float64)
    b = b if bias else None
    torch.testing.assert_close(F.linear(x, W, b), TF.linear(x, W, b))
    Y = W @ x.T + (b[:, None] if bias else 0)  # the article's column form
    torch.testing.assert_close(F.linear(x, W, b), Y.T)


def test_layer_norm_matches_torch():
    x, w, b = torch.randn(3, 5, 8), torch.randn(8), torch.randn(8)
    torch.testing.assert_close(F.layer_norm(x, w, b), TF.layer_norm(x, (8,), w, b, eps=1e-5))


def test_gelu_is_gpt2_tanh_form():
    x = torch.linspace(-6, 6, 101)
    torch.testing.assert_close(F.gelu(x), TF.gelu(x, approximate="tanh"))
    assert (F.gelu(x) - TF.gelu(x)).abs().max() > 1e-5  # not the erf form


def test_softmax_forward_and_backward_match_torch():
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 7, dtype=torch.float64)
    (gx,) = torch.autograd.grad(F.softmax(x, -1), x, g)
    (gt,) = torch.autograd.grad(torch.softmax(x, -1), x, g)
    torch.testing.assert_close(F.softmax(x, -1), torch.softmax(x, -1))
    torch.testing.assert_close(gx, gt)
    assert torch.autograd.gradcheck(lambda t: F.softmax(t, 0), (x,))
    big = torch.tensor([1000.0, 1000.0])  # the max subtraction keeps exp finite
    torch.testing.assert_close(F.softmax(big), torch.tensor([0.5, 0.5]))


def test_causal_attention_matches_sdpa():
    q, k, v = (torch.randn(2, 3, 6, 4) for _ in range(3))
    torch.testing.assert_close(F.causal_attention(q, k, v), TF.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_attention_with_prefix_sees_every_prefix_row():
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    pk, pv = torch.randn(2, 3, 2, 4), torch.randn(2, 3, 2, 4)
    got = F.causal_attention(q, torch.cat([pk, k], 2), torch.cat([pv, v], 2), n_prefix=2)
    mask = torch.cat([torch.ones(5, 2, dtype=torch.bool), torch.ones(5, 5, dtype=torch.bool).tril()], 1)
    want = TF.scaled_dot_product_attention(q, torch.cat([pk, k], 2), torch.cat([pv, v], 2), attn_mask=mask)
    torch.testing.assert_close(got, want)


def test_attention_with_cache_offsets_the_mask():
    """The newest 2 queries against 5 keys: query i sees keys up to 3 + i."""
    q, k, v = (torch.randn(1, 2, 5, 4) for _ in range(3))
    full = F.causal_attention(q, k, v)
    torch.testing.assert_close(F.causal_attention(q[:, :, 3:], k, v), full[:, :, 3:])


@pytest.mark.parametrize("masked", [False, True])
def test_cross_entropy_matches_torch(masked):
    logits, y = torch.randn(2, 6, 11), torch.randint(0, 11, (2, 6))
    mask = (torch.rand(2, 6) > 0.5).float() if masked else None
    if masked:
        mask[0, 0] = 1.0
        per = TF.cross_entropy(logits.reshape(-1, 11), y.reshape(-1), reduction="none")
        want = (per * mask.reshape(-1)).sum() / mask.sum()
    else:
        want = TF.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))
    torch.testing.assert_close(F.cross_entropy(logits, y, mask), want)
    assert math.isfinite(F.cross_entropy(logits * 1e4, y).item())


def test_cross_entropy_rejects_an_empty_mask():
    with pytest.raises(ValueError, match="keeps no position"):
        F.cross_entropy(torch.randn(1, 3, 5), torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3))


# ---------------------------------------------------------------- hand-written backward passes
# Each Function's backward against autograd of the plain forward, in float64.


def _f64(*shape, grad=True):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=grad)


def test_plain_forwards_match_torch():
    x, w, b = torch.randn(3, 5, 8), torch.randn(8), torch.randn(8)
    torch.testing.assert_close(F.layer_norm_plain(x, w, b), TF.layer_norm(x, (8,), w, b, eps=1e-5))
    torch.testing.assert_close(F.gelu_plain(x), TF.gelu(x, approximate="tanh"))
    q, k, v = (torch.randn(2, 3, 6, 4) for _ in range(3))
    torch.testing.assert_close(F.causal_attention_plain(q, k, v), TF.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_layer_norm_backward_is_gradcheck_exact():
    x, w, b = _f64(2, 3, 6), _f64(6), _f64(6)
    assert torch.autograd.gradcheck(F.layer_norm, (x, w, b))
    g = torch.randn(2, 3, 6, dtype=torch.float64)
    fast = torch.autograd.grad(F.layer_norm(x, w, b), (x, w, b), g)
    plain = torch.autograd.grad(F.layer_norm_plain(x, w, b), (x, w, b), g)
    for a, e in zip(fast, plain):
        torch.testing.assert_close(a, e)


def test_layer_norm_backward_skips_frozen_weights():
    x, w, b = _f64(4, 6), _f64(6, grad=False), _f64(6, grad=False)
    assert torch.autograd.gradcheck(F.layer_norm, (x, w, b))


def test_gelu_backward_is_gradcheck_exact():
    x = (torch.randn(3, 17, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(F.gelu, (x,))
    g = torch.randn(3, 17, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(F.gelu(x), x, g)[0], torch.autograd.grad(F.gelu_plain(x), x, g)[0])


@pytest.mark.parametrize("n_prefix, Tq, Tk", [(0, 5, 5), (2, 5, 5), (0, 2, 5), (3, 1, 4)])
def test_attention_backward_is_gradcheck_exact(n_prefix, Tq, Tk):
    """No prefix; a prefix; a cache (2 new queries against 5 keys); both (one new token)."""
    q, k, v = _f64(2, 3, Tq, 4), _f64(2, 3, n_prefix + Tk, 4), _f64(2, 3, n_prefix + Tk, 4)
    torch.testing.assert_close(F.causal_attention(q, k, v, n_prefix), F.causal_attention_plain(q, k, v, n_prefix))
    assert torch.autograd.gradcheck(lambda a, b, c: F.causal_attention(a, b, c, n_prefix), (q, k, v))
    g = torch.randn(2, 3, Tq, 4, dtype=torch.float64)
    fast = torch.autograd.grad(F.causal_attention(q, k, v, n_prefix), (q, k, v), g)
    plain = torch.autograd.grad(F.causal_attention_plain(q, k, v, n_prefix), (q, k, v), g)
    for a, e in zip(fast, plain):
        torch.testing.assert_close(a, e)


def test_attention_mask_is_built_once_per_shape():
    F._mask_bias.cache_clear()
    q = torch.randn(1, 2, 5, 4)
    for _ in range(3):
        F.causal_attention(q, q, q)
    assert F._mask_bias.cache_info().misses == 1 and F._mask_bias.cache_info().hits == 2


@pytest.mark.parametrize("masked", [False, True])
def test_cross_entropy_backward_is_gradcheck_exact(masked):
    z, y = _f64(2, 5, 7), torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 1, 1, 0, 1], [1, 0, 0, 0, 1]]) if masked else None
    torch.testing.assert_close(F.cross_entropy(z, y, mask), F.cross_entropy_plain(z, y, mask))
    assert torch.autograd.gradcheck(lambda t: F.cross_entropy(t, y, mask), (z,))
    (fast,) = torch.autograd.grad(F.cross_entropy(z, y, mask), z)
    (plain,) = torch.autograd.grad(F.cross_entropy_plain(z, y, mask), z)
    torch.testing.assert_close(fast, plain)
    if masked:  # rows the mask drops get no gradient at all
        assert fast[mask == 0].abs().max() == 0


def test_embedding_backward_adds_repeated_rows():
    W, idx = _f64(6, 3), torch.tensor([[0, 2, 2], [5, 0, 2]])
    assert torch.autograd.gradcheck(lambda t: F.embedding(idx, t), (W,))
    g = torch.randn(2, 3, 3, dtype=torch.float64)
    (dW,) = torch.autograd.grad(F.embedding(idx, W), W, g)
    torch.testing.assert_close(dW, torch.autograd.grad(W[idx], W, g)[0])
    torch.testing.assert_close(dW[2], g[0, 1] + g[0, 2] + g[1, 2])
