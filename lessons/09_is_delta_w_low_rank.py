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
from minituner.lesson import options
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


print(f"full fine-tuning {args.steps} steps at lr {args.lr}; LoRA {args.lora_steps} steps at lr {args.lora_lr}; "
      f"batch {args.batch_size}, seed {args.seed}; ranks {args.ranks}")

# %% [markdown]
# ## 1. Full fine-tuning makes the ΔW to study
#
# Every tensor trains; afterwards every Linear's ΔW is read off. The table puts the base
# beside the tuned model, and says how far each kind of matrix moved (‖ΔW‖/‖W‖).

# %%
tuned = minituner.full(base)
hist = minituner.train(tuned, task, steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                       progress=False)
deltas = delta_weights(base, tuned.base)  # the GPT inside the fine-tuned model
rows = spectrum_rows(deltas, base, ranks=args.ranks, seed=args.seed)
tuned_acc = accuracy(tuned)
show(markdown_table([{"model": "base (no training)", **accuracy(base)},
                     {"model": f"full fine-tuning, {args.steps} steps", **tuned_acc}]))
show(markdown_table(summarise(rows, "kind", ["‖ΔW‖/‖W‖"])))

# %% [markdown]
# ## 2. The singular values of every ΔW, beside a random matrix of the same norm
#
# One panel per kind of matrix, one line per layer: σᵢ/σ₁ on a log scale. The dashed
# grey line is the random baseline of one matrix of that kind. A low-rank ΔW drops fast
# after a few σ; a full-rank one stays near the dashed line.

# %%
kinds = list(dict.fromkeys(r["kind"] for r in rows))
fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharey=True)
for ax, kind in zip(axes.flat, kinds):
    mine = [r for r in rows if r["kind"] == kind]
    for r in mine:
        ax.plot((r["σ"] / r["σ"][0]).numpy(), label=f"layer {r['layer']}")
    s_rand = torch.linalg.svdvals(random_like(deltas[mine[0]["matrix"]], seed=args.seed))
    ax.plot((s_rand / s_rand[0]).numpy(), "--", color="grey", label="random, same norm")
    ax.set_yscale("log")
    ax.set_title(f"{kind}_proj {mine[0]['shape'][0]}×{mine[0]['shape'][1]}")
    ax.set_xlabel("i")
    ax.grid(alpha=0.3)
axes[0, 0].set_ylabel("σᵢ / σ₁")
axes[1, 0].set_ylabel("σᵢ / σ₁")
axes[0, 0].legend(fontsize=7)
fig.suptitle(label("Singular values of ΔW = W_tuned − W_base after full fine-tuning", "ΔW 的奇异值"))
fig.tight_layout()
save_figure(fig, out / "singular_values.png");

# %% [markdown]
# ## 3. How much of ‖ΔW‖² the top r directions hold, per kind and per layer
#
# "share r" is for ΔW, "random r" for the same-norm random matrix. "eff. rank" is Roy &
# Vetterli's; the "r for …" column the smallest rank that keeps nine tenths of ‖ΔW‖² (of the full rank, the matrix's smaller side).

# %%
cols = [f"share r={r}" for r in args.ranks] + [f"random r={r}" for r in args.ranks] + ["eff. rank", "eff. rank random",
                                                                             "r for 90%"]
show(markdown_table(summarise(rows, "kind", cols)))
show(markdown_table(summarise(rows, "layer", [f"share r={r}" for r in args.ranks] + ["eff. rank", "r for 90%"])))

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
results.append({"r": f"{rows[0]['full rank']} (all of ΔW)", "numbers per model": sum(d.numel() for d in deltas.values()),
                "truncated val": every["val"], "truncated test": every["test"]})
show(markdown_table(results))
print(f"\nbase + random ΔW (same norms): val {rand['val']:.3f}, test {rand['test']:.3f}")

fig, ax = plt.subplots(figsize=(6, 4))
rs = [row["r"] for row in results[:-1]]
ax.plot(rs, [row["truncated test"] for row in results[:-1]], "o-", label="full fine-tuning's ΔW cut to rank r")
ax.plot(rs, [row["LoRA test"] for row in results[:-1]], "s-", label="LoRA trained at rank r")
ax.axhline(every["test"], color="k", lw=0.8, label="all of ΔW (full fine-tuning's matrices)")
ax.axhline(accuracy(base)["test"], color="grey", ls=":", label="base")
ax.axhline(rand["test"], color="red", ls="--", lw=0.8, label="base + random ΔW")
ax.set_xscale("log", base=2)
ax.set_xlabel(label("rank r", "秩 r"))
ax.set_ylabel(label("test exact-match accuracy", "测试集准确率"))
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

