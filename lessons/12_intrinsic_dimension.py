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

# %%
import math

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.analysis import amplification, subspace_similarity, top_singular
from minituner.experiments import selected_settings
from minituner.intrinsic import Fastfood, IntrinsicModel, conclusions, d90, job
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
print(f"D = {D:,} numbers; {args.steps} steps of batch {args.batch_size}, seed {args.seed}, {args.jobs} worker(s); "
      f"d in {args.dims}; LoRA ranks {args.ranks} on q, v (α = 4r, lr {chosen['lora']['lr']:g}); full fine-tuning "
      f"lr {lr_full['pretrained']:g} (pretrained), {lr_full['random']:g} (random init), from the sweep")

# %% [markdown]
# ## 1. The Fastfood map is a random projection, written out
#
# At a small size the same operator is materialised: its columns are P eᵢ, one call each. They should
# have length 1 (exactly, when the block length L divides D) and be nearly orthogonal (PᵀP ≈ I), so a
# step of θ_d moves θ by as much. And θ_d = 0 must give the base exactly: the subspace starts where
# full fine-tuning starts.

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
    {"check": f"θ_d = 0 on the base (d = {args.dims[0]}): max |logits − base logits|",
     "value": f"{(fresh(x) - base(x)).abs().max():.1e}"},
    {"check": f"numbers stored for P at d = {args.dims[-1]}: Fastfood vs dense D × d",
     "value": f"{sum(b.numel() for b in Fastfood(args.dims[-1], D).buffers()):,} vs {D * args.dims[-1]:,}"},
]))

# %% [markdown]
# ## 2. Full fine-tuning sets the bar; the subspace's learning rate is chosen on validation
#
# Adam moves each trained number by about the learning rate per step. Full fine-tuning moves D numbers,
# θ_d only d, and P spreads them over D: the same move of θ takes lr_d = c · lr_full · √(D/d). The factor
# c is chosen on validation at one d (the middle of the grid) and used everywhere. The bar for d90 is the
# pretrained base's full fine-tuning accuracy, for both models: the accuracy the task asks for.

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
show(markdown_table([{"run": f"full fine-tuning, {r['init']}", "trainable": r["trainable"], "lr": r["lr"],
                       "val": r["val"], "test": r["test"]} for r in (full_pre, full_rand)]
                     + [{"run": f"subspace d = {d_mid}, c = {f}" + (" ✓" if i == best else ""), "trainable": r["trainable"],
                         "lr": r["lr"], "val": r["val"], "test": r["test"]} for i, (f, r) in enumerate(zip(args.lr_factors, checks))]))
print(f"\nchosen c = {c} (validation); the bar: 90% of full fine-tuning's validation accuracy = {bar:.3f}")

# %% [markdown]
# ## 3. Accuracy against d, pretrained and random (the d90 curve)
#
# Every d of the grid, on both models, at lr_d with the chosen c; LoRA at each rank beside them (its
# trainable count on the same axis). The dashed line is the bar; d90 is the first d on or above it.

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
    print(f"d90 {init}: " + (f"{found[init]}" if found[init] else f"not reached up to d = {args.dims[-1]}"))

fig, ax = plt.subplots(figsize=(7, 4.2))
for init, style in (("pretrained", "o-"), ("random", "s-")):
    ax.plot([r["size"] for r in curve[init]], [r["val"] for r in curve[init]], style,
            label=label(f"subspace θ₀ + Pθ_d, {init} init", "预训练" if init == "pretrained" else "随机初始化"))
ax.plot([r["trainable"] for r in loras], [r["val"] for r in loras], "^--", label="LoRA (x: trainable numbers)")
ax.axhline(full_pre["val"], color="k", lw=0.8, label="full fine-tuning, pretrained")
ax.axhline(full_rand["val"], color="grey", lw=0.8, ls=":", label="full fine-tuning, random init")
ax.axhline(bar, color="red", ls="--", lw=0.8, label="90% of full fine-tuning (d90 bar)")
ax.set_xscale("log", base=2)
ax.set_xlabel(label("trained numbers d", "训练的参数个数 d"))
ax.set_ylabel(label("validation exact-match accuracy", "验证集准确率"))
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

# %%
rows = []
for init in ("pretrained", "random"):
    hit = next((r for r in curve[init] if r["size"] == found[init]), None)
    rows.append({"way": f"subspace, {init} init", "trained numbers": hit["trainable"] if hit else f"> {args.dims[-1]}",
                 "val": hit["val"] if hit else "", "test": hit["test"] if hit else ""})
