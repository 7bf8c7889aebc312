# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 04 · 提示微调 (prompt tuning, article §3.2)
#
# The article's prompt tuning keeps the base model as it is and, for each task, trains
# a few extra "tokens" put in front of the input:
#
# X = [x1, …, xm]  becomes  X' = [x'1, …, x'k; x1, …, xm],  and  Y = W X'.
#
# The x' are not characters of the vocabulary: they are k free vectors of the model's
# width d, a *soft prompt* (软提示) P (k × d), the only thing that trains (Lester et al. 2021).
# In minituner that is one line of `model.py`, the `prompt=` slot of `GPT.forward`:
# `x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)` with `virtual` = P plus positions.
#
# This lesson checks that line by hand, sweeps k against full fine-tuning (lesson 02),
# measures what an untrained prompt costs the base, and tries what the literature does to
# help. Lester et al. found that prompt tuning lags behind full fine-tuning on small
# models and closes the gap only as models approach ten billion parameters; this base's
# size is printed below.
#
# Run it: `python lessons/04_prompt_tuning.py` (add `--smoke` for the quick test preset).

# %% [markdown] lang="zh"
# # 04 · 提示微调（prompt tuning，原文 §3.2）
#
# 原文介绍的提示微调保持基座模型原封不动，为每个任务训练几个放在输入前面的额外“token”：
#
# X = [x1, …, xm]  变为  X' = [x'1, …, x'k; x1, …, xm]，而  Y = W X'。
#
# 这些 x' 并不是词表里的字符，而是 k 个宽度为 d 的自由向量，合起来就是*软提示*（soft prompt）P，
# 一个 k × d 的矩阵，也是唯一参与训练的部分（Lester et al. 2021）。在 minituner 里，它只是 `model.py`
# 中的一行代码，位于 `GPT.forward` 的 `prompt=` 参数处：
# `x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)`，其中 `virtual` 是 P 加上位置嵌入。
#
# 本课先手算验证这一行，再扫描不同的 k 并与全量微调（第 02 课）对比，接着测量一个未经训练的提示会让
# 基座模型付出多少代价，最后试一试文献中帮助提示微调的几种做法。Lester et al. 发现，在小模型上提示微调不如
# 全量微调，只有当模型规模接近百亿参数时两者的差距才会消失；本课基座模型的参数量见下方输出。
#
# 运行方法：`python lessons/04_prompt_tuning.py`（加上 `--smoke` 则使用测试用的快速预设）。

# %%
import copy

import torch

import minituner
from minituner.i18n import _
from minituner.lesson import best, conclusions, options, reference_rows, run
from minituner.methods.prompt import prompt_parameter_count
from minituner.report import markdown_table, plot_curves, plot_tradeoff, show
from minituner.train import print_answers
from minituner.verdict import compare

args = options("Lesson 04: prompt tuning", smoke=dict(rows=48, steps=3, ks=(4,), answers=1, seeds=(0,)), out="runs/04_prompt_tuning",
               ks=(1, 4, 16), steps=48, batch_size=16, lr=3e-2, full_lr=5e-4, seed=0, seeds=(0, 1, 2), rows=None,
               answers=3)
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
fingerprint = minituner.fingerprint(base)
C = base.config.n_embd
print(_("k in {ks}; {steps} steps, batch {batch}; prompt lr {lr}, full fine-tuning lr {full_lr}; "
        "the base has {params:,} parameters").format(ks=args.ks, steps=args.steps, batch=args.batch_size, lr=args.lr,
                                                     full_lr=args.full_lr,
                                                     params=minituner.count_parameters(base)[1]))

# %% [markdown]
# ## 1. X' = [P; X], checked by hand
#
# `minituner.prompt_tuning(base, num_virtual_tokens=k)` deep-copies the base, freezes
# every tensor of the copy, and adds one trainable tensor, `prompt`, of shape (k, d).
# We build X' ourselves (token embeddings plus positions, P in front), run the frozen
# blocks on it, and compare with the model's own forward.
#
# Two details the formula leaves open, and what minituner does:
# - **positions**: as PEFT does on GPT-2, [P; X] is one sequence of k + T positions. Virtual
#   token i gets the position embedding wpe[i] added (x'ᵢ = Pᵢ + wpe[i]), and the real
#   tokens move to positions k…k+T−1 (pretraining saw them at 0…T−1). The attention
#   length k + T may not exceed the context (`block_size`), or the model raises ValueError.
# - **the loss**: the model returns logits for the T real positions only, so the
#   answer-only mask of the task lines up with them; virtual positions never count.

