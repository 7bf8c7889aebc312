# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 09 · Is ΔW really low-rank? (低秩假设, the premise of article §3.2)
#
# The article builds LoRA on a premise it never tests (§3.2): large models are
# over-parameterised (过度参数化), and behind each there is a low-dimensional intrinsic model
# (低维的本质模型), the key parameters (关键参数) that decide what it generates. LoRA's paper
# (Hu et al. 2021, after Aghajanyan et al. 2020) states the premise LoRA relies on more
# narrowly: the *change* fine-tuning makes has a low intrinsic rank, so ΔW ≈ AB with a small r
# loses little. Here we measure that one. Fine-tune every weight of the
# shipped base (全量微调, as lesson 02), take **ΔW = W_tuned − W_base** for each of the
# 24 matrices (q, k, v, o, up, down in 4 blocks) and look at its singular values
# ΔW = U Σ Vᵀ, σ₁ ≥ σ₂ ≥ …:
#
# - **share(r)** = Σ_{i≤r} σᵢ² / Σ σᵢ², the part of ‖ΔW‖²_F the top r directions hold;
# - **effective rank** exp(−Σ pᵢ log pᵢ) with pᵢ = σᵢ/Σσⱼ (Roy & Vetterli 2007): 1 for a
#   rank-one matrix, 64 for a flat spectrum on a 64-wide matrix;
# - a **random baseline**: a matrix of the same shape and norm with i.i.d. entries, whose
#   spectrum is as flat as chance makes it. Low-rank means far above that baseline.
#
# Then the test that matters: cut every ΔW to rank r (the best rank-r matrix, Eckart–Young)
# and measure accuracy, against LoRA trained from scratch at the same r on the same
# matrices. Both have exactly r·(in + out) numbers per matrix.
# The code lives in `minituner/analysis.py`; this lesson calls it.
#
# Run it: `python lessons/09_is_delta_w_low_rank.py` (`--smoke` for the test preset).
# One seed and short runs: read trends, not the third digit.

# %% [markdown] lang="zh"
# # 09 · ΔW 真的是低秩的吗？（低秩假设：原文 §3.2 的前提）
#
# 原文把 LoRA 建立在一个它从未检验过的前提上（§3.2）：大模型是过度参数化的，背后有一个低维的本质模型，
# 也就是决定它生成什么内容的关键参数。LoRA 的论文（Hu 等人 2021，沿用 Aghajanyan 等人 2020 的结论）
# 把 LoRA 所依赖的前提说得更窄：微调带来的*改变量*具有很低的本质秩，所以用一个小的 r 写成 ΔW ≈ AB 损失不大。
# 这里检验的正是这一条。对随包发布的基座模型做全量微调，训练每一个权重（同第 02 课），
# 对 24 个矩阵（4 个块里的 q、k、v、o、up、down）分别求 **ΔW = W_tuned − W_base**，再看它的奇异值
# ΔW = U Σ Vᵀ，σ₁ ≥ σ₂ ≥ …：
#
# - **占比 share(r)** = Σ_{i≤r} σᵢ² / Σ σᵢ²：前 r 个方向占 ‖ΔW‖²_F 的比例；
# - **有效秩** exp(−Σ pᵢ log pᵢ)，其中 pᵢ = σᵢ/Σσⱼ（Roy 与 Vetterli 2007）：秩为 1 的矩阵是 1，
#   宽 64 的矩阵若奇异值谱完全平坦则是 64；
# - **随机基线**：形状和范数都相同、元素独立同分布的矩阵，它的谱在随机情况下能有多平就有多平。
#   低秩意味着远高于这条基线。
#
# 然后是真正要紧的检验：把每个 ΔW 截断到秩 r（最佳的秩 r 近似，Eckart–Young 定理），测准确率，
# 并与在同样的矩阵上、以同样的 r 从头训练的 LoRA 比较。两者每个矩阵都恰好有 r·(in + out) 个数。
# 代码在 `minituner/analysis.py` 里，本课只是调用它。
#
# 运行方式：`python lessons/09_is_delta_w_low_rank.py`（加 `--smoke` 使用测试用的快速预设）。
# 只有一个随机种子，训练也很短：看趋势，不要看小数点后第三位。

# %%
import matplotlib.pyplot as plt
import torch

