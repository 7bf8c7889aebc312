"""minituner against Hugging Face transformers + PEFT: training step time, FLOP utilisation, memory.

    pip install -e ".[bench]"          # brings transformers and peft
    python benchmarks/bench_methods.py [--rounds 30] [--sizes] [--out benchmarks/results.md]

For each method the same configuration is built twice — minituner's GPT and
transformers' GPT2LMHeadModel (same width, depth, heads, context, vocabulary, tanh
GELU, no dropout) with PEFT's matching method — and one training step (forward,
masked loss, backward, AdamW update) is timed on the same batch, the two
alternating round by round so that both see the same machine load. minituner runs under
``minituner.fused()``, as ``minituner compare`` does (``--as-written``: the lines the lessons quote). Reported:
median milliseconds of each and their ratio (minituner / HF; ≤ 1.0 means minituner
is as fast or faster).

- The comparison (always): the shipped base (64 wide, 4 layers, 4 heads) on a batch of
  the classify task, ``--rounds`` rounds; merged-LoRA inference against the base (the
  article's "no extra inference cost"); AdamW's state bytes against 2 × trainable × 4.
- The scaling curve (``--sizes``): every method at widths 64, 128, 256, 512, 768 with
  GPT-2's proportions (head size 64, as many layers as heads, at least 2: 768 wide is
  GPT-2 small's 12 layers × 12 heads), random weights, ``--size-batch`` × ``--context``
  random tokens, ``--size-rounds`` rounds; the ratio against width goes to scaling.png.

MFU (model-FLOP utilisation) = the step's model FLOPs / its median time / the machine's
matmul peak, measured in the same run (the best of a few 1024³ float32 matmuls). Model
FLOPs (``step_flops``): forward 2·(matmul weights)·tokens + 4·layers·Tq·Tk·C for the
attention products; a step is 3 forwards for full fine-tuning (input and weight
gradients) and 2 for the others (the frozen base needs no weight gradients; the
adapters' own products are negligible).

Memory: the bytes of the tensors autograd saves for the backward during the forward and
loss (activations: every distinct storage once, the model's own parameters left out),
counted with ``torch.autograd.graph.saved_tensors_hooks``. This is the part of a step's
peak memory that depends on the implementation; parameters, gradients and AdamW state
are the same for both (the optimiser table gives the state).

Notes on matching: GPT-2 fuses q, k, v into one `c_attn` (in C, out 3C), so PEFT's LoRA
on `c_attn` adapts all three with one A and B; minituner's LoRA targets q_proj, k_proj
and v_proj separately. Both are given in the table with their counts.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from pathlib import Path

import torch

import minituner
from minituner.functional import cross_entropy, fused
from minituner.model import GPT, GPTConfig, count_parameters
from minituner.optim import AdamW
from minituner.report import markdown_table, save_figure

METHODS = ("full", "lora", "prompt", "prefix")
WIDTHS = (64, 128, 256, 512, 768)
PROMPT_TOKENS, PREFIX_TOKENS = 16, 8


def hf_model(config):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
                     n_layer=config.n_layer, n_head=config.n_head, activation_function="gelu_new",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=1)
    torch.manual_seed(0)
    return GPT2LMHeadModel(cfg)


def hf_method(name, config):
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model

    m = hf_model(config)
    if name == "full":
        return m
    if name == "lora":
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], lora_dropout=0.0, fan_in_fan_out=True,
                         task_type=TaskType.CAUSAL_LM)
    elif name == "prompt":
        cfg = PromptTuningConfig(num_virtual_tokens=PROMPT_TOKENS, task_type=TaskType.CAUSAL_LM)
    else:
        cfg = PrefixTuningConfig(num_virtual_tokens=PREFIX_TOKENS, prefix_projection=True, encoder_hidden_size=64,
                                 task_type=TaskType.CAUSAL_LM)
    return get_peft_model(m, cfg)


def ours(name, base):
    if name == "full":
        return minituner.full(base)
    if name == "lora":
        return minituner.lora(base, r=4, lora_alpha=8, target_modules=("q_proj", "k_proj", "v_proj"))
    if name == "prompt":
        return minituner.prompt_tuning(base, num_virtual_tokens=PROMPT_TOKENS)
    return minituner.prefix_tuning(base, num_virtual_tokens=PREFIX_TOKENS, prefix_projection=True, encoder_hidden_size=64)


def loss_fn(model, batch, hf: bool):
    x, y, m = batch
    if hf:
        logits = model(input_ids=x).logits[:, -x.size(1):]  # PEFT prompt tuning returns the virtual rows too
    else:
        logits = model(x)
    return cross_entropy(logits, y, m)


def step_fn(model, batch, hf: bool):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4) if hf else AdamW(params, lr=1e-4)

    def step():
        loss = loss_fn(model, batch, hf)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def saved_bytes(model, batch, hf: bool) -> int:
    """Bytes autograd keeps for the backward (forward + loss): distinct storages, parameters left out."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            kept[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_fn(model, batch, hf)
    return sum(kept.values())


