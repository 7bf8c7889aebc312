# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 08 · Every method side by side (全量微调, 冻结, 提示微调, 前缀微调, P-Tuning v2, LoRA, and after)
#
# The article (§3) sorts fine-tuning into full fine-tuning (§3.1) and parameter-efficient
# fine-tuning (参数高效微调, PEFT, §3.2: prompt tuning, prefix tuning, LoRA); §4 step 5 adds
# freezing and §5.1 names P-Tuning v2. This lesson trains each of them from the same shipped
# base, on the same task, with the same data order and seed, plus one row from a random
# initialisation: the floor, what the task alone teaches, and four methods the article does
# not cover (lesson 11): BitFit (2021), (IA)³ (2022) and LoRA on a 4-bit base (QLoRA, May
# 2023), which predate the article (January 2024), and DoRA (February 2024), which came
# after it. It is the same code as `minituner compare` (`minituner/experiments/`).
#
# Each method gets the settings `minituner sweep` chose for it on the validation split
# (learning rate, and k or r; `minituner/assets/selected.json`); training early-stops on
# validation, and the test split is scored once, at the end (article §4 steps 7 and 8).
# The lesson trains fewer steps than `minituner compare` (its `--steps` says how many), so
# that it runs in about a minute; `docs/compare/` holds the full comparison over three seeds.
#
# Validation and test ask facts that the task's training split never shows, so the test
# accuracy measures how much of the pretrained knowledge each method can put to use.
#
# Run it: `python lessons/08_compare_all.py` (`--steps N`, `--task`, `--smoke` for the test
# preset). In a notebook the full lesson runs. Every choice is made on validation; the
# conclusions order the methods by validation accuracy and print test beside it.

# %%
import tempfile
from pathlib import Path
from statistics import mean

import matplotlib.pyplot as plt
import torch

import minituner
import minituner.experiments as cmp
from minituner import lesson
from minituner.experiments.tables import load_results
from minituner.memory import measure_step
from minituner.model import Linear
from minituner.report import label, markdown_table, save_figure, show
from minituner.verdict import MIN_SEEDS, compare

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = lesson.options("Lesson 08: every method on one base", smoke=dict(steps=2, time_steps=1),
                      out="runs/08_compare_all", task="classify", steps=100, time_steps=10)
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
print(f"at most {steps} steps of each method on `{args.task}` (`minituner compare`: {cmp.STEPS[args.task]})")
rows = cmp.compare(task=args.task, steps=steps, out=out, progress=True)
short = {r["method"]: r["method"].split(" (")[0] for r in rows}  # "full (全量微调)" -> "full"

# %% [markdown]
# ## 2. What each method trains, and what it buys (训练了什么,换来了什么)
#
# *trainable %* is the share of the model's parameters the method trains (PEFT's
# `trainable%`); *test acc* is the exact-match accuracy of the greedy answer on the test split.

# %%
columns = ["method", "setting", "trainable params", "trainable %", "val acc", "test loss", "test acc"]
show(markdown_table(rows, [c for c in columns if c in rows[0]]))

# %% [markdown]
# ## 3. Memory, read for the student (内存:每一列是什么意思)
#
# Each method's model again, as the comparison built it, and what one training step of it holds
# (`minituner.memory.measure_step`), split in two:
# - **weights, gradients and AdamW state**: every weight (4 bytes, float32; QLoRA's 4-bit weights
#   at the bytes of their packed codes and scales), plus a gradient and AdamW's two moments (m, v)
#   for each *trainable* number: 4·all + 3·4·trainable bytes. This is
#   where PEFT saves: the optimizer's state is 2 × 4 bytes per trainable number (a `minituner
#   verify` row checks it against the optimizer's own count);
# - **saved activations**: the tensors autograd keeps from the forward pass for the backward
#   pass. They depend on how far back the gradient must travel, not on how many numbers train.
#   Prompt tuning trains the fewest numbers, but its gradient must reach the input, through
#   every layer, so it keeps almost every activation; freezing all but the top blocks (the
#   sweep chose how many) stops the backward pass there.
#
# What is kept after training is measured the same way for every method: the folder
# `save_pretrained` writes (the trainable tensors, 4 bytes each, plus a small JSON; for full
# fine-tuning, the whole model).

