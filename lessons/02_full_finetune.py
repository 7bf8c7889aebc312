# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 02 · 全量微调 (full fine-tuning), step by step (article §3.1 and §4)
#
# Full fine-tuning (§3.1) trains *every* layer and parameter of a pretrained model on
# task data, with a small learning rate. The article lays fine-tuning out as eight steps
# (§4); this lesson takes them in order on the mini-world's `classify` task:
#
# 1. choose the pretrained model (选择预训练模型) · 2. prepare the data (准备数据) ·
# 3. adjust the input (调整输入) · 4. define the loss (定义损失函数) · 5. freeze (冻结; nothing, here) ·
# 6. optimiser and learning rate (优化器与学习率) · 7. train (微调训练) · 8. evaluate (评估).
#
# Beside it runs the same training from a randomly initialised GPT of the same shape:
# the difference is what pretraining buys. Then the article's own example of step 3,
# "what was recognised as a cat is now to be called a dog": we teach the swap and
# measure what the model really learned.
#
# Run it: `python lessons/02_full_finetune.py` (`--smoke` for the quick test preset).

# %% [markdown] lang="zh"
# # 02 · 全量微调：按原文的八个步骤走一遍（原文 §3.1 与 §4）
#
# 全量微调（§3.1）用任务数据训练预训练模型的**每一层、每一个参数**，学习率取得很小。原文把微调分成八个步骤（§4），本课在动物小世界的 `classify` 任务上依次走一遍：
#
# 1. 选择预训练模型 · 2. 准备数据 · 3. 调整输入 · 4. 定义损失函数 · 5. 冻结（本课什么都不冻结）· 6. 优化器与学习率 · 7. 微调训练 · 8. 评估。
#
# 与之并排的，是从一个随机初始化、形状相同的 GPT 出发做完全相同的训练：两者之差，就是预训练带来的收益。最后是原文为第 3 步举的例子——“原来识别为猫的，现在要叫它狗”：我们教模型把两个名字对调，再测一测它到底学到了什么。
#
# 运行方式：`python lessons/02_full_finetune.py`（加 `--smoke` 使用测试用的快速预设）。

# %%
import inspect
from statistics import mean

import torch

import minituner
from minituner.checkpoint import base_metadata
from minituner.data import encode_examples
from minituner.functional import cross_entropy
from minituner.i18n import _
from minituner.lesson import best, conclusions, options, pct, run
from minituner.optim import AdamW
from minituner.report import markdown_table, parameter_table, plot_curves, running_mean, show
from minituner.train import lr_at
from minituner.verdict import compare, trend

args = options("Lesson 02: full fine-tuning", smoke=dict(rows=48, steps=3, relabel_steps=3, lrs=(1e-2,), seeds=(0,)),
               out="runs/02_full_finetune", steps=80, relabel_steps=40, batch_size=16, lr=5e-4, seed=0,
               lrs=(1e-4, 3e-3), seeds=(0, 1, 2), rows=None)
torch.manual_seed(args.seed)
GRAD_CLIP = inspect.signature(minituner.train).parameters["grad_clip"].default  # train()'s default
print(_("{steps} steps, batch {batch}, lr {lr}; relabelling {relabel} steps; the learning-rate trade-off at {rates}").format(
    steps=args.steps, batch=args.batch_size, lr=args.lr, relabel=args.relabel_steps, rates=sorted({args.lr, *args.lrs})))

# %% [markdown]
# ## Step 1: choose the pretrained model (选择预训练模型)
#
# The shipped base (lesson 01) has read every fact of the mini-world, both ways, but
# never a task. Its metadata records how it was pretrained.

# %% [markdown] lang="zh"
# ## 第 1 步：选择预训练模型
#
# 随包发布的基座模型（第 01 课）读过动物小世界里的每一条事实，正着问、反着问都见过，却从没见过任何任务。它的元数据记录了它是怎样预训练的。

