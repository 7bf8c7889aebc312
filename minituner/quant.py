"""NormalFloat-4 (NF4) quantisation, written out (Dettmers et al. 2023, QLoRA, §3 and Appendix E).

1. The code book: 16 values q_i in [-1, 1], quantiles of N(0, 1) scaled to ±1, with an exact 0.
   Pretrained weights are roughly normal, so equal-probability bins waste no code. The paper's
   estimate q_i = ½(Q_X(i/(2^k+1)) + Q_X((i+1)/(2^k+1))) has no exact zero; the asymmetric form
   it uses instead takes 8 positive and 7 negative quantiles, from δ = ½(1/30 + 1/32) to ½:
       positive: Q(linspace(1 − δ, ½, 9)[:8]),  negative: −Q(linspace(1 − δ, ½, 8)[:7]),  and 0,
   then divides by the largest, so q_0 = −1, q_7 = 0, q_15 = 1 (values in tests/test_quant.py).
2. Blockwise absmax (Eq. 1, per block of B = 64 weights):  c = max|w|,  code = argmin_i |w/c − q_i|.
   Two 4-bit codes are packed in one byte (first code in the high nibble): 0.5 byte per weight.
3. Double quantisation (§3): the scales c (one fp32 per 64 weights) are themselves quantised:
   centred by their mean μ, then Int8 absmax in blocks of 256 (Eq. 1: c₈ = round(127 · (c − μ)/c₂)),
   keeping one fp32 c₂ per 256 scales. The paper stores this level as FP8; Int8 costs the same bits.
   Bits per weight: 4 + 8/64 + 32/(64·256) = 4.127 (the paper's 0.127 bits of overhead).
4. Dequantisation: ĉ = c₈ · c₂ / 127 + μ,   ŵ = q[code] · ĉ.
   Error: |w − ŵ| ≤ c · g/2 + |c − ĉ|, g the largest gap between neighbouring q_i (0.304, from −1 to −0.696).

Shapes: w (out, in) -> packed (⌈n/2⌉,) uint8, scales8 (n_blocks,) int8, scales2 (⌈n_blocks/256⌉,) fp32.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import functional as F

BLOCK, SCALE_BLOCK = 64, 256


def nf4_code_book() -> torch.Tensor:
    """The 16 NF4 values, ascending, (16,) float32: −1, …, 0, …, 1."""
    delta = 0.5 * (1 / 30 + 1 / 32)  # QLoRA's offset: 1 − δ = 0.9677083
    ndtri = torch.special.ndtri  # Q_X, the quantile function of N(0, 1)
    pos = ndtri(torch.linspace(1 - delta, 0.5, 9, dtype=torch.float64)[:-1])  # (8,) > 0
    neg = -ndtri(torch.linspace(1 - delta, 0.5, 8, dtype=torch.float64)[:-1])  # (7,) < 0
    q = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values  # (16,)
    return (q / q.abs().max()).float()


NF4 = nf4_code_book()  # (16,) computed once; every quantise and dequantise reads it


def _blocks(x: torch.Tensor, size: int) -> torch.Tensor:
    """x flattened, zero-padded to a multiple of size -> (n_blocks, size)."""
    x = x.reshape(-1)
    return torch.cat([x, x.new_zeros(-x.numel() % size)]).view(-1, size)


def _absmax(blocks: torch.Tensor) -> torch.Tensor:
    """max|x| per block, (n_blocks,); an all-zero block gets 1 (any scale maps 0 to 0)."""
    c = blocks.abs().amax(dim=1)
    return torch.where(c > 0, c, torch.ones_like(c))


def pack4(codes: torch.Tensor) -> torch.Tensor:
    """(n,) integers in 0..15 -> (⌈n/2⌉,) uint8, two codes per byte (high nibble first)."""
    codes = _blocks(codes.to(torch.uint8), 2)  # (⌈n/2⌉, 2)
    return codes[:, 0] << 4 | codes[:, 1]


def unpack4(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of pack4: (⌈n/2⌉,) uint8 -> (n,) int64 codes."""
    return torch.stack([packed >> 4, packed & 15], dim=1).reshape(-1)[:n].long()


