# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 03 · Freezing: how many layers must train? (冻结, article §4 step 5)
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
# number of trainable parameters beside the test accuracy, and then asks why the
# cheapest trained row does as well as it does.
#
# Run it: `python lessons/03_freeze.py` (`--smoke` for the quick test preset).

# %%
import matplotlib.pyplot as plt
import torch

import minituner
from minituner.lesson import options, run
from minituner.report import label, markdown_table, parameter_table, plot_curves, save_figure

args = options("Lesson 03: freezing", smoke=dict(steps=3, seeds=(0,)), out="runs/03_freeze",
               steps=40, batch_size=16, lr=5e-4, seeds=(0, 1))
torch.manual_seed(args.seeds[0])
base, task = minituner.load_base(), minituner.make_task("classify")
print(f"{args.steps} steps per run, batch {args.batch_size}, lr {args.lr}; seeds {args.seeds}")

# %% [markdown]
# ## 1. What one setting freezes (冻结一层)
#
# With N = 1 only the top block and `ln_f` train. The table is computed from the model's
# own tensors (`minituner.parameter_table`); the check below it compares one block's count
# with the closed form 12C² + 13C (attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C).

# %%
one = minituner.freeze(base, trainable_layers=1)
print(markdown_table(parameter_table(one.base, depth=1)))  # the GPT inside the wrapper
C = base.config.n_embd
block = sum(p.numel() for p in one.base.h[-1].parameters())
print(f"one block: {block:,} = 12·{C}² + 13·{C} = {12 * C * C + 13 * C:,}: {block == 12 * C * C + 13 * C}")
one.print_trainable_parameters();

# %% [markdown]
# ## 2. The sweep: N = 0 … depth, then full fine-tuning (全量微调)
#
# Every row trains the same number of steps with the same learning rate, batch and seed;
# only what is frozen changes. N = 0 with nothing trainable is the base as shipped. The
# "head" row trains only the output head, which this GPT (like GPT-2) ties to the token
# embedding `wte`: the same V × C matrix reads the input characters and scores the
# output ones. The last row is full fine-tuning: every block plus the embeddings.
# "train loss" is the mean training loss of the last ten steps; the test split asks about
# facts the task's training split never shows.