# %%
base, meta = minituner.load_base(), base_metadata()
recipe = meta["recipe"]
print(_("pretrained {steps:,} steps at lr {lr}, batch {batch}; held-out corpus loss {loss}, facts answered both ways "
        "{facts:.1%}").format(steps=recipe["steps"], lr=recipe["lr"], batch=recipe["batch_size"],
                              loss=meta["held_out_loss"], facts=meta["fact_accuracy"]))
minituner.print_trainable_parameters(base);

# %% [markdown]
# ## Step 2: prepare the data (准备数据)
#
# `classify` describes an animal by one or two of its facts and asks for its name. The
# training split (训练集) shows some kinds of fact of every animal; the validation split
# (验证集) and the test split (测试集) ask the *other* kinds, each of its own animals
# (printed below): answering them needs what pretraining taught.

# %% [markdown] lang="zh"
# ## 第 2 步：准备数据
#
# `classify` 用一种动物的一两条事实来描述它，问它叫什么。训练集给出每种动物的某几类事实；验证集和测试集问的是**另外几类**事实，而且各有各的动物（见下面的输出）：要答对它们，就得用上预训练学到的知识。

# %%
task = minituner.make_task("classify", rows=args.rows)
world = task.world
train_prompts = {p for p, _ in task.train.examples}
print(_("{train} training rows, {val} validation rows, {test} test rows; no prompt in both training and test: "
        "{disjoint}").format(train=len(task.train), val=len(task.val), test=len(task.test),
                             disjoint=not train_prompts & {p for p, _ in task.test.examples}))
first, second = (_(kind) for kind in world.seen["cat"])  # the fact kinds ("sound", …) in the run's language
print(_("the cat: training shows its {seen}; the {split} split asks its {held} ({val} validation animals, {test} test "
        "animals)").format(seen=_("{a} and {b}").format(a=first, b=second),
                           split=_("validation") if "cat" in world.val_animals else _("test"),
                           held=_(", ").join(_(kind) for kind in world.held_out("cat")),
                           val=len(world.val_animals), test=len(world.animals) - len(world.val_animals)))
for split in (task.train, task.test):
    for p, a in (split.examples[0], split.examples[2]):  # one fact, then two
        print("   " + _("{split}: {prompt!r} -> {answer!r}").format(split=_(split.name), prompt=p, answer=a))

# %% [markdown]
# ## Step 3: adjust the input (调整输入)
#
# Each example becomes one row, prompt then answer, phrased the way the corpus speaks
# ("…, so it is the" → " cat."). The model reads x and must predict y, the same row
# shifted by one character. The loss counts only the answer characters (the `^` below):
# the prompt is given, not learned.

# %% [markdown] lang="zh"
# ## 第 3 步：调整输入
#
# 每个样本变成一行：先是提示，后是答案，说法与语料一致（`"…, so it is the"` → `" cat."`）。模型读入 x，要预测的 y 是同一行向后错开一个字符。损失只计算答案部分的字符（下面用 `^` 标出）：提示是给定的，不需要学。

# %%
tok, s = task.tokenizer, task.train
n = int((s.x[0] != tok.pad_id).sum())
print(f"   x:    {tok.decode(s.x[0, :n])!r}")
print(f"   y:    {tok.decode(s.y[0, :n])!r}")
print("   mask:  " + "".join("^" if m else " " for m in s.mask[0, :n].tolist()))

# %% [markdown]
# ## Step 4: define the loss (定义损失函数)
#
# Cross-entropy (交叉熵): −log of the softmax probability of the correct next character,
# averaged over the answer positions (`minituner.functional.cross_entropy`). Before any
# fine-tuning the base already has a loss on the test answers: the number to beat.

# %% [markdown] lang="zh"
# ## 第 4 步：定义损失函数
#
# 交叉熵：正确的下一个字符经 softmax 得到的概率取 −log，再在答案位置上求平均（`minituner.functional.cross_entropy`）。微调之前，基座模型在测试集答案上就已经有一个损失值：这就是微调要降下去的起点。

# %%
before = run("base, before fine-tuning", base, task, steps=0)[0]
print(_("the base's cross-entropy on the test answers: {loss:.3f} per answer character; exact-match accuracy "
        "{acc:.3f}").format(loss=before["test loss"], acc=before["test acc"]))

