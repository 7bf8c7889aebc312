# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 10 · From the tiny world to a real GPT-2, more than one process, and 7B (真实模型)
#
# Every lesson so far fine-tuned a tiny character model (its size is printed below). The same code runs on
# a real checkpoint: minituner's `GPT` has GPT-2's layout, so `minituner.load_gpt2(dir)`
# reads a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`) into it, and
# `minituner.BPETokenizer` reads its `vocab.json` + `merges.txt`. Nothing is downloaded:
# point `--gpt2 DIR` (or the environment variable `MINITUNER_GPT2`) at a folder you have.
# Without one, the lesson builds a *randomly initialised* model of GPT-2 small's shape
# and a BPE vocabulary learned from the mini-world: the numbers about
# size, time and memory are the same; only the answers are noise.
#
# Then three questions the article's §5 raises and never measures: what each method
# costs at GPT-2 small's size on this machine; what travels between processes when fine-tuning is
# split over several (data parallel, `torch.distributed`); and how much memory a 6B or
# 7B model needs — the article says "more than 20 GB" (§5.2).
#
# Run it: `python lessons/10_real_gpt2.py [--gpt2 DIR]` (`--smoke` for the test preset, a tiny
# model); the last cell prints how long it took.

# %%
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.bpe import train_bpe
from minituner.data import Dataset, corpus_sentences, encode_examples, make_world, task_examples
from minituner.distributed import allreduce_bytes
from minituner.functional import cross_entropy
from minituner.lesson import options
from minituner.memory import (
    compare_with_llama_factory,
    estimate_memory,
    gpt_shape,
    llama_shape,
    measure_step,
)
from minituner.methods import get_peft_model, ordered
from minituner.model import GPT, GPTConfig, count_parameters
from minituner.report import markdown_table, parameter_table, save_figure, show

GPT2_VOCAB = 50257  # GPT-2's vocabulary: the full preset's, and the H200 benchmark's below
args = options("Lesson 10: a real GPT-2", smoke=dict(n_layer=2, n_embd=32, n_head=2, vocab=600, steps=2, ddp_steps=2),
               out="runs/10_real_gpt2", gpt2=os.environ.get("MINITUNER_GPT2", ""), n_layer=12, n_embd=768,
               n_head=12, vocab=GPT2_VOCAB, steps=3, batch_size=4, ddp_steps=10, seed=0)
torch.manual_seed(args.seed)
t0 = time.perf_counter()
print(f"GPT-2 folder: {args.gpt2 or '(none: a random GPT-2-shaped model)'}; {args.steps} steps per method, "
      f"batch {args.batch_size}; the tiny base of the other lessons: {count_parameters(minituner.load_base())[1]:,} parameters")

# %% [markdown]
# ## 1. A GPT-2 and its tokenizer
#
# `load_gpt2` maps GPT-2's tensors onto minituner's names: `c_attn`, GPT-2's fused
# (C, 3C) projection, is split into `q_proj`, `k_proj`, `v_proj`; every `Conv1D` weight is
# stored (in, out) and is transposed to our `Linear`'s (out, in); the head stays tied to
# `wte`. tests/test_gpt2.py checks the loaded model against transformers' own GPT-2:
# the same logits (to 1e-4) and the same greedy generations.
#
# GPT-2's tokenizer is byte-level BPE (`minituner/bpe.py`): text becomes UTF-8 bytes, each
# written as one printable character (a space is `Ġ`), cut into words by a regular
# expression, and glued by the learned merges, lowest rank first. Any text, Chinese too,
# encodes with no unknown token. A Chinese character is three UTF-8 bytes; a vocabulary
# learned from English text has no merges for them, so each byte is a token of its own
# (shown as GPT-2's stand-in characters). With `--gpt2 DIR` the cell splits the same text
# with GPT-2's own vocabulary instead.

# %%
if args.gpt2:
    base = minituner.load_gpt2(args.gpt2)
    tok = minituner.BPETokenizer.from_files(args.gpt2)
