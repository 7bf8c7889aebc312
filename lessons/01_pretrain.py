# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 01 · Where a pretrained model comes from (预训练模型, article §4 step 1)
#
# Step 1 of the article's fine-tuning recipe is *choose a pretrained model*: "the mother of
# the model", trained on a large data set without labels. Here that data set is the mini-world
# corpus (`minituner.make_corpus`): plain sentences stating every fact of a small world of
# animals, in both directions and in two paraphrases (one fact's four sentences are printed
# below).
#
# Pretraining (预训练) is language modelling: predict each next character; the loss
# (损失函数) is the cross-entropy (交叉熵) at every position. This lesson runs a *short*
# pretraining — the same code as `minituner pretrain`, with fewer steps — and compares it with
# the shipped base, which ran the full recipe once (its metadata records how). How many steps
# and how long they take are printed by the code below.
#
# Run it: `python lessons/01_pretrain.py` (`--steps N` to change the short run, `--smoke` for
# the test preset). In a notebook the full lesson runs.

# %% [markdown] lang="zh"
# # 01 · 预训练模型从哪里来（文章 §4 第 1 步）
#
# 文章给出的微调流程，第 1 步是*选择一个预训练模型*：它是“模型之母”，在一个没有标签的大数据集上训练而成。这里的数据集是迷你世界的语料（`minituner.make_corpus`）：一些朴素的句子，陈述一个由动物组成的小世界里的每一条事实；每条事实都正反两个方向各说一遍，每个方向又有两种说法（下面会打印出一条事实对应的四个句子）。
#
# 预训练就是语言建模：预测每一个位置的下一个字符；损失函数是每个位置上的交叉熵。本课运行一次*简短*的预训练——代码与 `minituner pretrain` 完全相同，只是步数更少——并与发布的基座模型比较；基座模型按完整的训练方案跑过一遍（它的元数据记录了具体做法）。跑多少步、花了多长时间，都由下面的代码打印出来。
#
# 运行方式：`python lessons/01_pretrain.py`（用 `--steps N` 改变简短训练的步数，加 `--smoke` 使用测试预设，加 `--lang zh` 让输出变成中文）。在 notebook 里运行的是完整的课程。

# %%
import math

import matplotlib.pyplot as plt
import torch

import minituner
from minituner import lesson
from minituner.checkpoint import base_metadata
from minituner.data import corpus_sentences
from minituner.i18n import _
from minituner.lesson import conclusions, num, pct
from minituner.pretrain import pretrain
from minituner.report import label, markdown_table, save_figure, show
from minituner.train import lr_at

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = lesson.options("Lesson 01: pretraining", smoke=dict(steps=4, evals=1, prompts=1), out="runs/01_pretrain",
                      steps=150, evals=10, prompts=3)
steps, out = args.steps, args.out
PROMPTS = ["the cat eats", "the animal that says woof is the", "the owl lives in the"][: args.prompts]

torch.manual_seed(0)
tok = minituner.CharTokenizer()
base = minituner.load_base()
meta = base_metadata()
probe = minituner.make_fact_probe()  # every fact asked both ways, in the corpus's words
print(_("vocabulary: {V} characters; {n} fact questions").format(V=tok.vocab_size, n=len(probe)))
print(_("one fact in the corpus:"), corpus_sentences(minituner.make_world())[:4])

# %% [markdown]
# ## 1. Before: a model that knows nothing (预训练之前)
#
# A freshly initialised GPT of the same shape writes noise: every character is about equally
# likely, so its loss is near ln V, the log of the vocabulary size.

# %% [markdown] lang="zh"
# ## 1. 预训练之前：一无所知的模型
#
# 一个刚刚随机初始化、结构相同的 GPT 只会写出噪声：每个字符出现的可能性都差不多，所以它的损失接近 ln V，也就是词表大小的对数。

# %%
fresh = minituner.GPT(minituner.GPTConfig(), seed=0)
# the test rows pretraining never trains on: the rows `pretrain()` scores the base on
corpus = minituner.make_corpus(n_train=1, length=fresh.config.block_size + 1)
fresh_loss = minituner.evaluate(fresh, corpus.test)["loss"]
ln_v = math.log(tok.vocab_size)
print(_("held-out loss on the {n} test rows {loss:.3f}, ln V = {ln_v:.3f}").format(
    n=len(corpus.test), loss=fresh_loss, ln_v=ln_v))
