# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 08 · Every method side by side (全量微调, 冻结, 提示微调, 前缀微调, P-Tuning v2, LoRA)
#
# The article (§3) sorts fine-tuning into full fine-tuning (§3.1) and parameter-efficient
# fine-tuning (参数高效微调, PEFT, §3.2: prompt tuning, prefix tuning, LoRA); §4 step 5 adds
# freezing and §5.1 names P-Tuning v2. This lesson trains each of them from the same shipped
# base, on the same task, with the same data order and seed, plus one row from a random
# initialisation: the floor, what the task alone teaches. It is the same code as
# `minituner compare` (`minituner/compare.py`).
#
# Each method runs at its own learning rate, set in `minituner.compare.methods()` (full
# fine-tuning a small one, soft prompts a large one); the table prints them.
#
# The test split asks facts that the task's training split never shows, so its accuracy
# measures how much of the pretrained knowledge each method can put to use.
#
# Run it: `python lessons/08_compare_all.py` (`--steps N`, `--task`, `--smoke` for the test
# preset). In a notebook the full lesson runs.

# %%
import matplotlib.pyplot as plt

import minituner.compare as cmp
from minituner import lesson
from minituner.report import label, markdown_table, save_figure

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = lesson.options("Lesson 08: every method on one base", smoke=dict(steps=5), out="runs/08_compare_all",
                      task="classify", steps=250)
steps, out = args.steps, args.out
MB = 1e6

# %% [markdown]
# ## 1. Train every method (训练每一种方法)
#
# One line per method as it finishes; then two figures: the training-loss curves of all of them
# (a running mean over 10 steps, log scale), and the trade-off — each method's trainable share
# (log scale) against its test accuracy. Up and to the left is better: more accuracy for fewer
# trained numbers.

# %%
print(f"{steps} steps of each method on `{args.task}`")
rows = cmp.compare(task=args.task, steps=steps, out=out, progress=True)
by_name = {r["method"].split(" (")[0]: r for r in rows}  # "full (全量微调)" -> "full"
full = by_name["full"]

# %% [markdown]
# ## 2. What each method trains, and what it buys (训练了什么,换来了什么)
#
# *trainable %* is the share of the model's parameters the method trains (PEFT's
# `trainable%`); *test acc* is the exact-match accuracy of the greedy answer on the test split.

# %%
print(markdown_table(rows, ["method", "setting", "lr", "trainable params", "trainable %",
                            "train acc", "test loss", "test acc"]))

# %% [markdown]
# ## 3. Memory, read for the student (内存:每一列是什么意思)
#
# What one training step must hold, split in two (`minituner.compare.step_memory_bytes`):
# - **weights, gradients and AdamW state**: every weight (4 bytes each, float32), plus a
#   gradient and AdamW's two moments (m, v) for each *trainable* number — this is where PEFT
#   saves: the optimizer's state shrinks with the trainable count;
# - **saved activations**: the tensors autograd keeps from the forward pass for the backward
#   pass. They depend on how far back the gradient must travel, not on how many numbers train.
#   Prompt tuning trains the fewest numbers, but its gradient must reach the input, through
#   every layer, so it keeps almost every activation; freezing all but the top block stops the
#   backward pass there and keeps only that block's.
#
# *trainable tensor bytes* is 4 × the trainable count: what must be stored to keep the result
# (for prefix tuning, with its training-time MLP; `fold()` shrinks it to the prefixes alone).

# %%
memory = []
for name, r in by_name.items():
    total = r["trainable params"] * 100 / r["trainable %"]  # all parameters of the model
    params = 4 * total + 3 * 4 * r["trainable params"]  # weights + gradients + (m, v), float32
    memory.append({
        "method": name, "trainable params": r["trainable params"],
        "AdamW state MB": r["optimizer state bytes"] / MB,
        "weights+grads+AdamW MB": params / MB,
        "saved activations MB": (r["step memory bytes"] - params) / MB,
        "step memory MB": r["step memory bytes"] / MB,
        "step memory ÷ full": r["step memory bytes"] / full["step memory bytes"],
        "trainable tensor bytes": 4 * r["trainable params"],
    })
print(markdown_table(memory))