# %% [markdown] lang="zh"
# ## 1. 手算验证 X' = [P; X]
#
# `minituner.prompt_tuning(base, num_virtual_tokens=k)` 先深拷贝一份基座模型，冻结副本里的每个张量，
# 再加上唯一一个可训练张量：形状为 (k, d) 的 `prompt`。我们自己构造 X'（token 嵌入加上位置嵌入，P 放在
# 最前面），让冻结的 Transformer 块在它上面运行，再与模型自己的前向计算比较。
#
# 公式没有交代的两个细节，以及 minituner 的做法：
# - **位置**：与 PEFT 在 GPT-2 上的做法一样，[P; X] 是一条共 k + T 个位置的序列。第 i 个虚拟 token 加上
#   位置嵌入 wpe[i]（x'ᵢ = Pᵢ + wpe[i]），真实 token 则挪到位置 k…k+T−1（预训练时它们位于 0…T−1）。
#   注意力的长度 k + T 不能超过上下文长度（`block_size`），否则模型会抛出 ValueError。
# - **损失**：模型只返回 T 个真实位置的 logits，因此任务里“只对答案计损失”的掩码正好与之对齐；
#   虚拟位置永远不计入损失。

# %%
@torch.no_grad()
def forward_by_hand(gpt, idx, P, shift):
    """The frozen GPT on X' = [P + wpe[0:k]; X + wpe[shift:shift+T]]: logits of the T real tokens."""
    B, T = idx.shape
    x = gpt.wte.weight[idx] + gpt.wpe.weight[shift : shift + T]  # (B, T, d): X at positions shift..shift+T-1
    virtual = P + gpt.wpe.weight[: len(P)]  # (k, d): x'_i = P_i + wpe[i]
    x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)  # (B, k + T, d): X' = [P; X]
    for block in gpt.h:
        x = block(x)
    return (gpt.ln_f(x) @ gpt.wte.weight.T)[:, len(P):]  # (B, T, V): the k virtual rows predict nothing


k = 4
model = minituner.prompt_tuning(base, num_virtual_tokens=k, init="vocab", seed=0)
idx = task.test.x[:4]  # (B, T)
B, T = idx.shape
with torch.no_grad():
    logits = model(idx)
by_hand = forward_by_hand(model.base, idx, model.prompt, shift=k)
residual = (logits - by_hand).abs().max().item()
print(_("P {prompt}, X {x} -> X' ({B}, {k} + {T}, {C}), logits {logits}").format(
    prompt=tuple(model.prompt.shape), x=tuple(idx.shape), B=B, k=k, T=T, C=C, logits=tuple(logits.shape)))
print(_("max |model(X) − by hand| = {residual:.1e}").format(residual=residual))
assert residual < 1e-4, "the by-hand X' = [P + wpe[0:k]; X + wpe[k:k+T]] must be the model's forward"
trainable, total = minituner.count_parameters(model)
print(_("trainable = k·d = {k}·{C} = {count}: {same}; the {frozen:,} base parameters are frozen").format(
    k=k, C=C, count=prompt_parameter_count(k, C), same=trainable == prompt_parameter_count(k, C),
    frozen=total - trainable))
try:
    model(torch.zeros(1, base.config.block_size - k + 1, dtype=torch.long))
except ValueError as e:
    print(_("k + T > block_size: ValueError: {error}").format(error=e))

# %% [markdown]
# ## 2. How many virtual tokens? A sweep of k, against full fine-tuning (全量微调)
#
# Each run starts from the same base, sees the same batches and trains for the same
# number of steps; P starts random, at the scale of the token embeddings. Full
# fine-tuning (every parameter, at its own small learning rate, as in lesson 02) is the
# reference. The validation split (what the best k is chosen on, in section 4) and the test
# split (reported beside it) ask about facts the task's training split never shows.

# %% [markdown] lang="zh"
# ## 2. 虚拟 token 要几个？扫描 k，并与全量微调对比
#
# 每次训练都从同一个基座模型出发，看到相同的批次，训练相同的步数；P 随机初始化，尺度与 token 嵌入相当。
# 全量微调（训练全部参数，并像第 02 课那样使用它自己的较小学习率）作为参照。验证集（第 4 节据此选出最好的 k）
# 和测试集（与之并列报告）所问的事实，都从未在任务的训练集中出现过。

