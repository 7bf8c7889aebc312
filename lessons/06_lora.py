# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 06 · LoRA: a frozen W plus a low-rank ΔW (低秩适配 LoRA, article §3.2)
#
# LoRA is Low-Rank Adaptation (Hu et al. 2021; the article's §5.1 expands it wrongly as
# "Layer-wise Relevance Adaption"). The article (§3.2) writes it in three steps (首先,
# 其次, 接下来): turn Y = WX into **Y = (W + ΔW)X**, where ΔW is what fine-tuning learns;
# factor it as **ΔW = AB** with ΔW m×n, A m×r, B r×n and a small rank r (秩); train only A
# and B, then add ΔW into W, so inference costs no more. It then adds switching to another
# task, (W + ΔW) − ΔW + ΔW′ (lesson 07). ΔW is a low-rank update of *every* entry of W, not a
# choice of some entries.
#
# minituner's `LoRALinear` (in `minituner/methods/lora.py`) is that formula, in the row
# form code uses (`self.base_layer(x)` is the frozen `linear(x, W, b)`; `x_A` is x, with dropout
# on this path when `lora_dropout > 0`):
#
#     y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T        scale = α / r
#
# **One warning about letters.** The code uses the LoRA paper's and PEFT's names,
# ΔW = B·A with `lora_A` (r × in, random) and `lora_B` (out × r, zeros). The article
# writes the same product the other way round, ΔW = AB with A m×r and B r×n. So the
# article's **A is our `lora_B`** and the article's **B is our `lora_A`**; section 1 checks
# it numerically. `lora_B` starts at zero, so ΔW = 0 and a fresh LoRA model *is* its base.
#
# This lesson trains LoRA on the `classify` task, sweeps the rank r over several seeds (printed at the top) and the
# target modules, compares with full fine-tuning (全量微调), relabels cat and dog, merges
# the adapter, and ends with the article's §5 table of model families.
#
# Run it: `python lessons/06_lora.py` (`--smoke` for the test preset).

# %% [markdown] lang="zh"
# # 06 · LoRA：冻结的 W 加上低秩的 ΔW（低秩适配，原文 §3.2）
#
# LoRA 是 Low-Rank Adaptation 的缩写，即低秩适配（Hu et al. 2021）；原文 §5.1 把它错写成了“Layer-wise Relevance Adaption”。原文 §3.2 分三步讲它（首先、其次、接下来）：把 Y = WX 改写成 **Y = (W + ΔW)X**，其中 ΔW 是微调要学到的部分；再把它分解为 **ΔW = AB**，ΔW 为 m×n，A 为 m×r，B 为 r×n，秩 r 取得很小；只训练 A 和 B，训练完把 ΔW 加回 W，推理就不会多花计算。原文接着讲了如何切换到另一个任务：(W + ΔW) − ΔW + ΔW′（第 07 课）。注意，ΔW 是对 W *每一个*元素的低秩更新，并不是从 W 中挑出一部分元素来改。
#
# minituner 的 `LoRALinear`（位于 `minituner/methods/lora.py`）就是这个公式，只是写成代码惯用的行向量形式（`self.base_layer(x)` 是冻结的 `linear(x, W, b)`；`x_A` 就是 x，`lora_dropout > 0` 时这条支路上还有 dropout）：
#
#     y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T        scale = α / r
#
# **字母要当心。** 代码沿用 LoRA 论文和 PEFT 的记法 ΔW = B·A，其中 `lora_A` 是 r × in（随机初始化），`lora_B` 是 out × r（初始化为零）。原文把同一个乘积反过来写成 ΔW = AB，A 为 m×r，B 为 r×n。所以**原文的 A 就是我们的 `lora_B`**，**原文的 B 就是我们的 `lora_A`**；第 1 节会用数值验证这一点。`lora_B` 从零开始，因此一开始 ΔW = 0，新建的 LoRA 模型*就是*它的基座模型。
#
# 本课在 `classify` 任务上训练 LoRA：在多个随机种子上扫描秩 r（用到的随机种子在开头打印），再扫描目标模块，并与全量微调比较；然后把猫和狗的标签互换，合并适配器；最后看原文 §5 中各模型系列的默认模块表。
#
# 运行：`python lessons/06_lora.py`（加 `--smoke` 是测试用的快速配置）。