else:
    tok = train_bpe(corpus_sentences(make_world(0)), num_merges=300)  # a small vocabulary from the mini-world
    config = GPTConfig(vocab_size=args.vocab, block_size=1024, n_layer=args.n_layer, n_head=args.n_head,
                       n_embd=args.n_embd)  # GPT-2's vocabulary and context; our BPE ids fit in it
    base = GPT(config, seed=args.seed).eval()  # GPT-2's init: N(0, 0.02), residual outputs scaled down
text = "it says meow and it eats fish, so it is the cat. 猫吃鱼。"
ids = tok.encode(text)
print(f"{tok.vocab_size:,} tokens in the vocabulary; {len(text)} characters -> {len(ids)} tokens:")
print(" | ".join(tok.itos[i] for i in ids))
print(f"decode(encode(text)) == text: {tok.decode(ids) == text}")

# %% [markdown]
# ## 2. The parameter table at 124M, and what each method trains
#
# GPT-2 small's shape (its blocks, width, heads, vocabulary and positions are printed; the
# head is tied, so it adds no parameters). Each method's trainable count follows its closed
# form (lessons 02–06), printed beside the count: LoRA r = 8 on `q_proj`, `v_proj` trains
# L · 2 · r · (C + C); prompt tuning with k virtual tokens k · C.

# %%
c = base.config
print(f"{c.n_layer} blocks of width {c.n_embd}, {c.n_head} heads, {c.vocab_size:,} tokens, {c.block_size:,} positions: "
      f"{count_parameters(base)[1]:,} parameters")
print(f"closed forms: LoRA L·2·r·(C + C) = {c.n_layer}·2·8·({c.n_embd} + {c.n_embd}) = {c.n_layer * 2 * 8 * 2 * c.n_embd:,}; "
      f"prompt tuning k·C = 20·{c.n_embd} = {20 * c.n_embd:,}")
show(markdown_table(parameter_table(base, depth=1)))
SETTING = {"num_virtual_tokens": 20, "trainable_layers": 2, "r": 8, "lora_alpha": 16}  # where a method takes them
METHODS = {}  # every registered method the memory model knows (benchmarks/step_124m.py runs the same ones)
for m in ordered():
    if m.memory in ("full", "freeze", "lora", "prompt", "prefix"):  # float32 bases (QLoRA's is 4-bit)
        setting = {k: v for k, v in SETTING.items() if k in {f.name for f in m.fields()}}
        METHODS[", ".join([m.label.split(" (")[0], *(f"{k}={v}" for k, v in setting.items())])] = (
            get_peft_model(base, m.make_config(**setting)), m.key, {k: v for k, v in setting.items() if k != "lora_alpha"})
rows = []
for name, (model, _, _) in METHODS.items():
    trainable, total = count_parameters(model)
    rows.append({"method": name, "trainable": trainable, "trainable %": 100 * trainable / total,
                 "all-reduced per step (bytes)": allreduce_bytes(model)})
show(markdown_table(rows))

# %% [markdown]
# ## 3. Each method on the model: step time and memory on this machine
#
# The task is the mini-world's `classify`, tokenised with the BPE tokenizer; the loss
# counts the answer tokens only, as in every lesson. Each method trains a few steps
# (what matters here is the cost, not the accuracy). Memory is what one float32 step on
# the CPU holds: weights, gradients and AdamW's two moments of the trainable tensors,
# and every tensor autograd saves for backward (`memory.measure_step`), beside
# `memory.estimate_memory`'s count from first principles for the same shape.
#
# Both count the same tensors, so their agreement checks the estimate's formulas, not the
# memory a real step needs at its peak: neither sees the tensors that live only for a moment
# (the gradient of the logits during backward, the matrix products' workspaces, the
# allocator's rounding). `benchmarks/step_124m_h200.md` measured that peak on a GPU
# (`torch.cuda.max_memory_allocated`); the cell after the figure reads it and sets it beside
# the estimate.