# %%
every = max(2, args.steps // 8)
rows, histories = reference_rows(base, task, args.steps, args.full_lr, args.batch_size, args.seed, every)
models, sweep = {}, {}  # k -> the prompt-tuned model, its row
for k in args.ks:
    models[k] = minituner.prompt_tuning(base, num_virtual_tokens=k, seed=args.seed)
    name = _("prompt, k={k}").format(k=k)  # the run's name as tables and figures show it
    sweep[k], histories[name] = run(name, models[k], task, args.steps, args.lr, batch_size=args.batch_size,
                                    seed=args.seed, eval_every=every)
    rows.append(sweep[k])
columns = ["run", "trainable", "trainable %", "lr", "steps", "train loss", "train acc", "val loss", "val acc",
           "test loss", "test acc"]
show(markdown_table(rows, columns))
plot_curves(histories, _("classify: prompt tuning for several k vs full fine-tuning"),
            args.out / "prompt_tuning_curves.png");

# %% [markdown]
# ## 3. What an untrained prompt costs the base
#
# A fresh prompt is not "nothing", for two reasons: every real token attends to the k
# vectors in front of it, and the real tokens move from positions 0…T−1 to k…k+T−1. The
# table scores, before any training, the base with its tokens only moved by k (section 1's
# forward with an empty P), then the untrained prompts: random vectors, and k real
# characters' embeddings drawn from the vocabulary (`init="vocab"`, the "sampled vocab"
# initialisation of Lester et al.), next to the trained rows above.

# %% [markdown] lang="zh"
# ## 3. 未经训练的提示让基座模型付出的代价
#
# 刚初始化的提示并不等于“什么都没有”，原因有二：每个真实 token 都会关注排在它前面的 k 个向量；
# 真实 token 的位置也从 0…T−1 挪到了 k…k+T−1。下表在任何训练之前打分：先是仅把 token 位置后移 k
# 的基座模型（即第 1 节的前向计算，P 为空），然后是未经训练的提示——随机向量，以及从词表中抽取的 k 个
# 真实字符的嵌入（`init="vocab"`，即 Lester et al. 所说的“从词表采样”初始化），旁边列出上面训练后的结果。

# %%
start = []
for k in args.ks:
    moved = forward_by_hand(base, task.test.x, torch.zeros(0, C), shift=k)  # (N, T, V): no virtual tokens
    right = (moved.argmax(-1) == task.test.y) | (task.test.mask == 0)  # evaluate()'s exact match, per position
    entry = {"k": k, "numbers k·d": k * C, "test acc, only positions moved by k": right.all(1).float().mean().item()}
    for init, column in (("random", "test acc at step 0, random"), ("vocab", "test acc at step 0, vocab")):
        entry[column] = minituner.evaluate(
            minituner.prompt_tuning(base, num_virtual_tokens=k, init=init, seed=args.seed), task.test)["accuracy"]
    entry["test acc after training (random)"] = sweep[k]["test acc"]
    start.append(entry)
show(markdown_table(start))
print(_("the base without a prompt: {acc:.3f}").format(acc=rows[0]["test acc"]))

# %% [markdown]
# ## 4. What helps prompt tuning
#
# Three things to try, each changed alone, at the k the validation split prefers in the
# sweep (its test accuracy is only reported):
# - **text init**: start P from the embeddings of real text instead of random vectors,
#   here the last k characters of a sentence the base read in pretraining. This is
#   `PromptTuningInit.TEXT` of PEFT (Hugging Face's library of parameter-efficient
#   fine-tuning methods, 参数高效微调, whose names minituner's API borrows); Lester et al. compared
#   random-uniform init, embeddings sampled from the most common tokens, and class-label embeddings. With the
#   positions of section 1, P + wpe[0:k] is then exactly what the base read for that text at
#   positions 0…k−1, and X follows it at k…, as a new line of the corpus would.
# - **a larger learning rate**: P has only k·d numbers and its gradient reaches it through
#   every frozen layer. Lester et al. trained at a far larger rate (printed below) with Adafactor, an optimiser that
#   keeps factored second moments (a row and a column mean instead of AdamW's full v) and
#   scales its steps differently, so their rate does not carry over to AdamW as is.
# - **more steps**: the same prompt, trained as long again.
#
# One row is a small step of accuracy (printed below), and the order of the batches moves
# several rows, so the two inits are run on several seeds (the columns of the table name them) and
# compared by the rule every lesson's verdicts use (`minituner.verdict`: paired by seed, at
# least three, one sign, the mean gap beyond Student's t times its standard error). Each
# variant is judged on the validation split; the test split is printed beside it.

# %% [markdown] lang="zh"
# ## 4. 什么能帮到提示微调
#
# 在扫描中验证集选出的那个 k 上（它的测试集准确率只作报告），每次只改动一处，试三种做法：
# - **用文本初始化**：让 P 从真实文本的嵌入出发，而不是从随机向量出发；这里取基座模型预训练时读过的
#   一句话的最后 k 个字符。这就是 PEFT 中的 `PromptTuningInit.TEXT`。PEFT 是 Hugging Face 的参数高效微调
#   方法库，minituner 的接口沿用了它的命名。Lester et al. 比较过三种初始化：均匀分布随机初始化、从最常见的
#   token 中采样嵌入，以及用类别标签的嵌入。按第 1 节的位置约定，P + wpe[0:k] 恰好就是基座模型在位置
#   0…k−1 读到这段文本时的输入，X 则从位置 k 开始紧随其后，就像语料里新起的一行。
# - **更大的学习率**：P 只有 k·d 个数，而它的梯度要穿过每一个冻结的层才能到达。Lester et al. 所用的学习率
#   要大得多（见下方输出），优化器是 Adafactor：它只保存分解后的二阶矩（每行一个均值、每列一个均值，
#   而不像 AdamW 那样保存完整的 v），步长的缩放方式也不同，所以他们的学习率不能原样搬到 AdamW 上。
# - **更多步数**：同一个提示，再训练同样多的步数。
#
# 一行样本只让准确率变动一小步（见下方输出），而仅仅是批次的顺序就能让好几行的结果改变，所以两种初始化
# 都在多个随机种子上运行（表格的列名标出了种子），并按每课判断结论时共用的规则比较（`minituner.verdict`：
# 按随机种子配对，至少三个种子，差值方向一致，且平均差超过 Student t 分位数乘以其标准误）。每个变体都在
# 验证集上评判，测试集的结果并列打印。

# %%
PHRASE = "the animal that says woof is the dog.\n"  # a sentence the base read in pretraining
LESTER_LR = 0.3  # Lester et al. 2021 (§3, training): their rate, with Adafactor
chosen = best(list(sweep.values()))  # by validation accuracy
k = next(k for k, row in sweep.items() if row is chosen)
text = (PHRASE * (k // len(PHRASE) + 1))[-k:]  # the last k characters: text the base knows, ending where X begins
print(_("k = {k}, chosen on validation (val acc {val:.3f}; test acc {test:.3f}); {numbers:,} trainable numbers; "
        "init_text {text!r}").format(k=k, val=chosen["val acc"], test=chosen["test acc"], numbers=k * C, text=text))
print(_("one row = {val:.4f} of validation accuracy, {test:.4f} of test accuracy; Lester et al.'s rate {lester} "
        "(Adafactor) against {lr} here (AdamW)").format(val=1 / len(task.val), test=1 / len(task.test),
                                                      lester=LESTER_LR, lr=args.lr))


def val_at(seed):  # the column of validation accuracy on one seed (its header, in the run's language)
    return _("val acc, seed {seed}").format(seed=seed)


def test_at(seed):  # the column of test accuracy on one seed
    return _("test acc, seed {seed}").format(seed=seed)


variants = [("random init", {}, args.lr), ("text init", dict(init="text", init_text=text), args.lr),
            (_("random init, lr ×3 = {lr:g}").format(lr=3 * args.lr), {}, 3 * args.lr)]
helps = []
for name, kwargs, lr in variants:
    entry = {"variant": name, "k": k, "steps": args.steps}
    for seed in args.seeds:
        if name == "random init" and seed == args.seed:
            row = sweep[k]  # the sweep's run
        elif lr != args.lr and seed != args.seed:  # the larger rate on one seed only, to keep the lesson short
            continue
        else:
            row = run(name, minituner.prompt_tuning(base, k, seed=seed, **kwargs), task, args.steps, lr,
                      batch_size=args.batch_size, seed=seed)[0]
        entry |= {val_at(seed): row["val acc"], test_at(seed): row["test acc"]}
    helps.append(entry)
row = run("more steps", copy.deepcopy(models[k]), task, args.steps, args.lr, batch_size=args.batch_size,
          seed=args.seed)[0]
helps.append({"variant": "random init, then as many steps again", "k": k, "steps": 2 * args.steps,
              val_at(args.seed): row["val acc"], test_at(args.seed): row["test acc"]})
show(markdown_table(helps))
plot_tradeoff([(rows[1]["run"], rows[1]["trainable"], rows[1]["test acc"])]
              + [(f"k={k}", r["trainable"], r["test acc"]) for k, r in sweep.items()],
              _("Prompt tuning: trainable parameters vs test accuracy"), args.out / "params_vs_accuracy.png",
              baseline=rows[0]["test acc"]);

# %% [markdown]
# ## 5. The trained prompt at work
#
# `generate()` works unchanged. It uses a KV cache (键值缓存): at each new token, the keys and
# values of every earlier position are kept from the previous step instead of being
# recomputed, so the prompt is inserted once and only the new token is run through the
# model. With and without the cache the tokens must be the same.

# %% [markdown] lang="zh"
# ## 5. 训练好的提示投入使用
#
# `generate()` 不用做任何改动。它使用 KV 缓存：生成每个新 token 时，之前所有位置的键和值都沿用上一步
# 保存下来的结果，不再重新计算，因此提示只需插入一次，每一步只有新 token 要经过模型。用不用缓存，
# 生成的 token 都必须完全相同。

# %%
print(_("k = {k}:").format(k=k))
same = print_answers(models[k], task, n=args.answers)
print(_("the base is bit-identical after all of it: {same}").format(same=minituner.fingerprint(base) == fingerprint))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above.

# %% [markdown] lang="zh"
# ## 小结
#
# 以下结论由上面的表格自动生成。

# %%
full = rows[1]
lo, hi = min(r["test acc"] for r in sweep.values()), max(r["test acc"] for r in sweep.values())
at0 = [s["test acc at step 0, random"] for s in start]
falls = len(at0) > 1 and at0 == sorted(at0, reverse=True) and at0[-1] < rows[0]["test acc"]
rand, text_init, fast = helps[:3]
init = compare("text init", {s: text_init[val_at(s)] for s in args.seeds}, "random init",
               {s: rand[val_at(s)] for s in args.seeds}, "validation accuracy")
verdict = str(init)
longer = helps[-1][test_at(args.seed)]
scores = _(", ").join(_("{acc:.3f} at k={k}").format(acc=a, k=s["k"]) for a, s in zip(at0, start))
untrained = (_("Untrained random prompts score {scores} against the base's {base:.3f}; on seed {seed} each larger "
               "random prompt started lower, and training must first undo that.") if falls else
             _("Untrained random prompts score {scores} against the base's {base:.3f}."))
show(conclusions(
    _("Prompt tuning with {ks} virtual tokens reaches test accuracy {lo:.3f}–{hi:.3f}; the validation split prefers "
      "k = {k} (val {val:.3f}, test {test:.3f}); full fine-tuning test {full:.3f}; the base {base:.3f}.").format(
        ks=_(", ").join(map(str, args.ks)), lo=lo, hi=hi, k=k, val=chosen["val acc"], test=chosen["test acc"],
        full=full["test acc"], base=rows[0]["test acc"]),
    untrained.format(scores=scores, base=rows[0]["test acc"], seed=args.seed),
    _("{verdict} (test, seed {seed}: {text:.3f} against {random:.3f}); three times the rate: val {fast:.3f}; as many "
      "steps again: test {before:.3f} -> {after:.3f}.").format(
        verdict=verdict[:1].upper() + verdict[1:], seed=args.seed, text=text_init[test_at(args.seed)],
        random=rand[test_at(args.seed)], fast=fast[val_at(args.seed)], before=rand[test_at(args.seed)],
        after=longer),
))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/04_soft_prompt.py`; write the function bodies, then run `minituner check 04_soft_prompt` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `prepend_prompt`.** Write X′ = [P; X] for a batch: P (k, C) before every row of X (B, T, C). Also `prompt_params`, the closed-form count.
# 2. **Choose and defend.** Choose k, the number of virtual tokens, on the validation split (never the test split) and defend your choice with mean ± std over seeds.
# 3. **Explore.** Initialise P from the text of the task versus at random: which converges faster, and why might that be?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/04_soft_prompt.py`：写好函数体后运行 `minituner check 04_soft_prompt --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`prepend_prompt`。** 对一个批次实现 X′ = [P; X]：把 P (k, C) 放在 X (B, T, C) 的每一行之前。再写 `prompt_params`，即提示微调可训练参数量的闭式公式。
# 2. **选择并论证。** 在验证集上（绝不用测试集）选出虚拟 token 的个数 k，并用多个随机种子上的均值 ± 标准差论证你的选择。
# 3. **探索。** 用任务文本初始化 P，与随机初始化相比：哪个收敛更快？为什么会这样？