# %%
mean = {c: sum(r[c] for r in rows) / len(rows) for c in ("eff. rank", "eff. rank random", "r for 90%", "‖ΔW‖/‖W‖")}
r4 = args.ranks[min(2, len(args.ranks) - 1)]
share, share_rand = (sum(r[f"{k} r={r4}"] for r in rows) / len(rows) for k in ("share", "random"))
print(f"- Is ΔW low-rank? Its top {r4} directions hold {share:.0%} of ‖ΔW‖² (random, same norm: {share_rand:.0%}), "
      f"{share / share_rand:.1f}× chance; mean effective rank {mean['eff. rank']:.1f} of {rows[0]['full rank']} "
      f"(random: {mean['eff. rank random']:.1f}); 90% of ‖ΔW‖² needs {mean['r for 90%']:.1f} directions on average"
      + (": concentrated, but only approximately low-rank." if share > 2 * share_rand else "."))
tol = 2 / len(task.val)  # two validation rows
enough = next((row for row in results[:-1] if row["truncated val"] >= every["val"] - tol), None)
print(f"- Validation accuracy: full fine-tuning {tuned_acc['val']:.3f}; its matrices' ΔW alone on the base (all of ΔW, "
      f"embeddings, biases and LayerNorms left as the base's) {every['val']:.3f}.")
if enough is None:
    print(f"- Does low rank suffice? No cut up to r = {args.ranks[-1]} keeps all of ΔW's validation accuracy "
          f"({every['val']:.3f}) within two rows.")
else:
    print(f"- Does low rank suffice? Rank {enough['r']} keeps all of ΔW's validation accuracy within two rows "
          f"({enough['truncated val']:.3f} vs {every['val']:.3f}; test {enough['truncated test']:.3f} vs "
          f"{every['test']:.3f}); LoRA trained at r = {enough['r']}: {enough['LoRA val']:.3f} (test {enough['LoRA test']:.3f}).")
base_val = accuracy(base)["val"]
below = [row for row in results[:-1] if row["LoRA val"] < base_val]
if below:
    accs = ", ".join(f"{row['LoRA val']:.2f}" for row in below)
    moves = ", ".join(f"{row['LoRA ‖ΔW‖/‖W‖']:.3f}" for row in below)
    print(f"- On this one seed, LoRA ended below the untrained base's validation accuracy ({base_val:.2f}) at r = "
          f"{', '.join(str(row['r']) for row in below)} ({accs}); it moved each matrix by {moves} of its norm, "
          f"full fine-tuning by {mean['‖ΔW‖/‖W‖']:.3f}"
          + (f": at lr {args.lora_lr} those ranks moved W further than full fine-tuning did (α = 2r keeps the scale "
             "α/r = 2 at every rank, and with Adam B·A grows with r: lesson 06)."
             if all(row["LoRA ‖ΔW‖/‖W‖"] > mean["‖ΔW‖/‖W‖"] for row in below) else "."))
else:
    print(f"- On this one seed, LoRA ended above the untrained base's validation accuracy ({base_val:.2f}) at every rank.")

# %% [markdown]
# ## 小结
#
# 下面每句话里的数字都由代码从上面的结果打印。

# %%
print(f"- 文章说大模型过度参数化,背后有一个低维的本质模型;LoRA 论文把它落实为:微调带来的 ΔW 是低秩的。"
      f"实测:ΔW 的前 {r4} 个方向占 ‖ΔW‖² 的 {share:.0%},同样范数的随机矩阵只占 {share_rand:.0%};"
      f"平均有效秩 {mean['eff. rank']:.1f}(满秩 {rows[0]['full rank']})。")
print(f"- ΔW 是近似低秩,而不是严格低秩:要保留 90% 的 ‖ΔW‖²,平均需要 {mean['r for 90%']:.1f} 个方向。")
print(f"- 验证集准确率:全量微调 {tuned_acc['val']:.3f},只把它的矩阵改变量加回基座 {every['val']:.3f}"
      + (f";截断到秩 {enough['r']} 仍保持在两行之内({enough['truncated val']:.3f})。" if enough else
         f";截断到秩 {args.ranks[-1]} 以内都不能保持在两行之内。"))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/09_truncate.py`; write the function bodies, then run `minituner check 09_truncate` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `truncate`.** Write the closest rank-r matrix [ΔW]_r = U_r Σ_r V_rᵀ with `torch.linalg.svd`.
# 2. **Predict, then measure.** For the ΔW of 全量微调, how small can r be before the test accuracy of the truncated model falls? Compare with a random matrix of the same norm.
# 3. **Explain.** Why does the energy share of the top r singular values say more than the rank itself?
#
# 编程题的骨架在 `exercises/09_truncate.py`：写好函数体后运行 `minituner check 09_truncate --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`truncate`。** 用 `torch.linalg.svd` 实现最接近的秩 r 矩阵 [ΔW]_r = U_r Σ_r V_rᵀ。
# 2. **先预测再测量。** 对全量微调得到的 ΔW，r 能小到多少而截断后模型的测试准确率不下降？与同范数的随机矩阵比较。
# 3. **解释。** 为什么前 r 个奇异值的能量占比比秩本身更能说明问题？