# %% [markdown]
# ## Steps 5 and 6: freeze nothing (冻结: none); AdamW and a small learning rate
#
# `minituner.full(base)` returns a copy of the base with every tensor trainable (step 5:
# nothing frozen). AdamW (step 6) keeps two running means, m and v, for each trainable
# number: 2 × trainable × 4 bytes. Three settings of `minituner.train` to know:
# - weight decay is 0 in every run of these lessons, so AdamW here is Adam;
# - the learning rate printed is the *peak*: `train()` decays it by a cosine to a tenth of
#   it over the run (after an optional linear warm-up, none here);
# - gradient clipping (its threshold printed below): when the gradient of all trainable
#   numbers, seen as one vector, is longer than the threshold, it is scaled down to that
#   length before the step (a guard against one bad batch).
#
# The rate is small next to the base's pretraining rate, as the article advises for a
# pretrained model (a large step would overwrite what pretraining learned).

# %% [markdown] lang="zh"
# ## 第 5、6 步：什么都不冻结；AdamW 与较小的学习率
#
# `minituner.full(base)` 返回基座模型的一份副本，其中每个张量都可训练（第 5 步：不冻结任何参数）。AdamW（第 6 步）为每个可训练的数保存两个滑动平均，即一阶矩 m 和二阶矩 v：一共 2 × 可训练参数量 × 4 字节。`minituner.train` 有三个设置需要知道：
# - 这几课的每次训练权重衰减都是 0，所以这里的 AdamW 就是 Adam；
# - 打印出来的学习率是**峰值**：`train()` 在训练过程中按余弦把它降到峰值的十分之一（之前可以先线性预热，这里没有预热）；
# - 梯度裁剪（阈值见下面的输出）：把所有可训练参数的梯度看成一个向量，它的长度一旦超过阈值，就先缩放到阈值那么长再更新（防止某一个坏批次带来过大的一步）。
#
# 这个学习率比基座模型预训练时的学习率小得多，正是原文对预训练模型的建议：步子太大，会把预训练学到的东西覆盖掉。

# %%
model = minituner.full(base)
show(markdown_table(parameter_table(model.base, depth=1)))  # the GPT inside the wrapper
trainable = minituner.count_parameters(model)[0]
state = AdamW(model.parameters(), lr=args.lr).state_bytes()
print(_("AdamW state {state:,} bytes = 2 × {trainable:,} trainable × 4 bytes: {equal}").format(
    state=state, trainable=trainable, equal=state == 2 * trainable * 4))
print(_("lr {lr} is {ratio:.0f}× smaller than pretraining's {pretrain}; gradient clipping at norm {clip}; weight decay "
        "{decay}").format(lr=args.lr, ratio=recipe["lr"] / args.lr, pretrain=recipe["lr"], clip=GRAD_CLIP,
                          decay=inspect.signature(minituner.train).parameters["weight_decay"].default))

# %% [markdown]
# ## One training step, written out (一步训练,逐行写出)
#
# Before `train()` runs its loop, here is its first step by hand, on a fresh copy of the base:
# the batch it draws first (the same seeded generator), the logits, the masked cross-entropy,
# the gradients, clipping, and AdamW's update written for every tensor. At step t = 1 Adam's
# moments are m = (1 − β₁)·g and v = (1 − β₂)·g², so after bias correction m̂ = g and v̂ = g²:
# each number moves by lr·g / (|g| + ε), almost exactly lr in the direction that lowers the
# loss, however small its gradient. The learning rate of step 0 comes from the same
# schedule `train()` uses (`lr_at`). Then `train()` takes one step from another copy, and the
# two models' parameters are compared.

# %% [markdown] lang="zh"
# ## 一步训练，逐行写出
#
# 在 `train()` 进入循环之前，先在基座模型的一份新副本上手工走一遍它的第一步：它最先抽到的那个批次（用同一个设了随机种子的生成器）、logits、带掩码的交叉熵、梯度、梯度裁剪，以及对每个张量逐一写出的 AdamW 更新。在第 t = 1 步，Adam 的两个矩为 m = (1 − β₁)·g 和 v = (1 − β₂)·g²，所以偏差校正之后 m̂ = g、v̂ = g²：每个数的移动量都是 lr·g / (|g| + ε)，也就是朝着让损失下降的方向几乎恰好移动 lr，不管它的梯度有多小。第 0 步的学习率取自 `train()` 所用的同一个调度函数（`lr_at`）。随后让 `train()` 从另一份副本出发走一步，再比较两个模型的参数。