# %%
import tempfile
from pathlib import Path
from statistics import mean

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.data import encode_examples
from minituner.i18n import _
from minituner.lesson import MatmulCounter, options, run
from minituner.methods.lora import lora_layers
from minituner.model import count_parameters
from minituner.model_families import table as families_table
from minituner.report import label, markdown_table, plot_curves, save_figure, show
from minituner.verdict import compare, trend
from minituner.verify.lora import article_mapping

args = options("Lesson 06: LoRA", smoke=dict(rows=48, steps=4, ranks=(4,), seeds=(0,)), out="runs/06_lora",
               steps=60, batch_size=8, lr=1e-2, alpha=16.0, full_lr=5e-4, ranks=(1, 4, 16), seeds=(0, 1, 2), rows=None)
torch.manual_seed(args.seeds[0])
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
d, L = base.config.n_embd, base.config.n_layer
print(_("ranks {ranks}, seeds {seeds}; {steps} steps, batch {batch}; LoRA lr {lr}, α {alpha:g}; full fine-tuning lr {full_lr}").format(
    ranks=args.ranks, seeds=args.seeds, steps=args.steps, batch=args.batch_size, lr=args.lr, alpha=args.alpha,
    full_lr=args.full_lr))

# %% [markdown]
# ## 1. One LoRA layer, and the article's letters
#
# Wrap the base's query projections (`q_proj`) and value projections (`v_proj`), LLaMA's
# default targets in the article's §5 table. Three facts, each computed: the shapes of
# the article's A and B; a fresh LoRA model gives exactly the base's logits; the
# trainable count is r·(in + out) per targeted matrix. The letter mapping itself is the
# check `minituner verify` runs (`verify.lora.article_mapping`): it fills B with nonzero
# values, as training would, and compares the layer with (W + A·B)X + b.

# %% [markdown] lang="zh"
# ## 1. 一个 LoRA 层，以及原文的字母
#
# 给基座模型的查询投影（`q_proj`）和值投影（`v_proj`）套上 LoRA，这是原文 §5 表中 LLaMA 的默认目标模块。下面三件事都由代码算出：原文中 A 和 B 的形状；新建的 LoRA 模型给出的 logits 与基座模型完全相同；每个目标矩阵的可训练参数个数是 r·(in + out)。字母的对应关系本身由 `minituner verify` 检查（`verify.lora.article_mapping`）：它像训练那样给 `lora_B` 填上非零值，再把这一层与 (W + A·B)X + b 比较。

