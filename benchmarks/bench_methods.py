"""minituner against Hugging Face transformers + PEFT: training step time, memory, merged-LoRA inference.

    pip install -e ".[bench]"          # brings transformers and peft
    python benchmarks/bench_methods.py [--rounds 30] [--out benchmarks/results.md]

For each method the same configuration is built twice — minituner's GPT and
transformers' GPT2LMHeadModel (same width, depth, heads, context, vocabulary, tanh
GELU, no dropout) with PEFT's matching method — and one training step (forward,
masked loss, backward, AdamW update) is timed on the same batch, the two
alternating round by round so that both see the same machine load. Reported:
median seconds of each and their ratio (minituner / HF; ≤ 1.0 means minituner is
as fast or faster).

Notes on matching: GPT-2 fuses q, k, v into one `c_attn` (in 64, out 192), so
PEFT's LoRA on `c_attn` adapts all three with one A and B; minituner's LoRA targets
q_proj, k_proj and v_proj separately. Both are given in the table with their counts.
Also measured: merged-LoRA inference against the base (the article's "no extra
inference cost"), and AdamW's state bytes against the closed form 2 × trainable × 4.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

import minituner
from minituner.functional import cross_entropy
from minituner.optim import AdamW
from minituner.report import count_parameters, markdown_table


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
        cfg = PromptTuningConfig(num_virtual_tokens=16, task_type=TaskType.CAUSAL_LM)
    else:
        cfg = PrefixTuningConfig(num_virtual_tokens=8, prefix_projection=True, encoder_hidden_size=64,
                                 task_type=TaskType.CAUSAL_LM)
    return get_peft_model(m, cfg)


def ours(name, base):
    if name == "full":
        return minituner.full(base)
    if name == "lora":
        return minituner.lora(base, r=4, lora_alpha=8, target_modules=("q_proj", "k_proj", "v_proj"))
    if name == "prompt":
        return minituner.prompt_tuning(base, num_virtual_tokens=16)
    return minituner.prefix_tuning(base, num_virtual_tokens=8, prefix_projection=True, encoder_hidden_size=64)


def step_fn(model, batch, hf: bool):
    x, y, m = batch
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4) if hf else AdamW(params, lr=1e-4)

    def step():
        if hf:
            logits = model(input_ids=x).logits[:, -x.size(1):]  # PEFT prompt tuning returns the virtual rows too
        else:
            logits = model(x)
        loss = cross_entropy(logits, y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def alternate(a, b, rounds: int) -> tuple[float, float]:
    """Median seconds of a and b, measured alternately after 3 warm-up calls each."""
    for _ in range(3):
        a(), b()
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", default=None, help="also write the tables as Markdown here")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    base, task = minituner.load_base(), minituner.make_task("classify")
    batch = task.train.batch(args.batch_size, torch.Generator().manual_seed(0))
    rows = []
    for name in ("full", "lora", "prompt", "prefix"):
        mine, theirs = ours(name, base), hf_method(name, base.config)
        t_m, t_h = alternate(step_fn(mine, batch, False), step_fn(theirs, batch, True), args.rounds)
        rows.append({"method": name, "minituner trainable": count_parameters(mine)[0],
                     "HF+PEFT trainable": count_parameters(theirs)[0],
                     "minituner step ms": 1000 * t_m, "HF+PEFT step ms": 1000 * t_h, "ratio": t_m / t_h})
        print(rows[-1])
    x = batch[0]
    merged = minituner.lora(base, r=4, lora_alpha=8, target_modules="all").merge_and_unload()
    with torch.no_grad():
        t_merged, t_base = alternate(lambda: merged(x), lambda: base(x), args.rounds * 4)
    inference = [{"model": "merged LoRA (all projections) vs base", "merged ms": 1000 * t_merged,
                  "base ms": 1000 * t_base, "ratio": t_merged / t_base}]
    opt_rows = []
    for name in ("full", "lora", "prompt", "prefix"):
        model = ours(name, base)
        trainable = count_parameters(model)[0]
        opt_rows.append({"method": name, "AdamW state bytes": AdamW(model.parameters()).state_bytes(),
                         "2 × trainable × 4": 2 * trainable * 4})
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    text = "\n\n".join([f"Machine: {machine}; batch {args.batch_size} × {x.size(1)} tokens; {args.rounds} alternating rounds, medians.",
                        markdown_table(rows), markdown_table(inference), markdown_table(opt_rows)])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