# %%
world = make_world(0)
pairs = task_examples(world, "classify")
task = Dataset("classify", *(encode_examples(split, pairs[split], tok) for split in ("train", "val", "test")),
               tok, world)
batch = task.train.batch(args.batch_size, torch.Generator().manual_seed(args.seed))
B, T = batch[0].shape
cost = []
for name, (model, method, extra) in METHODS.items():
    measured = measure_step(model, batch)
    est = estimate_memory(gpt_shape(base.config), method, bits=32, batch_size=B, seq_len=T, **extra)
    with torch.no_grad():
        before = cross_entropy(model(batch[0]), batch[1], batch[2]).item()
    hist = minituner.train(model, task, steps=args.steps, lr=1e-4, batch_size=args.batch_size, seed=args.seed,
                           progress=False)
    with torch.no_grad():
        after = cross_entropy(model(batch[0]), batch[1], batch[2]).item()
    cost.append({"method": name, "s / step": hist.seconds / args.steps,
                 "measured MiB": sum(measured.values()) / 2**20, "estimated MiB": est.total / 2**20,
                 "of which activations MiB": measured["activations"] / 2**20,
                 "loss on the first batch": f"{before:.3f} -> {after:.3f}"})
print(f"batch {B} × {T} tokens, {torch.get_num_threads()} threads")
show(markdown_table(cost))

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
names = [c["method"] for c in cost]
ax.barh(names, [c["measured MiB"] for c in cost], color="tab:blue", label="measured")
ax.scatter([c["estimated MiB"] for c in cost], names, color="black", marker="|", s=300, label="estimated", zorder=3)
ax.set_xlabel("MiB held by one float32 training step")
ax.set_title(f"One step at {count_parameters(base)[1] / 1e6:.0f}M parameters")
ax.legend()
save_figure(fig, args.out / "step_memory.png");

# %%
# The GPU's peak against the estimate, read from the benchmark's table (a Markdown file in the repository)
bench = (Path(minituner.__file__).parents[1] / "benchmarks" / "step_124m_h200.md").read_text()
lines = [line.split("|")[1:-1] for line in bench.splitlines() if line.startswith("|") and "---" not in line]
head, body = [h.strip() for h in lines[0]], [[v.strip() for v in line] for line in lines[1:]]
h200 = [dict(zip(head, row, strict=True)) for row in body if row[head.index("estimate MiB")]]
Bb, Tb = (int(v) for v in re.search(r"batch (\d+) × (\d+) tokens", bench).groups())
logits_grad = Bb * Tb * GPT2_VOCAB * 4 / 2**20  # (B, T, V) float32
for row in h200:
    row["peak − estimate MiB"] = int(row["step memory MiB"]) - int(row["estimate MiB"])
show(markdown_table(h200, ["method", "step memory MiB", "estimate MiB", "peak − estimate MiB"]))
gaps = [row["peak − estimate MiB"] for row in h200]
print(f"the peak lies {min(gaps)}–{max(gaps)} MiB above the estimate for every method; the gradient of the logits, "
      f"{Bb} × {Tb} × {GPT2_VOCAB:,} floats, is {logits_grad:.0f} MiB of it, the rest ({min(gaps) - logits_grad:.0f}–"
      f"{max(gaps) - logits_grad:.0f} MiB) the GPU's workspaces and the allocator's rounding")

# %% [markdown]
# ## 4. More than one process: what travels (数据并行)
#
# Data parallel: each process holds the whole model and takes part of every batch; after
# backward the gradients are averaged across processes (an all-reduce), so every copy
# takes the same step. Only trainable tensors have gradients, so only they travel: the
# table above gives the bytes per step, 4 for each trainable float: from every parameter
# for full fine-tuning down to k·d floats for a soft prompt. `minituner/distributed.py` wraps the
# model in `DistributedDataParallel` (gloo on CPU, nccl on GPUs) and scales each process's
# loss so that two processes with half the batch each take exactly the step one process
# takes with the whole batch (tests/test_distributed.py checks the weights).
#
# Here `torchrun` starts two processes that fine-tune the shipped base with LoRA, each on
# half of every batch of 8, and report the bytes their gradient buckets carried.