import minituner
from minituner.analysis import (
    delta_weights,
    random_like,
    spectrum_rows,
    summarise,
    truncated_model,
    with_deltas,
)
from minituner.i18n import _
from minituner.lesson import conclusions, options
from minituner.methods.lora import lora_layers
from minituner.model import count_parameters
from minituner.report import label, markdown_table, save_figure, show

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = options("Lesson 09: is ΔW low-rank?", smoke=dict(rows=48, steps=3, lora_steps=2, ranks=(1, 4)), out="runs/09_delta_w",
               steps=120, lr=5e-4, lora_steps=40, lora_lr=1e-2, batch_size=8, seed=0, rows=None,
               ranks=(1, 2, 4, 8, 16))
out = args.out
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)


def accuracy(model) -> dict:
    """Exact-match accuracy on the validation and the test split."""
    return {"val": minituner.evaluate(model, task.val)["accuracy"], "test": minituner.evaluate(model, task.test)["accuracy"]}


print(_("full fine-tuning {steps} steps at lr {lr}; LoRA {lora_steps} steps at lr {lora_lr}; batch {batch}, "
        "seed {seed}; ranks {ranks}").format(steps=args.steps, lr=args.lr, lora_steps=args.lora_steps,
                                             lora_lr=args.lora_lr, batch=args.batch_size, seed=args.seed,
                                             ranks=args.ranks))

# %% [markdown]
# ## 1. Full fine-tuning makes the ΔW to study
#
# Every tensor trains; afterwards every Linear's ΔW is read off. The table puts the base
# beside the tuned model, and says how far each kind of matrix moved (‖ΔW‖/‖W‖).

# %% [markdown] lang="zh"
# ## 1. 用全量微调得到要研究的 ΔW
#
# 每个张量都参与训练；训练结束后读出每个 Linear 层的 ΔW。表格把基座模型和微调后的模型并排列出，
# 并给出每一类矩阵移动了多远（‖ΔW‖/‖W‖）。

# %%
tuned = minituner.full(base)
hist = minituner.train(tuned, task, steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                       progress=False)
deltas = delta_weights(base, tuned.base)  # the GPT inside the fine-tuned model
rows = spectrum_rows(deltas, base, ranks=args.ranks, seed=args.seed)
tuned_acc = accuracy(tuned)
show(markdown_table([{"model": "base (no training)", **accuracy(base)},
                     {"model": _("full fine-tuning, {steps} steps").format(steps=args.steps), **tuned_acc}]))
show(markdown_table(summarise(rows, "kind", ["‖ΔW‖/‖W‖"])))

# %% [markdown]
# ## 2. The singular values of every ΔW, beside a random matrix of the same norm
#
# One panel per kind of matrix, one line per layer: σᵢ/σ₁ on a log scale. The dashed
# grey line is the random baseline of one matrix of that kind. A low-rank ΔW drops fast
# after a few σ; a full-rank one stays near the dashed line.

# %% [markdown] lang="zh"
# ## 2. 每个 ΔW 的奇异值，与同范数的随机矩阵对照
#
# 每一类矩阵一个子图，每层一条线：σᵢ/σ₁，对数坐标。灰色虚线是这一类中一个矩阵的随机基线。
# 低秩的 ΔW 在前几个 σ 之后迅速下降；满秩的 ΔW 则一直贴近虚线。

# %%
kinds = list(dict.fromkeys(r["kind"] for r in rows))
fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharey=True)
for ax, kind in zip(axes.flat, kinds):
    mine = [r for r in rows if r["kind"] == kind]
    for r in mine:
        ax.plot((r["σ"] / r["σ"][0]).numpy(), label=label("layer {layer}").format(layer=r["layer"]))
    s_rand = torch.linalg.svdvals(random_like(deltas[mine[0]["matrix"]], seed=args.seed))
    ax.plot((s_rand / s_rand[0]).numpy(), "--", color="grey", label=label("random, same norm"))
    ax.set_yscale("log")
    ax.set_title(f"{kind}_proj {mine[0]['shape'][0]}×{mine[0]['shape'][1]}")
    ax.set_xlabel("i")
    ax.grid(alpha=0.3)
