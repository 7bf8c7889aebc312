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

# %% [markdown] lang="zh"
# # 08 · 所有方法并排比较（全量微调、冻结、提示微调、前缀微调、P-Tuning v2、LoRA，以及原文之后的方法）
#
# 原文（§3）把微调分成全量微调（§3.1）和参数高效微调（PEFT，§3.2：提示微调、前缀微调、LoRA）两类；
# §4 第 5 步又加上了冻结，§5.1 提到了 P-Tuning v2。本课从随包发布的同一个基座模型出发，
# 在同一个任务上、用同样的数据顺序和随机种子把它们逐一训练一遍。另外还有一行从随机初始化开始训练：
# 这是下限，即只靠任务本身能学到多少；以及原文没有讲到的四种方法（第 11 课）：
# BitFit（2021）、(IA)³（2022）和在 4 位量化基座上做 LoRA 的 QLoRA（2023 年 5 月）早于原文（2024 年 1 月），
# DoRA（2024 年 2 月）则出现在原文之后。
# 本课的代码就是 `minituner compare` 的代码（`minituner/experiments/`）。
#
# 每种方法都使用 `minituner sweep` 在验证集上为它选出的设置（学习率，以及 k 或 r；见
# `minituner/assets/selected.json`）；训练按验证集早停，测试集只在最后评估一次（原文 §4 第 7、8 步）。
# 本课训练的步数比 `minituner compare` 少（由本课的 `--steps` 决定），大约一分钟就能跑完；
# `docs/compare/` 里是用三个随机种子做的完整比较。
#
# 验证集和测试集问的都是任务训练集里从未出现过的事实，
# 所以测试集准确率衡量的是：每种方法能把预训练学到的知识用上多少。
#
# 运行方式：`python lessons/08_compare_all.py`（`--steps N`、`--task`；加 `--smoke` 使用测试用的快速预设）。
# 在 notebook 里运行的是完整的课程。所有选择都在验证集上做出；结论按验证集准确率给方法排序，
# 并把测试集准确率打印在旁边。

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
from minituner.i18n import _
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
# One line per method as it finishes; then three figures: each method's test accuracy beside the
# validation-loss curves of all of them (log scale); the trade-off — each method's trainable share
# (log scale) against its test accuracy, where up and to the left is better: more accuracy for fewer
# trained numbers; and what each method learned against what it forgot (section 5).

# %% [markdown] lang="zh"
# ## 1. 训练每一种方法
#
# 每种方法训练完就打印一行；然后是三张图：每种方法的测试集准确率，
# 旁边是所有方法的验证集损失曲线（对数坐标）；取舍图——每种方法的可训练参数占比（对数坐标）对测试集准确率，
# 越靠左上越好：用更少的训练参数换来更高的准确率；最后是每种方法学到的与忘掉的（见第 5 节）。

# %%
print(_("at most {steps} steps of each method on `{task}` (`minituner compare`: {full})").format(
    steps=steps, task=args.task, full=cmp.STEPS[args.task]))
rows = cmp.compare(task=args.task, steps=steps, out=out, progress=True)
short = {r["method"]: r["method"].split(" (")[0] for r in rows}  # "full (全量微调)" -> "full"
shown = {s: cmp.method_name(m) for m, s in short.items()}  # what tables and figures call it: "full", or "全量微调"

# %% [markdown]
# ## 2. What each method trains, and what it buys (训练了什么,换来了什么)
#
# *trainable %* is the share of the model's parameters the method trains (PEFT's
# `trainable%`); *test acc* is the exact-match accuracy of the greedy answer on the test split.

# %% [markdown] lang="zh"
# ## 2. 每种方法训练了什么，换来了什么
#
# *可训练参数 %* 是方法训练的参数占模型全部参数的比例（即 PEFT 的 `trainable%`）；
# *测试集准确率* 是贪心解码得到的答案在测试集上完全匹配的比例。

# %%
columns = ["method", "setting", "trainable params", "trainable %", "val acc", "test loss", "test acc"]
show(markdown_table([r | {"setting": cmp.setting_text(r)} for r in rows], [c for c in columns if c in rows[0]]))

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

# %% [markdown] lang="zh"
# ## 3. 内存：每一列是什么意思
#
# 按比较时的做法把每种方法的模型再构造一遍，
# 看它的一个训练步要占用多少内存（`minituner.memory.measure_step`），分成两部分：
# - **权重、梯度和 AdamW 状态**：每个权重 4 字节（float32；
#   QLoRA 的 4 位权重按打包后的编码和缩放因子的字节数计），
#   再加上每个*可训练*的数各自的一份梯度和 AdamW 的两个矩（m、v）：共 4·全部 + 3·4·可训练 字节。
#   PEFT 省下的正是这一部分：优化器状态是每个可训练的数 2 × 4 字节
#   （`minituner verify` 中有一行把它与优化器自己的计数核对）；
# - **保存的激活值**：前向传播时 autograd 为反向传播留下的张量。
#   它们取决于梯度要往回传多远，而不是有多少个数在训练。
#   提示微调训练的数最少，但它的梯度必须一路传回输入、穿过每一层，所以几乎要保存全部激活值；
#   冻结除最上面几个块以外的所有层（块数由超参数扫描选定），反向传播就停在那里。
#
# 训练后保留下来的东西，每种方法都用同一种方式测量：`save_pretrained` 写出的文件夹（可训练的张量，
# 每个数 4 字节，加一个小 JSON 文件；全量微调则是整个模型）。

