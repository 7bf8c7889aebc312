# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 03 · 冻结 (freezing): how many layers must train? (article §4 step 5)
#
# The article's step 5: "you can choose to freeze part of the model, especially the
# bottom layers; this keeps the general features the pretrained model learned" — keep the
# steak recipe you already master, learn only the vegetables and the sauce.
#
# `minituner.freeze(base, trainable_layers=N)` copies the base, sets
# `requires_grad_(False)` on every tensor, then lets the top N blocks (and the final
# LayerNorm `ln_f` above them) train. The optimiser only ever sees the tensors that
# require gradients, so a frozen tensor gets no gradient, no optimiser state, and no
# change: it stays bit-identical (`minituner verify` checks all three).
#
# This lesson sweeps N from 0 to the model's depth on the `classify` task, puts the
# number of trainable parameters beside the validation accuracy (what any choice is made
# on) and the test accuracy (reported beside it), reads the validation curves for
# over-fitting, and then asks how the cheapest trained row, the head alone, compares with a
# whole block, and what training the head changes.
#
# Run it: `python lessons/03_freeze.py` (`--smoke` for the quick test preset).

# %%
from statistics import mean

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.lesson import best, conclusions, num, options, run
from minituner.report import (
    label,
    markdown_table,
    parameter_table,
    plot_curves,
    running_mean,
    save_figure,
    show,
)
from minituner.verdict import compare

args = options("Lesson 03: freezing", smoke=dict(rows=48, steps=3, seeds=(0,)), out="runs/03_freeze",
               steps=40, batch_size=16, lr=5e-4, seeds=(0, 1, 2), rows=None)
torch.manual_seed(args.seeds[0])
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
print(f"{args.steps} steps per run, batch {args.batch_size}, lr {args.lr}; seeds {args.seeds}")

# %% [markdown]
# ## 1. What one setting freezes (冻结一层)
#
# With N = 1 only the top block and `ln_f` train. The table is computed from the model's
# own tensors (`minituner.parameter_table`); the check below it compares one block's count
# with the closed form 12C² + 13C (attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C).

# %%
one = minituner.freeze(base, trainable_layers=1)
show(markdown_table(parameter_table(one.base, depth=1)))  # the GPT inside the wrapper
C = base.config.n_embd
block = sum(p.numel() for p in one.base.h[-1].parameters())
print(f"one block: {block:,} = 12·{C}² + 13·{C} = {12 * C * C + 13 * C:,}: {block == 12 * C * C + 13 * C}")
one.print_trainable_parameters();

# %% [markdown]
# ## 2. The sweep: N = 0 … depth, then full fine-tuning (冻结多少层)
#
# Every row trains the same number of steps with the same learning rate, batch and seed;
# only what is frozen changes. N = 0 with nothing trainable is the base as shipped. The
# "head" row trains only the output head, which this GPT (like GPT-2) ties to the token
# embedding `wte`: the same V × C matrix reads the input characters and scores the
# output ones, so training it also changes what every block reads (section 5 measures
# that). The last row is full fine-tuning (全量微调): every block plus the embeddings.
# "train loss" is the mean training loss of the last ten steps; the test split asks about
# facts the task's training split never shows.