axes[0, 0].set_ylabel("σᵢ / σ₁")
axes[1, 0].set_ylabel("σᵢ / σ₁")
axes[0, 0].legend(fontsize=7)
fig.suptitle(label("Singular values of ΔW = W_tuned − W_base after full fine-tuning"))
fig.tight_layout()
save_figure(fig, out / "singular_values.png");

# %% [markdown]
# ## 3. How much of ‖ΔW‖² the top r directions hold, per kind and per layer
#
# "share r" is for ΔW, "random r" for the same-norm random matrix. "eff. rank" is Roy &
# Vetterli's; the "r for …" column the smallest rank that keeps nine tenths of ‖ΔW‖² (of the full rank, the matrix's smaller side).

# %% [markdown] lang="zh"
# ## 3. 前 r 个方向占 ‖ΔW‖² 的多少：按矩阵类别、按层
#
# “占比 r”是 ΔW 的，“随机 r”是同范数随机矩阵的。“有效秩”按 Roy 与 Vetterli 的定义；
# “保留……所需的 r”一列是保留 ‖ΔW‖² 的九成所需的最小秩（满秩即矩阵较短的那一边）。

# %%
cols = [f"share r={r}" for r in args.ranks] + [f"random r={r}" for r in args.ranks] + ["eff. rank", "eff. rank random",
                                                                             "r for 90%"]
# the rank columns' headers in the run's language (the other headers are messages as they are)
header = {f"{kind} r={r}": text.format(r=r) for r in args.ranks
          for kind, text in (("share", _("share r={r}")), ("random", _("random r={r}")))}


def shown(table: list[dict]) -> list[dict]:
    return [{header.get(c, c): v for c, v in row.items()} for row in table]


show(markdown_table(shown(summarise(rows, "kind", cols))))
show(markdown_table(shown(summarise(rows, "layer", [f"share r={r}" for r in args.ranks] + ["eff. rank", "r for 90%"]))))

# %% [markdown]
# ## 4. Cut ΔW to rank r, or train LoRA at rank r?
#
# "truncated": the base plus every ΔW cut to its best rank-r matrix; the embeddings, biases
# and LayerNorms stay the base's (LoRA does not train them either), so the last row, "all of
# ΔW", is full fine-tuning's matrices only, not full fine-tuning itself (section 1's row). "LoRA": trained from the
# base at rank r on the same 24 matrices (`target_modules="all"`, α = 2r), the same number
# of numbers. "random ΔW" adds the same-norm random matrices instead: how much damage an
# update of that size does when it carries no information. "LoRA ‖ΔW‖/‖W‖" is how far the
# trained adapter moved each matrix (the mean over the 24), to set beside full
# fine-tuning's in section 1.

# %% [markdown] lang="zh"
# ## 4. 把 ΔW 截断到秩 r，还是以秩 r 训练 LoRA？
#
# “截断”：基座模型加上每个 ΔW 截断后的最佳秩 r 矩阵；
# 嵌入、偏置和层归一化保持基座模型的值（LoRA 也不训练它们），所以最后一行“完整 ΔW”只包含全量微调得到的那些矩阵，并不是全量微调本身（第 1 节的那一行）。
# “LoRA”：从基座模型出发，以秩 r 在同样的 24 个矩阵上训练（`target_modules="all"`，α = 2r），训练的数一样多。
# “随机 ΔW”则换成加上同范数的随机矩阵：一个大小相同、却不携带任何信息的更新会造成多大的破坏。
# “LoRA ‖ΔW‖/‖W‖”是训练出的适配器让每个矩阵移动了多远（24 个矩阵的平均），
# 可以与第 1 节中全量微调的值对照。

# %%
results = []
for r in args.ranks:
    lora = minituner.lora(base, r=r, lora_alpha=2 * r, target_modules="all", seed=args.seed)
    minituner.train(lora, task, steps=args.lora_steps, lr=args.lora_lr, batch_size=args.batch_size,
                    seed=args.seed, progress=False)
    cut, trained = accuracy(truncated_model(base, deltas, r)), accuracy(lora)
    adapted = lora_layers(lora.base)
    with torch.no_grad():
        moved = sum(layer.get_delta_weight("default").norm().item() / base.get_submodule(name).weight.norm().item()
                    for name, layer in adapted.items()) / len(adapted)
    results.append({"r": r, "numbers per model": count_parameters(lora)[0],
                    "truncated val": cut["val"], "truncated test": cut["test"],
                    "LoRA val": trained["val"], "LoRA test": trained["test"], "LoRA ‖ΔW‖/‖W‖": moved})
