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

# %%
import tempfile
from pathlib import Path
from statistics import mean

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.data import encode_examples
from minituner.lesson import MatmulCounter, options, run
from minituner.methods.lora import lora_layers
from minituner.model import count_parameters
from minituner.model_families import table as families_table
from minituner.report import markdown_table, plot_curves, save_figure, show
from minituner.verdict import compare, trend
from minituner.verify.lora import article_mapping

args = options("Lesson 06: LoRA", smoke=dict(rows=48, steps=4, ranks=(4,), seeds=(0,)), out="runs/06_lora",
               steps=60, batch_size=8, lr=1e-2, alpha=16.0, full_lr=5e-4, ranks=(1, 4, 16), seeds=(0, 1, 2), rows=None)
torch.manual_seed(args.seeds[0])
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
d, L = base.config.n_embd, base.config.n_layer
print(f"ranks {args.ranks}, seeds {args.seeds}; {args.steps} steps, batch {args.batch_size}; "
      f"LoRA lr {args.lr}, α {args.alpha:g}; full fine-tuning lr {args.full_lr}")

# %% [markdown]
# ## 1. One LoRA layer, and the article's letters
#
# Wrap the base's query projections (`q_proj`) and value projections (`v_proj`), LLaMA's
# default targets in the article's §5 table. Three facts, each computed: the shapes of
# the article's A and B; a fresh LoRA model gives exactly the base's logits; the
# trainable count is r·(in + out) per targeted matrix. The letter mapping itself is the
# check `minituner verify` runs (`verify.lora.article_mapping`): it fills B with nonzero
# values, as training would, and compares the layer with (W + A·B)X + b.

