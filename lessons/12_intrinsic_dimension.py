# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 12 · 本质维度 / 内在维度: how many numbers does fine-tuning really need? (article §3.2)
#
# The article motivates LoRA with a hypothesis (§3.2): "过度参数化的大模型背后,都有一个低维的本质模型"
# (behind every over-parameterised model there is a low-dimensional essential model). Lesson 09
# looked at the *rank* of the update full fine-tuning makes. Here we measure the hypothesis the way
# its sources do:
#
# - **Intrinsic dimension** (Li et al. 2018; Aghajanyan, Zettlemoyer & Gupta 2021). Freeze all D
#   numbers θ₀ of the model and train only a vector θ_d of d numbers, mapped into the full space by
#   a fixed random matrix P (D × d): **θ = θ₀ + P θ_d**. **d90** is the smallest d whose validation
#   accuracy reaches nine tenths of full fine-tuning's. Aghajanyan et al. found d90 of a few hundred for
#   RoBERTa on MRPC, that d90 falls as pretraining goes on, and that it falls as models grow.
# - P is the **Fastfood transform** P = H G Π H B / (‖G‖√D) per block (H Walsh–Hadamard, B random
#   signs, Π a permutation, G Gaussian), applied in O(D log d) and never stored: a dense P would
#   hold D · d numbers (section 1 prints both counts).
# - **LoRA's own analysis** (Hu et al. 2021, §7): do adapters of two ranks find the same directions
#   (the subspace similarity φ of their Figure 3), and how strongly does ΔW amplify directions W
#   already has (the amplification factor of their Table 7)?
#
# We compare the shipped base with a GPT of the same shape and random weights: if pretraining is
# what makes a low-dimensional solution exist, the random one needs far more d, or none suffices.
# That comparison needs a task the random model can learn at all, with every one of its D
# numbers trained: where full fine-tuning of it learns nothing, no subspace can do better, and
# its d90 does not exist (section 2 prints its full fine-tuning; the conclusions say which).
# The code lives in `minituner/intrinsic.py` (Fastfood, `IntrinsicModel`) and
# `minituner/analysis.py` (`subspace_similarity`, `amplification`); this lesson calls it.
#
# Run it: `python lessons/12_intrinsic_dimension.py` (`--smoke` for the test preset).
# One seed, short runs of a fixed number of steps: read trends, not the third digit.

# %% [markdown] lang="zh"
# # 12 · 内在维度：微调究竟需要多少个数？（原文 §3.2）
#
# 原文用一个假设来引出 LoRA（§3.2）：“过度参数化的大模型背后，都有一个低维的本质模型”。第 09 课考察的是全量微调所做更新的**秩**；这一课按这个假设的出处那样直接测量它：
#
# - **内在维度**（intrinsic dimension；Li et al. 2018；Aghajanyan、Zettlemoyer 与 Gupta 2021）。冻结模型的全部 D 个参数 θ₀，只训练一个含 d 个数的向量 θ_d，再用一个固定的随机矩阵 P（D × d）把它映射到完整的参数空间：**θ = θ₀ + P θ_d**。**d90** 是验证集准确率达到全量微调十分之九的最小 d。Aghajanyan 等人发现：RoBERTa 在 MRPC 上的 d90 只有几百；预训练进行得越久，d90 越小；模型越大，d90 也越小。
# - P 是逐块的 **Fastfood 变换** P = H G Π H B / (‖G‖√D)：其中 H 是 Walsh–Hadamard 变换，B 是随机正负号，Π 是一个置换，G 是高斯随机数。它以 O(D log d) 的代价作用于向量，从不存储；稠密的 P 要存 D · d 个数（第 1 节打印这两个数量）。
# - **LoRA 论文自己的分析**（Hu et al. 2021，§7）：两个不同秩的适配器是否找到了相同的方向（其图 3 的子空间相似度 φ）？ΔW 对 W 中已有的方向放大得有多厉害（其表 7 的放大系数）？
#
# 我们把 minituner 自带的基座模型与一个结构相同、权重随机的 GPT 作对比：如果低维解之所以存在是预训练的功劳，随机模型就需要大得多的 d，或者无论多大的 d 都不够。这个对比需要一个任务，随机模型在训练全部 D 个参数时能够学会它：如果对随机模型做全量微调什么也学不到，任何子空间都不可能做得更好，它的 d90 也就不存在（第 2 节打印它的全量微调结果，结论会说明属于哪种情况）。代码在 `minituner/intrinsic.py`（`Fastfood`、`IntrinsicModel`）和 `minituner/analysis.py`（`subspace_similarity`、`amplification`）中，本课只是调用它们。
#
# 运行：`python lessons/12_intrinsic_dimension.py`（加 `--smoke` 为测试用的预设）。只用一个随机种子，每次训练固定的少量步数：看趋势，不要看小数点后第三位。