# %%
base, data = minituner.load_base(), minituner.make_task(args.task)
chosen = cmp.selected_settings()[args.task]  # the sweep's choice per method, made on validation
built = {short[m.label]: (cmp.build(m, base, chosen[m.key], seed=0), chosen[m.key]["lr"]) for m in cmp.rows()}
batch = data.train.batch(16, torch.Generator().manual_seed(0))
memory = {}
with tempfile.TemporaryDirectory() as tmp:
    for name, (model, _lr) in built.items():
        trainable, _total = cmp.parameter_counts(model)
        parts = measure_step(model, batch)
        step, params = sum(parts.values()), parts["weights"] + parts["gradients"] + parts["optimizer"]
        folder = Path(model.save_pretrained(Path(tmp) / name.replace(" ", "_")))
        memory[name] = {"method": shown[name], "trainable params": trainable, "AdamW state MB": 8 * trainable / MB,
                        "weights+grads+AdamW MB": params / MB, "saved activations MB": (step - params) / MB,
                        "step memory MB": step / MB, "saved folder bytes": sum(f.stat().st_size for f in folder.iterdir())}
show(markdown_table(list(memory.values())))

fig, ax = plt.subplots(figsize=(7, 3.8))
names = list(memory)
params_mb = [memory[n]["weights+grads+AdamW MB"] for n in names]
acts_mb = [memory[n]["saved activations MB"] for n in names]
ax.barh([shown[n] for n in names], params_mb, label=label("weights, gradients, AdamW state"))
ax.barh([shown[n] for n in names], acts_mb, left=params_mb, label=label("activations saved for the backward pass"))
ax.invert_yaxis()
ax.set_xlabel(label("MB one training step holds"))
ax.set_title(label("Where a step's memory goes"))
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

# %% [markdown] lang="zh"
# ## 4. PEFT 能减少计算量吗？
#
# 原文（§3.2）说 PEFT 降低了计算复杂度。可是前向传播仍要跑完整个冻结的模型（外加适配器），
# 反向传播仍要穿过最低的那个可训练张量以上的每一层；省掉的只是冻结权重的梯度。
# 这里每个模型在同样的批次上再训练几步，单独计时（CPU 可能同时在做别的事，所以要看比值，不要看毫秒数）——见[勘误 8](../docs/errata.md)。

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
show(markdown_table([c | {"method": shown[c["method"]]} for c in cost],
                    ["method", "ms per step", "trainable ÷ full", "memory ÷ full", "time ÷ full"]))

fig, ax = plt.subplots(figsize=(7, 3.8))
xs = range(len(cost))
for i, (key, name) in enumerate([("trainable ÷ full", label("trainable")),
                                 ("memory ÷ full", label("step memory")),
                                 ("time ÷ full", label("time per step"))]):
    ax.bar([x + (i - 1) * 0.27 for x in xs], [c[key] for c in cost], width=0.27, label=name)
ax.set_xticks(list(xs), [shown[c["method"]] for c in cost], rotation=20, fontsize=8)
ax.set_yscale("log")
ax.axhline(1, color="grey", ls=":")
ax.set_ylabel(label("÷ full fine-tuning (log)"))
ax.set_title(label("PEFT trains far fewer numbers; a step's memory and time fall far less"))
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

# %% [markdown] lang="zh"
# ## 5. 每种方法忘了什么
#
# 微调可能让模型丢掉基座模型原本知道的东西。训练之后，每种方法在启用适配器的情况下回答事实探针
# （`minituner.make_fact_probe()`：小世界里的每一条事实，用语料中的说法正反两个方向各问一次，
# 基座模型全都答得对）；*遗忘* 就是基座模型在探针上的准确率减去该方法的准确率
# （Biderman 等人 2024 年把这种取舍概括为“LoRA 学得少，也忘得少”）。第 1 节的最后一张图把遗忘和任务上的收益画在一起，
# 每种方法一个点。下面先是本次运行的一列（一个随机种子），然后是 `docs/compare/` 的三个随机种子：
# 平均忘得最少的方法按规则与其余每种方法逐一比较，按随机种子配对。

# %%
show(markdown_table([{"method": shown[short[r["method"]]], "forgetting": r["forgetting"], "val acc": r["val acc"],
                      "test acc": r["test acc"]} for r in rows if "forgetting" in r]))
committed = load_results(Path(minituner.__file__).resolve().parents[1] / "docs" / "compare")[args.task]
forgets = {short[r["method"]]: {committed["seed"] + i: run["forgetting"] for i, run in enumerate(r["runs"])}
           for r in committed["rows"] if "forgetting" in r}
