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

# %% [markdown] lang="zh"
# # 03 · 冻结：要训练多少层？（原文 §4 第 5 步）
#
# 原文第 5 步说：“可以选择冻结模型的一部分，尤其是底层，这样能保留预训练模型学到的通用特征”——就像已经拿手的牛排做法原样保留，只去学配菜和酱汁。
#
# `minituner.freeze(base, trainable_layers=N)` 复制一份基座模型，对每个张量调用 `requires_grad_(False)`，再放开最上面的 N 个 Transformer 块（block）以及它们上方的最终 LayerNorm `ln_f`，让它们参与训练。优化器只会看到需要梯度的张量，所以被冻结的张量没有梯度、没有优化器状态，也不会改变：它与原来逐位相同（`minituner verify` 检查这三点）。
#
# 本课在 `classify` 任务上让 N 从 0 取到模型的层数，把可训练参数量与验证集准确率（一切选择的依据）、测试集准确率（一并报告）放在一起；从验证集曲线上看有没有过拟合；然后追问：最便宜的那一行，也就是只训练输出头，和训练一整个块相比如何？训练输出头又改变了什么？
#
# 运行方式：`python lessons/03_freeze.py`（加 `--smoke` 使用测试用的快速预设）。

# %%
from statistics import mean

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.i18n import _, ngettext
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
print(_("{steps} steps per run, batch {batch}, lr {lr}; seeds {seeds}").format(
    steps=args.steps, batch=args.batch_size, lr=args.lr, seeds=args.seeds))

# %% [markdown]
# ## 1. What one setting freezes (冻结一层)
#
# With N = 1 only the top block and `ln_f` train. The table is computed from the model's
# own tensors (`minituner.parameter_table`); the check below it compares one block's count
# with the closed form 12C² + 13C (attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C).

# %% [markdown] lang="zh"
# ## 1. 一个设置到底冻结了什么
#
# N = 1 时，只有最上面一个块和 `ln_f` 参与训练。下表由模型自己的张量算出（`minituner.parameter_table`）；表下的检查把一个块的参数量与闭式公式 12C² + 13C 作比较（注意力 4C² + 4C，MLP 8C² + 5C，两个 LayerNorm 4C）。

# %%
one = minituner.freeze(base, trainable_layers=1)
show(markdown_table(parameter_table(one.base, depth=1)))  # the GPT inside the wrapper
C = base.config.n_embd
block = sum(p.numel() for p in one.base.h[-1].parameters())
print(_("one block: {block:,} = 12·{C}² + 13·{C} = {closed:,}: {equal}").format(
    block=block, C=C, closed=12 * C * C + 13 * C, equal=block == 12 * C * C + 13 * C))
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

# %% [markdown] lang="zh"
# ## 2. 扫描：N = 0 … 层数，最后是全量微调
#
# 每一行训练的步数、学习率、批大小和随机种子都相同，变的只是冻结了什么。N = 0、没有任何可训练参数，就是随包发布的基座模型。“只训练输出头”那一行只训练输出头；这个 GPT（和 GPT-2 一样）把输出头与 token 嵌入 `wte` 绑定在一起：同一个 V × C 矩阵既读入输入字符，又给输出字符打分，所以训练它也会改变每个块读到的东西（第 5 节会测量这一点）。最后一行是全量微调：所有块，再加上嵌入。“训练损失”是最后十步训练损失的均值；测试集问的是任务的训练集从未展示过的事实。

# %%
SETTINGS = [("head only (tied wte)", 0, {"train_head": True})]
SETTINGS += [(f"top {n} block{'s' * (n > 1)}", n, {}) for n in range(1, base.config.n_layer + 1)]
SETTINGS += [("full (+ embeddings)", base.config.n_layer, {"train_embeddings": True})]
# each setting's name as the tables and figures show it, in the run's language; the English names stay the keys
SHOWN = {name: ngettext("top {n} block", "top {n} blocks", n).format(n=n) if name.startswith("top ") else _(name)
         for name, n, _kwargs in SETTINGS}