# %%
command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "minituner.launch", "--method", "lora", "--steps", str(args.ddp_steps), "--batch-size", "8"]
done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
print("torchrun --standalone --nproc_per_node 2 -m minituner.launch --method lora ...")
print(done.stdout.strip() if done.returncode == 0 else done.stderr[-2000:])

# %% [markdown]
# ## 5. Memory at 7B, beside LLaMA-Factory's table, and the article's "> 20 GB" (§5.2)
#
# `minituner memory` (and `memory.estimate_memory`) counts the same four parts for a
# LLaMA-shaped model of any size (at 7e9 exactly LLaMA-7B's shape, its count printed below),
# with LLaMA-Factory's defaults: batch 1 × 512 tokens, gradient checkpointing, AdamW.
# Per trainable parameter, mixed precision holds 18 bytes (fp32 weight, its 16-bit copy,
# fp32 gradient, m and v); "pure bf16" 8; the frozen weights of LoRA 2 (16 bits), QLoRA
# 1 or ½. LLaMA-Factory's README gives rules of thumb per x billion parameters: 18x, 8x,
# 2x, x, x/2 GB. The table sets the two side by side; where LLaMA-Factory's figure is the
# larger, it counts 7B rather than the exact count and leaves room for the CUDA context, the
# allocator's spare blocks and longer sequences. docs/memory.md has the whole comparison.

# %%
factory = compare_with_llama_factory()[::4]  # the 7B column; every size in docs/memory.md
print(f"LLaMA-7B's shape: {llama_shape(7e9).n_params():,} parameters")
show(markdown_table(factory))

# %%
six = llama_shape(6e9)
claims = []
for label, method, bits, pure in [("full, mixed precision", "full", 16, False), ("full, pure bf16", "full", 16, True),
                                  ("LoRA r=8, 16-bit base", "lora", 16, False), ("QLoRA, 4-bit base", "qlora", 4, False)]:
    est = estimate_memory(six, method, bits=bits, pure=pure, checkpointing=True)
    claims.append({"6B model": label, "GB": round(est.total / 1e9, 1), "> 20 GB": est.total > 20e9})
show(markdown_table(claims))
print(f"the article's 6B model, LLaMA-shaped: {six.n_params() / 1e9:.2f}B parameters. '> 20 GB' holds for full fine-tuning, {claims[0]['GB'] / 20:.1f} times over; LoRA on a 16-bit base "
      f"needs {claims[2]['GB']} GB, QLoRA {claims[3]['GB']} GB.")

# %%
kinds = [m.key for m in ordered() if m.memory]  # every method the memory model has a layout for
ests = [estimate_memory(7e9, m, bits=4 if m == "qlora" else 16, trainable_layers=2) for m in kinds]
fig, ax = plt.subplots(figsize=(7, 3.5))
left = [0.0] * len(kinds)
for part in ("weights", "gradients", "optimizer", "activations"):
    values = [getattr(e, part) / 1e9 for e in ests]
    ax.barh(kinds, values, left=left, label=part)
    left = [a + b for a, b in zip(left, values)]
ax.axvline(20, color="black", linestyle="--", linewidth=1)
ax.text(21, 4.3, "20 GB (article §5.2)", fontsize=8)
ax.set_xlabel("GB for one training step, LLaMA-7B shape, batch 1 × 512, no checkpointing")
ax.legend(fontsize=8)
save_figure(fig, args.out / "memory_7b.png");

# %% [markdown]
# ## Conclusions (小结)
#
# Each line is printed from the tables above.