# %%
import math

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.analysis import amplification, subspace_similarity, top_singular
from minituner.experiments import selected_settings
from minituner.i18n import _
from minituner.intrinsic import Fastfood, IntrinsicModel, d90, job
from minituner.jobs import run_all
from minituner.lesson import options
from minituner.methods.lora import lora_layers
from minituner.methods.registry import low_rank
from minituner.report import label, markdown_table, save_figure, show

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = options("Lesson 12: intrinsic dimension", out="runs/12_intrinsic",
               smoke=dict(steps=2, dims=(16,), lr_factors=(3,), ranks=(2, 4), jobs=1, eval_rows=16),
               steps=40, dims=(64, 256, 1024, 4096), lr_factors=(1, 3), ranks=(1, 8, 64), batch_size=16, seed=0,
               jobs=2, eval_rows=0)
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify")
D = sum(p.numel() for p in base.parameters())
chosen = selected_settings()["classify"]  # the sweep's learning rates (chosen on validation)
lr_full = {"pretrained": chosen["full"]["lr"], "random": chosen["scratch"]["lr"]}
print(_("D = {D:,} numbers; {n} steps of batch {batch}, seed {seed}, {jobs} worker(s); d in {dims}; LoRA ranks "
        "{ranks} on q, v (α = 4r, lr {lora_lr:g}); full fine-tuning lr {pretrained_lr:g} (pretrained), {random_lr:g} "
        "(random init), from the sweep").format(
    D=D, n=args.steps, batch=args.batch_size, seed=args.seed, jobs=args.jobs, dims=args.dims, ranks=args.ranks,
    lora_lr=chosen["lora"]["lr"], pretrained_lr=lr_full["pretrained"], random_lr=lr_full["random"]))

# %% [markdown]
# ## 1. The Fastfood map is a random projection, written out
#
# At a small size the same operator is materialised: its columns are P eᵢ, one call each. They should
# have length 1 (exactly, when the block length L divides D) and be nearly orthogonal (PᵀP ≈ I), so a
# step of θ_d moves θ by as much. And θ_d = 0 must give the base exactly: the subspace starts where
# full fine-tuning starts.

# %% [markdown] lang="zh"
# ## 1. 把 Fastfood 映射写成矩阵：它就是一个随机投影
#
# 在小尺寸下把同一个算子显式构造出来：它的第 i 列是 P eᵢ，每列调用一次得到。这些列的长度应当为 1（块长 L 整除 D 时恰好为 1），并且彼此近似正交（PᵀP ≈ I），这样 θ_d 走一步，θ 也移动同样的距离。θ_d = 0 时必须恰好得到基座模型：子空间的起点就是全量微调的起点。

# %%
small = Fastfood(24, 4096, seed=args.seed)  # d = 24 padded to L = 32, 128 blocks
P = small(torch.eye(24)).T  # (D, d): column i = P eᵢ
off = P.T @ P - torch.eye(24)  # (d, d)
x = task.val.x[:8]
fresh = IntrinsicModel(base, args.dims[0], seed=args.seed)
show(markdown_table([
    {"check": "column lengths ‖P eᵢ‖ (D = 4096, d = 24)", "value": f"{P.norm(dim=0).min():.6f} … {P.norm(dim=0).max():.6f}"},
    {"check": "largest |PᵀP − I| off the diagonal (chance ~ 1/√D)", "value": f"{off.abs().max():.4f}"},
    {"check": "P applied to a random θ_d: ‖Pθ_d‖ / ‖θ_d‖", "value": f"{(small(z := torch.randn(24)).norm() / z.norm()):.4f}"},
    {"check": _("θ_d = 0 on the base (d = {d}): max |logits − base logits|").format(d=args.dims[0]),
     "value": f"{(fresh(x) - base(x)).abs().max():.1e}"},
    {"check": _("numbers stored for P at d = {d}: Fastfood vs dense D × d").format(d=args.dims[-1]),
     "value": _("{fastfood:,} vs {dense:,}").format(fastfood=sum(b.numel() for b in Fastfood(args.dims[-1], D).buffers()),
                                                   dense=D * args.dims[-1])},
]))