show(markdown_table([{"prompt": p, "fresh model writes": minituner.answer(fresh, tok, p, max_new_tokens=16)}
                     for p in PROMPTS]))

# %% [markdown]
# ## 2. Pretrain, briefly (预训练:只跑几步)
#
# `pretrain()` is the function that made the shipped base; here it runs for fewer steps, on
# fewer rows of the corpus, with the base's own recipe: AdamW, a learning rate with a
# linear warm-up and a cosine decay, the same batch (all printed below). The left panel draws
# that schedule, `minituner.train.lr_at(step)`: the rate climbs in a straight line from almost
# 0 to its peak over the warm-up steps (a fresh model's first gradients are large and point
# anywhere; full-size steps then could throw it far off), then falls along half a cosine
# towards a tenth of the peak by the last step (smaller steps at the end settle the loss
# instead of making it jump around its minimum). Every few steps it
# scores the corpus's validation rows (验证集), which it never trains on; the shipped base's
# line is its loss on the corpus's test rows, the same sentences drawn with another seed.
# The loss falls fast at first, then slowly; sections 3 and 4 show what the short run has
# learned by its end.

# %% [markdown] lang="zh"
# ## 2. 预训练：只跑几步
#
# 发布的基座模型正是由 `pretrain()` 这个函数训练出来的；这里让它少跑几步、只用语料中较少的行，但沿用基座模型自己的训练方案：AdamW 优化器，先线性预热、再余弦衰减的学习率，相同的批大小（都在下面打印出来）。左图画的就是这个学习率调度，即 `minituner.train.lr_at(step)`：在预热的那几步里，学习率从接近 0 沿直线升到峰值（新模型最初的梯度很大、方向杂乱，这时就迈满步长，可能把模型甩得很远）；之后沿半个余弦周期下降，到最后一步降到峰值的十分之一（最后阶段步子小一些，损失才能稳定下来，而不是在最小值附近来回跳）。每隔若干步，它会在语料的验证集上评估一次，验证集从不参与训练；发布的基座模型那条线是它在语料测试集上的损失，测试集是同一类句子，只是用另一个随机种子抽取。损失起初下降得很快，随后变慢；第 3、4 节展示简短训练到最后学到了什么。