# %%
full_cost, lora_cost = cost[0], next(c for c in cost if c["method"].startswith("LoRA"))
full_row, lora_row = rows[0], next(r for r in rows if r["method"].startswith("LoRA"))
print(f"- At {count_parameters(base)[1]:,} parameters LoRA trains {lora_row['trainable %']:.2f}% of them; one step "
      f"holds {lora_cost['measured MiB']:,.0f} MiB against full fine-tuning's {full_cost['measured MiB']:,.0f} and takes "
      f"{lora_cost['s / step']:.2f} s against {full_cost['s / step']:.2f} s on this CPU.")
gap = max(abs(c["measured MiB"] - c["estimated MiB"]) for c in cost)
print(f"- measure_step and estimate_memory count the same tensors and differ by at most {gap:.2f} MiB: the formulas "
      f"hold. The real peak is more: on the H200, {min(gaps)}–{max(gaps)} MiB above the estimate, of which the "
      f"logits' gradient is {logits_grad:.0f} MiB.")
print(f"- Data parallel all-reduces {full_row['all-reduced per step (bytes)'] / 2**20:,.0f} MiB per step for full "
      f"fine-tuning, {lora_row['all-reduced per step (bytes)'] / 2**10:,.0f} KiB for LoRA; the two-process run: "
      + (done.stdout.strip().splitlines()[-1] if done.returncode == 0 else f"failed (exit code {done.returncode})") + ".")
ratios = "; ".join(f"{row['LLaMA-Factory row']}: {row['LLaMA-Factory GB'] / row['estimate GB']:.2f}" for row in factory)
print(f"- LLaMA-Factory's 7B figures over the estimate: {ratios}. The article's '> 20 GB' for a 6B model holds for "
      f"full fine-tuning ({claims[0]['GB']} GB) and not for LoRA on a 16-bit base ({claims[2]['GB']} GB).")
print(f"lesson time {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## 小结
#
# 下面每句话里的数字都由代码从上面的结果打印。

# %%
print(f"- 同一套代码在 GPT-2 small 的规模上运行({count_parameters(base)[1]:,} 个参数"
      f"{'' if args.gpt2 else ',随机初始化'}):LoRA 只训练其中 "
      f"{lora_row['trainable %']:.2f}%,但在这台 CPU 上一步仍要 {lora_cost['measured MiB']:,.0f} MiB,"
      f"全量微调为 {full_cost['measured MiB']:,.0f} MiB。")
print(f"- 内存估算与实测计的是同一批张量,所以两者一致只说明公式对;H200 上真实峰值比估算高 {min(gaps)}–{max(gaps)} MiB,"
      f"其中 logits 的梯度就占 {logits_grad:.0f} MiB。")
print(f"- 文章说 6B 模型微调要 20 GB 以上:全量微调(混合精度)约 {claims[0]['GB']} GB,成立;"
      f"16 位基座上的 LoRA 约 {claims[2]['GB']} GB,QLoRA 约 {claims[3]['GB']} GB,都不需要。")

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/10_bpe_merge.py`; write the function bodies, then run `minituner check 10_bpe_merge` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `merge_pair`.** One step of byte-pair encoding: merge every non-overlapping occurrence of a pair, left to right.
# 2. **Explore.** Encode a sentence with the GPT-2 tokenizer and count its tokens against the character tokenizer's count; which words split into several tokens?
# 3. **Explain.** GPT-2 stores q, k and v in one matrix `c_attn` (in, 3C); write down which slice becomes `q_proj.weight` and why it is transposed.
#
# 编程题的骨架在 `exercises/10_bpe_merge.py`：写好函数体后运行 `minituner check 10_bpe_merge --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`merge_pair`。** BPE 的一步合并：从左到右合并一个符号对的所有不重叠出现。
# 2. **探索。** 用 GPT-2 分词器编码一个句子，与字符分词器的 token 数比较；哪些词被拆成了多个 token？
# 3. **解释。** GPT-2 把 q、k、v 存在一个矩阵 `c_attn` (in, 3C) 里；写出哪一段成为 `q_proj.weight`，以及为什么要转置。