# %%
base, data = minituner.load_base(), minituner.make_task(args.task)
chosen = cmp.selected_settings()[args.task]  # the sweep's choice per method, made on validation
built = {short[m.label]: (cmp.build(m, base, chosen[m.key], seed=0), chosen[m.key]["lr"]) for m in cmp.rows()}
batch = data.train.batch(16, torch.Generator().manual_seed(0))
memory = {}
with tempfile.TemporaryDirectory() as tmp:
    for name, (model, _) in built.items():
        trainable, _ = cmp.parameter_counts(model)
        parts = measure_step(model, batch)
        step, params = sum(parts.values()), parts["weights"] + parts["gradients"] + parts["optimizer"]
        folder = Path(model.save_pretrained(Path(tmp) / name.replace(" ", "_")))
        memory[name] = {"method": name, "trainable params": trainable, "AdamW state MB": 8 * trainable / MB,
                        "weights+grads+AdamW MB": params / MB, "saved activations MB": (step - params) / MB,
                        "step memory MB": step / MB, "saved folder bytes": sum(f.stat().st_size for f in folder.iterdir())}
show(markdown_table(list(memory.values())))

fig, ax = plt.subplots(figsize=(7, 3.8))
names = list(memory)
params_mb = [memory[n]["weights+grads+AdamW MB"] for n in names]
acts_mb = [memory[n]["saved activations MB"] for n in names]
ax.barh(names, params_mb, label=label("weights, gradients, AdamW state", "权重、梯度、优化器状态"))
ax.barh(names, acts_mb, left=params_mb, label=label("activations saved for the backward pass", "反向传播保存的激活值"))
ax.invert_yaxis()
ax.set_xlabel(label("MB one training step holds", "每个训练步占用的内存 (MB)"))
ax.set_title(label("Where a step's memory goes", "一步的内存花在哪里"))
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
save_figure(fig, out / "memory.png");

# %% [markdown]
# ## 4. Does PEFT reduce compute? (PEFT 能减少计算量吗?)
#
# The article (§3.2) says PEFT lowers the computational complexity. The forward pass still runs
# the whole frozen model (plus the adapter), and the backward pass still runs through every layer
# above the lowest trained tensor; only the gradients of frozen weights are skipped. Here each
# model trains a few more steps on the same batches, timed alone (the CPU may be shared with
# other work, so read ratios, not milliseconds) — see [errata 8](../docs/errata.md).

# %%
cost = []
for name, (model, lr) in built.items():
    hist = minituner.train(model, data, steps=args.time_steps, lr=lr, batch_size=16, progress=False)
    cost.append({"method": name, "ms per step": 1000 * hist.seconds / args.time_steps,
                 "trainable": memory[name]["trainable params"], "step memory MB": memory[name]["step memory MB"]})
full = next(c for c in cost if c["method"] == "full")
for c in cost:
    c |= {"trainable ÷ full": c["trainable"] / full["trainable"], "memory ÷ full": c["step memory MB"] / full["step memory MB"],
          "time ÷ full": c["ms per step"] / full["ms per step"]}
show(markdown_table(cost, ["method", "ms per step", "trainable ÷ full", "memory ÷ full", "time ÷ full"]))

fig, ax = plt.subplots(figsize=(7, 3.8))
xs = range(len(cost))
for i, (key, name) in enumerate([("trainable ÷ full", label("trainable", "可训练参数")),
                                 ("memory ÷ full", label("step memory", "每步内存")),
                                 ("time ÷ full", label("time per step", "每步时间"))]):
    ax.bar([x + (i - 1) * 0.27 for x in xs], [c[key] for c in cost], width=0.27, label=name)