least = min(forgets, key=lambda k: mean(forgets[k].values()))
against = {k: compare(k, v, least, forgets[least], "forgetting") for k, v in forgets.items() if k != least}
RULE = {1: "forgets more", 0: "within noise", -1: "forgets less", None: "too few seeds"}
by_rule = _("against {least}, by the rule").format(least=shown[least])  # a header only: the run's language
show(markdown_table([{"method": shown[k], "forgetting mean": mean(v.values()), "seeds": len(v),
                      by_rule: RULE[against[k].direction] if k in against else "—"}
                     for k, v in sorted(forgets.items(), key=lambda kv: mean(kv[1].values()))]))

# %% [markdown]
# ## Conclusions (结论)
#
# Read from this run; one seed, so a difference of one or two rows is noise.

# %% [markdown] lang="zh"
# ## 结论
#
# 以下结论从本次运行读出；只有一个随机种子，所以排名相差一两行只是噪声。

# %%
# validation orders the methods; the other split is printed beside it
by_val = sorted(rows, key=lambda r: -r["val acc"])
name = {r["method"]: short[r["method"]] for r in rows}
row = {short[r["method"]]: r for r in rows}
by = {c["method"]: c for c in cost}
more = [k for k, v in against.items() if v.direction == 1]
linear_mb = 4 * sum(m.weight.numel() for m in base.modules() if isinstance(m, Linear)) / MB
show(lesson.conclusions(
    _("Validation accuracy on one seed, highest first (test in brackets); an order, not a verdict, since the rule "
      "for verdicts needs {min} seeds (docs/compare runs them): {order}.").format(
        min=MIN_SEEDS, order=_(", ").join(_("{run} {val:.2f} ({test:.2f})").format(
            run=shown[name[r["method"]]], val=r["val acc"], test=r["test acc"]) for r in by_val)),
    _("From scratch reaches {val:.2f}: validation asks facts only pretraining taught.").format(
        val=row["from scratch"]["val acc"]),
    _("Forgetting over {seeds} seeds (docs/compare, `{task}`): {least} forgets least on average ({mean:.3f} of the "
      "fact probe); by the rule, {more} of the {others} other methods forget more than it ({names}), the others "
      "are within noise of it.").format(
        seeds=committed["seeds"], task=args.task, least=shown[least], mean=mean(forgets[least].values()), more=len(more),
        others=len(against), names=_(", ").join(shown[k] for k in more) or _("none")),
    _("LoRA trains {share:.1f}% of the parameters; its AdamW state is {ratio:.0f}× smaller than full fine-tuning's, "
      "its saved folder {lora:,} bytes against {full:,}.").format(
        share=row["LoRA"]["trainable %"], ratio=memory["full"]["AdamW state MB"] / memory["LoRA"]["AdamW state MB"],
        lora=memory["LoRA"]["saved folder bytes"], full=memory["full"]["saved folder bytes"]),
    _("Saved activations dominate a step's memory: prompt tuning trains {numbers:,} numbers yet holds {prompt:.0%} "
      "of full fine-tuning's step memory; freezing all but the top {blocks} blocks holds {freeze:.0%}.").format(
        numbers=memory["prompt tuning"]["trainable params"], prompt=by["prompt tuning"]["memory ÷ full"],
        blocks=chosen["freeze"]["trainable_layers"], freeze=by["freeze"]["memory ÷ full"]),
    _("QLoRA's step holds {qlora:.2f} MB of weights and optimiser state against LoRA's {lora:.2f} MB (a 4-bit base), "
      "and {qlora_acts:.2f} MB of saved activations against {lora_acts:.2f} MB: the difference is about the size of "
      "the Linear weights in float32 ({linear:.2f} MB), the dequantised Ŵ that autograd keeps for the backward "
      "pass.").format(
        qlora=memory["QLoRA"]["weights+grads+AdamW MB"], lora=memory["LoRA"]["weights+grads+AdamW MB"],
        qlora_acts=memory["QLoRA"]["saved activations MB"], lora_acts=memory["LoRA"]["saved activations MB"],
        linear=linear_mb)))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/08_mean_std.py`; write the function bodies, then run `minituner check 08_mean_std` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `mean_std`.** Return the mean and the sample standard deviation (n − 1) of the scores over seeds; one seed has std zero.
# 2. **Judge.** Take two methods from the comparison table and apply the verdict rule by hand: is one above the other, or within noise?
# 3. **Design.** Add a fourth and fifth seed to the comparison: which conclusions change?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/08_mean_std.py`：写好函数体后运行 `minituner check 08_mean_std --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`mean_std`。** 返回多个随机种子上得分的均值和样本标准差（除以 n − 1）；只有一个随机种子时，标准差为零。
# 2. **判断。** 从比较表中取两种方法，亲手套用判定规则（`minituner.verdict`）：一种方法高于另一种，还是两者之差在噪声之内？
# 3. **设计。** 给比较再加上第四、第五个随机种子：哪些结论会改变？
