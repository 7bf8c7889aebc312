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

# %%
import inspect
from statistics import mean

import torch

import minituner
from minituner.checkpoint import base_metadata
from minituner.data import encode_examples
from minituner.functional import cross_entropy
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
print(f"{args.steps} steps, batch {args.batch_size}, lr {args.lr}; relabelling {args.relabel_steps} steps; "
      f"the learning-rate trade-off at {sorted({args.lr, *args.lrs})}")

# %% [markdown]
# ## Step 1: choose the pretrained model (选择预训练模型)
#
# The shipped base (lesson 01) has read every fact of the mini-world, both ways, but
# never a task. Its metadata records how it was pretrained.

# %%
base, meta = minituner.load_base(), base_metadata()
recipe = meta["recipe"]
print(f"pretrained {recipe['steps']:,} steps at lr {recipe['lr']}, batch {recipe['batch_size']}; "
      f"held-out corpus loss {meta['held_out_loss']}, facts answered both ways {meta['fact_accuracy']:.1%}")
minituner.print_trainable_parameters(base);

# %% [markdown]
# ## Step 2: prepare the data (准备数据)
#
# `classify` describes an animal by one or two of its facts and asks for its name. The
# training split (训练集) shows some kinds of fact of every animal; the validation split
# (验证集) and the test split (测试集) ask the *other* kinds, each of its own animals
# (printed below): answering them needs what pretraining taught.

# %%
task = minituner.make_task("classify", rows=args.rows)
world = task.world
train_prompts = {p for p, _ in task.train.examples}
print(f"{len(task.train)} training rows, {len(task.val)} validation rows, {len(task.test)} test rows; "
      f"no prompt in both training and test: {not train_prompts & {p for p, _ in task.test.examples}}")
print(f"the cat: training shows its {' and '.join(world.seen['cat'])}; the "
      f"{'validation' if 'cat' in world.val_animals else 'test'} split asks its {', '.join(world.held_out('cat'))} "
      f"({len(world.val_animals)} validation animals, {len(world.animals) - len(world.val_animals)} test animals)")
for split in (task.train, task.test):
    for p, a in (split.examples[0], split.examples[2]):  # one fact, then two
        print(f"   {split.name}: {p!r} -> {a!r}")

# %% [markdown]
# ## Step 3: adjust the input (调整输入)
#
# Each example becomes one row, prompt then answer, phrased the way the corpus speaks
# ("…, so it is the" → " cat."). The model reads x and must predict y, the same row
# shifted by one character. The loss counts only the answer characters (the `^` below):
# the prompt is given, not learned.

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

# %%
before, _ = run("base, before fine-tuning", base, task, steps=0)
print(f"the base's cross-entropy on the test answers: {before['test loss']:.3f} per answer character; "
      f"exact-match accuracy {before['test acc']:.3f}")

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

# %%
model = minituner.full(base)
show(markdown_table(parameter_table(model.base, depth=1)))  # the GPT inside the wrapper
trainable = minituner.count_parameters(model)[0]
state = AdamW(model.parameters(), lr=args.lr).state_bytes()
print(f"AdamW state {state:,} bytes = 2 × {trainable:,} trainable × 4 bytes: {state == 2 * trainable * 4}")
print(f"lr {args.lr} is {recipe['lr'] / args.lr:.0f}× smaller than pretraining's {recipe['lr']}; "
      f"gradient clipping at norm {GRAD_CLIP}; weight decay {inspect.signature(minituner.train).parameters['weight_decay'].default}")

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
print(f"batch x {tuple(x.shape)}, logits {tuple(logits.shape)}, loss {loss.item():.4f} over {int(m.sum())} answer "
      f"characters; gradient norm {norm.item():.3f} (clip at {GRAD_CLIP}: scaled by {scale:.3f}); lr at step 0 "
      f"{lr0} (train(steps=1) uses {lr_at(0, 1, args.lr, warmup=0)})")
print(f"max |by hand − train()'s first step| over every parameter = {step_diff:.1e}")
print(f"how far each number moved, in units of lr: median {moved.median().item() / lr0:.3f}, "
      f"max {moved.max().item() / lr0:.3f}")

# %% [markdown]
# ## Step 7: train (微调训练), and the same from random weights
#
# The run from scratch: `GPT(base.config, seed=…)`, the same shape with random weights,
# the same data, batch and number of steps, at the learning rate the base was pretrained
# with (a random model needs larger steps). Both runs score the validation split every few
# steps: the right panel is that curve.