# %%
r = 4
fresh = minituner.lora(base, r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"])
layer = fresh.base.h[0].attn.q_proj
m, n = layer.weight.shape
print(f"W of h.0.attn.q_proj is {m}×{n}; the article's A = lora_B is {tuple(layer.lora_B['default'].shape)} (m×r), "
      f"its B = lora_A is {tuple(layer.lora_A['default'].shape)} (r×n)")
residual, tolerance = article_mapping()
print(f"max |layer(x) − ((W + A·B) X + b)ᵀ| = {residual:.1e} (≤ {tolerance:g}: {residual <= tolerance})")
x = task.test.x[:16]
print(f"fresh LoRA vs base, max |Δlogits| = {(fresh(x) - base(x)).abs().max().item():.1e}  (lora_B = 0, so ΔW = 0)")
print(f"trainable: r·(in + out)·2·L = {r}·({d} + {d})·2·{L} = {r * 2 * d * 2 * L:,}; counted {count_parameters(fresh)[0]:,}")
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

# %%
every = max(2, args.steps // 8)
train_kw = dict(batch_size=args.batch_size, warmup=min(10, args.steps // 5), eval_every=every)


def val_acc(row, model):
    """The row, with the model's exact-match accuracy on the validation split (what chooses)."""
    return row | {"val acc": minituner.evaluate(model, task.val)["accuracy"]}


untrained = val_acc(run("base, untrained", base, task, steps=0)[0], base)
rows, histories, models = [], {}, {}
full_model = minituner.full(base)
row, histories["full fine-tuning"] = run("full fine-tuning", full_model, task, args.steps, args.full_lr,
                                         seed=args.seeds[0], **train_kw)
rows.append(val_acc(row, full_model))
for r in args.ranks:
    for seed in args.seeds:
        label = f"LoRA r={r} q,v, seed {seed}"
        models[r, seed] = minituner.lora(base, r=r, lora_alpha=args.alpha, target_modules=["q_proj", "v_proj"], seed=seed)
        row, hist = run(label, models[r, seed], task, args.steps, args.lr, seed=seed, **train_kw)
        rows.append(val_acc(row, models[r, seed]) | {"r": r, "seed": seed})
        if seed == args.seeds[0]:
            histories[f"LoRA r={r} q,v"] = hist
r_all = args.ranks[len(args.ranks) // 2]
wide_model = minituner.lora(base, r=r_all, lora_alpha=args.alpha, target_modules="all", seed=args.seeds[0])
row, histories[f"LoRA r={r_all} all"] = run(f"LoRA r={r_all} all, seed {args.seeds[0]}", wide_model, task,
                                            args.steps, args.lr, seed=args.seeds[0], **train_kw)
rows.append(val_acc(row, wide_model))
show(markdown_table([untrained, *rows], ["run", "trainable", "trainable %", "train loss", "train acc", "val acc",
                                      "test loss", "test acc", "s"]))
print(f"one row = {1 / len(task.val):.4f} of validation accuracy ({len(task.val)} rows), "
      f"{1 / len(task.test):.4f} of test accuracy ({len(task.test)} rows)")
plot_curves(histories, "classify: LoRA ranks and targets vs full fine-tuning", args.out / "lora_curves.png");

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

# %%
lora_rows = [row for row in rows if "q,v" in row["run"]]
norms = {key: sum(l.get_delta_weight("default").norm().item() for l in lora_layers(m.base).values()) / len(lora_layers(m.base))
         for key, m in models.items()}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for seed in args.seeds:
    mine = [row for row in lora_rows if row["run"].endswith(f"seed {seed}")]
    ax1.plot([row["r"] for row in mine], [row["val acc"] for row in mine], "o-", label=f"validation, seed {seed}")
    ax1.plot([row["r"] for row in mine], [row["test acc"] for row in mine], "s--", label=f"test, seed {seed}")
    ax2.plot(args.ranks, [norms[r, seed] for r in args.ranks], "o-", label=f"seed {seed}")
ax1.axhline(rows[0]["val acc"], color="grey", ls=":", label="full fine-tuning, validation")
for ax in (ax1, ax2):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rank r")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
ax1.set_ylabel("accuracy (exact match)")
ax1.set_ylim(-0.02, 1.02)
ax2.set_ylabel("mean ‖ΔW‖ = ‖(α/r)·B·A‖ after training")
fig.suptitle(f"LoRA on q,v: rank vs accuracy and update size (α = {args.alpha:g})")
save_figure(fig, args.out / "lora_rank_sweep.png")
show(markdown_table([{"r": r, **{f"‖ΔW‖, seed {s}": norms[r, s] for s in args.seeds}} for r in args.ranks]))

# %% [markdown]
# ## 4. Relabelling with LoRA: a surface mapping, or knowledge?
#
# The article's §4 step 3: what was recognised as a cat is now to be called a dog. The
# relabel task swaps the two names. The training split shows some kinds of fact of every
# animal; the test split describes the test animals by their other kinds (lesson 02 prints
# them), the cat and the dog among them. Does the adapter
# swap the *names* only for the descriptions it saw, or for the animals?

# %%
relabel = minituner.make_task("relabel", rows=args.rows)
r = args.ranks[len(args.ranks) // 2]
swap_model = minituner.lora(base, r=r, lora_alpha=args.alpha, target_modules=["q_proj", "v_proj"], seed=args.seeds[0])
swap_row, _ = run(f"LoRA r={r} q,v (relabel)", swap_model, relabel, args.steps, args.lr, seed=args.seeds[0],
                  batch_size=args.batch_size, warmup=min(10, args.steps // 5))
flip = {" dog.": " cat.", " cat.": " dog."}
seen_ok = minituner.evaluate(swap_model, relabel.train)["correct"]
test_ok = minituner.evaluate(swap_model, relabel.test)["correct"]
old_names = encode_examples("old", [(p, flip[a]) for p, a in relabel.test.examples if a in flip], relabel.tokenizer)
said_old = minituner.evaluate(swap_model, old_names)["correct"]
cd_seen = [ok for (_, a), ok in zip(relabel.train.examples, seen_ok, strict=True) if a in flip]
cd_test = [ok for (_, a), ok in zip(relabel.test.examples, test_ok, strict=True) if a in flip]
others = [ok for (_, a), ok in zip(relabel.test.examples, test_ok, strict=True) if a not in flip]
swap_stats = {"seen cat/dog rows swapped": f"{sum(cd_seen)} of {len(cd_seen)}",
              "unseen cat/dog rows swapped": f"{sum(cd_test)} of {len(cd_test)}",
              "unseen cat/dog rows with the old name": f"{sum(said_old)} of {len(said_old)}",
              "other animals, unseen, accuracy": sum(others) / len(others)}
show(markdown_table([swap_stats]))

# %% [markdown]
# ## 5. Merge: no extra cost at inference
#
# After training, W ← W + (α/r)·B·A folds the adapter into the matrix. The merged model
# computes the same logits (to float32 rounding) with exactly the base's matrix products:
# the forward is a plain `linear` again (counted with `minituner.lesson.MatmulCounter`).
# The adapter alone is small on disk.

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
print(f"max |merged − unmerged logits| = {(merged - logits).abs().max().item():.2e}; the same greedy next "
      f"character at all {x.numel():,} positions: {torch.equal(merged.argmax(-1), logits.argmax(-1))}")
print("matrix products per forward: " + ", ".join(f"{k} {v}" for k, v in products.items()))
model.unmerge_adapter()
with tempfile.TemporaryDirectory() as folder:
    adapter = Path(model.save_pretrained(f"{folder}/adapter")) / "adapter_model.safetensors"
    base_file = minituner.save_model(base, f"{folder}/base")
    a, b = adapter.stat().st_size, base_file.stat().st_size
print(f"adapter file {a:,} bytes ({len(model.adapter_state_dict())} tensors) vs base {b:,} bytes: {a / b:.1%}")

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

# %%
show(markdown_table(families_table(r=8)))
try:
    minituner.lora(base, target_modules=["query_key_value"])
except ValueError as e:
    print(f"ValueError: {e}")

# %% [markdown]
# ## Conclusions (结论)
#
# Each line is printed from the tables above; the validation split chooses, the test split is
# printed beside.

# %%
full = rows[0]
by_rank = {r: [row for row in lora_rows if row["r"] == r] for r in args.ranks}
val = {r: mean([row["val acc"] for row in v]) for r, v in by_rank.items()}
test = {r: mean([row["test acc"] for row in v]) for r, v in by_rank.items()}
best = max(args.ranks, key=lambda r: val[r])
spread = max(max(row["val acc"] for row in v) - min(row["val acc"] for row in v) for v in by_rank.values())
val_by_seed = {r: {row["seed"]: row["val acc"] for row in v} for r, v in by_rank.items()}
against = [compare(f"r={best}", val_by_seed[best], f"r={r}", val_by_seed[r], "validation accuracy",
                   names_zh=(f"r={best}", f"r={r}", "验证集准确率")) for r in args.ranks if r != best]
print(f"- Validation picks r = {best} among {args.ranks} (mean over seeds {val[best]:.3f}; test {test[best]:.3f}); "
      f"full fine-tuning {full['val acc']:.3f} (test {full['test acc']:.3f}), the untrained base "
      f"{untrained['val acc']:.3f} (test {untrained['test acc']:.3f})."
      + (" Against the other ranks, by the rule: " + "; ".join(v.en() for v in against) + "." if against else ""))
print(f"- Between seeds one rank's validation accuracy differs by up to {spread:.3f}: a smaller difference between "
      "ranks is the order of the batches as much as the rank.")
# the claim "the larger r, the smaller ‖ΔW‖", by the rule between every neighbouring pair of ranks over the seeds
shrinks = trend([f"r={r}" for r in args.ranks], [{s: norms[r, s] for s in args.seeds} for r in args.ranks],
                "‖ΔW‖") if len(args.ranks) > 1 else None
if shrinks:
    print(f"- At a fixed α, {shrinks.en('the larger r, the smaller ‖ΔW‖')}; means over the seeds: "
          + ", ".join(f"r={r}: {mean(norms[r, s] for s in args.seeds):.2f}" for r in args.ranks) + ".")
wide = rows[-1]
curve = histories[f"LoRA r={r_all} all"].val  # (step, validation loss, accuracy) per evaluation
low = min(curve, key=lambda e: e[1])
print(f"- All six projections at r={r_all}: train acc {wide['train acc']:.3f}, validation {wide['val acc']:.3f} "
      f"(test {wide['test acc']:.3f}); its validation loss was lowest at step {low[0]} ({low[1]:.3f}) and ended at "
      f"{curve[-1][1]:.3f} (step {curve[-1][0]})"
      + (": its validation loss rose while it fit the training split, over-fitting (过拟合)."
         if curve[-1][1] > 1.05 * low[1] else "."))
print(f"- Relabelling swapped {swap_stats['seen cat/dog rows swapped']} seen cat/dog descriptions and "
      f"{swap_stats['unseen cat/dog rows swapped']} unseen ones.")
print(f"- Merged: {products['LoRA, merged']} matrix products per forward, as the base ({products['base']}); "
      f"unmerged {products['LoRA, unmerged']}.")

# %% [markdown]
# ## 小结
#
# 下面每句话里的数字都由代码从上面的结果打印。

# %%
print(f"- LoRA 冻结 W,只训练低秩的 ΔW = AB:r = {best} 时只训练 {by_rank[best][0]['trainable']:,} 个参数"
      f"(占 {by_rank[best][0]['trainable %']:.2f}%),验证集准确率 {val[best]:.3f}(测试集 {test[best]:.3f}),"
      f"全量微调为 {full['val acc']:.3f}(测试集 {full['test acc']:.3f})。秩 r 由验证集选出,测试集只在旁边报告"
      + (";与其他秩相比:" + ";".join(v.zh() for v in against) if against else "") + "。")
if shrinks:
    print(f"- 在固定的 α 下,{shrinks.zh('r 越大 ‖ΔW‖ 越小')}。" + (
        "Adam 让 A、B 的每个元素都按学习率移动,缩放 α/r 并不能让不同秩的更新一样大(rsLoRA 用 α/√r)。"
        if shrinks.direction == 1 else ""))
print(f"- 改标签(猫↔狗):训练时见过的 {len(cd_seen)} 条猫狗描述换了 {sum(cd_seen)} 条,没见过的 {len(cd_test)} 条只换了 "
      f"{sum(cd_test)} 条" + (":适配器记住的是描述,不是动物。" if sum(cd_seen) / len(cd_seen) > 2 * sum(cd_test) / len(cd_test)
                            else "。"))
print(f"- 合并 W ← W + ΔW 之后,每次前向的矩阵乘法是 {products['LoRA, merged']} 次,与基座相同:推理不增加计算。")

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/06_lora.py`; write the function bodies, then run `minituner check 06_lora` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `lora_forward`.** Write y = x Wᵀ + b + (α/r)·(x Aᵀ) Bᵀ, the frozen layer plus the 低秩 path.
# 2. **Code: `lora_merge`.** Write W + (α/r)·B A and check by hand that the merged layer gives the same output as the unmerged one.
# 3. **Predict, then measure.** Double r at a fixed α: what happens to the scale α/r and to ‖ΔW‖ after training? Compare with rsLoRA's α/√r.
#
# 编程题的骨架在 `exercises/06_lora.py`：写好函数体后运行 `minituner check 06_lora --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`lora_forward`。** 实现 y = x Wᵀ + b + (α/r)·(x Aᵀ) Bᵀ：冻结的层加上低秩支路。
# 2. **编程：`lora_merge`。** 实现 W + (α/r)·B A，并手动验证合并后的层与未合并时输出相同。
# 3. **先预测再测量。** 固定 α、把 r 翻倍：缩放 α/r 和训练后的 ‖ΔW‖ 会怎样？与 rsLoRA 的 α/√r 比较。