lora_hit = next((r for r in sorted(loras, key=lambda r: r["size"]) if r["val"] >= bar), None)
rows.append({"way": f"LoRA r = {lora_hit['size']} on q, v" if lora_hit else "LoRA (no rank of the grid)",
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
    ax.set_title(what, fontsize=9)
    ax.set_xlabel(f"j (top directions at r = {r2})")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[0].set_ylabel(f"i (top directions at r = {r1})")
fig.colorbar(im, ax=axes, shrink=0.8)
fig.suptitle(label(f"φ(r={r1}, r={r2}, i, j) on q_proj, mean of the layers", "子空间相似度"), fontsize=10, y=1.04)
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

# %%
weights = {n: m.weight.detach() for n, m in base.named_modules() if n.endswith(("q_proj", "v_proj"))}
best_sub = max(curve["pretrained"], key=lambda r: r["val"])
sources = [(f"LoRA r = {r['size']}", r["size"], r) for r in loras]
sources += [("full fine-tuning", r1, full_pre), (f"subspace d = {best_sub['size']}", r1, best_sub)]
amp_rows = []
for name, r, run in sources:
    per = [amplification(weights[n], run["ΔW"][n], r, seed=args.seed) for n in weights]
    amp_rows.append({"ΔW from": name, "r": r, **{k: sum(p[k] for p in per) / len(per) for k in per[0]}})
show(markdown_table(amp_rows))

# %% [markdown]
# ## Conclusions: what this says about the hypothesis (结论)
#
# Each sentence below is generated from the measurements above (`minituner.intrinsic.conclusions`):
# whether a low-dimensional solution exists, whether pretraining made it, how LoRA's count compares,
# and where the measurements disagree with the papers.

# %%
measured = {"D": D, "dims": args.dims, "d90": found, "full": {"pretrained": full_pre["val"], "random": full_rand["val"]},
            "bar": bar, "lora": lora_hit, "r": (r1, r2), "chance": 1 / width, "amp": amp_rows[: len(loras)],
            "phi": {what: sum(float(m[k][0, 0]) for k in kinds) / len(kinds) for what, m in phi.items()},
            "phi_top": sum(float(phi["ΔW, output side"][k][0, r1 - 1]) for k in kinds) / len(kinds),
            "chance_top": r1 / width}
for sentence in conclusions(measured):
    print("-", sentence)

# %% [markdown]
# ## 小结
#
# 本课的数字(由代码打印):

# %%
d90_text = {k: str(v) if v else f"> {args.dims[-1]}" for k, v in found.items()}
print(f"- 全量微调(预训练基座)验证集准确率 {full_pre['val']:.3f},测试集 {full_pre['test']:.3f};及格线(90%)为 {bar:.3f}。")
print(f"- 内在维度 d90:预训练基座 {d90_text['pretrained']}(共 D = {D:,} 个参数,一个随机种子)。" + (
    f"随机初始化的同结构模型训练全部参数也只有 {full_rand['val']:.2f}(及格线 {bar:.2f}):任务的答案是只有预训练语料"
    "才讲过的事实,随机模型从任务的训练集学不到,所以它的 d90 在这里不存在,这次测量的是缺少的知识,而不是维度。"
    if full_rand["val"] < bar else f"随机初始化同结构模型 {d90_text['random']}。"))
print("- LoRA 达到同一准确率所需的可训练参数:" + (f"{lora_hit['trainable']:,}(r = {lora_hit['size']})。" if lora_hit
                                                   else "网格内没有秩达到。"))
print(f"- 子空间相似度 φ(1, 1)(r = {r1} 与 r = {r2}):" + ",".join(f"{zh} {measured['phi'][what]:.2f}" for what, zh in (
    ("lora_A, trained", "训练后的 A"), ("lora_A, untrained", "未训练的 A"), ("ΔW, output side", "ΔW 输出侧")))
      + f",随机 {1 / width:.2f}。")
print("- 放大系数 ‖ΔW‖/‖UᵀWV‖:" + ",".join(f"r = {row['r']} 为 {row['amplification']:.2f}" for row in amp_rows[: len(loras)])
      + "。")

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/12_hadamard.py`; write the function bodies, then run `minituner check 12_hadamard` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `hadamard`.** Write the unscaled Walsh–Hadamard transform over the last axis (Sylvester's H = [[H′, H′], [H′, −H′]]), used by Fastfood.
# 2. **Code: `d90`.** From a curve of scores over d, return the smallest d that reaches the given share of the full fine-tuning score.
# 3. **Predict, then measure.** Does a pretrained base need a smaller intrinsic dimension than a random one? Measure d90 for both on three seeds.
#
# 编程题的骨架在 `exercises/12_hadamard.py`：写好函数体后运行 `minituner check 12_hadamard --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`hadamard`。** 实现在最后一维上不缩放的 Walsh–Hadamard 变换（Sylvester 构造 H = [[H′, H′], [H′, −H′]]），Fastfood 用到它。
# 2. **编程：`d90`。** 给定得分随 d 变化的曲线，返回达到全量微调得分给定比例的最小 d。
# 3. **先预测再测量。** 预训练过的基座是否比随机初始化的基座需要更小的本征维度？在三个种子上分别测量两者的 d90。