# %%
gen = torch.Generator().manual_seed(args.seed)  # train() seeds its batches the same way
x, y, m = task.train.batch(args.batch_size, gen)  # (B, T) each: the first batch train() draws
by_hand = minituner.full(base)
params = [p for p in by_hand.parameters() if p.requires_grad]
logits = by_hand(x)  # (B, T, V)
loss = cross_entropy(logits, y, m)  # −log p(correct next character), averaged over the answer positions
loss.backward()  # p.grad for every trainable tensor
norm = torch.cat([p.grad.reshape(-1) for p in params]).norm()  # the gradient as one vector
scale = min(1.0, GRAD_CLIP / (norm.item() + 1e-6))  # clipping, as torch.nn.utils.clip_grad_norm_
opt = AdamW(params, lr=args.lr)  # only for its settings: β₁, β₂, ε
(b1, b2), eps, lr0 = opt.betas, opt.eps, lr_at(0, args.steps, args.lr, warmup=0)
with torch.no_grad():
    for p in params:
        g = p.grad * scale
        m1, v1 = (1 - b1) * g, (1 - b2) * g * g  # m ← β₁·0 + (1 − β₁)g,  v ← β₂·0 + (1 − β₂)g²
        p -= lr0 * (m1 / (1 - b1)) / ((v1 / (1 - b2)).sqrt() + eps)  # θ ← θ − lr·m̂ / (√v̂ + ε)
reference = minituner.full(base)
minituner.train(reference, task, steps=1, lr=args.lr, batch_size=args.batch_size, seed=args.seed, progress=False)
step_diff = max((a - b).abs().max().item() for a, b in zip(by_hand.parameters(), reference.parameters(), strict=True))
moved = torch.cat([(a - b).abs().reshape(-1) for a, b in zip(by_hand.parameters(), base.parameters(), strict=True)])
print(_("batch x {x}, logits {logits}, loss {loss:.4f} over {n} answer characters; gradient norm {norm:.3f} (clip at "
        "{clip}: scaled by {scale:.3f}); lr at step 0 {lr0} (train(steps=1) uses {lr1})").format(
    x=tuple(x.shape), logits=tuple(logits.shape), loss=loss.item(), n=int(m.sum()), norm=norm.item(), clip=GRAD_CLIP,
    scale=scale, lr0=lr0, lr1=lr_at(0, 1, args.lr, warmup=0)))
print(_("max |by hand − train()'s first step| over every parameter = {diff:.1e}").format(diff=step_diff))
print(_("how far each number moved, in units of lr: median {median:.3f}, max {max:.3f}").format(
    median=moved.median().item() / lr0, max=moved.max().item() / lr0))

# %% [markdown]
# ## Step 7: train (微调训练), and the same from random weights
#
# The run from scratch: `GPT(base.config, seed=…)`, the same shape with random weights,
# the same data, batch and number of steps, at the learning rate the base was pretrained
# with (a random model needs larger steps). Both runs score the validation split every few
# steps: the right panel is that curve.

# %% [markdown] lang="zh"
# ## 第 7 步：微调训练，以及从随机权重开始的同样训练
#
# 从零开始的那次训练用 `GPT(base.config, seed=…)`：形状相同、权重随机，数据、批大小和步数都相同，学习率则用基座模型预训练时的学习率（随机初始化的模型需要更大的步子）。两次训练每隔几步都在验证集上评估一次：右图画的就是这条曲线。