# %%
short, hist, short_meta = pretrain(steps=steps, progress=True, n_train=2000, eval_every=max(1, steps // args.evals))
ms_per_step = 1000 * hist.seconds / steps
recipe = short_meta["recipe"]
print(_("{steps} steps on {rows:,} rows, lr {lr} after {warmup} warm-up steps, batch {batch}: {seconds:.1f} s "
        "({ms:.0f} ms a step on this machine, {evals} validation evaluations included); training loss of the last "
        "steps {loss}").format(steps=steps, rows=recipe["n_train_rows"], lr=recipe["lr"], warmup=recipe["warmup"],
                               batch=recipe["batch_size"], seconds=hist.seconds, ms=ms_per_step, evals=len(hist.val),
                               loss=short_meta["final_train_loss"]))

fig, (ax0, ax) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
ax0.plot(range(1, steps + 1), [lr_at(s, steps, recipe["lr"], recipe["warmup"]) for s in range(steps)])
ax0.axvline(recipe["warmup"], color="grey", ls=":", label=label("end of warm-up, step {step}").format(step=recipe["warmup"]))
ax0.set_xlabel(label("step"))
ax0.set_ylabel(label("learning rate"))
ax0.set_title(label("warm-up, then cosine decay"))
ax0.legend(fontsize=8)
ax0.grid(alpha=0.3)
ax.plot(range(1, steps + 1), hist.losses, alpha=0.6, label=label("training loss (each step)"))
ax.plot([e[0] for e in hist.val], [e[1] for e in hist.val], "o-",
        label=label("validation loss"))
ax.axhline(ln_v, color="grey", ls=":", label=label("ln V: knowing nothing"))
ax.axhline(meta["held_out_loss"], color="green", ls="--",
           label=label("shipped base, test rows ({steps:,} steps)").format(steps=meta["recipe"]["steps"]))
ax.set_yscale("log")
ax.set_xlabel(label("step"))
ax.set_ylabel(label("loss per character (nats, every position)"))
ax.set_title(label("Pretraining, {steps} steps").format(steps=steps))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
save_figure(fig, out / "pretrain_loss.png");

# %% [markdown]
# ## 3. The short run against the shipped base (短训练 vs 发布的基座模型)
#
# Held-out loss says how well each model predicts the world's text; "facts answered both
# ways" asks every fact forwards and backwards and counts exact greedy answers.

# %% [markdown] lang="zh"
# ## 3. 简短训练与发布的基座模型对比
#
# 留出集损失衡量每个模型对这个世界的文本预测得有多好；“正反都答对的事实”把每条事实正着问一遍、反着问一遍，统计贪心解码给出的答案与标准答案完全一致的比例。

# %%
results = {name: {"held-out loss": minituner.evaluate(m, corpus.test)["loss"],
                  "facts answered both ways": minituner.evaluate(m, probe)["accuracy"]}
           for name, m in (("short run", short), ("shipped base", base))}
r = meta["recipe"]
show(markdown_table([{"model": name, "steps": n, **v} for (name, v), n in zip(results.items(), (steps, r["steps"]))]))
print(_("the shipped base: {steps:,} steps, lr {lr}, batch {batch}, seed {seed}: {seconds} s when it was made "
        "({ms:.0f} ms a step, on {device}, torch {torch})").format(
    steps=r["steps"], lr=r["lr"], batch=r["batch_size"], seed=r["seed"], seconds=meta["seconds"],
    ms=1000 * meta["seconds"] / r["steps"], device=meta["device"], torch=meta["torch"]))

# %% [markdown]
# ## 4. What each model writes (各自写出什么)

# %% [markdown] lang="zh"
# ## 4. 两个模型各自写出什么
#
# 对同样的几个提示，分别用简短训练的模型和发布的基座模型做贪心解码。

# %%
show(markdown_table([{"prompt": p, "short run": minituner.answer(short, tok, p, max_new_tokens=16),
                      "shipped base": minituner.answer(base, tok, p, max_new_tokens=16)} for p in PROMPTS]))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the results above.

# %% [markdown] lang="zh"
# ## 小结
#
# 以下结论由上面的运行结果自动生成。

# %%
short_r, base_r = results["short run"], results["shipped base"]
show(conclusions(
    _("Untrained, the model's loss is {loss:.2f}, against ln V = {ln_v:.2f}: it knows nothing.").format(
        loss=fresh_loss, ln_v=ln_v),
    _("{steps} steps took {seconds:.0f} s here and brought the held-out loss to {loss:.3f}; it answers {acc} of the "
      "facts both ways.").format(steps=steps, seconds=hist.seconds, loss=short_r["held-out loss"],
                                 acc=pct(short_r["facts answered both ways"])),
    _("The shipped base ran {steps} steps: held-out loss {loss:.3f}, {acc} of the facts. Pretraining is the "
      "expensive part; fine-tuning (the next lessons) starts from its result.").format(
        steps=num(r["steps"]), loss=base_r["held-out loss"], acc=pct(base_r["facts answered both ways"])),
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/01_next_token_loss.py`; write the function bodies, then run `minituner check 01_next_token_loss` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `next_token_loss`.** Write the mean of −log softmax(z)[y] over every position, numerically stable (subtract max z first).
# 2. **Predict, then measure.** Before pretraining, what loss should a model that guesses uniformly over V tokens have? Compare with the first logged loss.
# 3. **Design.** Pretrain with half the steps (`minituner pretrain --steps …`) and ask the fact probe again: which facts are lost first?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/01_next_token_loss.py`：写好函数体后运行 `minituner check 01_next_token_loss --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`next_token_loss`。** 实现所有位置上 −log softmax(z)[y] 的平均值，并保证数值稳定（先减去 z 的最大值）。
# 2. **先预测，再测量。** 预训练之前，一个在 V 个 token 上均匀瞎猜的模型，损失应该是多少？与记录下的第一个损失值比较。
# 3. **设计。** 用一半的步数预训练（`minituner pretrain --steps …`），再用事实探针问一遍：哪些事实最先丢失？
