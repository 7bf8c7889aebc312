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

# %% [markdown] lang="zh"
# # 10 · 从小世界到真正的 GPT-2：多进程与 7B 模型
#
# 前面每一课微调的都是一个很小的字符级模型（它的大小在下面打印）。同一套代码也能在真实的检查点上运行：
# minituner 的 `GPT` 与 GPT-2 的结构相同，所以 `minituner.load_gpt2(dir)` 能把一个 Hugging Face 格式的
# GPT-2 文件夹（`config.json` + `model.safetensors`）读进来，`minituner.BPETokenizer` 则读取它的
# `vocab.json` + `merges.txt`。本课不下载任何东西：用 `--gpt2 DIR`（或环境变量 `MINITUNER_GPT2`）
# 指向你手头已有的文件夹即可。没有的话，本课会构建一个与 GPT-2 small 形状相同、*随机初始化*的模型，
# 并用从动物小世界学到的 BPE 词表代替 GPT-2 的词表：关于规模、时间和内存的数字完全一样，只是模型的回答是噪声。
#
# 接着回答文章第 5 节提出、却没有实际测量的三个问题：在这台机器上，GPT-2 small 的规模下每种方法要付出多少代价；
# 把微调分到多个进程上（数据并行，`torch.distributed`）时，进程之间传递的是什么；6B 或 7B 的模型需要多少内存——
# 文章说“20 GB 以上”（§5.2）。
#
# 运行方式：`python lessons/10_real_gpt2.py [--gpt2 DIR]`（加 `--smoke` 使用测试用的快速预设，即一个很小的模型；
# 加 `--lang zh` 让输出变成中文）；最后一个单元格会打印本课的用时。

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
from minituner.i18n import ENV, _
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
from minituner.report import label, markdown_table, parameter_table, save_figure, show

GPT2_VOCAB = 50257  # GPT-2's vocabulary: the full preset's, and the H200 benchmark's below
args = options("Lesson 10: a real GPT-2", smoke=dict(n_layer=2, n_embd=32, n_head=2, vocab=600, steps=2, ddp_steps=2),
               out="runs/10_real_gpt2", gpt2=os.environ.get("MINITUNER_GPT2", ""), n_layer=12, n_embd=768,
               n_head=12, vocab=GPT2_VOCAB, steps=3, batch_size=4, ddp_steps=10, seed=0)
torch.manual_seed(args.seed)
t0 = time.perf_counter()
print(_("GPT-2 folder: {folder}; {steps} steps per method, batch {batch}; the tiny base of the other lessons: "
        "{n:,} parameters").format(folder=args.gpt2 or _("(none: a random GPT-2-shaped model)"), steps=args.steps,
                                   batch=args.batch_size, n=count_parameters(minituner.load_base())[1]))

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

# %% [markdown] lang="zh"
# ## 1. GPT-2 与它的分词器
#
# `load_gpt2` 把 GPT-2 的张量对应到 minituner 的名字上：GPT-2 把 q、k、v 三个投影融合成一个 (C, 3C) 的
# `c_attn`，加载时把它拆成 `q_proj`、`k_proj`、`v_proj`；GPT-2 的每个 `Conv1D` 权重都按 (in, out) 存放，
# 要转置成我们 `Linear` 的 (out, in) 形状；输出头仍与 `wte` 共享权重。tests/test_gpt2.py 把加载后的模型与
# transformers 自带的 GPT-2 对照：两者的 logits 相同（误差不超过 1e-4），贪心解码生成的文本也相同。
#
# GPT-2 的分词器是字节级 BPE（`minituner/bpe.py`）：文本先变成 UTF-8 字节，每个字节写成一个可打印字符
# （空格写作 `Ġ`），再由一个正则表达式切成一个个词，最后按学到的合并规则逐步把相邻的符号粘起来，先学到的规则先用。
# 任何文本（包括中文）都能编码，不会出现未知 token。一个汉字占三个 UTF-8 字节；从英文文本学到的词表里
# 没有针对这些字节的合并规则，所以每个字节各自成为一个 token（显示为 GPT-2 用来代表这些字节的字符）。
# 给了 `--gpt2 DIR` 时，这个单元格改用 GPT-2 自己的词表来切分同一段文本。

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
print(_("{vocab:,} tokens in the vocabulary; {chars} characters -> {tokens} tokens:").format(
    vocab=tok.vocab_size, chars=len(text), tokens=len(ids)))
print(" | ".join(tok.itos[i] for i in ids))
print(f"decode(encode(text)) == text: {tok.decode(ids) == text}")