# %%
every = max(2, args.steps // 10)
tuned, tuned_hist = run("full fine-tuning", model, task, args.steps, args.lr, batch_size=args.batch_size,
                        seed=args.seed, eval_every=every)
scratch, scratch_hist = run("same shape, from scratch", minituner.GPT(base.config, seed=args.seed + 1), task,
                            args.steps, recipe["lr"], batch_size=args.batch_size, seed=args.seed, eval_every=every)
print(_("fine-tuned: {tuned_s:.1f} s, final training loss {tuned_loss:.3f}; from scratch: {scratch_s:.1f} s, final "
        "training loss {scratch_loss:.3f}").format(tuned_s=tuned["s"], tuned_loss=tuned["train loss"],
                                                   scratch_s=scratch["s"], scratch_loss=scratch["train loss"]))
plot_curves({_("full fine-tuning, lr {lr}").format(lr=args.lr): tuned_hist,
             _("from random weights, lr {lr}").format(lr=recipe["lr"]): scratch_hist},
            _("classify: full fine-tuning vs the same training from scratch"), args.out / "full_finetune_curves.png");

# %% [markdown]
# ## Step 8: evaluate (评估)
#
# Exact match of the greedy answer, on the training split, on the validation split (what
# any choice is made on) and on the test split (scored once, reported beside it), whose
# facts the task never showed. The base before fine-tuning, the fine-tuned model, and the
# model trained from scratch on the task alone.

# %% [markdown] lang="zh"
# ## 第 8 步：评估
#
# 评估标准是贪心解码的答案是否完全匹配，分别在训练集、验证集（一切选择都依据它）和测试集上计算；测试集只评估一次，与验证集的结果并列报告，它问的事实任务从未展示过。表中三行依次是：微调前的基座模型、微调后的模型、只在这个任务上从零训练的模型。

# %%
rows = [before, tuned, scratch]
show(markdown_table(rows, ["run", "steps", "lr", "train loss", "train acc", "val acc", "test loss", "test acc"]))
print(_("test accuracy: pretraining buys {pretraining:+.3f} over the same training from scratch; fine-tuning adds "
        "{tuning:+.3f} to the base as shipped").format(pretraining=tuned["test acc"] - scratch["test acc"],
                                                       tuning=tuned["test acc"] - before["test acc"]))

# %% [markdown]
# ## Step 6 again: the learning-rate trade-off (学习率的取舍)
#
# The article's §4 step 6: "学习率很小…稳定但可能会收敛得比较慢;很大…震荡但可能会收敛得较快" —
# a small learning rate is stable but may converge slowly; a large one oscillates but may
# converge faster. Here is that claim measured: full fine-tuning as above, the same batches
# and steps, at several peak rates (printed at the top; `--lrs` changes them), scoring the
# validation split every few steps. Two numbers per rate, both from the curves:
# - **speed**: the first step at which the training loss (the running mean drawn on the left)
#   falls below a target, a tenth of the base's training loss before fine-tuning;
# - **oscillation**: how much the validation loss climbs back up along the way, the sum of
#   its rises between evaluations divided by its lowest value (0 for a curve that only falls).

# %% [markdown] lang="zh"
# ## 再看第 6 步：学习率的取舍
#
# 原文 §4 第 6 步说：“学习率很小…稳定但可能会收敛得比较慢；很大…震荡但可能会收敛得较快”。下面就来实测这句话：与上面一样做全量微调，批次和步数都相同，只换峰值学习率（取哪几个值见开头的输出，用 `--lrs` 修改），每隔几步在验证集上评估一次。每个学习率看两个数，都从曲线上读出：
# - **速度**：训练损失（左图画的滑动平均）第一次降到目标以下时的步数；目标取基座模型微调前训练损失的十分之一；
# - **震荡**：验证集损失在训练过程中回升了多少，即相邻两次评估之间的上升量之和除以它的最低值（一路下降的曲线记为 0）。

# %%
target = before["train loss"] / 10
rates = sorted({args.lr, *args.lrs})
per_seed = {}  # (lr, seed) -> {steps to target, val loss climb, val acc, ...}: one run each
curves = {}
for rate in rates:
    for s in args.seeds:
        if (rate, s) == (args.lr, args.seed):  # the run of Step 7: reuse it
            row, hist = tuned, tuned_hist
        else:
            row, hist = run(f"lr {rate}", minituner.full(base), task, args.steps, rate, batch_size=args.batch_size,
                            seed=s, eval_every=every)
        val = [v for _, v, _ in hist.val]
        reached_at = next((i + 1 for i, v in enumerate(running_mean(hist.losses)) if v < target), None)
        per_seed[rate, s] = row | {"reached": reached_at,
                                   "steps to target": reached_at or args.steps + 1,  # never reached: counted as steps + 1
                                   "val loss climb": sum(max(0.0, b - a) for a, b in zip(val, val[1:])) / min(val)}
        if s == args.seeds[0]:
            curves[_("lr {rate}").format(rate=rate)] = hist
lr_rows = [{"lr": rate,
            "steps to target, per seed": ", ".join(str(per_seed[rate, s]["reached"] or "–") for s in args.seeds),
            **{k: mean(per_seed[rate, s][k] for s in args.seeds)
               for k in ("val loss climb", "train loss", "val loss", "val acc", "test acc")}}
           for rate in rates]
print(_("target: training loss (running mean) below {target:.4f}, a tenth of the base's {base:.4f}; {steps} steps, "
        "validation every {every}; seeds {seeds} (–: not reached); the other columns are means over the seeds").format(
    target=target, base=before["train loss"], steps=args.steps, every=every, seeds=args.seeds))
show(markdown_table(lr_rows))
plot_curves(curves, _("classify: full fine-tuning at several learning rates (seed {seed})").format(seed=args.seeds[0]),
            args.out / "learning_rates.png");

# %% [markdown]
# The article's claim, checked on the runs above by one rule (`minituner.verdict`): between
# each neighbouring pair of rates, paired by seed, a difference counts only when every seed
# shows it and its mean exceeds its standard error times Student's t (the two-sided quantile
# `minituner.verdict` uses); a claim about "larger" holds only when it holds between every
# neighbouring pair. A run that never reached the target counts as one step more than it trained.

# %% [markdown] lang="zh"
# 用同一条规则（`minituner.verdict`）在上面这些训练上检验原文的说法：每一对相邻的学习率按随机种子配对比较，只有当每个随机种子都显示出同一方向的差别，并且平均差超过标准误乘以 Student t 分布的分位数（`minituner.verdict` 所用的双侧分位数）时，这个差别才算数；关于“越大越……”的说法，只有在每一对相邻取值之间都成立才算成立。从未达到目标的训练，步数按实际训练步数加一计。

# %%
def by_seed(rate, key):
    return {s: per_seed[rate, s][key] for s in args.seeds}


names = [_("lr {rate}").format(rate=rate) for rate in rates]  # as the verdicts name them, in the run's language
faster = trend(names, [by_seed(rate, "steps to target") for rate in rates], "steps to target",
               words=("slower than", "faster than"))
shakier = trend(names, [by_seed(rate, "val loss climb") for rate in rates], "validation loss climb",
                words=("climbs more than", "climbs less than"))
# the article: smaller is stable but slow, larger oscillates but converges faster; in the sweep's order
# (small to large) each rate is slower than, and climbs less than, the next
verdict = ("confirmed" if (faster.direction, shakier.direction) == (1, -1)
           else "not decided: too few seeds" if None in (faster.direction, shakier.direction)
           else "not confirmed at every step of the sweep")
base_val = {s: before["val acc"] for s in args.seeds}  # the untrained base: the same on every seed
wrecked = [v for v in (compare(name, by_seed(rate, "val acc"), "the untrained base", base_val, "validation accuracy")
                       for name, rate in zip(names, rates, strict=True)) if v.direction == -1]
chosen = best(lr_rows)  # by mean validation accuracy, as every choice in these lessons
show(conclusions(
    _("Speed: {verdict}.").format(verdict=faster.text("the larger the rate, the fewer steps to the target")),
    _("Oscillation: {verdict}.").format(verdict=shakier.text("the larger the rate, the more the validation loss climbs")),
    _("Too large a rate costs more than oscillation: {verdicts}: what pretraining taught was overwritten, which is why "
      "the article asks a pretrained model for a small rate.").format(verdicts=_("; ").join(str(v) for v in wrecked))
    if wrecked else "",
    _("Verdict on §4 step 6 (a small rate is stable but slow, a large one oscillates but converges faster): {verdict}. "
      "The validation split prefers lr {lr} (mean val acc {val:.3f}; test acc beside it {test:.3f}).").format(
        verdict=_(verdict), lr=chosen["lr"], val=chosen["val acc"], test=chosen["test acc"]),
))

# %% [markdown]
# ## The article's example: what was a cat is now to be called a dog
#
# §4 step 3's note: "originally it recognised a cat, now make it call it a dog". The
# `relabel` task has the same descriptions as `classify`, with *cat* and *dog* swapped.
# We continue training the fine-tuned model on it, then ask about cats and dogs on
# descriptions it was trained on (seen) and on the test split's descriptions (unseen),
# and count which name it answers: the swapped one, the original one, or another.
# The other animals' labels did not change: their accuracy shows what the swap cost.

# %% [markdown] lang="zh"
# ## 原文的例子：原来叫猫的，现在要叫狗
#
# §4 第 3 步的说明：“原来识别的是猫，现在要让它叫狗”。`relabel` 任务的描述与 `classify` 相同，只是把 *cat* 和 *dog* 两个名字对调了。我们在它上面接着训练已经微调好的模型，然后分别用训练时见过的描述和测试集里没见过的描述问猫和狗，数一数它答的是哪个名字：对调后的名字、原来的名字，还是别的名字。其他动物的标签没有变：它们的准确率反映出这次对调付出的代价。

# %%
relabel = minituner.make_task("relabel", rows=args.rows)
swapped = minituner.full(model.base)  # a trainable copy of the fine-tuned GPT
minituner.train(swapped, relabel, steps=args.relabel_steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                progress=False)
said = {}  # (split, model) -> the greedy answer of every row
relabel_rows = []
for split in ("train", "test"):
    old, new = getattr(task, split), getattr(relabel, split)
    assert [e[0] for e in old.examples] == [e[0] for e in new.examples]  # the same prompts, row by row
    is_cd = torch.tensor([o[1] != n[1] for o, n in zip(old.examples, new.examples, strict=True)])
    said_new = torch.tensor(minituner.evaluate(swapped, new)["correct"])  # answered the new label
    said_old = torch.tensor(minituner.evaluate(swapped, old)["correct"])  # answered the original label
    right_before = torch.tensor(minituner.evaluate(model, old)["correct"])
    relabel_rows.append({
        "descriptions": "seen in training" if split == "train" else "unseen (test)",
        "cat/dog rows": int(is_cd.sum()),
        "cat/dog: original, before": right_before[is_cd].float().mean().item(),
        "cat/dog: swapped, after": said_new[is_cd].float().mean().item(),
        "cat/dog: original, after": said_old[is_cd].float().mean().item(),
        "other animals, before": right_before[~is_cd].float().mean().item(),
        "other animals, after": said_new[~is_cd].float().mean().item(),
    })
show(markdown_table(relabel_rows))
for prompt, _answer in [relabel.train.examples[0], relabel.test.examples[0]]:
    print("   " + _("{prompt!r}: before {before!r}, after {after!r}").format(
        prompt=prompt, before=minituner.answer(model, tok, prompt), after=minituner.answer(swapped, tok, prompt)))

# %% [markdown]
# ### Where did the other animals' answers go?
#
# Relabelling changed two labels, yet in the table above the other animals' unseen
# accuracy moves too, and so does how often the unseen cat and dog rows get their
# *original* name. Does training on the swap pull answers towards the two names? We count,
# on every unseen (test) row, before and after, how many answers are "cat" or "dog".

# %% [markdown] lang="zh"
# ### 其他动物的答案去哪儿了？
#
# 对调只改了两个标签，可在上表中，其他动物在没见过的描述上的准确率也变了，没见过的猫狗描述答出**原来**名字的比例也变了。在对调上训练，会不会把答案往这两个名字上拉？我们在测试集（没见过的描述）的每一行上，数一数对调训练前后各有多少个答案是 cat 或 dog。

# %%
def says(m, split, name):
    """Per row: would m's greedy answer be `name`? (evaluate's exact match against that answer)."""
    probe = encode_examples("probe", [(p, name) for p, _ in split.examples], tok)
    return torch.tensor(minituner.evaluate(m, probe)["correct"])


is_cd = torch.tensor([a in (" cat.", " dog.") for _, a in task.test.examples])
names_rows = []
for name, m in (("before", model), ("after", swapped)):
    cat_or_dog = says(m, task.test, " cat.") | says(m, task.test, " dog.")
    names_rows.append({"model": name, "answers cat or dog": int(cat_or_dog.sum()),
                       "of them on other animals": int(cat_or_dog[~is_cd].sum()),
                       "of them on cat/dog rows": int(cat_or_dog[is_cd].sum())})
show(markdown_table(names_rows))
print(_("(the unseen split has {rows} rows, {cd} of them cat/dog rows: one row is {one:.3f} of their accuracy)").format(
    rows=len(task.test), cd=int(is_cd.sum()), one=1 / is_cd.sum()))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above.

# %% [markdown] lang="zh"
# ## 小结
#
# 由上面的表格生成。

# %%
seen, unseen = relabel_rows
b, a = names_rows
held, spread = seen["cat/dog: swapped, after"], unseen["cat/dog: swapped, after"]
swap = (_("The swap: {held} of the seen cat/dog descriptions answered with the swapped name, {spread} of the unseen "
          "ones: {steps} steps taught a mapping from the seen prompts, not that cats are now called dogs.")
        if spread < held else
        _("The swap: {held} of the seen cat/dog descriptions answered with the swapped name, {spread} of the unseen "
          "ones: {steps} steps taught a mapping from the seen prompts."))
show(conclusions(
    _("One training step written out (logits, masked cross-entropy, backward, clipping, AdamW) equals train()'s first "
      "step to {diff:.1e}.").format(diff=step_diff),
    _("Fine-tuning every parameter for {steps} steps moves validation accuracy {val0:.3f} -> {val1:.3f} (test "
      "{test0:.3f} -> {test1:.3f}); the same steps from random weights reach {scratch:.3f} on test: the test's facts "
      "come from pretraining.").format(steps=args.steps, val0=before["val acc"], val1=tuned["val acc"],
                                       test0=before["test acc"], test1=tuned["test acc"],
                                       scratch=scratch["test acc"]),
    _("The learning rate's trade-off (§4 step 6), seeds per rate {seeds}: {verdict} (the rule's words for each "
      "neighbouring pair are under the learning-rate table).").format(seeds=len(args.seeds), verdict=_(verdict)),
    swap.format(held=pct(held), spread=pct(spread), steps=args.relabel_steps),
    _("The other animals' unseen accuracy went {before:.3f} -> {after:.3f}; unseen rows answered 'cat' or 'dog' went "
      "{n_before} -> {n_after}.").format(before=unseen["other animals, before"], after=unseen["other animals, after"],
                                         n_before=b["answers cat or dog"], n_after=a["answers cat or dog"]),
))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/02_answer_mask.py`; write the function bodies, then run `minituner check 02_answer_mask` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `answer_mask`.** The row is prompt + answer, the model reads x = ids[:-1] and predicts y = ids[1:]; return the mask that keeps the answer tokens only. Mind the shift by one.
# 2. **Code: `masked_loss`.** Average the token losses over the kept positions only (article §4 step 4).
# 3. **Predict, then measure.** Run full fine-tuning with the mask switched off (every position counts): does the test accuracy move, and does the model start to repeat prompts?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/02_answer_mask.py`：写好函数体后运行 `minituner check 02_answer_mask --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`answer_mask`。** 一行是提示 + 答案，模型读 x = ids[:-1]、预测 y = ids[1:]；返回只保留答案 token 的掩码。注意错一位的问题。
# 2. **编程：`masked_loss`。** 只在保留的位置上对 token 损失取平均（原文 §4 第 4 步）。
# 3. **先预测再测量。** 关掉掩码（每个位置都计入损失）做一次全量微调：测试集准确率变了吗？模型会不会开始复述提示？