fig, ax = plt.subplots(figsize=(7, 3.8))
names = [m["method"] for m in memory]
params_mb = [m["weights+grads+AdamW MB"] for m in memory]
acts_mb = [m["saved activations MB"] for m in memory]
ax.barh(names, params_mb, label=label("weights, gradients, AdamW state", "权重、梯度、优化器状态"))
ax.barh(names, acts_mb, left=params_mb, label=label("activations saved for the backward pass", "反向传播保存的激活值"))
ax.invert_yaxis()
ax.set_xlabel(label("MB one training step holds", "每个训练步占用的内存 (MB)"))
ax.set_title(label("Where a step's memory goes", "一步的内存花在哪里"))
ax.legend(fontsize=8)
save_figure(fig, out / "memory.png")

# %% [markdown]
# ## 4. Does PEFT reduce compute? (PEFT 能减少计算量吗?)
#
# The article (§3.2) says PEFT lowers the computational complexity. The forward pass still runs
# the whole frozen model (plus the adapter), and the backward pass still runs through every layer
# above the lowest trained tensor; only the gradients of frozen weights are skipped. So the time
# of a step falls much less than the trainable count — [errata 8](../docs/errata.md). Times are
# this run's (whole training loop, one seed, on a CPU shared with whatever else runs): a ratio
# near 1 means "the same cost".

# %%
cost = [{"method": name, "trainable ÷ full": r["trainable params"] / full["trainable params"],
         "AdamW state ÷ full": r["optimizer state bytes"] / full["optimizer state bytes"],
         "step memory ÷ full": r["step memory bytes"] / full["step memory bytes"],
         "ms per step": 1000 * r["train s"] / steps,
         "time ÷ full": r["train s"] / full["train s"]} for name, r in by_name.items()]
print(markdown_table(cost))

fig, ax = plt.subplots(figsize=(7, 3.8))
xs = range(len(cost))
for i, (key, name) in enumerate([("trainable ÷ full", label("trainable", "可训练参数")),
                                 ("step memory ÷ full", label("step memory", "每步内存")),
                                 ("time ÷ full", label("time per step", "每步时间"))]):
    ax.bar([x + (i - 1) * 0.27 for x in xs], [c[key] for c in cost], width=0.27, label=name)
ax.set_xticks(list(xs), [c["method"] for c in cost], rotation=20, fontsize=8)
ax.set_yscale("log")
ax.axhline(1, color="grey", ls=":")
ax.set_ylabel(label("÷ full fine-tuning (log)", "相对全量微调(对数)"))
ax.set_title(label("PEFT trains far fewer numbers; a step costs about the same",
                   "PEFT 训练的参数少得多,每步的开销却差不多"))
ax.legend(fontsize=8)
save_figure(fig, out / "cost.png")

# %% [markdown]
# ## Conclusions (小结)
#
# Read from this run's rows (one seed: differences of a few test rows are noise):

# %%
ranked = sorted(rows, key=lambda r: r["test acc"], reverse=True)
scratch = by_name["from scratch"]
print("- Test accuracy, best first: " + ", ".join(f"{r['method'].split(' (')[0]} {r['test acc']:.2f}" for r in ranked) + ".")
print(f"- From scratch reaches {scratch['test acc']:.2f} on the test split (train {scratch['train acc']:.2f}): "
      f"the test asks facts only pretraining taught; every method that starts from the base beats it.")
lora, prompt, freeze = by_name["LoRA"], by_name["prompt tuning"], by_name["freeze"]
print(f"- LoRA trains {lora['trainable %']:.1f}% of the parameters and scores {lora['test acc']:.2f} "
      f"against full fine-tuning's {full['test acc']:.2f}; its AdamW state is "
      f"{full['optimizer state bytes'] / lora['optimizer state bytes']:.0f}× smaller.")
print(f"- Memory per step is dominated by saved activations: prompt tuning trains {prompt['trainable params']:,} numbers "
      f"yet holds {prompt['step memory bytes'] / full['step memory bytes']:.0%} of full fine-tuning's step memory; "
      f"freezing holds {freeze['step memory bytes'] / full['step memory bytes']:.0%} because its backward pass stops at the top block.")
print("- Time per step, ÷ full: " + ", ".join(f"{c['method']} {c['time ÷ full']:.2f}" for c in cost)
      + ": PEFT saves memory far more than time.")