# %% [markdown]
# ## 2. The parameter table at 124M, and what each method trains
#
# GPT-2 small's shape (its blocks, width, heads, vocabulary and positions are printed; the
# head is tied, so it adds no parameters). Each method's trainable count follows its closed
# form (lessons 02–06), printed beside the count: LoRA r = 8 on `q_proj`, `v_proj` trains
# L · 2 · r · (C + C); prompt tuning with k virtual tokens k · C.

# %% [markdown] lang="zh"
# ## 2. 124M 规模的参数表，以及每种方法训练哪些参数
#
# 下面是 GPT-2 small 的形状（层数、宽度、注意力头数、词表大小和位置数都会打印出来；输出头与嵌入共享权重，
# 所以不增加参数）。每种方法的可训练参数量都符合它的闭式公式（第 02–06 课），公式的结果打印在实际计数旁边：
# 在 `q_proj`、`v_proj` 上做 r = 8 的 LoRA，训练 L · 2 · r · (C + C) 个参数；用 k 个虚拟 token 的
# 提示微调训练 k · C 个。

# %%
c = base.config
print(_("{L} blocks of width {C}, {nh} heads, {V:,} tokens, {T:,} positions: {n:,} parameters").format(
    L=c.n_layer, C=c.n_embd, nh=c.n_head, V=c.vocab_size, T=c.block_size, n=count_parameters(base)[1]))
print(_("closed forms: LoRA L·2·r·(C + C) = {L}·2·8·({C} + {C}) = {lora:,}; prompt tuning k·C = 20·{C} = {prompt:,}").format(
    L=c.n_layer, C=c.n_embd, lora=c.n_layer * 2 * 8 * 2 * c.n_embd, prompt=20 * c.n_embd))
show(markdown_table(parameter_table(base, depth=1)))
SETTING = {"num_virtual_tokens": 20, "trainable_layers": 2, "r": 8, "lora_alpha": 16}  # where a method takes them
METHODS = {}  # every registered method the memory model knows (benchmarks/step_124m.py runs the same ones)
for m in ordered():
    if m.memory in ("full", "freeze", "lora", "prompt", "prefix"):  # float32 bases (QLoRA's is 4-bit)
        setting = {k: v for k, v in SETTING.items() if k in {f.name for f in m.fields()}}
        values = ", ".join(f"{k}={v}" for k, v in setting.items())
        short = _(m.label.split(" (")[0])  # "full (全量微调)" -> "full", shown in the run's language
        name = _("{method}, {setting}").format(method=short, setting=values) if values else short
        METHODS[name] = (get_peft_model(base, m.make_config(**setting)), m.key,
                         {k: v for k, v in setting.items() if k != "lora_alpha"})
rows = []
for name, (model, _key, _extra) in METHODS.items():
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

# %% [markdown] lang="zh"
# ## 3. 每种方法跑在这个模型上：这台机器上的单步时间与内存
#
# 任务是动物小世界的 `classify`，用 BPE 分词器编码；和每一课一样，损失只计算答案 token。每种方法只训练几步
# （这里关心的是代价，而不是准确率）。内存指的是在 CPU 上用 float32 训练一步时占用的内存：权重、梯度、
# AdamW 为可训练张量保存的两个矩，以及自动求导为反向传播保存的每一个张量（`memory.measure_step`）；
# 旁边是 `memory.estimate_memory` 对同一形状从第一性原理算出的估计。
#
# 两者统计的是同一批张量，所以它们一致只说明估算的公式是对的，并不是一个真实训练步在峰值时所需的内存：
# 两者都看不到那些只存在一瞬间的张量（反向传播时 logits 的梯度、矩阵乘法的工作区、内存分配器的取整）。
# `benchmarks/step_124m_h200.md` 在 GPU 上测出了这个峰值（`torch.cuda.max_memory_allocated`）；
# 图后面的单元格读出它，放在估算旁边对比。

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
print(_("batch {B} × {T} tokens, {threads} threads").format(B=B, T=T, threads=torch.get_num_threads()))
show(markdown_table(cost))

# %%
measured, estimated = label("measured"), label("estimated")  # before the axes: their tick labels (the
fig, ax = plt.subplots(figsize=(7, 3.5))  # method names) take the fonts label() sets, Chinese included, when made
names = [c["method"] for c in cost]
ax.barh(names, [c["measured MiB"] for c in cost], color="tab:blue", label=measured)
ax.scatter([c["estimated MiB"] for c in cost], names, color="black", marker="|", s=300, label=estimated, zorder=3)
ax.set_xlabel(label("MiB held by one float32 training step"))
ax.set_title(label("One step at {n:.0f}M parameters").format(n=count_parameters(base)[1] / 1e6))
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
# the benchmark's names for its rows, each a message of the catalogue (a name it lacks is shown as written)
BENCH_NAMES = {name: _(name) for name in ("full", "freeze (top 2 blocks)", "prompt tuning k=20", "P-Tuning v2 k=20",
                                          "LoRA r=8 q,v")}