# %% [markdown]
# ## 2. Full fine-tuning sets the bar; the subspace's learning rate is chosen on validation
#
# Adam moves each trained number by about the learning rate per step. Full fine-tuning moves D numbers,
# θ_d only d, and P spreads them over D: the same move of θ takes lr_d = c · lr_full · √(D/d). The factor
# c is chosen on validation at one d (the middle of the grid) and used everywhere. The bar for d90 is the
# pretrained base's full fine-tuning accuracy, for both models: the accuracy the task asks for.

# %% [markdown] lang="zh"
# ## 2. 全量微调定下及格线；子空间的学习率在验证集上选
#
# Adam 优化器每一步大约把每个被训练的数移动一个学习率那么多。全量微调移动 D 个数，θ_d 只有 d 个，再由 P 分摊到 D 个参数上：要让 θ 移动同样的幅度，学习率要取 lr_d = c · lr_full · √(D/d)。系数 c 在一个 d（网格正中的那个）上按验证集选出，然后所有 d 都用它。两个模型的 d90 及格线都以预训练基座全量微调的准确率为准：这是任务所要求的准确率。

# %%
d_mid = args.dims[len(args.dims) // 2]


def lr_d(init: str, d: int, c: float) -> float:
    return c * lr_full[init] * math.sqrt(D / d)


common = (args.steps, args.batch_size, args.seed)  # then init_seed (P's, A's), eval_rows (0: every row)
first = run_all(job, [("pretrained", "full", 0, lr_full["pretrained"], *common, None, args.eval_rows),
                      ("random", "full", 0, lr_full["random"], *common, None, args.eval_rows)]
                + [("pretrained", "intrinsic", d_mid, lr_d("pretrained", d_mid, c), *common, None, args.eval_rows)
                   for c in args.lr_factors], args.jobs)
full_pre, full_rand, checks = first[0], first[1], first[2:]
best = max(range(len(checks)), key=lambda i: checks[i]["val"])  # ties: the smaller c
c = args.lr_factors[best]
bar = 0.9 * full_pre["val"]
FULL_RUN = {"pretrained": "full fine-tuning, pretrained", "random": "full fine-tuning, random"}  # shown through _()
show(markdown_table([{"run": FULL_RUN[r["init"]], "trainable": r["trainable"], "lr": r["lr"],
                       "val": r["val"], "test": r["test"]} for r in (full_pre, full_rand)]
                     + [{"run": _("subspace d = {d}, c = {c}").format(d=d_mid, c=f) + (" ✓" if i == best else ""),
                         "trainable": r["trainable"], "lr": r["lr"], "val": r["val"], "test": r["test"]}
                        for i, (f, r) in enumerate(zip(args.lr_factors, checks))]))
print("\n" + _("chosen c = {c} (validation); the bar: 90% of full fine-tuning's validation accuracy = {bar:.3f}").format(
    c=c, bar=bar))

# %% [markdown]
# ## 3. Accuracy against d, pretrained and random (the d90 curve)
#
# Every d of the grid, on both models, at lr_d with the chosen c; LoRA at each rank beside them (its
# trainable count on the same axis). The dashed line is the bar; d90 is the first d on or above it.

# %% [markdown] lang="zh"
# ## 3. 准确率随 d 的变化：预训练与随机初始化（d90 曲线）
#
# 网格中的每个 d，两个模型都以选定的 c、按 lr_d 训练；旁边是各个秩的 LoRA（它的可训练参数量画在同一条横轴上）。虚线是及格线；d90 是第一个落在虚线上或虚线之上的 d。

# %%
calls = [(init, "intrinsic", d, lr_d(init, d, c), *common, None, args.eval_rows) for init in ("pretrained", "random") for d in args.dims
         if (init, d) != ("pretrained", d_mid)]
calls += [("pretrained", "lora", r, chosen["lora"]["lr"], *common, args.seed + i, args.eval_rows)
          for i, r in enumerate(args.ranks)]
runs = run_all(job, calls, args.jobs) + [checks[best]]
curve = {init: sorted((r for r in runs if r["kind"] == "intrinsic" and r["init"] == init), key=lambda r: r["size"])
         for init in ("pretrained", "random")}
loras = [r for r in runs if r["kind"] == "lora"]
found = {init: d90([r["size"] for r in rows], [r["val"] for r in rows], full_pre["val"]) for init, rows in curve.items()}
show(markdown_table([{"d": curve["pretrained"][i]["size"], "pretrained val": p["val"], "pretrained test": p["test"],
                       "random val": q["val"], "random test": q["test"]}
                      for i, (p, q) in enumerate(zip(curve["pretrained"], curve["random"]))]))
show(markdown_table([{"LoRA r": r["size"], "trainable": r["trainable"], "val": r["val"], "test": r["test"]}
                      for r in loras]))
for init in ("pretrained", "random"):
    print(_("d90 {init}: {d}").format(init=_(init), d=found[init]) if found[init]
          else _("d90 {init}: not reached up to d = {d}").format(init=_(init), d=args.dims[-1]))

SUBSPACE = {"pretrained": "subspace θ₀ + Pθ_d, pretrained init", "random": "subspace θ₀ + Pθ_d, random init"}
fig, ax = plt.subplots(figsize=(7, 4.2))
for init, style in (("pretrained", "o-"), ("random", "s-")):
    ax.plot([r["size"] for r in curve[init]], [r["val"] for r in curve[init]], style, label=label(SUBSPACE[init]))
ax.plot([r["trainable"] for r in loras], [r["val"] for r in loras], "^--", label=label("LoRA (x: trainable numbers)"))
ax.axhline(full_pre["val"], color="k", lw=0.8, label=label("full fine-tuning, pretrained"))
ax.axhline(full_rand["val"], color="grey", lw=0.8, ls=":", label=label("full fine-tuning, random init"))
ax.axhline(bar, color="red", ls="--", lw=0.8, label=label("90% of full fine-tuning (d90 bar)"))
ax.set_xscale("log", base=2)
ax.set_xlabel(label("trained numbers d"))
ax.set_ylabel(label("validation exact-match accuracy"))
ax.set_ylim(-0.02, 1.02)
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
save_figure(fig, args.out / "accuracy_vs_d.png");

# %% [markdown]
# ## 4. d90 beside LoRA at the same accuracy
#
# The fewest trained numbers that clear the bar, three ways: a random subspace of the pretrained model,
# of the random one, and LoRA (the smallest rank of the grid that clears it). The test column is the one
# look at the test split, beside the choice made on validation.

# %% [markdown] lang="zh"
# ## 4. d90 与达到同一准确率的 LoRA 并排比较
#
# 越过及格线最少要训练多少个数，分三种方式：预训练模型的随机子空间、随机模型的随机子空间，以及 LoRA（网格中越过及格线的最小秩）。测试集一列是对测试集仅有的一次查看，放在按验证集做出的选择旁边。

# %%
rows = []
WAY = {"pretrained": "subspace, pretrained init", "random": "subspace, random init"}  # shown through _()
for init in ("pretrained", "random"):
    hit = next((r for r in curve[init] if r["size"] == found[init]), None)
    rows.append({"way": WAY[init], "trained numbers": hit["trainable"] if hit else f"> {args.dims[-1]}",
                 "val": hit["val"] if hit else "", "test": hit["test"] if hit else ""})
lora_hit = next((r for r in sorted(loras, key=lambda r: r["size"]) if r["val"] >= bar), None)
rows.append({"way": _("LoRA r = {r} on q, v").format(r=lora_hit["size"]) if lora_hit else "LoRA (no rank of the grid)",
             "trained numbers": lora_hit["trainable"] if lora_hit else f"> {max(r['trainable'] for r in loras)}",
             "val": lora_hit["val"] if lora_hit else "", "test": lora_hit["test"] if lora_hit else ""})
rows.append({"way": "full fine-tuning, pretrained", "trained numbers": full_pre["trainable"], "val": full_pre["val"],
             "test": full_pre["test"]})
show(markdown_table(rows))

# %% [markdown]
# ## 5. Do LoRA adapters of two ranks find the same directions? (Hu et al., Figure 3)
#
# φ(A₁, A₂, i, j) = ‖U₁^{i⊤} U₂^{j}‖²_F / min(i, j), with U the right singular vectors of lora_A (r, in)
# of the two largest ranks of the grid, averaged over the four layers. Our q and v are 64 wide, so a
# rank-64 A spans the whole input space and φ(i, j = 64) = 1 says nothing; read the columns j < 64.
# Two random spaces give max(i, j)/64 on average. The adapters start from different seeds, so shared
# directions are learned, not inherited. A starts random and our runs are short, so the same φ is
# taken on the untrained As (what training added is the difference), and on the output side of ΔW
# (its left singular vectors: ΔW = BA with B starting at zero, so every one of them was learned).

# %% [markdown] lang="zh"
# ## 5. 两个不同秩的 LoRA 适配器会找到相同的方向吗？（Hu et al.，图 3）
#
# φ(A₁, A₂, i, j) = ‖U₁^{i⊤} U₂^{j}‖²_F / min(i, j)，其中 U 是网格中最大的两个秩各自的 `lora_A`（形状 (r, in)）的右奇异向量，结果对四层取平均。我们的 q 和 v 只有 64 维宽，所以秩为 64 的 A 张满了整个输入空间，φ(i, j = 64) = 1 说明不了任何问题；请看 j < 64 的那些列。两个随机子空间的 φ 平均为 max(i, j)/64。两个适配器从不同的随机种子出发，所以它们共有的方向是学出来的，而不是继承来的。A 的初值是随机的，我们的训练又很短，所以同样的 φ 也在未训练的 A 上算一遍（训练带来的部分就是两者之差），再在 ΔW 的输出侧算一遍（即它的左奇异向量：ΔW = BA，而 B 从零开始，所以这些方向全都是学出来的）。

# %%
(r1, lora1), (r2, lora2) = ((r["size"], r) for r in loras[-2:])
seed1, seed2 = (args.seed + args.ranks.index(r) for r in (r1, r2))  # the init seeds the LoRA runs were given


def untrained_A(r: int, seed: int) -> dict:
    """{name: lora_A (r, in)} of a fresh adapter, as the LoRA run at rank r started."""
    model = minituner.lora(base, **low_rank(r), target_modules=("q_proj", "v_proj"), seed=seed)
    return {n: layer.lora_A["default"].detach() for n, layer in lora_layers(model.base).items()}


def mean_phi(a: dict, b: dict, kind: str, side: str) -> torch.Tensor:
    """φ(i, j) (r1, r2) between the top r1 `side` singular vectors of a[n] and the top r2 of b[n] (past its rank
    a matrix's singular vectors are arbitrary), averaged over the layers' `kind` matrices."""
    names = [n for n in a if n.endswith(kind)]
    return sum(subspace_similarity(top_singular(a[n], side)[:, :r1], top_singular(b[n], side)[:, :r2])
               for n in names) / len(names)


kinds = ("q_proj", "v_proj")
phi = {"lora_A, trained": {k: mean_phi(lora1["lora_A"], lora2["lora_A"], k, "right") for k in kinds},
       "lora_A, untrained": {k: mean_phi(untrained_A(r1, seed1), untrained_A(r2, seed2), k, "right") for k in kinds},
       "ΔW, output side": {k: mean_phi(lora1["ΔW"], lora2["ΔW"], k, "left") for k in kinds}}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
for ax, (what, m) in zip(axes, phi.items()):
    im = ax.imshow(m["q_proj"].numpy(), vmin=0, vmax=1, aspect="auto", cmap="viridis",
                   extent=(0.5, r2 + 0.5, r1 + 0.5, 0.5))
    ax.set_title(label(what), fontsize=9)
    ax.set_xlabel(label("j (top directions at r = {r})").format(r=r2))
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[0].set_ylabel(label("i (top directions at r = {r})").format(r=r1))
fig.colorbar(im, ax=axes, shrink=0.8)
fig.suptitle(label("φ(r={r1}, r={r2}, i, j) on q_proj, mean of the layers").format(r1=r1, r2=r2), fontsize=10, y=1.04)
save_figure(fig, args.out / "subspace_similarity.png");
width = base.config.n_embd
spots = [(1, 1), (1, r1), (r1, r1)]
show(markdown_table([{"φ of": what, "matrices": k, **{f"φ({i},{j})": float(m[k][i - 1, j - 1]) for i, j in spots}}
                      for what, m in phi.items() for k in kinds]
                     + [{"φ of": "random spaces", "matrices": "any", **{f"φ({i},{j})": max(i, j) / width
                                                                        for i, j in spots}}]))

# %% [markdown]
# ## 6. Does ΔW amplify directions W already has? (Hu et al., Table 7)
#
# U, V: the top-r singular vectors of a trained ΔW (out, in). ‖UᵀWV‖_F is how much of W lies in
# those directions; beside it the same for W's own top r directions (the most r directions can catch)
# and for r random ones. The **amplification factor** ‖ΔW‖_F / ‖UᵀWV‖_F is large when ΔW pushes hard
# along directions W holds weakly. Means over the eight q and v matrices; full fine-tuning's and the
# subspace's ΔW read with r of the smaller LoRA adapter. At r = 64 on a 64-wide matrix U and V span
# everything and ‖UᵀWV‖ = ‖W‖.

# %% [markdown] lang="zh"
# ## 6. ΔW 是否放大了 W 已有的方向？（Hu et al.，表 7）
#
# U、V：训练后的 ΔW（形状 (out, in)）的前 r 个奇异向量。‖UᵀWV‖_F 衡量 W 有多少落在这些方向上；旁边是 W 自己的前 r 个方向上的同一数值（r 个方向最多能捕获多少）和 r 个随机方向上的同一数值。**放大系数** ‖ΔW‖_F / ‖UᵀWV‖_F 很大，说明 ΔW 在 W 本来很弱的方向上用力推。数值是八个 q、v 矩阵的平均；全量微调和子空间的 ΔW 按较小的那个 LoRA 适配器的 r 来读。在 64 维宽的矩阵上取 r = 64 时，U 和 V 张满整个空间，‖UᵀWV‖ = ‖W‖。

# %%
weights = {n: m.weight.detach() for n, m in base.named_modules() if n.endswith(("q_proj", "v_proj"))}
best_sub = max(curve["pretrained"], key=lambda r: r["val"])
sources = [(f"LoRA r = {r['size']}", r["size"], r) for r in loras]
sources += [("full fine-tuning", r1, full_pre), (_("subspace d = {d}").format(d=best_sub["size"]), r1, best_sub)]
amp_rows = []
for name, r, run in sources:
    per = [amplification(weights[n], run["ΔW"][n], r, seed=args.seed) for n in weights]
    amp_rows.append({"ΔW from": name, "r": r, **{k: sum(p[k] for p in per) / len(per) for k in per[0]}})
show(markdown_table(amp_rows))

# %% [markdown]
# ## Conclusions: what this says about the hypothesis (结论)
#
# Each sentence below is generated from the measurements above: whether a low-dimensional solution
# exists, whether pretraining made it, how LoRA's count compares, and where the measurements disagree
# with the papers.

# %% [markdown] lang="zh"
# ## 结论：测量对这个假设说明了什么
#
# 下面每一句都由上面的测量结果生成：低维解是否存在，它是否来自预训练，LoRA 需要的参数量与之相比如何，以及测量结果在哪些地方与论文不一致。

# %%
pre, rand = found["pretrained"], found["random"]
phi11 = {what: sum(float(m[k][0, 0]) for k in kinds) / len(kinds) for what, m in phi.items()}  # φ(1, 1)
phi_top = sum(float(phi["ΔW, output side"][k][0, r1 - 1]) for k in kinds) / len(kinds)  # φ(1, r1), output side
chance, chance_top = 1 / width, r1 / width  # the same for random spaces
amp = amp_rows[: len(loras)]  # the LoRA rows, smallest rank first
said = [_("A low-dimensional solution exists: {d} numbers in a random subspace ({share:.2%} of D) reach 90% of full "
          "fine-tuning's validation accuracy on the pretrained base.").format(d=pre, share=pre / D) if pre else
        _("No random subspace up to d = {d} reached 90% of full fine-tuning: in these short runs the hypothesis is not "
          "shown at that size.").format(d=args.dims[-1])]
if full_rand["val"] < bar:
    said.append(_("Whether pretraining makes the low-dimensional solution cannot be measured here: full fine-tuning of "
                  "all {D:,} numbers of the same architecture with random weights reaches {val:.2f} on validation (the "
                  "bar: {bar:.2f}), because the task's answers are facts only the pretraining corpus states. No d can "
                  "reach what all of D does not, so the random init's d90 does not exist on this task: the run measures "
                  "missing knowledge, not dimension.").format(D=D, val=full_rand["val"], bar=bar))
elif rand is None:
    said.append(_("The random-init model reaches the bar with all of D but with no d up to {d}, against {pre} pretrained "
                  "(one seed, on this grid of d).").format(d=args.dims[-1], pre=pre))
else:
    said.append(_("The random-init model needs d90 = {rand} against {pre} pretrained (one seed, on this grid of d).").format(
        rand=rand, pre=pre))
if lora_hit and pre:
    ratio = lora_hit["trainable"] / pre
    said.append((_("LoRA clears the same bar with {n:,} numbers (r = {r}), {ratio:.1f}× the random subspace's d90, on "
                   "one seed and these grids of r and d: here a structured low-rank ΔW on q and v was not cheaper than a "
                   "random direction in all of θ.") if ratio > 1 else
                 _("LoRA clears the same bar with {n:,} numbers (r = {r}), {ratio:.1f}× the random subspace's d90, on "
                   "one seed and these grids of r and d: here choosing where the numbers go (q, v, low rank) beat a "
                   "random subspace.")).format(n=lora_hit["trainable"], r=lora_hit["size"], ratio=ratio))
elif not lora_hit:
    said.append(_("No LoRA rank of the grid cleared the bar in these steps."))
numbers = dict(r1=r1, r2=r2, trained=phi11["lora_A, trained"], untrained=phi11["lora_A, untrained"], chance=chance,
               top=phi_top, chance_top=chance_top)
said.append((_("LoRA at r = {r1} and r = {r2} share their top input direction by φ(1, 1) = {trained:.2f} ({untrained:.2f} "
               "before training, {chance:.2f} for random spaces): training found a shared direction, as Hu et al.'s "
               "Figure 3 shows") if phi11["lora_A, trained"] - phi11["lora_A, untrained"] > 0.1 else
             _("LoRA at r = {r1} and r = {r2} share their top input direction by φ(1, 1) = {trained:.2f} ({untrained:.2f} "
               "before training, {chance:.2f} for random spaces): short training leaves A near its random start, so on "
               "A this disagrees with Hu et al.'s Figure 3")).format(**numbers)
            + (_("; on the output side of ΔW, which was all learned, r = {r1}'s top direction lies in r = {r2}'s top {r1} "
                 "by φ(1, {r1}) = {top:.2f} (random spaces: {chance_top:.2f}), more than twice chance on this seed: part "
                 "of what the small rank learned, the large one learned too.") if phi_top > 2 * chance_top else
               _("; on the output side of ΔW, which was all learned, r = {r1}'s top direction lies in r = {r2}'s top {r1} "
                 "by φ(1, {r1}) = {top:.2f} (random spaces: {chance_top:.2f}), within twice chance.")).format(**numbers))
factors = _(", ").join(_("{amp:.2f} at r = {r}").format(amp=row["amplification"], r=row["r"]) for row in amp)
said.append((_("ΔW's amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F is {factors} (Hu et al. on GPT-3: about 20 at r = 4, about 2 "
               "at r = 64): on this seed it falls from the smallest rank to the largest, the direction they found (one "
               "seed: no trend by the rule over seeds).") if amp[0]["amplification"] > amp[-1]["amplification"] else
             _("ΔW's amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F is {factors} (Hu et al. on GPT-3: about 20 at r = 4, about 2 "
               "at r = 64): on this seed it does not fall from the smallest rank to the largest, unlike their finding "
               "(one seed: no trend by the rule over seeds).")).format(factors=factors))
said.append(_("One seed and one model size only: that d90 falls as models grow (Aghajanyan et al.) is not tested here."))
for sentence in said:
    print("-", sentence)

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/12_hadamard.py`; write the function bodies, then run `minituner check 12_hadamard` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `hadamard`.** Write the unscaled Walsh–Hadamard transform over the last axis (Sylvester's H = [[H′, H′], [H′, −H′]]), used by Fastfood.
# 2. **Code: `d90`.** From a curve of scores over d, return the smallest d that reaches the given share of the full fine-tuning score.
# 3. **Predict, then measure.** Does a pretrained base need a smaller intrinsic dimension than a random one? Measure d90 for both on three seeds.

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/12_hadamard.py`：写好函数体后运行 `minituner check 12_hadamard --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`hadamard`。** 实现在最后一维上不缩放的 Walsh–Hadamard 变换（Sylvester 构造 H = [[H′, H′], [H′, −H′]]），Fastfood 用到它。
# 2. **编程：`d90`。** 给定得分随 d 变化的曲线，返回达到全量微调得分给定比例的最小 d。
# 3. **先预测再测量。** 预训练过的基座是否比随机初始化的基座需要更小的内在维度？在三个随机种子上分别测量两者的 d90。