# %%
SETTINGS = [("head only (tied wte)", 0, {"train_head": True})]
SETTINGS += [(f"top {n} block{'s' * (n > 1)}", n, {}) for n in range(1, base.config.n_layer + 1)]
SETTINGS += [("full (+ embeddings)", base.config.n_layer, {"train_embeddings": True})]
seed = args.seeds[0]
rows, histories = [run("base, nothing trained", base, task, steps=0)[0]], {}
for name, n, kwargs in SETTINGS:
    row, histories[name] = run(name, minituner.freeze(base, trainable_layers=n, **kwargs), task, args.steps,
                                args.lr, batch_size=args.batch_size, seed=seed, eval_every=max(2, args.steps // 6))
    rows.append(row)
print(markdown_table(rows, ["run", "trainable", "trainable %", "train loss", "train acc", "test loss", "test acc", "s"]))

# %% [markdown]
# ## 3. The picture
#
# First: test accuracy per setting (bars) and the share of parameters it trains (line).
# Then: each run's training loss and validation loss (验证集). A run can drive its training
# loss close to zero (it fits the training descriptions) and still not answer the held-out ones.

# %%
fig, ax1 = plt.subplots(figsize=(7, 4.5), layout="constrained")
xs = range(len(rows))
ax1.bar(xs, [r["test acc"] for r in rows], color="tab:blue", alpha=0.7)
ax1.set_ylabel(label("test accuracy (exact match)", "测试集准确率"), color="tab:blue")
ax1.set_ylim(0, 1)
ax1.set_xticks(list(xs), [r["run"] for r in rows], rotation=30, ha="right", fontsize=8)
twin = ax1.twinx()
twin.plot(xs, [r["trainable %"] for r in rows], "o-", color="tab:red")
twin.set_ylabel(label("trainable parameters, % of the model", "可训练参数占比"), color="tab:red")
twin.set_ylim(0, 105)
ax1.set_title(label("How much must train?", "需要训练多少?"))
ax1.grid(alpha=0.3, axis="y")
save_figure(fig, args.out / "freeze_sweep.png")
plot_curves(histories, "classify: training and validation loss per frozen setting", args.out / "freeze_curves.png")

# %% [markdown]
# ## 4. The head alone against a whole block: seeds and learning rates
#
# The head-only row trains a few thousand numbers, the top-1-block row fifty thousand;
# the sweep puts their test accuracies side by side. Whichever is ahead, three
# explanations to separate: luck (one seed; one test row is a small step of accuracy,
# printed below), the learning rate (one rate, printed at the top, for every row: a whole
# block moves far more numbers at each step than the head does), or over-fitting (过拟合).
# We rerun both rows with another seed (the batches' order) and the top block again at a
# fifth of the rate; then compare what each row fits on the training split with what it
# gets on the held-out one.

# %%
sweep = {row["run"]: row for row in rows}
probe = []
for name, n, kwargs, lr in [("head only (tied wte)", 0, {"train_head": True}, args.lr),
                             ("top 1 block", 1, {}, args.lr),
                             ("top 1 block", 1, {}, args.lr / 5)]:
    accs, train_accs = [], []
    for s in args.seeds:
        if s == seed and lr == args.lr:  # this run is the sweep's: reuse it
            row = sweep[name]
        elif s != seed and lr != args.lr:  # the smaller rate on one seed only, to keep the lesson short
            continue
        else:
            row, _ = run(name, minituner.freeze(base, trainable_layers=n, **kwargs), task, args.steps, lr,
                         batch_size=args.batch_size, seed=s)
        accs.append(row["test acc"])
        train_accs.append(row["train acc"])
    probe.append({"run": name, "lr": lr, "seeds": len(accs), "test acc min": min(accs),
                  "test acc mean": sum(accs) / len(accs), "test acc max": max(accs),
                  "train acc mean": sum(train_accs) / len(train_accs)})
print(markdown_table(probe))
print(f"one test row = {1 / len(task.test):.4f} of accuracy ({len(task.test)} rows)")

# %% [markdown]
# ## Conclusions
#
# Read from the tables above (the cell below prints each statement from them).

# %%
best = max(rows[1:], key=lambda r: r["test acc"])
head, full = rows[1], rows[-1]
print(f"- Best test accuracy: {best['run']} ({best['test acc']:.3f}, {best['trainable %']:.1f}% of the parameters); "
      f"full fine-tuning {full['test acc']:.3f}; the base untrained {rows[0]['test acc']:.3f}.")
print(f"- Training the tied head alone ({head['trainable']:,} numbers, {head['trainable %']:.1f}%) moves test "
      f"accuracy {rows[0]['test acc']:.3f} -> {head['test acc']:.3f}: no block changed, so whatever it gained the "
      "frozen blocks already computed; the head only changed which character they lead to.")
beaten = [r["run"] for r in rows[2:-1] if r["test acc"] < head["test acc"]]
print(f"- The head alone scores above {len(beaten)} of the {len(rows) - 3} block rows"
      + (f" ({', '.join(beaten)})." if beaten else "."))
fit = [r["run"] for r in rows[1:] if r["train acc"] == 1.0]
print(f"- Rows that fit every training description (train acc 1): {', '.join(fit) or 'none'}.")
h, b, slow = probe
overlap = h["test acc min"] <= b["test acc max"] and b["test acc min"] <= h["test acc max"]
print(f"- Over {h['seeds']} seeds at lr {args.lr}: head only {h['test acc min']:.3f}–{h['test acc max']:.3f}, "
      f"top block {b['test acc min']:.3f}–{b['test acc max']:.3f}: the ranges "
      f"{'overlap, so one seed cannot rank them' if overlap else 'do not overlap on these seeds'}.")
print(f"- At a fifth of the rate the top block reaches train acc {slow['train acc mean']:.3f} and test acc "
      f"{slow['test acc mean']:.3f}, against {b['train acc mean']:.3f} and {b['test acc mean']:.3f} at lr {args.lr}.")
gap = {r["run"]: r["train acc"] - r["test acc"] for r in rows[1:]}
print("- Train acc − test acc (the generalisation gap): " + ", ".join(f"{k} {v:+.3f}" for k, v in gap.items()) + ".")
curve = histories["top 1 block"].val  # (step, validation loss, accuracy)
low = min(curve, key=lambda e: e[1])
rose = curve[-1][1] > 1.01 * low[1]  # by more than 1%: not the last digit of a flat curve
print(f"- The top block's validation loss is lowest at step {low[0]} ({low[1]:.3f}) and ends at {curve[-1][1]:.3f}"
      + (": it rose while the training loss fell, over-fitting (过拟合). " if rose else
         " (still falling). " if low is curve[-1] else " (flat at the end). ")
      + (f"A block can fit the training descriptions themselves (gap {gap['top 1 block']:+.3f}); the head alone "
         f"cannot (gap {gap['head only (tied wte)']:+.3f}): it can only change which name the frozen blocks' features "
         "lead to, so what it learns carries over to the held-out descriptions."
         if gap["top 1 block"] > gap["head only (tied wte)"] else ""))