show(markdown_table([{**row, "method": BENCH_NAMES.get(row["method"], row["method"])} for row in h200],
                    ["method", "step memory MiB", "estimate MiB", "peak − estimate MiB"]))
gaps = [row["peak − estimate MiB"] for row in h200]
print(_("the peak lies {lo}–{hi} MiB above the estimate for every method; the gradient of the logits, "
        "{B} × {T} × {V:,} floats, is {grad:.0f} MiB of it, the rest ({rest_lo:.0f}–{rest_hi:.0f} MiB) the GPU's "
        "workspaces and the allocator's rounding").format(
    lo=min(gaps), hi=max(gaps), B=Bb, T=Tb, V=GPT2_VOCAB, grad=logits_grad, rest_lo=min(gaps) - logits_grad,
    rest_hi=max(gaps) - logits_grad))

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

# %% [markdown] lang="zh"
# ## 4. 不止一个进程：进程之间传递什么（数据并行）
#
# 数据并行：每个进程都持有完整的模型，各自处理每一批数据的一部分；反向传播之后，各进程的梯度求平均
# （一次全归约，all-reduce），于是每一份模型副本都走出完全相同的一步。只有可训练的张量才有梯度，所以只有它们
# 需要传递：上面的表格给出了每步传递的字节数，每个可训练的浮点数 4 字节——从全量微调的全部参数，
# 一直少到软提示的 k·d 个浮点数。`minituner/distributed.py` 用 `DistributedDataParallel` 包装模型
# （CPU 上用 gloo，GPU 上用 nccl），并缩放每个进程的损失，使两个进程各处理半批数据时走出的一步，
# 与一个进程处理整批数据时完全相同（tests/test_distributed.py 会核对权重）。
#
# 这里由 `torchrun` 启动两个进程，用 LoRA 微调随包发布的基座模型，每批 8 条样本，两个进程各处理一半，
# 最后报告它们的梯度桶（bucket）一共传递了多少字节。

# %%
command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "minituner.launch", "--method", "lora", "--steps", str(args.ddp_steps), "--batch-size", "8"]
done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                      env={**os.environ, "OMP_NUM_THREADS": "1", ENV: args.lang})  # the processes speak the lesson's language
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

# %% [markdown] lang="zh"
# ## 5. 7B 模型的内存：与 LLaMA-Factory 的表格对照，以及文章的“> 20 GB”（§5.2）
#
# `minituner memory`（以及 `memory.estimate_memory`）对任意规模的 LLaMA 形状模型统计同样的四部分内存
# （规模恰为 7e9 时就是 LLaMA-7B 的形状，它的参数量在下面打印），设置采用 LLaMA-Factory 的默认值：
# 批大小 1 × 512 个 token、梯度检查点、AdamW。每个可训练参数，混合精度要 18 字节（fp32 权重、它的 16 位副本、
# fp32 梯度、m 和 v），“纯 bf16”要 8 字节；LoRA 冻结的权重每个 2 字节（16 位），QLoRA 的是 1 或 ½ 字节。
# LLaMA-Factory 的 README 给出了每 x B（x 个十亿）参数的经验规则，依次为 18x、8x、2x、x、x/2 GB。
# 下表把两者并排列出；LLaMA-Factory 的数字更大的地方，是因为它按名义上的 7B 而不是准确的参数量来算，
# 并为 CUDA 上下文、内存分配器的空闲块和更长的序列留了余量。完整的对比见 `docs/memory.md`。

# %%
factory = compare_with_llama_factory()[::4]  # the 7B column; every size in docs/memory.md
print(_("LLaMA-7B's shape: {n:,} parameters").format(n=llama_shape(7e9).n_params()))
show(markdown_table(factory))

# %%
six = llama_shape(6e9)
claims = []
for name, method, bits, pure in [("full, mixed precision", "full", 16, False), ("full, pure bf16", "full", 16, True),
                                 ("LoRA r=8, 16-bit base", "lora", 16, False), ("QLoRA, 4-bit base", "qlora", 4, False)]:
    est = estimate_memory(six, method, bits=bits, pure=pure, checkpointing=True)
    claims.append({"6B model": name, "GB": round(est.total / 1e9, 1), "> 20 GB": est.total > 20e9})
show(markdown_table(claims))
print(_("the article's 6B model, LLaMA-shaped: {n:.2f}B parameters. '> 20 GB' holds for full fine-tuning, {times:.1f} "
        "times over; LoRA on a 16-bit base needs {lora} GB, QLoRA {qlora} GB.").format(
    n=six.n_params() / 1e9, times=claims[0]["GB"] / 20, lora=claims[2]["GB"], qlora=claims[3]["GB"]))