# %%
SETTINGS = [("head only (tied wte)", 0, {"train_head": True})]
SETTINGS += [(f"top {n} block{'s' * (n > 1)}", n, {}) for n in range(1, base.config.n_layer + 1)]
SETTINGS += [("full (+ embeddings)", base.config.n_layer, {"train_embeddings": True})]
seed = args.seeds[0]
rows, histories, models = [run("base, nothing trained", base, task, steps=0)[0]], {}, {}
for name, n, kwargs in SETTINGS:
    models[name] = minituner.freeze(base, trainable_layers=n, **kwargs)
    row, histories[name] = run(name, models[name], task, args.steps, args.lr, batch_size=args.batch_size, seed=seed,
                               eval_every=max(2, args.steps // 6))
    rows.append(row)
show(markdown_table(rows, ["run", "trainable", "trainable %", "train loss", "train acc", "val loss", "val acc",
                           "test loss", "test acc", "s"]))

# %% [markdown]
# ## 3. The picture, and over-fitting (过拟合)
#
# First: validation and test accuracy per setting (bars) and the share of parameters it
# trains (line). Then: each run's training loss and validation loss (验证集). A run can drive
# its training loss close to zero (it fits the training descriptions) and still not answer
# the held-out ones. The article's §2 names that risk: fine-tuning "存在过拟合风险" (runs a
# risk of over-fitting, 过拟合). On a validation curve it shows as a loss that reaches
# its lowest point and then rises while the training loss keeps falling; the table under
# the figures reads that off each curve.

# %%
fig, ax1 = plt.subplots(figsize=(7, 4.5), layout="constrained")
xs = torch.arange(len(rows)).tolist()
ax1.bar([x - 0.2 for x in xs], [r["val acc"] for r in rows], width=0.4, color="tab:green", alpha=0.7,
        label=label("validation", "验证集"))
ax1.bar([x + 0.2 for x in xs], [r["test acc"] for r in rows], width=0.4, color="tab:blue", alpha=0.7,
        label=label("test", "测试集"))
ax1.legend(fontsize=8, loc="upper left")
ax1.set_ylabel(label("accuracy (exact match)", "准确率"))
ax1.set_ylim(0, 1)
ax1.set_xticks(xs, [r["run"] for r in rows], rotation=30, ha="right", fontsize=8)
twin = ax1.twinx()
twin.plot(xs, [r["trainable %"] for r in rows], "o-", color="tab:red")
twin.set_ylabel(label("trainable parameters, % of the model", "可训练参数占比"), color="tab:red")
twin.set_ylim(0, 105)
ax1.set_title(label("How much must train?", "需要训练多少?"))
ax1.grid(alpha=0.3, axis="y")
save_figure(fig, args.out / "freeze_sweep.png")
plot_curves(histories, "classify: training and validation loss per frozen setting", args.out / "freeze_curves.png")
shape = []  # each validation curve (step, loss, accuracy): where it was lowest, where it ended
for name, hist in histories.items():
    low = min(hist.val, key=lambda e: e[1])
    end = hist.val[-1]
    smooth = running_mean(hist.losses)  # the training loss, as the left panel draws it
    shape.append({"run": name, "lowest val loss": low[1], "at step": low[0], "final val loss": end[1],
                  "rise after the lowest": end[1] / low[1] - 1, "train loss fell after": smooth[-1] < smooth[low[0] - 1],
                  "over-fits": end[1] > 1.01 * low[1] and smooth[-1] < smooth[low[0] - 1]})
show(markdown_table(shape))
print("over-fits: the validation loss ended more than 1% above its lowest point (more than a flat curve's last digit) "
      "while the training loss fell")

# %% [markdown]
# ## 4. The head alone against a whole block: seeds and learning rates
#
# The head-only row trains far fewer numbers than the top-1-block row (the sweep's table
# counts them) and the sweep puts their accuracies side by side. Whichever is ahead, three
# explanations to separate: luck (one seed; one validation row is a small step of accuracy,
# printed below), the learning rate (one rate, printed at the top, for every row: a whole
# block moves far more numbers at each step than the head does), or over-fitting (过拟合).
# We rerun both rows with more seeds (the batches' order; printed at the top) and the top
# block again at a fifth of the rate; then compare what each row fits on the training split
# with what it gets on the held-out ones. Which is ahead is read on the validation split, by
# the rule every lesson's verdicts use (`minituner.verdict`): paired by seed, at least three
# seeds, every seed's gap of one sign and its mean beyond its standard error times Student's t
# (the two-sided quantile `minituner.verdict` uses); otherwise "within noise".

# %%
sweep = {row["run"]: row for row in rows}
probe, val_by_seed = [], {}  # val_by_seed[(run, lr)] = {seed: validation accuracy}
for name, n, kwargs, lr in [("head only (tied wte)", 0, {"train_head": True}, args.lr),
                             ("top 1 block", 1, {}, args.lr),
                             ("top 1 block", 1, {}, args.lr / 5)]:
    seen = []
    for s in args.seeds:
        if s == seed and lr == args.lr:  # this run is the sweep's: reuse it
            row = sweep[name]
        elif s != seed and lr != args.lr:  # the smaller rate on one seed only, to keep the lesson short
            continue
        else:
            row, _ = run(name, minituner.freeze(base, trainable_layers=n, **kwargs), task, args.steps, lr,
                         batch_size=args.batch_size, seed=s)
        seen.append(row)
        val_by_seed.setdefault((name, lr), {})[s] = row["val acc"]
    probe.append({"run": name, "lr": lr, "seeds": len(seen),
                  "val acc, per seed": ", ".join(f"{r['val acc']:.3f}" for r in seen),
                  **{f"{k} mean": mean(r[k] for r in seen) for k in ("train acc", "val acc", "test acc")}})
show(markdown_table(probe))
print(f"one validation row = {1 / len(task.val):.4f} of accuracy ({len(task.val)} rows); "
      f"one test row = {1 / len(task.test):.4f} ({len(task.test)} rows)")

# %% [markdown]
# ## 5. What training the tied head changes (只训练输出头,改变了什么)
#
# The head-only run froze every block, so every block's weights are the base's, bit for bit.
# But the head *is* the token embedding `wte`: the matrix that scores the output characters
# also turns the input characters into the vectors the first block reads. Training it
# therefore changes the input of block 0, hence what block 0 passes to block 1, and so on:
# every block computes on new inputs with its old weights. Below, on the test prompts, the
# size of the change of each block's input, relative to the base's.

# %%
head_model = models["head only (tied wte)"].base  # the GPT inside the wrapper


@torch.no_grad()
def block_inputs(gpt, idx):
    """What each block reads: [(B, T, C)] × n_layer, starting from wte(idx) + wpe."""
    h, seen = gpt.wte(idx) + gpt.wpe(torch.arange(idx.size(1))), []
    for block in gpt.h:
        seen.append(h)
        h = block(h)
    return seen


idx = task.test.x
blocks_same = all(torch.equal(p, q) for p, q in zip(base.h.parameters(), head_model.h.parameters(), strict=True))
wte_moved = (head_model.wte.weight - base.wte.weight).norm() / base.wte.weight.norm()
inputs_moved = [((a - b).norm() / b.norm()).item()
                for a, b in zip(block_inputs(head_model, idx), block_inputs(base, idx), strict=True)]
print(f"every block's weights bit-identical to the base's: {blocks_same}; wte (the head) moved by "
      f"{wte_moved:.3f} of its size")
show(markdown_table([{"block": i, "its input moved, relative to the base's": v} for i, v in enumerate(inputs_moved)]))

# %% [markdown]
# ## 6. Does freezing the bottom keep what pretraining learned? (冻结底层,真的保住了预训练学到的知识吗?)
#
# The article's reason to freeze "especially the bottom layers" is that they hold the general
# features the pretrained model learned. Put to the test, with what the base knows made exact:
# the fact probe (`minituner.make_fact_probe()`) asks every fact of the mini-world both ways in
# the corpus's own words, and the base answers all of them. After fine-tuning, **forgetting**
# is the base's probe accuracy minus the fine-tuned model's (Biderman et al. 2024, "LoRA Learns
# Less and Forgets Less", measure the same trade-off). Three ways to train about the same number
# of tensors' entries: the top block (the bottom frozen, as the article advises), the bottom
# block (`bottom=True`: the top frozen, the advice turned round), and LoRA on every linear layer
# at the rank whose count comes closest to one block's. Each on the seeds printed at the top;
# forgetting and validation accuracy are compared by the rule over seeds.

# %%
probe_split = minituner.make_fact_probe()
base_probe = minituner.evaluate(base, probe_split)["accuracy"]
block_count = minituner.count_parameters(minituner.freeze(base, trainable_layers=1, bottom=True))[0]
per_rank = minituner.count_parameters(minituner.lora(base, r=1, target_modules="all"))[0]
rank = max(1, round(block_count / per_rank))
ways = {"top block (bottom frozen)": lambda: minituner.freeze(base, trainable_layers=1),
        "bottom block (top frozen)": lambda: minituner.freeze(base, trainable_layers=1, bottom=True),
        f"LoRA r={rank}, every linear": lambda: minituner.lora(base, r=rank, lora_alpha=rank,
                                                               target_modules="all", seed=args.seeds[0])}
forgot, kept_val, claim = {}, {}, []
for name, make in ways.items():
    for s in args.seeds:
        model = make()
        row, _ = run(name, model, task, args.steps, args.lr, batch_size=args.batch_size, seed=s)  # trains model
        forgot.setdefault(name, {})[s] = base_probe - minituner.evaluate(model, probe_split)["accuracy"]
        kept_val.setdefault(name, {})[s] = row["val acc"]
    claim.append({"run": name, "trainable": minituner.count_parameters(model)[0],
                  "forgetting, per seed": ", ".join(f"{v:.3f}" for v in forgot[name].values()),
                  "forgetting mean": mean(forgot[name].values()), "val acc mean": mean(kept_val[name].values())})
print(f"the base answers {base_probe:.3f} of the fact probe ({len(probe_split)} questions); lr {args.lr}, "
      f"{args.steps} steps, seeds {args.seeds}")
show(markdown_table(claim))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above, in English and then in Chinese. The best row is the one
# the validation split prefers; its test accuracy is reported beside it.

# %%
top = best(rows[1:])
head, full = rows[1], rows[-1]
over = [r["run"] for r in shape if r["over-fits"]]
h, b, slow = probe
top_name, bottom_name, lora_name = ways
keeps = compare("freezing the bottom (the top block trains)", forgot[top_name], "freezing the top (the bottom block "
                "trains)", forgot[bottom_name], "forgetting", names_zh=("冻结底层(训练最上面一个块)", "冻结顶层(训练最下面一个块)", "遗忘"))
against_lora = compare("freezing the bottom (the top block trains)", forgot[top_name], f"LoRA (r={rank}, every linear)",
                       forgot[lora_name], "forgetting", names_zh=("冻结底层", f"LoRA(r={rank},所有线性层)", "遗忘"))
learns = compare("freezing the bottom", kept_val[top_name], "freezing the top", kept_val[bottom_name],
                 "validation accuracy", names_zh=("冻结底层", "冻结顶层", "验证集准确率"))
head_vs_block = compare("training the head alone", val_by_seed["head only (tied wte)", args.lr],
                        "training the top block", val_by_seed["top 1 block", args.lr], "validation accuracy",
                        names_zh=("只训练输出头", "只训练最上面一个块", "验证集准确率"))
show(conclusions(
    f"Best on validation: {top['run']} (val acc {top['val acc']:.3f}, test acc {top['test acc']:.3f}, "
    f"{top['trainable %']:.1f}% of the parameters); full fine-tuning val {full['val acc']:.3f}, test "
    f"{full['test acc']:.3f}; the base untrained val {rows[0]['val acc']:.3f}, test {rows[0]['test acc']:.3f}.",
    f"Over-fitting (过拟合): the validation loss rose after its lowest point in {len(over)} of {len(shape)} runs"
    + (f" ({', '.join(over)}), while their training loss kept falling: the risk the article's §2 names." if over else "."),
    f"Training the tied head alone ({num(head['trainable'])} numbers) moves test accuracy {rows[0]['test acc']:.3f} -> "
    f"{head['test acc']:.3f}. No block's weights changed ({blocks_same}), but every block's input did "
    f"({min(inputs_moved):.3f}–{max(inputs_moved):.3f} of its size): the head is wte, which also embeds the input.",
    f"Which is ahead, read on validation: {head_vs_block.en()} (test accuracy beside it, means: "
    f"{h['test acc mean']:.3f} and {b['test acc mean']:.3f}). At a fifth of the rate the top block reaches train acc "
    f"{slow['train acc mean']:.3f} (seed {seed}), against {b['train acc mean']:.3f}.",
    f"The article's claim (§4 step 5), on what the base knew (its fact-probe accuracy {base_probe:.3f}): "
    f"{keeps.en()}; {against_lora.en()}; on the task, {learns.en()}.",
    zh=f"在验证集上最好的是 {top['run']}(验证集准确率 {top['val acc']:.3f},测试集 {top['test acc']:.3f},"
       f"训练 {top['trainable %']:.1f}% 的参数);全量微调的验证集准确率为 {full['val acc']:.3f}。"
       f"{len(shape)} 次训练中有 {len(over)} 次验证集损失在最低点之后回升"
       + (",而训练损失还在下降:这正是文章第二节提到的过拟合风险。" if over else ",没有看到过拟合。")
       + "只训练与 wte 绑定的输出头"
       f"({num(head['trainable'])} 个参数)把测试集准确率从 {rows[0]['test acc']:.3f} 变为 {head['test acc']:.3f};"
       f"各个块的权重一个也没变,但每个块的输入都变了(相对变化 {min(inputs_moved):.3f}–{max(inputs_moved):.3f}),"
       "因为输出头就是把输入字符变成向量的那个矩阵。按验证集比较:" + head_vs_block.zh() + "。"
       f"检验原文第四节第 5 步的说法(基座模型在事实探针上的准确率为 {base_probe:.3f}):" + keeps.zh() + ";"
       + against_lora.zh() + ";在任务上," + learns.zh() + "。",
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/03_freeze_count.py`; write the function bodies, then run `minituner check 03_freeze_count` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `freeze_trainable`.** Count the trainable parameters of 冻结 (only the top N blocks and ln_f train) in closed form, without building a model; the checker compares with the model's own count.
# 2. **Predict, then measure.** Freeze the bottom blocks instead of the top ones: will the fact probe keep more or fewer facts? Write your guess down, then run both with three seeds.
# 3. **Homework.** Plot the trainable count against the test accuracy for N = 1 … the depth, and say where adding blocks stops paying.
#
# 编程题的骨架在 `exercises/03_freeze_count.py`：写好函数体后运行 `minituner check 03_freeze_count --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`freeze_trainable`。** 用闭式公式计算冻结方法（只训练顶部 N 个 block 和 ln_f）的可训练参数量，不要构建模型；检查器会与模型自己的计数比较。
# 2. **先预测再测量。** 改为只训练底部的 N 个 block（冻结顶部）：事实探针保留的事实会更多还是更少？先写下猜测，再用三个种子各跑一次。
# 3. **作业。** 画出 N 从 1 到层数时可训练参数量与测试准确率的关系，指出从哪里开始多训练 block 不再划算。