def step_flops(name: str, config: GPTConfig, B: int, T: int) -> float:
    """Model FLOPs of one training step (see the module docstring): forward × 3 (full) or × 2."""
    L, C = config.n_layer, config.n_embd
    Tq = T + (PROMPT_TOKENS if name == "prompt" else 0)  # positions through the blocks
    Tk = Tq + (PREFIX_TOKENS if name == "prefix" else 0)  # keys each query is scored against
    weights = 12 * L * C * C + config.vocab_size * C  # q, k, v, o (4C²), MLP (8C²) per layer; the head
    forward = 2 * weights * B * Tq + 4 * L * B * Tq * Tk * C
    return (3 if name == "full" else 2) * forward


def matmul_peak(n: int = 1024, reps: int = 10) -> float:
    """The machine's float32 matmul FLOP/s: the best of reps n×n @ n×n products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / min(timed(lambda: a @ b) for _ in range(reps))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def alternate(a, b, rounds: int, warmup: int = 3) -> tuple[float, float]:
    """Median seconds of a and b, measured alternately after `warmup` calls each."""
    for _ in range(warmup):
        a(), b()
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def compare(name, base, batch, rounds, warmup, peak) -> dict:
    """One method, minituner against HF + PEFT on one batch: step times, ratio, MFU, saved bytes."""
    mine, theirs = ours(name, base), hf_method(name, base.config)
    t_m, t_h = alternate(step_fn(mine, batch, False), step_fn(theirs, batch, True), rounds, warmup)
    flops = step_flops(name, base.config, *batch[0].shape)
    return {"method": name, "trainable (ours / HF)": f"{count_parameters(mine)[0]:,} / {count_parameters(theirs)[0]:,}",
            "ms ours": 1000 * t_m, "ms HF": 1000 * t_h, "ratio": t_m / t_h,
            "MFU ours": f"{100 * flops / t_m / peak:.1f}%", "MFU HF": f"{100 * flops / t_h / peak:.1f}%",
            "saved MB ours": saved_bytes(mine, batch, False) / 2**20, "saved MB HF": saved_bytes(theirs, batch, True) / 2**20}


def gpt2_shape(width: int, context: int, vocab_size: int) -> GPTConfig:
    """GPT-2's proportions at a width: head size 64, layers = heads (at least 2)."""
    n = max(2, width // 64)
    return GPTConfig(vocab_size=vocab_size, block_size=context + PROMPT_TOKENS, n_layer=n, n_head=n, n_embd=width)


def scaling(args, vocab_size: int, peak: float) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab_size, (args.size_batch, args.context + 1), generator=g)
    batch = (x[:, :-1], x[:, 1:], torch.ones(args.size_batch, args.context))  # next-token loss everywhere
    rows = []
    for width in args.widths:
        config = gpt2_shape(width, args.context, vocab_size)
        base = GPT(config, seed=0)
        for name in METHODS:
            row = compare(name, base, batch, args.size_rounds, 1, peak)
            rows.append({"width": width, "layers × heads": f"{config.n_layer} × {config.n_head}",
                         "params": count_parameters(base)[1], **row})
            print(rows[-1], flush=True)
            gc.collect()
    return rows