# %%
kinds = [m.key for m in ordered() if m.memory]  # every method the memory model has a layout for
ests = [estimate_memory(7e9, m, bits=4 if m == "qlora" else 16, trainable_layers=2) for m in kinds]
fig, ax = plt.subplots(figsize=(7, 3.5))
left = [0.0] * len(kinds)
for part in ("weights", "gradients", "optimizer", "activations"):
    values = [getattr(e, part) / 1e9 for e in ests]
    ax.barh(kinds, values, left=left, label=label(part))
    left = [a + b for a, b in zip(left, values)]
ax.axvline(20, color="black", linestyle="--", linewidth=1)
ax.text(21, 4.3, label("20 GB (article §5.2)"), fontsize=8)
ax.set_xlabel(label("GB for one training step, LLaMA-7B shape, batch 1 × 512, no checkpointing"))
ax.legend(fontsize=8)
save_figure(fig, args.out / "memory_7b.png");

# %% [markdown]
# ## Conclusions (小结)
#
# Each line is printed from the tables above.

# %% [markdown] lang="zh"
# ## 小结
#
# 下面每一行都由代码从上面的表格打印出来。

# %%
keys = [method for _model, method, _extra in METHODS.values()]  # the rows' method keys, in both languages
full_cost, lora_cost = cost[keys.index("full")], cost[keys.index("lora")]
full_row, lora_row = rows[keys.index("full")], rows[keys.index("lora")]
print("- " + _("At {n:,} parameters LoRA trains {share:.2f}% of them; one step holds {lora:,.0f} MiB against full "
               "fine-tuning's {full:,.0f} and takes {lora_s:.2f} s against {full_s:.2f} s on this CPU.").format(
    n=count_parameters(base)[1], share=lora_row["trainable %"], lora=lora_cost["measured MiB"],
    full=full_cost["measured MiB"], lora_s=lora_cost["s / step"], full_s=full_cost["s / step"]))
gap = max(abs(c["measured MiB"] - c["estimated MiB"]) for c in cost)
print("- " + _("measure_step and estimate_memory count the same tensors and differ by at most {gap:.2f} MiB: the "
               "formulas hold. The real peak is more: on the H200, {lo}–{hi} MiB above the estimate, of which the "
               "logits' gradient is {grad:.0f} MiB.").format(gap=gap, lo=min(gaps), hi=max(gaps), grad=logits_grad))
two = (done.stdout.strip().splitlines()[-1] if done.returncode == 0
       else _("failed (exit code {code})").format(code=done.returncode))
print("- " + _("Data parallel all-reduces {full:,.0f} MiB per step for full fine-tuning, {lora:,.0f} KiB for LoRA; "
               "the two-process run: {run}.").format(full=full_row["all-reduced per step (bytes)"] / 2**20,
                                                     lora=lora_row["all-reduced per step (bytes)"] / 2**10, run=two))
ratios = _("; ").join(_("{row}: {ratio:.2f}").format(row=_(row["LLaMA-Factory row"]),
                                                       ratio=row["LLaMA-Factory GB"] / row["estimate GB"])
                      for row in factory)
print("- " + _("LLaMA-Factory's 7B figures over the estimate: {ratios}. The article's '> 20 GB' for a 6B model holds "
               "for full fine-tuning ({full} GB) and not for LoRA on a 16-bit base ({lora} GB).").format(
    ratios=ratios, full=claims[0]["GB"], lora=claims[2]["GB"]))
print(_("lesson time {t:.1f} s").format(t=time.perf_counter() - t0))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/10_bpe_merge.py`; write the function bodies, then run `minituner check 10_bpe_merge` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `merge_pair`.** One step of byte-pair encoding: merge every non-overlapping occurrence of a pair, left to right.
# 2. **Explore.** Encode a sentence with the GPT-2 tokenizer and count its tokens against the character tokenizer's count; which words split into several tokens?
# 3. **Explain.** GPT-2 stores q, k and v in one matrix `c_attn` (in, 3C); write down which slice becomes `q_proj.weight` and why it is transposed.

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/10_bpe_merge.py`：写好函数体后运行 `minituner check 10_bpe_merge --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`merge_pair`。** 字节对编码（BPE）的一步：从左到右，把某个符号对的每一次不重叠出现都合并成一个符号。
# 2. **探索。** 用 GPT-2 分词器编码一个句子，与字符分词器的 token 数比较；哪些词被拆成了多个 token？
# 3. **解释。** GPT-2 把 q、k、v 存在同一个矩阵 `c_attn` (in, 3C) 里；写出其中哪一段变成 `q_proj.weight`，以及为什么要转置。
