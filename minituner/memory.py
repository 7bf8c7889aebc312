"""How much memory one fine-tuning step needs, from first principles, for any model size.

One training step holds four things (Rajbhandari et al. 2020, ZeRO §3, count the first three):

    weights      every parameter, at the precision it is stored in
    gradients    one per *trainable* parameter
    optimizer    AdamW's m and v (optim.py): two per trainable parameter
    activations  what autograd keeps from the forward pass for the backward pass

Bytes per parameter (P all parameters, P_t trainable, b = bits of the stored weights):

    precision         frozen weight   trainable: weight + 16-bit copy + gradient + m, v
    bits=32 (fp32)    4               4 + 0 + 4 + 8   = 16
    bits=16 (mixed)   2               4 + 2 + 4 + 8   = 18   fp32 master weights, 16-bit compute
    bits=16, pure     2               2 + 0 + 2 + 4   =  8   everything in bf16 (LLaMA-Factory's pure_bf16)
    bits=8 / 4        1 / 0.5 (+ quantisation constants)  adapters as bits=16 mixed (QLoRA)

With bits ≤ 8 only the blocks' weight matrices are quantised (as bitsandbytes does); the
embeddings, norms and biases stay at 16 bits. 4-bit NF4 with double quantisation adds
0.127 bits per parameter of constants (Dettmers et al. 2023, QLoRA §2).

Activations are counted op by op for minituner's own block (model.py, functional.py), as
autograd keeps them: an op saves an input only when a gradient needs it, so a frozen linear
y = x Wᵀ keeps nothing for W's gradient, and nothing below the lowest trainable tensor is
kept at all. Per block (N = B·T tokens, C width, H = 4C MLP width, nh heads, T' attended
positions), when everything trains:
    LayerNorm        2·N·C + N (x − mean twice, the std) + N·C (x̂, for the weight's gradient), ×2
    linear inputs    N·C (shared by q, k, v) + N·C (o_proj) + N·C (up) + N·H (down)
    attention        3·N·C (q, kᵀ, v) + B·nh·T·T' (the softmax output) + T·T' bytes (the mask)
    GELU (tanh form) 4·N·H (its input, x³, the tanh, and 1 + tanh)
Then ln_f (3·N·C + N), the head's input N·C when wte trains, the loss 3·N·V + 3·N, and the
token ids. With gradient checkpointing (Chen et al. 2016) a step keeps each block's input
(N·C) and recomputes one block at a time, holding that one block's activations.
``measure_step`` checks all of this against what a real step of minituner's GPT saves.

References: 1) Rajbhandari et al. 2020, ZeRO. 2) Dettmers et al. 2023, QLoRA. 3) Chen et al.
2016, Training Deep Nets with Sublinear Memory Cost. 4) Korthikanti et al. 2022, Reducing
Activation Recomputation in Large Transformer Models (the per-layer activation count).
5) hiyouga/LLaMA-Factory, README "Hardware Requirement" (the table ``LLAMA_FACTORY`` copies).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checks import refuse
from .functional import cross_entropy
from .methods import METHODS
from .model import count_parameters
from .quant import Linear4bit

GIB = 1024**3

# hiyouga/LLaMA-Factory README, "Hardware Requirement" (estimated), GB per model size;
# read at commit 00409ff28a30f48d13b808029d37861423673a4a.
LLAMA_FACTORY = {
    "Full (bf16 or fp16), 32 bits": {"7B": 120, "14B": 240, "30B": 600, "70B": 1200, "x B": "18x"},
    "Full (pure_bf16), 16 bits": {"7B": 60, "14B": 120, "30B": 300, "70B": 600, "x B": "8x"},
    "Freeze/LoRA/GaLore/APOLLO/BAdam, 16 bits": {"7B": 16, "14B": 32, "30B": 64, "70B": 160, "x B": "2x"},
    "QLoRA, 8 bits": {"7B": 10, "14B": 20, "30B": 40, "70B": 80, "x B": "x"},
    "QLoRA, 4 bits": {"7B": 6, "14B": 12, "30B": 24, "70B": 48, "x B": "x/2"},
    "QLoRA, 2 bits": {"7B": 4, "14B": 8, "30B": 16, "70B": 24, "x B": "x/4"},
}


@dataclass
class Shape:
    """What the count needs of a decoder: depth, width, heads, vocabulary, positions, MLP width."""

    n_layer: int
    n_embd: int
    n_head: int
    vocab_size: int
    n_positions: int  # learned position table rows (0: rotary positions, no table)
    mlp_hidden: int
    gated: bool = False  # LLaMA's SwiGLU MLP: gate_proj and up_proj, then down_proj
    tied: bool = True  # the head shares wte (GPT-2); LLaMA has its own lm_head
    biases: bool = True  # GPT-2's matrices have biases and its LayerNorms a bias; LLaMA (RMSNorm) has neither

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each weight matrix of one block, by minituner's names."""
        C, H = self.n_embd, self.mlp_hidden
        out = {"q_proj": (C, C), "k_proj": (C, C), "v_proj": (C, C), "o_proj": (C, C), "up_proj": (C, H),
               "down_proj": (H, C)}
        return {**out, "gate_proj": (C, H)} if self.gated else out

    def norm_params(self) -> int:
        return (2 if self.biases else 1) * self.n_embd  # LayerNorm: weight and bias; RMSNorm: weight

    def block_params(self) -> int:
        """The matrices (with their biases when the model has them) and two norms."""
        return sum(i * o + (o if self.biases else 0) for i, o in self.linears().values()) + 2 * self.norm_params()

    def embedding_params(self) -> int:
        """wte (and a separate head when untied), wpe, and the final norm."""
        C = self.n_embd
        return self.vocab_size * C * (1 if self.tied else 2) + self.n_positions * C + self.norm_params()

    def n_params(self) -> int:
        return self.n_layer * self.block_params() + self.embedding_params()