@torch.no_grad()
def quantize_nf4(w: torch.Tensor, double_quant: bool = True) -> dict[str, torch.Tensor]:
    """w (any shape, float) -> the tensors that hold it in NF4 (see the module docstring).

    Returns {"packed", "scales"} (fp32 scales) or, with double_quant, {"packed", "scales8",
    "scales2", "scales_mean"}; plus "shape" (the original shape, int64).
    """
    if not w.is_floating_point() or w.numel() == 0:
        raise ValueError(f"quantize_nf4 needs a non-empty float tensor, got {w.dtype} of shape {tuple(w.shape)}")
    q = NF4.to(w.device)
    blocks = _blocks(w.float(), BLOCK)  # (n_blocks, 64)
    c = _absmax(blocks)  # (n_blocks,)
    codes = ((blocks / c[:, None])[..., None] - q).abs().argmin(dim=-1)  # (n_blocks, 64) in 0..15
    state = {"packed": pack4(codes.reshape(-1)[: w.numel()]), "shape": torch.tensor(w.shape)}
    if not double_quant:
        return state | {"scales": c}
    mean = c.mean()
    c_blocks = _blocks(c - mean, SCALE_BLOCK)  # (n_scale_blocks, 256)
    c2 = _absmax(c_blocks)  # (n_scale_blocks,)
    c8 = torch.round(127 * c_blocks / c2[:, None]).to(torch.int8).reshape(-1)[: c.numel()]  # Eq. 1
    return state | {"scales8": c8, "scales2": c2, "scales_mean": mean.reshape(1)}


def scales(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The per-block scales (n_blocks,): c itself, or ĉ = c₈ · c₂ / 127 + μ when double-quantised."""
    if "scales" in state:
        return state["scales"]
    c8 = state["scales8"].float()  # (n_blocks,)
    c2 = state["scales2"].repeat_interleave(SCALE_BLOCK)[: c8.numel()]  # (n_blocks,)
    return c8 * c2 / 127 + state["scales_mean"]


def dequantize_nf4(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """ŵ = q[code] · ĉ, in float32 and w's shape."""
    shape = torch.Size(state["shape"].tolist())
    n = shape.numel()
    q = NF4.to(state["packed"].device)
    codes = unpack4(state["packed"], n)  # (n,)
    w = q[codes] * scales(state).repeat_interleave(BLOCK)[:n]  # (n,)
    return w.view(shape)


def state_bytes(state: dict[str, torch.Tensor]) -> int:
    """Bytes the quantised tensor occupies (the shape's few integers not counted)."""
    return sum(t.numel() * t.element_size() for k, t in state.items() if k != "shape")


def numel_4bit(model) -> int:
    """Weights the model holds in 4 bits, in elements (in × out each): PEFT counts each as one
    frozen parameter, though it is a buffer of packed codes, not an nn.Parameter."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, Linear4bit))


class Linear4bit(nn.Module):
    """A frozen Linear whose weight is held in NF4 and dequantised on the fly in forward:
    y = x Ŵᵀ + b with Ŵ = dequantize_nf4(...) (out, in); the bias stays float32 and frozen."""

    def __init__(self, base, double_quant: bool = True):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        for name, t in quantize_nf4(base.weight.detach(), double_quant).items():
            self.register_buffer(name, t)  # buffers: saved in state_dict, never given to an optimiser
        self.bias = nn.Parameter(base.bias.detach().clone(), requires_grad=False)

    def quant_state(self) -> dict[str, torch.Tensor]:
        return dict(self.named_buffers())

    @property
    def weight(self) -> torch.Tensor:
        """Ŵ (out, in), float32, rebuilt from the 4-bit codes at every call."""
        return dequantize_nf4(self.quant_state())

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)  # (..., out)


def error_bound(w: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The largest |w − ŵ| NF4 may make, per weight (w's shape): c · g/2 + |c − ĉ| of its block."""
    q = NF4.to(w.device)
    c = _absmax(_blocks(w.float(), BLOCK))  # (n_blocks,) the exact scales
    bound = c * (q[1:] - q[:-1]).max() / 2 + (c - scales(state)).abs()  # (n_blocks,)
    return bound.repeat_interleave(BLOCK)[: w.numel()].view(w.shape)


def normalized_blocks(w: torch.Tensor) -> torch.Tensor:
    """w / c: each weight over its block's absmax, (n_blocks, BLOCK) in [−1, 1], what NF4 rounds to a q_i."""
    blocks = _blocks(w.float(), BLOCK)  # (n_blocks, BLOCK)
    return blocks / _absmax(blocks)[:, None]
