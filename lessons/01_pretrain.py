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

# %%
import math

import matplotlib.pyplot as plt
import torch

import minituner
from minituner import lesson
from minituner.checkpoint import base_metadata
from minituner.data import corpus_sentences
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
print(f"vocabulary: {tok.vocab_size} characters; {len(probe)} fact questions")
print("one fact in the corpus:", corpus_sentences(minituner.make_world())[:4])

# %% [markdown]
# ## 1. Before: a model that knows nothing (预训练之前)
#
# A freshly initialised GPT of the same shape writes noise: every character is about equally
# likely, so its loss is near ln V, the log of the vocabulary size.

# %%
fresh = minituner.GPT(minituner.GPTConfig(), seed=0)
# the test rows pretraining never trains on: the rows `pretrain()` scores the base on
corpus = minituner.make_corpus(n_train=1, length=fresh.config.block_size + 1)
fresh_loss = minituner.evaluate(fresh, corpus.test)["loss"]
ln_v = math.log(tok.vocab_size)
print(f"held-out loss on the {len(corpus.test)} test rows {fresh_loss:.3f}, ln V = {ln_v:.3f}")
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

# %%
short, hist, short_meta = pretrain(steps=steps, progress=True, n_train=2000, eval_every=max(1, steps // args.evals))
ms_per_step = 1000 * hist.seconds / steps
recipe = short_meta["recipe"]
print(f"{steps} steps on {recipe['n_train_rows']:,} rows, lr {recipe['lr']} after {recipe['warmup']} warm-up steps, "
      f"batch {recipe['batch_size']}: {hist.seconds:.1f} s ({ms_per_step:.0f} ms a step on this machine, {len(hist.val)} "
      f"validation evaluations included); training loss of the last steps {short_meta['final_train_loss']}")

fig, (ax0, ax) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
ax0.plot(range(1, steps + 1), [lr_at(s, steps, recipe["lr"], recipe["warmup"]) for s in range(steps)])
ax0.axvline(recipe["warmup"], color="grey", ls=":", label=label(f"end of warm-up, step {recipe['warmup']}", "预热结束"))
ax0.set_xlabel(label("step", "步"))
ax0.set_ylabel(label("learning rate", "学习率"))
ax0.set_title(label("warm-up, then cosine decay", "预热,然后余弦衰减"))
ax0.legend(fontsize=8)
ax0.grid(alpha=0.3)
ax.plot(range(1, steps + 1), hist.losses, alpha=0.6, label=label("training loss (each step)", "训练损失"))
ax.plot([s for s, _, _ in hist.val], [loss for _, loss, _ in hist.val], "o-",
        label=label("validation loss", "验证集损失"))
ax.axhline(ln_v, color="grey", ls=":", label=label("ln V: knowing nothing", "ln V:一无所知"))
ax.axhline(meta["held_out_loss"], color="green", ls="--",
           label=label(f"shipped base, test rows ({meta['recipe']['steps']:,} steps)", "发布的基座模型"))
ax.set_yscale("log")
ax.set_xlabel(label("step", "步"))
ax.set_ylabel(label("loss per character (nats, every position)", "每个字符的损失"))
ax.set_title(label(f"Pretraining, {steps} steps", f"预训练 {steps} 步"))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
save_figure(fig, out / "pretrain_loss.png");

# %% [markdown]
# ## 3. The short run against the shipped base (短训练 vs 发布的基座模型)
#
# Held-out loss says how well each model predicts the world's text; "facts answered both
# ways" asks every fact forwards and backwards and counts exact greedy answers.

# %%
results = {name: {"held-out loss": minituner.evaluate(m, corpus.test)["loss"],
                  "facts answered both ways": minituner.evaluate(m, probe)["accuracy"]}
           for name, m in (("short run", short), ("shipped base", base))}
r = meta["recipe"]
show(markdown_table([{"model": name, "steps": n, **v} for (name, v), n in zip(results.items(), (steps, r["steps"]))]))
print(f"the shipped base: {r['steps']:,} steps, lr {r['lr']}, batch {r['batch_size']}, seed {r['seed']}: "
      f"{meta['seconds']} s when it was made ({1000 * meta['seconds'] / r['steps']:.0f} ms a step, "
      f"on {meta['device']}, torch {meta['torch']})")

# %% [markdown]
# ## 4. What each model writes (各自写出什么)

# %%
show(markdown_table([{"prompt": p, "short run": minituner.answer(short, tok, p, max_new_tokens=16),
                      "shipped base": minituner.answer(base, tok, p, max_new_tokens=16)} for p in PROMPTS]))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the results above, in English and then in Chinese.

# %%
short_r, base_r = results["short run"], results["shipped base"]
show(conclusions(
    f"Untrained, the model's loss is {fresh_loss:.2f}, against ln V = {ln_v:.2f}: it knows nothing.",
    f"{steps} steps took {hist.seconds:.0f} s here and brought the held-out loss to {short_r['held-out loss']:.3f}; "
    f"it answers {pct(short_r['facts answered both ways'])} of the facts both ways.",
    f"The shipped base ran {num(r['steps'])} steps: held-out loss {base_r['held-out loss']:.3f}, "
    f"{pct(base_r['facts answered both ways'])} of the facts. Pretraining is the expensive part; fine-tuning "
    "(the next lessons) starts from its result.",
    zh=f"未经训练的模型损失为 {fresh_loss:.2f},与 ln V = {ln_v:.2f} 相当:它什么都不知道。预训练 {steps} 步"
       f"(这台机器上用了 {hist.seconds:.0f} 秒)把留出集损失降到 {short_r['held-out loss']:.3f},"
       f"正反两个方向都答对的事实占 {pct(short_r['facts answered both ways'])}。发布的基座模型训练了 "
       f"{num(r['steps'])} 步,留出集损失 {base_r['held-out loss']:.3f},答对 {pct(base_r['facts answered both ways'])} "
       "的事实。预训练是最昂贵的一步;后面各课的微调都从它的结果出发。",
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/01_next_token_loss.py`; write the function bodies, then run `minituner check 01_next_token_loss` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `next_token_loss`.** Write the mean of −log softmax(z)[y] over every position, numerically stable (subtract max z first).
# 2. **Predict, then measure.** Before pretraining, what loss should a model that guesses uniformly over V tokens have? Compare with the first logged loss.
# 3. **Design.** Pretrain with half the steps (`minituner pretrain --steps …`) and ask the fact probe again: which facts are lost first?
#
# 编程题的骨架在 `exercises/01_next_token_loss.py`：写好函数体后运行 `minituner check 01_next_token_loss --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`next_token_loss`。** 实现对所有位置取平均的 −log softmax(z)[y]，要数值稳定（先减去 max z）。
# 2. **先预测再测量。** 预训练之前，一个在 V 个 token 上均匀猜测的模型，损失应是多少？与第一条记录的损失比较。
# 3. **设计。** 用一半的步数预训练（`minituner pretrain --steps …`），再问一遍事实探针：哪些事实最先丢失？