ax.set_xticks(list(xs), [c["method"] for c in cost], rotation=20, fontsize=8)
ax.set_yscale("log")
ax.axhline(1, color="grey", ls=":")
ax.set_ylabel(label("÷ full fine-tuning (log)", "相对全量微调(对数)"))
ax.set_title(label("PEFT trains far fewer numbers; a step's memory and time fall far less",
                   "PEFT 训练的参数少得多,每步的内存和时间却少得不多"))
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
save_figure(fig, out / "cost.png");

# %% [markdown]
# ## 5. What each method forgets (每种方法忘了什么)
#
# Fine-tuning can cost what the base knew. After training, each method answers the fact probe
# (`minituner.make_fact_probe()`: every fact of the mini-world, asked both ways in the corpus's
# words, all of which the base answers) with its adapter active; *forgetting* is the base's probe
# accuracy minus the method's (Biderman et al. 2024 measure this trade-off as "LoRA learns less
# and forgets less"). Section 1's last figure puts it against the gain on the task, one point per
# method. Below: this run's column (one seed), then the three seeds of `docs/compare/`, where the
# method that forgets least on average is set against every other by the rule, paired by seed.

# %%
show(markdown_table([{"method": short[r["method"]], "forgetting": r["forgetting"], "val acc": r["val acc"],
                      "test acc": r["test acc"]} for r in rows if "forgetting" in r]))
committed = load_results(Path(minituner.__file__).resolve().parents[1] / "docs" / "compare")[args.task]
forgets = {short[r["method"]]: {committed["seed"] + i: run["forgetting"] for i, run in enumerate(r["runs"])}
           for r in committed["rows"] if "forgetting" in r}
least = min(forgets, key=lambda k: mean(forgets[k].values()))
against = {k: compare(k, v, least, forgets[least], "forgetting", names_zh=(k, least, "遗忘"))
           for k, v in forgets.items() if k != least}
RULE = {1: "forgets more", 0: "within noise", -1: "forgets less", None: "too few seeds"}
show(markdown_table([{"method": k, "forgetting mean": mean(v.values()), "seeds": len(v),
                      f"against {least}, by the rule": RULE[against[k].direction] if k in against else "—"}
                     for k, v in sorted(forgets.items(), key=lambda kv: mean(kv[1].values()))]))

# %% [markdown]
# ## Conclusions (结论)
#
# Read from this run; one seed, so a difference of one or two rows is noise.

# %%
# validation orders the methods; the other split is printed beside it
by_val = sorted(rows, key=lambda r: -r["val acc"])
name = {r["method"]: short[r["method"]] for r in rows}
row = {short[r["method"]]: r for r in rows}
by = {c["method"]: c for c in cost}
print(f"- Validation accuracy on one seed, highest first (test in brackets); an order, not a verdict, since the rule "
      f"for verdicts needs {MIN_SEEDS} seeds (docs/compare runs them): "
      + ", ".join(f"{name[r['method']]} {r['val acc']:.2f} ({r['test acc']:.2f})" for r in by_val) + ".")
print(f"- From scratch reaches {row['from scratch']['val acc']:.2f}: validation asks facts only pretraining taught.")
more = [k for k, v in against.items() if v.direction == 1]
print(f"- Forgetting over {committed['seeds']} seeds (docs/compare, `{args.task}`): {least} forgets least on average "
      f"({mean(forgets[least].values()):.3f} of the fact probe); by the rule, {len(more)} of the {len(against)} other "
      f"methods forget more than it ({', '.join(more) or 'none'}), the others are within noise of it.")