every, rand = accuracy(with_deltas(base, deltas)), accuracy(with_deltas(
    base, {n: random_like(d, seed=args.seed + i) for i, (n, d) in enumerate(deltas.items())}))
results.append({"r": _("{rank} (all of ΔW)").format(rank=rows[0]["full rank"]),
                "numbers per model": sum(d.numel() for d in deltas.values()),
                "truncated val": every["val"], "truncated test": every["test"]})
show(markdown_table(results))
print("\n" + _("base + random ΔW (same norms): val {val:.3f}, test {test:.3f}").format(val=rand["val"], test=rand["test"]))

fig, ax = plt.subplots(figsize=(6, 4))
rs = [row["r"] for row in results[:-1]]
ax.plot(rs, [row["truncated test"] for row in results[:-1]], "o-", label=label("full fine-tuning's ΔW cut to rank r"))
ax.plot(rs, [row["LoRA test"] for row in results[:-1]], "s-", label=label("LoRA trained at rank r"))
ax.axhline(every["test"], color="k", lw=0.8, label=label("all of ΔW (full fine-tuning's matrices)"))
ax.axhline(accuracy(base)["test"], color="grey", ls=":", label=label("base"))
ax.axhline(rand["test"], color="red", ls="--", lw=0.8, label=label("base + random ΔW"))
ax.set_xscale("log", base=2)
ax.set_xlabel(label("rank r"))
ax.set_ylabel(label("test exact-match accuracy"))
ax.set_ylim(-0.02, 1.02)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
save_figure(fig, out / "truncation_vs_lora.png");

# %% [markdown]
# ## Conclusions: what this says about the premise (小结)
#
# How to read the tables above:
#
# - **Is ΔW low-rank?** "share r" far above "random r" means the update is concentrated in a
#   few directions; the effective rank says how far from full it is. A spectrum that decays
#   but never stops is *approximately* low-rank: every cut throws something away.
# - **Does low rank suffice?** Truncation compresses what full fine-tuning found; LoRA
#   searches the rank-r set from the start. If a small cut keeps the accuracy of all of ΔW,
#   the part of ΔW the task needs lives in r directions: the premise holds. If the cut falls
#   below full fine-tuning while LoRA at the same r does not, full fine-tuning's ΔW carries
#   much that the task did not need, yet a low-rank update that works *exists*: the premise
#   holds for the task, not for ΔW itself.
# - **Where it fails**: the random baseline changes the model by the same amount with no
#   information; a cut of a spread-out ΔW keeps a small part of it.
#
# The cell below prints each verdict from the numbers.

# %% [markdown] lang="zh"
# ## 结论：这对低秩假设说明了什么
#
# 怎样读上面的表格：
#
# - **ΔW 是低秩的吗？** “占比 r”远高于“随机 r”，说明更新集中在少数几个方向上；有效秩说明它离满秩有多远。
#   奇异值谱一路衰减却始终不归零，就是*近似*低秩：每一次截断都会丢掉一些东西。
# - **低秩够用吗？** 截断是在压缩全量微调找到的东西；LoRA 则从一开始就只在秩 r 的矩阵里搜索。
#   如果一个很小的截断就能保持完整 ΔW 的准确率，那么任务需要的那部分 ΔW 就落在 r 个方向里：前提成立。
#   如果截断后的准确率低于全量微调，而同样 r 的 LoRA 并没有，说明全量微调的 ΔW 里有很多是任务并不需要的，
#   但一个管用的低秩更新*确实存在*：前提对任务成立，对 ΔW 本身却不成立。
# - **在哪里失效**：随机基线以同样的幅度改变模型，却不带任何信息；
#   对一个分散的 ΔW 做截断，只能保留它的一小部分。
#
# 下面的代码单元根据这些数字打印每一条结论。