seed = args.seeds[0]
rows, histories, models = [run(_("base, nothing trained"), base, task, steps=0)[0]], {}, {}
for name, n, kwargs in SETTINGS:
    models[name] = minituner.freeze(base, trainable_layers=n, **kwargs)
    row, histories[SHOWN[name]] = run(SHOWN[name], models[name], task, args.steps, args.lr,
                                      batch_size=args.batch_size, seed=seed, eval_every=max(2, args.steps // 6))
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

# %% [markdown] lang="zh"
# ## 3. 画出来看，以及过拟合
#
# 第一张图：每个设置的验证集和测试集准确率（柱），以及它训练的参数占比（折线）。第二张图：每次训练的训练损失和验证集损失。一次训练可以把训练损失压到接近零（它拟合了训练集里的描述），却仍然答不对留出的那些描述。原文 §2 点出了这个风险：微调“存在过拟合风险”。在验证集曲线上，过拟合表现为损失降到最低点之后又回升，而训练损失还在继续下降；图下的表格从每条曲线上读出这一点。

# %%
fig, ax1 = plt.subplots(figsize=(7, 4.5), layout="constrained")
xs = torch.arange(len(rows)).tolist()
ax1.bar([x - 0.2 for x in xs], [r["val acc"] for r in rows], width=0.4, color="tab:green", alpha=0.7,
        label=label("validation"))
ax1.bar([x + 0.2 for x in xs], [r["test acc"] for r in rows], width=0.4, color="tab:blue", alpha=0.7,
        label=label("test"))
ax1.legend(fontsize=8, loc="upper left")
ax1.set_ylabel(label("accuracy (exact match)"))
ax1.set_ylim(0, 1)
ax1.set_xticks(xs, [r["run"] for r in rows], rotation=30, ha="right", fontsize=8)
twin = ax1.twinx()
twin.plot(xs, [r["trainable %"] for r in rows], "o-", color="tab:red")
twin.set_ylabel(label("trainable parameters, % of the model"), color="tab:red")
twin.set_ylim(0, 105)
ax1.set_title(label("How much must train?"))
ax1.grid(alpha=0.3, axis="y")
save_figure(fig, args.out / "freeze_sweep.png")
plot_curves(histories, _("classify: training and validation loss per frozen setting"), args.out / "freeze_curves.png")
shape = []  # each validation curve (step, loss, accuracy): where it was lowest, where it ended
for name, hist in histories.items():
    low = min(hist.val, key=lambda e: e[1])
    end = hist.val[-1]
    smooth = running_mean(hist.losses)  # the training loss, as the left panel draws it
    shape.append({"run": name, "lowest val loss": low[1], "at step": low[0], "final val loss": end[1],
                  "rise after the lowest": end[1] / low[1] - 1, "train loss fell after": smooth[-1] < smooth[low[0] - 1],
                  "over-fits": end[1] > 1.01 * low[1] and smooth[-1] < smooth[low[0] - 1]})
show(markdown_table(shape))
print(_("over-fits: the validation loss ended more than 1% above its lowest point (more than a flat curve's last digit) "
        "while the training loss fell"))

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

# %% [markdown] lang="zh"
# ## 4. 只训练输出头与训练一整个块：随机种子与学习率
#
# 只训练输出头的那一行，训练的数远少于只训练最上面一个块的那一行（扫描的表格里有具体数目），扫描把两者的准确率并排列了出来。不管哪一行领先，都有三种解释需要区分：运气（只有一个随机种子；验证集的一行在准确率上就是不小的一格，见下面的输出）、学习率（所有行用同一个学习率，见开头的输出；而一整个块每一步移动的数远多于输出头），或者过拟合。我们用更多随机种子（它们决定批次的顺序；见开头的输出）重跑这两行，并把最上面一个块用五分之一的学习率再跑一次；然后比较每一行在训练集上拟合得如何、在留出的数据上又答对多少。谁领先，在验证集上用所有课程共用的判定规则来读（`minituner.verdict`）：按随机种子配对，至少三个随机种子，每个随机种子的差同号，且平均差超过标准误乘以 Student t 分布的分位数（`minituner.verdict` 所用的双侧分位数）；否则就是“在噪声之内”。

# %%
sweep = {name: row for (name, _n, _kwargs), row in zip(SETTINGS, rows[1:], strict=True)}  # by the English names
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
            row, _hist = run(SHOWN[name], minituner.freeze(base, trainable_layers=n, **kwargs), task, args.steps, lr,
                             batch_size=args.batch_size, seed=s)
        seen.append(row)
        val_by_seed.setdefault((name, lr), {})[s] = row["val acc"]
    probe.append({"run": SHOWN[name], "lr": lr, "seeds": len(seen),
                  "val acc, per seed": ", ".join(f"{r['val acc']:.3f}" for r in seen),
                  **{f"{k} mean": mean(r[k] for r in seen) for k in ("train acc", "val acc", "test acc")}})
show(markdown_table(probe))
print(_("one validation row = {val:.4f} of accuracy ({val_rows} rows); one test row = {test:.4f} ({test_rows} rows)").format(
    val=1 / len(task.val), val_rows=len(task.val), test=1 / len(task.test), test_rows=len(task.test)))

# %% [markdown]
# ## 5. What training the tied head changes (只训练输出头,改变了什么)
#
# The head-only run froze every block, so every block's weights are the base's, bit for bit.
# But the head *is* the token embedding `wte`: the matrix that scores the output characters
# also turns the input characters into the vectors the first block reads. Training it
# therefore changes the input of block 0, hence what block 0 passes to block 1, and so on:
# every block computes on new inputs with its old weights. Below, on the test prompts, the
# size of the change of each block's input, relative to the base's.

# %% [markdown] lang="zh"
# ## 5. 只训练输出头，改变了什么
#
# 只训练输出头的那次训练冻结了所有块，所以每个块的权重都与基座模型逐位相同。但输出头**就是** token 嵌入 `wte`：给输出字符打分的矩阵，也负责把输入字符变成第一个块读入的向量。所以训练它会改变第 0 块的输入，进而改变第 0 块传给第 1 块的东西，依此类推：每个块都在用旧的权重处理新的输入。下面在测试集的提示上，给出每个块的输入相对于基座模型变化了多少。

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
print(_("every block's weights bit-identical to the base's: {same}; wte (the head) moved by {moved:.3f} of its "
        "size").format(same=blocks_same, moved=wte_moved))
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

# %% [markdown] lang="zh"
# ## 6. 冻结底层，真的保住了预训练学到的知识吗？
#
# 原文主张冻结“尤其是底层”，理由是底层保存着预训练模型学到的通用特征。我们来检验这一点，并把基座模型知道的东西精确地量出来：事实探针（`minituner.make_fact_probe()`）用语料本身的说法，正反两个方向问遍动物小世界里的每一条事实，基座模型全部答对。微调之后，**遗忘**定义为基座模型在探针上的准确率减去微调后模型的准确率（Biderman 等人 2024 年的论文 “LoRA Learns Less and Forgets Less”衡量的是同一种取舍）。三种训练方式，训练的参数量大致相同：最上面一个块（冻结底层，即原文的建议）、最下面一个块（`bottom=True`：冻结顶层，把建议反过来），以及在所有线性层上加 LoRA，秩取参数量最接近一个块的那个值。每种方式都在开头列出的随机种子上各跑一次；遗忘和验证集准确率用跨随机种子的规则比较。

# %%
probe_split = minituner.make_fact_probe()
base_probe = minituner.evaluate(base, probe_split)["accuracy"]
block_count = minituner.count_parameters(minituner.freeze(base, trainable_layers=1, bottom=True))[0]
per_rank = minituner.count_parameters(minituner.lora(base, r=1, target_modules="all"))[0]
rank = max(1, round(block_count / per_rank))
ways = {_("top block (bottom frozen)"): lambda: minituner.freeze(base, trainable_layers=1),  # names as shown
        _("bottom block (top frozen)"): lambda: minituner.freeze(base, trainable_layers=1, bottom=True),
        _("LoRA r={rank}, every linear").format(rank=rank): lambda: minituner.lora(
            base, r=rank, lora_alpha=rank, target_modules="all", seed=args.seeds[0])}
forgot, kept_val, claim = {}, {}, []
for name, make in ways.items():
    for s in args.seeds:
        model = make()
        row, _hist = run(name, model, task, args.steps, args.lr, batch_size=args.batch_size, seed=s)  # trains model
        forgot.setdefault(name, {})[s] = base_probe - minituner.evaluate(model, probe_split)["accuracy"]
        kept_val.setdefault(name, {})[s] = row["val acc"]
    claim.append({"run": name, "trainable": minituner.count_parameters(model)[0],
                  "forgetting, per seed": ", ".join(f"{v:.3f}" for v in forgot[name].values()),
                  "forgetting mean": mean(forgot[name].values()), "val acc mean": mean(kept_val[name].values())})
print(_("the base answers {acc:.3f} of the fact probe ({n} questions); lr {lr}, {steps} steps, seeds {seeds}").format(
    acc=base_probe, n=len(probe_split), lr=args.lr, steps=args.steps, seeds=args.seeds))
show(markdown_table(claim))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above. The best row is the one the validation split prefers;
# its test accuracy is reported beside it.

# %% [markdown] lang="zh"
# ## 小结
#
# 由上面的表格生成。最好的一行是验证集选出的那一行，它的测试集准确率一并报告。

# %%
top = best(rows[1:])
head, full = rows[1], rows[-1]
over = [r["run"] for r in shape if r["over-fits"]]
h, b, slow = probe
top_name, bottom_name, lora_name = ways
keeps = compare("freezing the bottom (the top block trains)", forgot[top_name],
                "freezing the top (the bottom block trains)", forgot[bottom_name], "forgetting")
against_lora = compare("freezing the bottom (the top block trains)", forgot[top_name],
                       _("LoRA (r={rank}, every linear)").format(rank=rank), forgot[lora_name], "forgetting")
learns = compare("freezing the bottom", kept_val[top_name], "freezing the top", kept_val[bottom_name],
                 "validation accuracy")
head_vs_block = compare("training the head alone", val_by_seed["head only (tied wte)", args.lr],
                        "training the top block", val_by_seed["top 1 block", args.lr], "validation accuracy")
over_fitting = (_("Over-fitting (过拟合): the validation loss rose after its lowest point in {over} of {runs} runs "
                  "({names}), while their training loss kept falling: the risk the article's §2 names.") if over else
                _("Over-fitting (过拟合): the validation loss rose after its lowest point in {over} of {runs} runs."))
show(conclusions(
    _("Best on validation: {run} (val acc {val:.3f}, test acc {test:.3f}, {share:.1f}% of the parameters); full "
      "fine-tuning val {full_val:.3f}, test {full_test:.3f}; the base untrained val {base_val:.3f}, test "
      "{base_test:.3f}.").format(run=top["run"], val=top["val acc"], test=top["test acc"], share=top["trainable %"],
                                 full_val=full["val acc"], full_test=full["test acc"], base_val=rows[0]["val acc"],
                                 base_test=rows[0]["test acc"]),
    over_fitting.format(over=len(over), runs=len(shape), names=_(", ").join(over)),
    _("Training the tied head alone ({count} numbers) moves test accuracy {before:.3f} -> {after:.3f}. No block's "
      "weights changed ({same}), but every block's input did ({low:.3f}–{high:.3f} of its size): the head is wte, "
      "which also embeds the input.").format(count=num(head["trainable"]), before=rows[0]["test acc"],
                                             after=head["test acc"], same=blocks_same, low=min(inputs_moved),
                                             high=max(inputs_moved)),
    _("Which is ahead, read on validation: {verdict} (test accuracy beside it, means: {head:.3f} and {block:.3f}). At "
      "a fifth of the rate the top block reaches train acc {slow:.3f} (seed {seed}), against {block_train:.3f}.").format(
        verdict=head_vs_block, head=h["test acc mean"], block=b["test acc mean"], slow=slow["train acc mean"],
        seed=seed, block_train=b["train acc mean"]),
    _("The article's claim (§4 step 5), on what the base knew (its fact-probe accuracy {probe:.3f}): {keeps}; "
      "{against_lora}; on the task, {learns}.").format(probe=base_probe, keeps=keeps, against_lora=against_lora,
                                                       learns=learns),
))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/03_freeze_count.py`; write the function bodies, then run `minituner check 03_freeze_count` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `freeze_trainable`.** Count the trainable parameters of freezing (only the top N blocks and ln_f train) in closed form, without building a model; the checker compares with the model's own count.
# 2. **Predict, then measure.** Freeze the bottom blocks instead of the top ones: will the fact probe keep more or fewer facts? Write your guess down, then run both with three seeds.
# 3. **Homework.** Plot the trainable count against the test accuracy for N = 1 … the depth, and say where adding blocks stops paying.

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/03_freeze_count.py`：写好函数体后运行 `minituner check 03_freeze_count --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`freeze_trainable`。** 用闭式公式计算冻结（只训练最上面 N 个块和 `ln_f`）时的可训练参数量，不要构建模型；检查器会与模型自己的计数比较。
# 2. **先预测再测量。** 改为只训练最下面的 N 个块（冻结顶层）：事实探针保留的事实会更多还是更少？先写下猜测，再用三个随机种子各跑一次。
# 3. **作业。** 画出 N 从 1 到层数时可训练参数量与测试集准确率的关系，指出从哪里开始多训练几个块不再划算。