def plot_scaling(rows: list[dict], path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    widths = sorted({r["width"] for r in rows})
    for name in METHODS:
        pts = [(r["width"], r["ratio"]) for r in rows if r["method"] == name]
        ax.plot(*zip(*pts), marker="o", label=name)
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("width C (layers = heads = max(2, C/64))")
    ax.set_ylabel("step time, minituner / HF + PEFT")
    ax.set_title("Training step time ratio against width (below 1: minituner faster)")
    ax.legend()
    save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=30, help="alternating rounds of the comparison (default 30)")
    p.add_argument("--batch-size", type=int, default=16, help="rows of the comparison's batch (default 16)")
    p.add_argument("--sizes", action="store_true", help="also time every method at each of --widths")
    p.add_argument("--widths", type=int, nargs="+", default=WIDTHS, help="widths of the scaling curve (default %(default)s)")
    p.add_argument("--size-rounds", type=int, default=3, help="alternating rounds per width and method (default 3)")
    p.add_argument("--size-batch", type=int, default=4, help="rows per batch on the scaling curve (default 4)")
    p.add_argument("--context", type=int, default=64, help="tokens per row on the scaling curve (default 64)")
    p.add_argument("--out", default=None, help="also write the tables as Markdown here (scaling.png beside it)")
    p.add_argument("--as-written", action="store_true",
                   help="time minituner's lines as written (default: under minituner.fused(), as compare runs)")
    args = p.parse_args(argv)
    with fused(not args.as_written):
        return bench(args)


def bench(args):
    torch.manual_seed(0)
    peak = matmul_peak()
    base, task = minituner.load_base(), minituner.make_task("classify")
    batch = task.train.batch(args.batch_size, torch.Generator().manual_seed(0))
    rows = []
    for name in METHODS:
        rows.append(compare(name, base, batch, args.rounds, 3, peak))
        print(rows[-1], flush=True)
    x = batch[0]
    merged = minituner.lora(base, r=4, lora_alpha=8, target_modules="all").merge_and_unload()
    with torch.no_grad():
        t_merged, t_base = alternate(lambda: merged(x), lambda: base(x), args.rounds * 4)
    inference = [{"model": "merged LoRA (all projections) vs base", "merged ms": 1000 * t_merged,
                  "base ms": 1000 * t_base, "ratio": t_merged / t_base}]
    opt_rows = []
    for name in METHODS:
        model = ours(name, base)
        trainable = count_parameters(model)[0]
        opt_rows.append({"method": name, "AdamW state bytes": AdamW(model.parameters()).state_bytes(),
                         "2 × trainable × 4": 2 * trainable * 4})
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    parts = [f"Machine: {machine}; matmul peak {peak / 1e9:.1f} GFLOP/s (best 1024³ float32 matmul, this run).",
             f"Comparison: the shipped base, batch {args.batch_size} × {x.size(1)} tokens; {args.rounds} alternating "
             "rounds, medians.", markdown_table(rows), markdown_table(inference), markdown_table(opt_rows)]
    if args.sizes:
        size_rows = scaling(args, base.config.vocab_size, peak)
        parts += [f"Scaling: random weights, batch {args.size_batch} × {args.context} tokens; {args.size_rounds} "
                  "alternating rounds after 1 warm-up, medians.", markdown_table(size_rows)]
        if args.out:
            plot_scaling(size_rows, Path(args.out).with_name("scaling.png"))
    text = "\n\n".join(parts)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