# %%
r = 4
fresh = minituner.lora(base, r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"])
layer = fresh.base.h[0].attn.q_proj
m, n = layer.weight.shape
print(_("W of h.0.attn.q_proj is {m}×{n}; the article's A = lora_B is {A} (m×r), its B = lora_A is {B} (r×n)").format(
    m=m, n=n, A=tuple(layer.lora_B["default"].shape), B=tuple(layer.lora_A["default"].shape)))
residual, tolerance = article_mapping()
print(_("max |layer(x) − ((W + A·B) X + b)ᵀ| = {residual:.1e} (≤ {tolerance:g}: {ok})").format(
    residual=residual, tolerance=tolerance, ok=residual <= tolerance))
x = task.test.x[:16]
print(_("fresh LoRA vs base, max |Δlogits| = {diff:.1e}  (lora_B = 0, so ΔW = 0)").format(
    diff=(fresh(x) - base(x)).abs().max().item()))
print(_("trainable: r·(in + out)·2·L = {r}·({d} + {d})·2·{L} = {formula:,}; counted {counted:,}").format(
    r=r, d=d, L=L, formula=r * 2 * d * 2 * L, counted=count_parameters(fresh)[0]))
fresh.print_trainable_parameters();

# %% [markdown]
# ## 2. Train: LoRA's rank and targets, against full fine-tuning
#
# Every run starts from the same base and trains the same number of steps; a seed fixes
# the order of the batches (and LoRA's random A). Full fine-tuning trains all parameters
# at a small learning rate; LoRA trains its A and B at a larger one, since B starts at
# zero. Accuracy is exact match of the greedy answer on the validation and the test split,
# whose facts the task's training split never shows; the untrained base is the first row.
# Only validation accuracy chooses (the rank, in the conclusions); test is printed beside it.
#
# The sweeps: ranks on q,v (the trainable count grows linearly in r), each with every
# seed; then one rank with the targets widened from q,v to every projection (`"all"`: q,
# k, v, o, up, down). One test row is a small step of accuracy (printed under the table):
# the seeds show how much of a difference between ranks is the order of the batches.

# %% [markdown] lang="zh"
# ## 2. 训练：LoRA 的秩与目标模块，对比全量微调
#
# 每次训练都从同一个基座模型出发，训练相同的步数；随机种子决定批次的顺序（以及 LoRA 随机初始化的 A）。全量微调用较小的学习率训练全部参数；LoRA 用较大的学习率训练它的 A 和 B，因为 B 从零开始。准确率指贪心解码的答案与标准答案完全匹配的比例，分别在验证集和测试集上计算，这两个集合里的事实在任务的训练集中从未出现；表的第一行是未训练的基座模型。只有验证集准确率参与选择（结论里由它选秩），测试集准确率只在旁边打印。
#
# 扫描分两组：先在 q、v 上扫描秩（可训练参数个数随 r 线性增长），每个秩都跑全部随机种子；再固定一个秩，把目标模块从 q、v 扩大到所有投影（`"all"`：q、k、v、o、up、down）。测试集上答对一行带来的准确率变化并不小（打印在表格下方）：看不同随机种子之间的差别，就知道秩与秩之间的差别有多少只是批次顺序造成的。

# %%
every = max(2, args.steps // 8)
train_kw = dict(batch_size=args.batch_size, warmup=min(10, args.steps // 5), eval_every=every)


def val_acc(row, model):
    """The row, with the model's exact-match accuracy on the validation split (what chooses)."""
    return row | {"val acc": minituner.evaluate(model, task.val)["accuracy"]}


untrained = val_acc(run("base, untrained", base, task, steps=0)[0], base)
rows, histories, models = [], {}, {}  # histories: legend name (in the run's language) -> History
full_model = minituner.full(base)
row, histories["full fine-tuning"] = run("full fine-tuning", full_model, task, args.steps, args.full_lr,
                                         seed=args.seeds[0], **train_kw)
rows.append(val_acc(row, full_model))
for r in args.ranks:
    for seed in args.seeds:
        run_name = _("LoRA r={r} q,v, seed {seed}").format(r=r, seed=seed)
        models[r, seed] = minituner.lora(base, r=r, lora_alpha=args.alpha, target_modules=["q_proj", "v_proj"], seed=seed)
        row, hist = run(run_name, models[r, seed], task, args.steps, args.lr, seed=seed, **train_kw)
        rows.append(val_acc(row, models[r, seed]) | {"r": r, "seed": seed})
        if seed == args.seeds[0]:
            histories[f"LoRA r={r} q,v"] = hist
r_all = args.ranks[len(args.ranks) // 2]
wide_model = minituner.lora(base, r=r_all, lora_alpha=args.alpha, target_modules="all", seed=args.seeds[0])
wide_name = _("LoRA r={r} all").format(r=r_all)
row, histories[wide_name] = run(_("LoRA r={r} all, seed {seed}").format(r=r_all, seed=args.seeds[0]), wide_model,
                                task, args.steps, args.lr, seed=args.seeds[0], **train_kw)
rows.append(val_acc(row, wide_model))
show(markdown_table([untrained, *rows], ["run", "trainable", "trainable %", "train loss", "train acc", "val acc",
                                      "test loss", "test acc", "s"]))
print(_("one row = {val:.4f} of validation accuracy ({n_val} rows), {test:.4f} of test accuracy ({n_test} rows)").format(
    val=1 / len(task.val), n_val=len(task.val), test=1 / len(task.test), n_test=len(task.test)))
plot_curves(histories, _("classify: LoRA ranks and targets vs full fine-tuning"), args.out / "lora_curves.png");

# %% [markdown]
# ## 3. The rank sweep in one picture, and what α/r does with Adam
#
# Left: validation and test accuracy per rank, one dot per seed. Right: how large the learned update
# is, ‖ΔW‖ (Frobenius norm, averaged over the adapted matrices), per rank.
#
# The scale α/r is often said to "keep the update size similar across ranks". With Adam
# it does not: Adam moves every entry of A and B by about the learning rate whatever its
# gradient's size, so B·A, a sum over r rank-one terms, grows with r (about like √r in
# the analysis of Kalajdzievski 2023, rsLoRA), and (α/r)·B·A then shrinks as r grows.
# rsLoRA's scale α/√r is the one that keeps it stable (`use_rslora=True`). The right
# panel measures ‖ΔW‖ after training at each rank.

# %% [markdown] lang="zh"
# ## 3. 一张图看秩的扫描，以及 α/r 在 Adam 优化器下的作用
#
# 左图：每个秩的验证集和测试集准确率，每个随机种子一个点。右图：学到的更新有多大，即 ‖ΔW‖（Frobenius 范数，对所有被适配的矩阵取平均），按秩画出。
#
# 常听人说，缩放系数 α/r 能“让不同秩的更新大小保持相近”。用 Adam 优化器时并非如此：不管梯度多大，它都让 A 和 B 的每个元素大约移动一个学习率的幅度，于是 B·A 这个由 r 个秩为 1 的矩阵相加而成的和会随 r 增大（按 Kalajdzievski 2023 即 rsLoRA 的分析，大约与 √r 成正比），乘上 α/r 之后的 (α/r)·B·A 反而随 r 增大而变小。能让它保持稳定的是 rsLoRA 的缩放 α/√r（`use_rslora=True`）。右图测量的就是每个秩训练后的 ‖ΔW‖。

# %%
lora_rows = [row for row in rows if "r" in row]  # the q,v rank sweep: the rows that carry r and seed
norms = {key: sum(l.get_delta_weight("default").norm().item() for l in lora_layers(m.base).values()) / len(lora_layers(m.base))
         for key, m in models.items()}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for seed in args.seeds:
    mine = [row for row in lora_rows if row["seed"] == seed]
    ax1.plot([row["r"] for row in mine], [row["val acc"] for row in mine], "o-",
             label=label("validation, seed {seed}").format(seed=seed))
    ax1.plot([row["r"] for row in mine], [row["test acc"] for row in mine], "s--",
             label=label("test, seed {seed}").format(seed=seed))
    ax2.plot(args.ranks, [norms[r, seed] for r in args.ranks], "o-", label=label("seed {seed}").format(seed=seed))
ax1.axhline(rows[0]["val acc"], color="grey", ls=":", label=label("full fine-tuning, validation"))
for ax in (ax1, ax2):
    ax.set_xscale("log", base=2)
    ax.set_xlabel(label("rank r"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
ax1.set_ylabel(label("accuracy (exact match)"))
ax1.set_ylim(-0.02, 1.02)
ax2.set_ylabel(label("mean ‖ΔW‖ = ‖(α/r)·B·A‖ after training"))
fig.suptitle(label("LoRA on q,v: rank vs accuracy and update size (α = {alpha:g})").format(alpha=args.alpha))
save_figure(fig, args.out / "lora_rank_sweep.png")
show(markdown_table([{"r": r, **{_("‖ΔW‖, seed {seed}").format(seed=s): norms[r, s] for s in args.seeds}}
                     for r in args.ranks]))

# %% [markdown]
# ## 4. Relabelling with LoRA: a surface mapping, or knowledge?
#
# The article's §4 step 3: what was recognised as a cat is now to be called a dog. The
# relabel task swaps the two names. The training split shows some kinds of fact of every
# animal; the test split describes the test animals by their other kinds (lesson 02 prints
# them), the cat and the dog among them. Does the adapter
# swap the *names* only for the descriptions it saw, or for the animals?

# %% [markdown] lang="zh"
# ## 4. 用 LoRA 改标签：学到的是表面的映射，还是知识？
#
# 原文 §4 第 3 步：原来认作猫的，现在要叫它狗。`relabel` 任务把这两个名字互换。训练集给出每种动物的某几类事实；测试集则用其他几类事实来描述测试用的动物（第 02 课把它们打印了出来），其中就有猫和狗。适配器互换的只是它见过的那些描述里的*名字*，还是这两种*动物*本身？

# %%
relabel = minituner.make_task("relabel", rows=args.rows)
r = args.ranks[len(args.ranks) // 2]
swap_model = minituner.lora(base, r=r, lora_alpha=args.alpha, target_modules=["q_proj", "v_proj"], seed=args.seeds[0])
swap_row, swap_hist = run(f"LoRA r={r} q,v (relabel)", swap_model, relabel, args.steps, args.lr, seed=args.seeds[0],
                          batch_size=args.batch_size, warmup=min(10, args.steps // 5))
flip = {" dog.": " cat.", " cat.": " dog."}
seen_ok = minituner.evaluate(swap_model, relabel.train)["correct"]
test_ok = minituner.evaluate(swap_model, relabel.test)["correct"]
old_names = encode_examples("old", [(p, flip[a]) for p, a in relabel.test.examples if a in flip], relabel.tokenizer)
said_old = minituner.evaluate(swap_model, old_names)["correct"]
cd_seen = [ok for (_, a), ok in zip(relabel.train.examples, seen_ok, strict=True) if a in flip]
cd_test = [ok for (_, a), ok in zip(relabel.test.examples, test_ok, strict=True) if a in flip]
others = [ok for (_, a), ok in zip(relabel.test.examples, test_ok, strict=True) if a not in flip]
swap_stats = {"seen cat/dog rows swapped": _("{k} of {n}").format(k=sum(cd_seen), n=len(cd_seen)),
              "unseen cat/dog rows swapped": _("{k} of {n}").format(k=sum(cd_test), n=len(cd_test)),
              "unseen cat/dog rows with the old name": _("{k} of {n}").format(k=sum(said_old), n=len(said_old)),
              "other animals, unseen, accuracy": sum(others) / len(others)}
show(markdown_table([swap_stats]))

# %% [markdown]
# ## 5. Merge: no extra cost at inference
#
# After training, W ← W + (α/r)·B·A folds the adapter into the matrix. The merged model
# computes the same logits (to float32 rounding) with exactly the base's matrix products:
# the forward is a plain `linear` again (counted with `minituner.lesson.MatmulCounter`).
# The adapter alone is small on disk.

# %% [markdown] lang="zh"
# ## 5. 合并：推理时没有额外开销
#
# 训练结束后，W ← W + (α/r)·B·A 把适配器并入矩阵。合并后的模型算出的 logits 相同（差别在 float32 的舍入误差之内），做的矩阵乘法也与基座模型一样多：前向计算又变回普通的 `linear`（用 `minituner.lesson.MatmulCounter` 计数）。单独保存的适配器在磁盘上很小。

# %%
r = args.ranks[len(args.ranks) // 2]
model = models[r, args.seeds[0]]
x = task.test.x[:32]
products = {}
for name, m in (("base", base), ("LoRA, unmerged", model)):
    with MatmulCounter() as counter, torch.no_grad():
        logits = m(x)
    products[name] = counter.n
model.merge_adapter()
with MatmulCounter() as counter, torch.no_grad():
    merged = model(x)
products["LoRA, merged"] = counter.n
print(_("max |merged − unmerged logits| = {diff:.2e}; the same greedy next character at all {n:,} positions: {same}").format(
    diff=(merged - logits).abs().max().item(), n=x.numel(), same=torch.equal(merged.argmax(-1), logits.argmax(-1))))
print(_("matrix products per forward: base {base}, LoRA, unmerged {unmerged}, LoRA, merged {merged}").format(
    base=products["base"], unmerged=products["LoRA, unmerged"], merged=products["LoRA, merged"]))
model.unmerge_adapter()
with tempfile.TemporaryDirectory() as folder:
    adapter = Path(model.save_pretrained(f"{folder}/adapter")) / "adapter_model.safetensors"
    base_file = minituner.save_model(base, f"{folder}/base")
    a, b = adapter.stat().st_size, base_file.stat().st_size
print(_("adapter file {a:,} bytes ({tensors} tensors) vs base {b:,} bytes: {share:.1%}").format(
    a=a, tensors=len(model.adapter_state_dict()), b=b, share=a / b))

# %% [markdown]
# ## 6. The article's §5 table: why each model family names different modules
#
# The table (LLaMA-Factory's defaults in October 2023) is data in
# `minituner/model_families.py`, with two columns computed from each family's modelling
# code: the shape of the default target at one size, and LoRA's trainable count per block
# at r = 8. Two layouts hide behind the names:
# - **split** (LLaMA, LLaMA-2, InternLM): q, k and v are three separate matrices, and the
#   default `q_proj,v_proj` adapts the query and value projections only.
# - **fused** (BLOOM, Falcon, Baichuan, Qwen, ChatGLM3, Phi-1.5): one matrix computes
#   [q; k; v]; there is no query matrix to name, so the default is the fused matrix and one
#   LoRA pair adapts q, k *and* v together, with one A shared by all three. The fused
#   matrix is 3C × C only when every head has its own key and value: Falcon-7B uses
#   multi-query attention (one key/value head) and ChatGLM3 two key/value groups, so
#   theirs are (C + 2·g·hs) × C.
#
# On a 3C × C matrix LoRA trains r·(C + 3C) = 4rC numbers, the same as on q_proj and v_proj,
# 2·r·(C + C) = 4rC: the budget is equal, spread over q, k, v instead of q, v. minituner's GPT
# keeps the projections split, so a fused name is a ValueError that lists the names it has.

# %% [markdown] lang="zh"
# ## 6. 原文 §5 的表：为什么各模型系列指定的模块名不同
#
# 这张表（LLaMA-Factory 在 2023 年 10 月的默认设置）作为数据写在 `minituner/model_families.py` 里，另有两列由各系列的建模代码算出：某一规模下默认目标矩阵的形状，以及 r = 8 时 LoRA 在每个块里的可训练参数个数。这些名字背后是两种布局：
# - **分开**（LLaMA、LLaMA-2、InternLM）：q、k、v 是三个独立的矩阵，默认的 `q_proj,v_proj` 只适配查询投影和值投影。
# - **融合**（BLOOM、Falcon、Baichuan、Qwen、ChatGLM3、Phi-1.5）：一个矩阵一次算出 [q; k; v]，没有单独的查询矩阵可以指定，所以默认目标就是这个融合矩阵：一对 LoRA 矩阵同时适配 q、k *和* v，三者共用一个 A。只有每个注意力头都有自己的键和值时，融合矩阵才是 3C × C：Falcon-7B 用多查询注意力（multi-query attention，只有一个键/值头），ChatGLM3 用两组键/值，所以它们的融合矩阵是 (C + 2·g·hs) × C。
#
# 在 3C × C 的矩阵上，LoRA 训练 r·(C + 3C) = 4rC 个数，与在 q_proj 和 v_proj 上训练的 2·r·(C + C) = 4rC 一样多：参数预算相同，只是分摊到了 q、k、v 上，而不是 q、v 上。minituner 的 GPT 把各个投影分开存放，所以传入融合矩阵的名字会得到 ValueError，错误信息列出模型里有的模块名。

# %%
per_block = {"LoRA r=8 per block": _("LoRA r={r} per block").format(r=8)}  # the column named after r, shown translated
show(markdown_table([{per_block.get(k, k): v for k, v in row.items()} for row in families_table(r=8)]))
try:
    minituner.lora(base, target_modules=["query_key_value"])
except ValueError as e:
    print(f"ValueError: {e}")

# %% [markdown]
# ## Conclusions (结论)
#
# Each line is printed from the tables above; the validation split chooses, the test split is
# printed beside.

# %% [markdown] lang="zh"
# ## 结论
#
# 下面每一行都由代码根据上面的表格打印：由验证集做选择，测试集只在旁边报告。

# %%
full = rows[0]
by_rank = {r: [row for row in lora_rows if row["r"] == r] for r in args.ranks}
val = {r: mean([row["val acc"] for row in v]) for r, v in by_rank.items()}
test = {r: mean([row["test acc"] for row in v]) for r, v in by_rank.items()}
best = max(args.ranks, key=lambda r: val[r])
spread = max(max(row["val acc"] for row in v) - min(row["val acc"] for row in v) for v in by_rank.values())
val_by_seed = {r: {row["seed"]: row["val acc"] for row in v} for r, v in by_rank.items()}
against = [compare(f"r={best}", val_by_seed[best], f"r={r}", val_by_seed[r], "validation accuracy")
           for r in args.ranks if r != best]
print("- " + _("Validation picks r = {best} among {ranks} (mean over seeds {val:.3f}; test {test:.3f}); full fine-tuning {full_val:.3f} (test {full_test:.3f}), the untrained base {base_val:.3f} (test {base_test:.3f}).").format(
    best=best, ranks=args.ranks, val=val[best], test=test[best], full_val=full["val acc"], full_test=full["test acc"],
    base_val=untrained["val acc"], base_test=untrained["test acc"])
      + (_(" Against the other ranks, by the rule: {verdicts}.").format(verdicts=_("; ").join(str(v) for v in against))
         if against else ""))
print("- " + _("Between seeds one rank's validation accuracy differs by up to {spread:.3f}: a smaller difference between ranks is the order of the batches as much as the rank.").format(spread=spread))
# the claim "the larger r, the smaller ‖ΔW‖", by the rule between every neighbouring pair of ranks over the seeds
shrinks = trend([f"r={r}" for r in args.ranks], [{s: norms[r, s] for s in args.seeds} for r in args.ranks],
                "‖ΔW‖") if len(args.ranks) > 1 else None
if shrinks:
    print("- " + _("At a fixed α, {trend}; means over the seeds: {means}.").format(
        trend=shrinks.text("the larger r, the smaller ‖ΔW‖"),
        means=_(", ").join(f"r={r}: {mean(norms[r, s] for s in args.seeds):.2f}" for r in args.ranks))
          + (_(" With Adam every entry of A and B moves by about the learning rate, so the scale α/r does not keep the update the same size across ranks (rsLoRA scales by α/√r).")
             if shrinks.direction == 1 else ""))
wide = rows[-1]
curve = histories[wide_name].val  # (step, validation loss, accuracy) per evaluation
low = min(curve, key=lambda e: e[1])
overfit = curve[-1][1] > 1.05 * low[1]
print("- " + (_("All six projections at r={r}: train acc {train:.3f}, validation {val:.3f} (test {test:.3f}); its validation loss was lowest at step {low_step} ({low:.3f}) and ended at {last:.3f} (step {last_step}): its validation loss rose while it fit the training split, over-fitting (过拟合).")
              if overfit else
              _("All six projections at r={r}: train acc {train:.3f}, validation {val:.3f} (test {test:.3f}); its validation loss was lowest at step {low_step} ({low:.3f}) and ended at {last:.3f} (step {last_step}).")
              ).format(r=r_all, train=wide["train acc"], val=wide["val acc"], test=wide["test acc"], low_step=low[0],
                       low=low[1], last=curve[-1][1], last_step=curve[-1][0]))
memorised = sum(cd_seen) / len(cd_seen) > 2 * sum(cd_test) / len(cd_test)
print("- " + (_("Relabelling swapped {seen} of {n_seen} seen cat/dog descriptions and {unseen} of {n_unseen} unseen ones: the adapter learned the descriptions it saw, not the animals.")
              if memorised else
              _("Relabelling swapped {seen} of {n_seen} seen cat/dog descriptions and {unseen} of {n_unseen} unseen ones.")
              ).format(seen=sum(cd_seen), n_seen=len(cd_seen), unseen=sum(cd_test), n_unseen=len(cd_test)))
print("- " + _("Merged: {merged} matrix products per forward, as the base ({base}); unmerged {unmerged}.").format(
    merged=products["LoRA, merged"], base=products["base"], unmerged=products["LoRA, unmerged"]))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/06_lora.py`; write the function bodies, then run `minituner check 06_lora` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `lora_forward`.** Write y = x Wᵀ + b + (α/r)·(x Aᵀ) Bᵀ, the frozen layer plus the low-rank path.
# 2. **Code: `lora_merge`.** Write W + (α/r)·B A and check by hand that the merged layer gives the same output as the unmerged one.
# 3. **Predict, then measure.** Double r at a fixed α: what happens to the scale α/r and to ‖ΔW‖ after training? Compare with rsLoRA's α/√r.

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/06_lora.py`：写好函数体后运行 `minituner check 06_lora --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`lora_forward`。** 实现 y = x Wᵀ + b + (α/r)·(x Aᵀ) Bᵀ：冻结的层加上低秩支路。
# 2. **编程：`lora_merge`。** 实现 W + (α/r)·B A，并手动验证合并后的层与未合并时输出相同。
# 3. **先预测再测量。** 固定 α、把 r 翻倍：缩放 α/r 和训练后的 ‖ΔW‖ 会怎样？与 rsLoRA 的 α/√r 比较。