def gpt_shape(config) -> Shape:
    """The Shape of a minituner GPTConfig (GPT-2's layout)."""
    return Shape(config.n_layer, config.n_embd, config.n_head, config.vocab_size, config.block_size, 4 * config.n_embd)


MAX_PARAMS = 9e11  # llama_shape's deepest shape (160 layers, width 20,480) holds about 8.2e11


def llama_shape(params: float) -> Shape:
    """A LLaMA-shaped decoder of about `params` parameters: width d = 128·L (LLaMA-7B: L=32, d=4096),
    SwiGLU width 8d/3 rounded up to 256, vocabulary 32,000, own head, rotary positions, no biases,
    RMSNorm. At 7e9 this is LLaMA-7B's shape: 6,738,415,616 parameters (Touvron et al. 2023).
    Its activations are counted with minituner's block rules (LayerNorm and GELU's saves stand in
    for RMSNorm's and SwiGLU's: the same order of size)."""
    if not 1e7 <= params <= MAX_PARAMS:
        raise ValueError(f"params must be from 1e7 to {MAX_PARAMS:.3g} for a LLaMA-shaped model (2 to 160 "
                         f"layers), got {params:g}")
    best = None
    for L in range(2, 161):
        d = 128 * L
        shape = Shape(L, d, d // 128, 32000, 0, 256 * -(-8 * d // 3 // 256), gated=True, tied=False, biases=False)
        if best is None or abs(shape.n_params() - params) < abs(best.n_params() - params):
            best = shape
    return best


@dataclass
class Estimate:
    method: str
    params: int
    trainable: int
    weights: float  # bytes
    gradients: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def row(self) -> dict:
        """A table row in GiB (1024³ bytes)."""
        gib = {k: getattr(self, k) / GIB for k in ("weights", "gradients", "optimizer", "activations", "total")}
        return {"method": self.method, "params": self.params, "trainable": self.trainable,
                **{f"{k} GiB": v for k, v in gib.items()}}


def trainable_layout(shape: Shape, method: str, r: int, targets, num_virtual_tokens: int, trainable_layers: int):
    """Per block: the set of trainable matrix names (full/freeze), the LoRA targets, and the count."""
    L, C = shape.n_layer, shape.n_embd
    names = set(shape.linears())
    if method == "full":
        return [names | {"ln"}] * L, [set()] * L, shape.n_params()
    if method == "freeze":
        if not 1 <= trainable_layers <= L:
            raise ValueError(f"trainable_layers must be in 1..{L}, got {trainable_layers}")
        blocks = [set()] * (L - trainable_layers) + [names | {"ln"}] * trainable_layers
        return blocks, [set()] * L, trainable_layers * shape.block_params() + shape.norm_params()
    if method in ("lora", "qlora"):
        bad = set(targets) - names
        if bad or not targets:
            raise refuse(ValueError, "targets", f"LoRA targets must be some of {sorted(names)}, got {sorted(targets)}")
        per_block = sum(r * sum(shape.linears()[t]) for t in targets)  # A (r, in) + B (out, r)
        return [set()] * L, [set(targets)] * L, L * per_block
    if method == "prompt":
        return [set()] * L, [set()] * L, num_virtual_tokens * C
    if method == "prefix":  # P-Tuning v2: a (P_k, P_v) pair per layer, no reparameterisation
        return [set()] * L, [set()] * L, 2 * L * num_virtual_tokens * C
    raise ValueError(f"unknown layout {method!r}: a registry entry's memory is full, freeze, lora, qlora, prompt "
                     f"or prefix")


def block_activations(shape: Shape, B: int, T: int, grad_in: bool, train: set, lora: set, r: int,
                      k_prompt: int = 0, k_prefix: int = 0) -> tuple[float, bool]:
    """Elements one block keeps for backward (the mask counted as 1/4 of an element, 1 byte of 4),
    and whether its output carries a gradient. grad_in: a gradient flows into the block's input."""
    C, H, nh = shape.n_embd, shape.mlp_hidden, shape.n_head
    T1 = T + k_prompt  # positions the block runs on
    N, Tk = B * T1, T1 + k_prefix  # tokens; keys each query attends to
    n = 0.0

    def norm(g, trained):  # LayerNorm's hand-written backward keeps x̂ and 1/σ (functional._LayerNorm)
        return N * C + N if g or trained else 0

    def linear_in(width, members):  # one saved input for the matrices that read it and train
        trained = [m for m in members if m in train or m in lora]
        return (width * N if trained else 0) + sum(N * r for m in members if m in lora)

    g = grad_in
    n += norm(g, "ln" in train) + linear_in(C, ("q_proj", "k_proj", "v_proj"))
    g1 = g or "ln" in train
    gq, gk, gv = (g1 or m in train or m in lora for m in ("q_proj", "k_proj", "v_proj"))
    gk, gv = gk or k_prefix > 0, gv or k_prefix > 0  # trained prefixes join the keys and values
    g_att = gq or gk or gv
    if g_att:  # functional._CausalAttention keeps q, k, v (heads as the batch), the probabilities and its output y
        n += N * C + 2 * (N + B * k_prefix) * C + B * nh * T1 * Tk + N * C
    n += linear_in(C, ("o_proj",)) - (N * C if g_att and ("o_proj" in train or "o_proj" in lora) else 0)  # y, once
    g = g or g_att or "o_proj" in train or "o_proj" in lora  # the residual stream after attention
    n += norm(g, "ln" in train)
    mlp_in = ("gate_proj", "up_proj") if shape.gated else ("up_proj",)
    n += linear_in(C, mlp_in)
    g2 = g or "ln" in train or any(m in train or m in lora for m in mlp_in)
    if g2:
        n += (3 if shape.gated else 2) * N * H  # GELU: x and σ(2u) (functional._GELU); SwiGLU: gate, silu, up
    n += linear_in(H, ("down_proj",))
    return n, g or g2 or "down_proj" in train or "down_proj" in lora


def layout(key: str) -> str:
    """The layout the estimator counts for registered method `key` (its registry entry's `memory`)."""
    known = [m for m in METHODS.values() if m.memory]
    if key not in METHODS or not METHODS[key].memory:
        raise ValueError(f"the memory model has no layout for method {key!r}; it knows "
                         f"{', '.join(m.key for m in known)}")
    return METHODS[key].memory


def estimate_memory(model: Shape | float, method: str = "lora", bits: int = 16, r: int = 8,
                    targets=("q_proj", "v_proj"), num_virtual_tokens: int = 20, trainable_layers: int = 2,
                    batch_size: int = 1, seq_len: int = 512, pure: bool = False,
                    checkpointing: bool = False) -> Estimate:
    """Bytes of one training step with AdamW: weights, gradients, optimizer state, activations.

    model: a Shape (gpt_shape(config) for a minituner GPT) or a parameter count (then a
    LLaMA-shaped decoder of that size). method: a registered method whose entry names a memory
    layout: full, freeze (the top trainable_layers blocks and the final norm), lora or qlora (rank
    r on targets in every block), prompt (num_virtual_tokens soft tokens), ptuning-v2 (a key/value
    prefix per layer).
    bits: 32, 16, 8 or 4 for the stored weights (qlora needs 8 or 4; 8 and 4 only for qlora);
    pure: bits=16 without fp32 master weights; checkpointing: recompute blocks in backward.
    """
    shape = model if isinstance(model, Shape) else llama_shape(float(model))
    if bits not in (32, 16, 8, 4):
        raise ValueError(f"bits must be 32, 16, 8 or 4, got {bits}")
    key, method = method, layout(method)
    if (method == "qlora") != (bits in (8, 4)):
        raise ValueError(f"bits={bits} with method={method!r}: 8- and 4-bit weights are QLoRA's (method 'qlora'), "
                         "which needs bits 8 or 4")
    if pure and bits != 16:
        raise ValueError("pure (no fp32 master weights) is a bits=16 setting")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
    blocks, loras, P_t = trainable_layout(shape, method, r, targets, num_virtual_tokens, trainable_layers)
    P, L, C = shape.n_params(), shape.n_layer, shape.n_embd
    frozen = P - (P_t if method in ("full", "freeze") else 0)  # adapters are extra; full/freeze train base tensors
    if bits >= 16:
        weights = frozen * bits / 8
    else:  # the block matrices quantised, everything else at 16 bits
        matrices = L * sum(i * o for i, o in shape.linears().values())
        weights = matrices * (bits + (0.127 if bits == 4 else 0)) / 8 + (frozen - matrices) * 2
    if pure:
        w_t, g_t, o_t = 2, 2, 4
    else:
        w_t, g_t, o_t = 4 + (2 if bits < 32 else 0), 4, 8
    act = 4 if bits == 32 else 2  # bytes per saved element: compute runs at 16 bits below 32
    k_prompt = num_virtual_tokens if method == "prompt" else 0
    k_prefix = num_virtual_tokens if method == "prefix" else 0
    grad, per_block = method in ("full", "prompt"), []
    for train, lora in zip(blocks, loras):
        n, grad_out = block_activations(shape, batch_size, seq_len, grad, train, lora, r, k_prompt, k_prefix)
        per_block.append(n)
        grad = grad or grad_out
    N, V = batch_size * seq_len, shape.vocab_size
    head = N * C + N  # ln_f: x̂ and 1/σ
    head += N * C if method == "full" else 0  # the head's input, for wte's gradient (tied or not)
    head += N * V + 3 * N + (2 * N if method == "full" else 0)  # the loss: p, targets (int64), weights; ids for wte
    if checkpointing:  # each block a gradient passes keeps its input; one block is recomputed at a time
        elements = sum(N * C for n in per_block if n) + max(per_block) + head
    else:
        elements = sum(per_block) + head
    return Estimate(key, P, P_t, weights + P_t * w_t, P_t * g_t, P_t * o_t, elements * act)


def measure_step(model, batch) -> dict:
    """What one float32 training step of a minituner model holds, measured: weights, gradients
    and AdamW's m, v (4 bytes each; a 4-bit weight at the bytes of its packed codes and scales),
    and every tensor autograd saves for backward (saved-tensor hooks, each storage counted
    once, the parameters themselves not again)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[(s.data_ptr(), s.nbytes())] = s.nbytes()
        return t

    x, y, m = batch
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = cross_entropy(model(x), y, m)
    loss.backward()
    model.zero_grad(set_to_none=True)
    trainable, total = count_parameters(model)
    packed = sum(b.nbytes for mod in model.modules() if isinstance(mod, Linear4bit) for b in mod.buffers(recurse=False))
    return {"weights": 4 * total + packed, "gradients": 4 * trainable, "optimizer": 8 * trainable,
            "activations": sum(seen.values())}


# The estimator's setting (layout, bits, pure) for each row of LLaMA-Factory's table it can count
FACTORY_SETTINGS = {"Full (bf16 or fp16), 32 bits": ("full", 16, False), "Full (pure_bf16), 16 bits": ("full", 16, True),
                    "Freeze/LoRA/GaLore/APOLLO/BAdam, 16 bits": ("lora", 16, False),
                    "QLoRA, 8 bits": ("qlora", 8, False), "QLoRA, 4 bits": ("qlora", 4, False)}
FACTORY_RUN = dict(batch_size=1, seq_len=512, checkpointing=True)  # LLaMA-Factory's usual step: the table's setting


def llama_factory_rule(label: str, params: float) -> float:
    """The README's rule for a row ("18x", "2x", "x/2": GB for x billion parameters) applied to `params`."""
    num, _, den = LLAMA_FACTORY[label]["x B"].partition("/")
    return float(num.rstrip("x") or 1) * params / 1e9 / (float(den) if den else 1)


def llama_factory(params: float, method: str, bits: int, pure: bool = False) -> str:
    """What LLaMA-Factory's README says for this setting, in words: its table's cell where `params` is one of
    the table's sizes, and its rule for x billion parameters (the two differ: docs/memory.md shows both)."""
    kind = "lora" if layout(method) == "freeze" else layout(method)  # freeze shares LoRA's row
    label = next((label for label, setting in FACTORY_SETTINGS.items() if setting == (kind, bits, pure)), None)
    if label is None:
        return "LLaMA-Factory's README has no row for this setting"
    cell = LLAMA_FACTORY[label].get(f"{params / 1e9:g}B")
    return (f"LLaMA-Factory's README, row '{label}': " + (f"its table {cell:,} GB; " if cell else "")
            + f"its rule {LLAMA_FACTORY[label]['x B']} for x billion parameters {llama_factory_rule(label, params):.1f} GB")


def compare_with_llama_factory() -> list[dict]:
    """This estimator at 7B/14B/30B/70B (LLaMA-shaped, batch 1 × 512 tokens, gradient checkpointing,
    as LLaMA-Factory trains by default) beside the README's table, in GB (10⁹ bytes, as it writes)."""
    rows = []
    for label, (method, bits, pure) in FACTORY_SETTINGS.items():
        for size in ("7B", "14B", "30B", "70B"):
            est = estimate_memory(float(size[:-1]) * 1e9, method, bits=bits, pure=pure, **FACTORY_RUN)
            rows.append({"LLaMA-Factory row": label, "size": size, "LLaMA-Factory GB": LLAMA_FACTORY[label][size],
                         "estimate GB": round(est.total / 1e9, 1),
                         "weights+states GB": round((est.total - est.activations) / 1e9, 1),
                         "activations GB": round(est.activations / 1e9, 2)})
    return rows