print(f"- LoRA trains {row['LoRA']['trainable %']:.1f}% of the parameters; its AdamW state is "
      f"{memory['full']['AdamW state MB'] / memory['LoRA']['AdamW state MB']:.0f}× smaller than full fine-tuning's, "
      f"its saved folder {memory['LoRA']['saved folder bytes']:,} bytes against {memory['full']['saved folder bytes']:,}.")
print(f"- Saved activations dominate a step's memory: prompt tuning trains {memory['prompt tuning']['trainable params']:,} "
      f"numbers yet holds {by['prompt tuning']['memory ÷ full']:.0%} of full fine-tuning's step memory; freezing all "
      f"but the top {chosen['freeze']['trainable_layers']} blocks holds {by['freeze']['memory ÷ full']:.0%}.")
print(f"- QLoRA's step holds {memory['QLoRA']['weights+grads+AdamW MB']:.2f} MB of weights and optimiser state against "
      f"LoRA's {memory['LoRA']['weights+grads+AdamW MB']:.2f} MB (a 4-bit base), and {memory['QLoRA']['saved activations MB']:.2f} "
      f"MB of saved activations against {memory['LoRA']['saved activations MB']:.2f} MB: the difference is about the "
      f"size of the Linear weights in float32 ({4 * sum(m.weight.numel() for m in base.modules() if isinstance(m, Linear)) / MB:.2f} "
      "MB), the dequantised Ŵ that autograd keeps for the backward pass.")

# %% [markdown]
# ## 小结
#
# 下面每句话里的数字都由代码从上面的结果打印。

# %%
top = by_val[0]
print(f"- 只有一个随机种子,按验证集排在最前的是 {name[top['method']]}:验证集准确率 {top['val acc']:.2f},测试集 "
      f"{top['test acc']:.2f}(这只是排序,不是结论:规则至少要 {MIN_SEEDS} 个随机种子,docs/compare 用的就是);"
      f"从随机初始化训练只有 {row['from scratch']['val acc']:.2f}:验证集问的是只有预训练才教过的事实。")
print(f"- 遗忘(docs/compare,`{args.task}`,{committed['seeds']} 个随机种子):平均忘得最少的是 {least}"
      f"(事实探针上丢掉 {mean(forgets[least].values()):.3f});按规则,其余 {len(against)} 种方法中有 {len(more)} 种"
      f"忘得比它多({'、'.join(more) or '没有'}),其余与它的差别在噪声之内。")
print(f"- LoRA 只训练 {row['LoRA']['trainable %']:.1f}% 的参数,AdamW 状态比全量微调小 "
      f"{memory['full']['AdamW state MB'] / memory['LoRA']['AdamW state MB']:.0f} 倍;但一步的内存是全量微调的 "
      f"{by['LoRA']['memory ÷ full']:.0%},时间是 {by['LoRA']['time ÷ full']:.0%}:反向传播仍要穿过所有层,激活值并不减少多少。")
print(f"- 提示微调只训练 {memory['prompt tuning']['trainable params']:,} 个数,却占全量微调 "
      f"{by['prompt tuning']['memory ÷ full']:.0%} 的内存:梯度必须传回输入。")

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/08_mean_std.py`; write the function bodies, then run `minituner check 08_mean_std` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `mean_std`.** Return the mean and the sample standard deviation (n − 1) of the scores over seeds; one seed has std zero.
# 2. **Judge.** Take two methods from the comparison table and apply the verdict rule by hand: is one above the other, or within noise?
# 3. **Design.** Add a fourth and fifth seed to the comparison: which conclusions change?
#
# 编程题的骨架在 `exercises/08_mean_std.py`：写好函数体后运行 `minituner check 08_mean_std --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`mean_std`。** 返回多个种子得分的均值和样本标准差（除以 n − 1）；只有一个种子时标准差为零。
# 2. **判断。** 从比较表中取两种方法，手动应用 verdict 规则：一个高于另一个，还是在噪声之内？
# 3. **设计。** 给比较再加第四、第五个种子：哪些结论改变了？