# %%
mean = {c: sum(r[c] for r in rows) / len(rows) for c in ("eff. rank", "eff. rank random", "r for 90%", "‖ΔW‖/‖W‖")}
r4 = args.ranks[min(2, len(args.ranks) - 1)]
share, share_rand = (sum(r[f"{k} r={r4}"] for r in rows) / len(rows) for k in ("share", "random"))
tol = 2 / len(task.val)  # two validation rows
enough = next((row for row in results[:-1] if row["truncated val"] >= every["val"] - tol), None)
base_val = accuracy(base)["val"]
below = [row for row in results[:-1] if row["LoRA val"] < base_val]
if enough is None:
    suffices = _("Does low rank suffice? No cut up to r = {r} keeps all of ΔW's validation accuracy ({every:.3f}) "
                 "within two rows.").format(r=args.ranks[-1], every=every["val"])
else:
    suffices = _("Does low rank suffice? Rank {r} keeps all of ΔW's validation accuracy within two rows ({cut:.3f} vs "
                 "{every:.3f}; test {cut_test:.3f} vs {every_test:.3f}); LoRA trained at r = {r}: {lora:.3f} (test "
                 "{lora_test:.3f}).").format(r=enough["r"], cut=enough["truncated val"], every=every["val"],
                                              cut_test=enough["truncated test"], every_test=every["test"],
                                              lora=enough["LoRA val"], lora_test=enough["LoRA test"])
if below:
    further = all(row["LoRA ‖ΔW‖/‖W‖"] > mean["‖ΔW‖/‖W‖"] for row in below)
    lora_vs_base = _("On this one seed, LoRA ended below the untrained base's validation accuracy ({base:.2f}) at "
                     "r = {ranks} ({accs}); it moved each matrix by {moves} of its norm, full fine-tuning by "
                     "{full:.3f}").format(
        base=base_val, ranks=_(", ").join(str(row["r"]) for row in below),
        accs=_(", ").join(f"{row['LoRA val']:.2f}" for row in below),
        moves=_(", ").join(f"{row['LoRA ‖ΔW‖/‖W‖']:.3f}" for row in below), full=mean["‖ΔW‖/‖W‖"]) + (
        _(": at lr {lr} those ranks moved W further than full fine-tuning did (α = 2r keeps the scale α/r = 2 at "
          "every rank, and with Adam B·A grows with r: lesson 06).").format(lr=args.lora_lr) if further else _("."))
else:
    lora_vs_base = _("On this one seed, LoRA ended above the untrained base's validation accuracy ({base:.2f}) at "
                     "every rank.").format(base=base_val)
show(conclusions(
    _("Is ΔW low-rank? Its top {r} directions hold {share:.0%} of ‖ΔW‖² (random, same norm: {random:.0%}), {ratio:.1f}× "
      "chance; mean effective rank {eff:.1f} of {full} (random: {eff_random:.1f}); 90% of ‖ΔW‖² needs {r90:.1f} "
      "directions on average").format(r=r4, share=share, random=share_rand, ratio=share / share_rand,
                                      eff=mean["eff. rank"], full=rows[0]["full rank"],
                                      eff_random=mean["eff. rank random"], r90=mean["r for 90%"])
    + (_(": concentrated, but only approximately low-rank.") if share > 2 * share_rand else _(".")),
    _("Validation accuracy: full fine-tuning {tuned:.3f}; its matrices' ΔW alone on the base (all of ΔW, embeddings, "
      "biases and LayerNorms left as the base's) {every:.3f}.").format(tuned=tuned_acc["val"], every=every["val"]),
    suffices,
    lora_vs_base))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/09_truncate.py`; write the function bodies, then run `minituner check 09_truncate` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `truncate`.** Write the closest rank-r matrix [ΔW]_r = U_r Σ_r V_rᵀ with `torch.linalg.svd`.
# 2. **Predict, then measure.** For the ΔW of 全量微调, how small can r be before the test accuracy of the truncated model falls? Compare with a random matrix of the same norm.
# 3. **Explain.** Why does the energy share of the top r singular values say more than the rank itself?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/09_truncate.py`：写好函数体后运行 `minituner check 09_truncate --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`truncate`。** 用 `torch.linalg.svd` 求出最接近 ΔW 的秩 r 矩阵 [ΔW]_r = U_r Σ_r V_rᵀ。
# 2. **先预测，再测量。** 对全量微调得到的 ΔW，r 最小能取多少，截断后模型的测试集准确率才不下降？再与同范数的随机矩阵比较。
# 3. **解释。** 为什么前 r 个奇异值的能量占比比秩本身更能说明问题？