# %%
every = max(2, args.steps // 10)
tuned, tuned_hist = run("full fine-tuning", model, task, args.steps, args.lr, batch_size=args.batch_size,
                        seed=args.seed, eval_every=every)
scratch, scratch_hist = run("same shape, from scratch", minituner.GPT(base.config, seed=args.seed + 1), task,
                            args.steps, recipe["lr"], batch_size=args.batch_size, seed=args.seed, eval_every=every)
print(f"fine-tuned: {tuned['s']:.1f} s, final training loss {tuned['train loss']:.3f}; "
      f"from scratch: {scratch['s']:.1f} s, final training loss {scratch['train loss']:.3f}")
plot_curves({f"full fine-tuning, lr {args.lr}": tuned_hist, f"from random weights, lr {recipe['lr']}": scratch_hist},
            "classify: full fine-tuning vs the same training from scratch", args.out / "full_finetune_curves.png");

# %% [markdown]
# ## Step 8: evaluate (评估)
#
# Exact match of the greedy answer, on the training split, on the validation split (what
# any choice is made on) and on the test split (scored once, reported beside it), whose
# facts the task never showed. The base before fine-tuning, the fine-tuned model, and the
# model trained from scratch on the task alone.

# %%
rows = [before, tuned, scratch]
show(markdown_table(rows, ["run", "steps", "lr", "train loss", "train acc", "val acc", "test loss", "test acc"]))
print(f"test accuracy: pretraining buys {tuned['test acc'] - scratch['test acc']:+.3f} over the same training "
      f"from scratch; fine-tuning adds {tuned['test acc'] - before['test acc']:+.3f} to the base as shipped")

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
            curves[f"lr {rate}"] = hist
lr_rows = [{"lr": rate,
            "steps to target, per seed": ", ".join(str(per_seed[rate, s]["reached"] or "–") for s in args.seeds),
            **{k: mean(per_seed[rate, s][k] for s in args.seeds)
               for k in ("val loss climb", "train loss", "val loss", "val acc", "test acc")}}
           for rate in rates]
print(f"target: training loss (running mean) below {target:.4f}, a tenth of the base's {before['train loss']:.4f}; "
      f"{args.steps} steps, validation every {every}; seeds {args.seeds} (–: not reached); the other columns are "
      "means over the seeds")
show(markdown_table(lr_rows))
plot_curves(curves, f"classify: full fine-tuning at several learning rates (seed {args.seeds[0]})",
            args.out / "learning_rates.png");

# %% [markdown]
# The article's claim, checked on the runs above by one rule (`minituner.verdict`): between
# each neighbouring pair of rates, paired by seed, a difference counts only when every seed
# shows it and its mean exceeds its standard error times Student's t (the two-sided quantile
# `minituner.verdict` uses); a claim about "larger" holds only when it holds between every
# neighbouring pair. A run that never reached the target counts as one step more than it trained.

# %%
def by_seed(rate, key):
    return {s: per_seed[rate, s][key] for s in args.seeds}


names = [f"lr {rate}" for rate in rates]
faster = trend(names, [by_seed(rate, "steps to target") for rate in rates], "steps to target",
               words=("slower than", "faster than"), words_zh=("多于", "少于"), metric_zh="达到目标的步数")
shakier = trend(names, [by_seed(rate, "val loss climb") for rate in rates], "validation loss climb",
                words=("climbs more than", "climbs less than"), words_zh=("多于", "少于"), metric_zh="验证集损失回升")
# the article: smaller is stable but slow, larger oscillates but converges faster; in the sweep's order
# (small to large) each rate is slower than, and climbs less than, the next
VERDICT_ZH = {"confirmed": "得到证实", "not decided: too few seeds": "随机种子太少,无法判断",
              "not confirmed at every step of the sweep": "并非在扫描的每一步都成立"}
verdict = ("confirmed" if (faster.direction, shakier.direction) == (1, -1)
           else "not decided: too few seeds" if None in (faster.direction, shakier.direction)
           else "not confirmed at every step of the sweep")
base_val = {s: before["val acc"] for s in args.seeds}  # the untrained base: the same on every seed
wrecked = [v for v in (compare(f"lr {rate}", by_seed(rate, "val acc"), "the untrained base", base_val,
                               "validation accuracy", names_zh=(f"lr {rate}", "未训练的基座", "验证集准确率"))
                       for rate in rates) if v.direction == -1]
chosen = best(lr_rows)  # by mean validation accuracy, as every choice in these lessons
show(conclusions(
    "Speed: " + faster.en("the larger the rate, the fewer steps to the target") + ".",
    "Oscillation: " + shakier.en("the larger the rate, the more the validation loss climbs") + ".",
    "Too large a rate costs more than oscillation: " + "; ".join(v.en() for v in wrecked)
    + ": what pretraining taught was overwritten, which is why the article asks a pretrained model for a small rate."
    if wrecked else "",
    f"Verdict on §4 step 6 (a small rate is stable but slow, a large one oscillates but converges faster): {verdict}. "
    f"The validation split prefers lr {chosen['lr']} (mean val acc {chosen['val acc']:.3f}; test acc beside it "
    f"{chosen['test acc']:.3f}).",
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
for prompt, _ in [relabel.train.examples[0], relabel.test.examples[0]]:
    print(f"   {prompt!r}: before {minituner.answer(model, tok, prompt)!r}, after {minituner.answer(swapped, tok, prompt)!r}")

# %% [markdown]
# ### Where did the other animals' answers go?
#
# Relabelling changed two labels, yet in the table above the other animals' unseen
# accuracy moves too, and so does how often the unseen cat and dog rows get their
# *original* name. Does training on the swap pull answers towards the two names? We count,
# on every unseen (test) row, before and after, how many answers are "cat" or "dog".

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
print(f"(the unseen split has {len(task.test)} rows, {int(is_cd.sum())} of them cat/dog rows: one row is "
      f"{1 / is_cd.sum():.3f} of their accuracy)")

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above, in English and then in Chinese.

# %%
seen, unseen = relabel_rows
b, a = names_rows
held, spread = seen["cat/dog: swapped, after"], unseen["cat/dog: swapped, after"]
other = unseen["other animals, after"] - unseen["other animals, before"]
show(conclusions(
    f"One training step written out (logits, masked cross-entropy, backward, clipping, AdamW) equals train()'s first "
    f"step to {step_diff:.1e}.",
    f"Fine-tuning every parameter for {args.steps} steps moves validation accuracy {before['val acc']:.3f} -> "
    f"{tuned['val acc']:.3f} (test {before['test acc']:.3f} -> {tuned['test acc']:.3f}); the same steps from random "
    f"weights reach {scratch['test acc']:.3f} on test: the test's facts come from pretraining.",
    f"The learning rate's trade-off (§4 step 6), seeds per rate {len(args.seeds)}: {verdict} (the rule's "
    "words for each neighbouring pair are under the learning-rate table).",
    f"The swap: {pct(held)} of the seen cat/dog descriptions answered with the swapped name, {pct(spread)} of the "
    f"unseen ones: {args.relabel_steps} steps taught a mapping from the seen prompts"
    + (", not that cats are now called dogs." if spread < held else "."),
    f"The other animals' unseen accuracy went {unseen['other animals, before']:.3f} -> "
    f"{unseen['other animals, after']:.3f}; unseen rows answered 'cat' or 'dog' went {b['answers cat or dog']} -> "
    f"{a['answers cat or dog']}.",
    zh=f"把训练的一步逐行写出来(logits、只算答案位置的交叉熵、反向传播、梯度裁剪、AdamW 更新),"
       f"与 train() 的第一步相差 {step_diff:.1e}。全量微调 {args.steps} 步后,验证集准确率从 "
       f"{before['val acc']:.3f} 升到 {tuned['val acc']:.3f}(测试集 {before['test acc']:.3f} → "
       f"{tuned['test acc']:.3f});同样的步数从随机权重开始只有 {scratch['test acc']:.3f}:测试集里的事实来自预训练。"
       f"学习率({len(args.seeds)} 个随机种子):{faster.zh('学习率越大,达到目标所需的步数越少')};"
       f"{shakier.zh('学习率越大,验证集损失回升越多')};文章的说法:"
       f"{VERDICT_ZH[verdict]}。"
       f"猫狗互换:见过的描述有 {pct(held)} 答成了新名字,"
       f"没见过的只有 {pct(spread)}——{args.relabel_steps} 步学到的是见过的句子到新名字的映射。其他动物在测试集上的"
       f"准确率变化 {other:+.3f}。",
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/02_answer_mask.py`; write the function bodies, then run `minituner check 02_answer_mask` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `answer_mask`.** The row is prompt + answer, the model reads x = ids[:-1] and predicts y = ids[1:]; return the mask that keeps the answer tokens only. Mind the shift by one.
# 2. **Code: `masked_loss`.** Average the token losses over the kept positions only (article §4 step 4).
# 3. **Predict, then measure.** Train 全量微调 with the mask switched off (every position counts): does the test accuracy move, and does the model start to repeat prompts?
#
# 编程题的骨架在 `exercises/02_answer_mask.py`：写好函数体后运行 `minituner check 02_answer_mask --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`answer_mask`。** 一行是提示 + 答案，模型读 x = ids[:-1]、预测 y = ids[1:]；返回只保留答案 token 的掩码。注意错一位的问题。
# 2. **编程：`masked_loss`。** 只在保留的位置上对 token 损失取平均（文章 §4 第 4 步）。
# 3. **先预测再测量。** 关掉掩码（每个位置都计入损失）做一次全量微调：测试准确率变了吗？模型会不会开始复述提示？
