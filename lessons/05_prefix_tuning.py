# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 05 · 前缀微调 (prefix tuning) and P-Tuning v2 (article §3.2)
#
# First, the three words of attention (注意力) this lesson needs. At every layer each
# position's vector x is projected three ways: a **query** q = W_q x (what it looks for),
# a **key** k = W_k x (what it offers to be found by) and a **value** v = W_v x (what it
# passes on). Position t mixes the values of the positions it may see, weighted by
# softmax over its query's dot products with their keys.
#
# The article writes prefix tuning as: W = [W]  becomes  W' = [Wp; W],  and  Y = W'X.
# Read literally, stacking rows Wp on a weight matrix would add *output features* to
# Y. That is not what prefix tuning does (Li & Liang 2021): it changes no weight at all.
# It puts k extra *positions* in front of every layer's keys and values, free vectors
# that are trained, and no input produces them: at layer l, attention runs over
# K' = [P_k; K] and V' = [P_v; V], with P_k, P_v of shape (k × d). In minituner that is
# two lines of `model.py`, the `prefixes=` slot:
# `k = torch.cat([prefix_k.expand(B, -1, -1, -1), k], dim=2)` and the same for `v`.
#
# **P-Tuning v2** (Liu et al. 2022, Tsinghua University and BAAI) is "deep prompt tuning":
# trainable keys and values at every layer, as here. Li & Liang made their prefixes with
# an MLP (a reparameterisation); Liu et al. treat that MLP as optional and report that
# it helps on some tasks and not on others. minituner's `ptuning_v2` trains the prefixes
# directly (`PrefixTuningConfig(prefix_projection=False)`, PEFT's name).
# Against prompt tuning (lesson 04), whose k vectors enter only at the bottom, the deep
# prompts reach each layer directly, with 2·L times as many numbers.
#
# Run it: `python lessons/05_prefix_tuning.py` (add `--smoke` for the quick test preset).

# %% [markdown] lang="zh"
# # 05 · 前缀微调（prefix tuning）与 P-Tuning v2（原文 §3.2）
#
# 先说说本课要用到的注意力里的三个概念。在每一层，每个位置的向量 x 都会被投影成三个向量：
# **查询（query）** q = W_q x（它要找什么）、**键（key）** k = W_k x（别人凭什么找到它）和
# **值（value）** v = W_v x（它要传递出去的内容）。位置 t 把它能看到的各个位置的值加权混合，
# 权重是它的查询与这些位置的键的点积再经过 softmax 得到的。
#
# 原文把前缀微调写成：W = [W]  变为  W' = [Wp; W]，而  Y = W'X。
# 照字面理解，在权重矩阵上叠加几行 Wp，等于给 Y 增加若干*输出特征*。前缀微调做的并不是这件事
# （Li & Liang 2021）：它根本不改动任何权重，而是在每一层的键和值前面放上 k 个额外的*位置*。这些位置上
# 是可训练的自由向量，不由任何输入产生：在第 l 层，注意力作用在 K' = [P_k; K] 和 V' = [P_v; V] 上，
# 其中 P_k 和 P_v 都是 k × d 的矩阵。在 minituner 里，这是 `model.py` 中的两行代码，位于 `prefixes=` 参数处：
# `k = torch.cat([prefix_k.expand(B, -1, -1, -1), k], dim=2)`，`v` 的那一行与之相同。
#
# **P-Tuning v2**（Liu et al. 2022，清华大学与北京智源人工智能研究院）即“深度提示微调”：像本课这样，
# 在每一层都放上可训练的键和值。Li & Liang 用一个 MLP 来生成前缀（一种重参数化）；Liu et al. 则把这个
# MLP 视为可选项，并报告它在有些任务上有帮助，在另一些任务上没有。minituner 的 `ptuning_v2` 直接训练前缀
# （即 PEFT 中的 `PrefixTuningConfig(prefix_projection=False)`）。提示微调（第 04 课）的 k 个向量只从最底层进入，
# 深度提示则直接作用于每一层，参数量是前者的 2·L 倍。
#
# 运行方法：`python lessons/05_prefix_tuning.py`（加上 `--smoke` 则使用测试用的快速预设）。

# %%
import matplotlib.pyplot as plt
import torch

import minituner
from minituner.i18n import _
from minituner.lesson import best, conclusions, options, pct, reference_rows, run
from minituner.methods.prefix import prefix_parameter_count
from minituner.methods.virtual_tokens import text_keys_values
from minituner.report import (
    label,
    markdown_table,
    plot_curves,
    plot_tradeoff,
    save_figure,
    show,
)
from minituner.train import print_answers

args = options("Lesson 05: prefix tuning and P-Tuning v2", smoke=dict(rows=48, steps=3, ks=(2,), answers=1), out="runs/05_prefix_tuning",
               ks=(2, 8), steps=48, batch_size=16, prefix_lr=1e-2, v2_lr=1e-1, full_lr=5e-4, seed=0, rows=None, answers=3)
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
fingerprint = minituner.fingerprint(base)
c = base.config
PHRASE = "the animal that says woof is the dog.\n"  # a sentence the base read in pretraining


def phrase(k: int) -> str:
    """The last k characters of PHRASE (repeated as needed): text the base knows, ending where X begins."""
    return (PHRASE * (k // len(PHRASE) + 1))[-k:]


print(_("k in {ks}; {steps} steps, batch {batch}; prefix tuning lr {prefix_lr}, P-Tuning v2 lr {v2_lr}, "
        "full fine-tuning lr {full_lr}").format(ks=args.ks, steps=args.steps, batch=args.batch_size,
                                                prefix_lr=args.prefix_lr, v2_lr=args.v2_lr, full_lr=args.full_lr))

# %% [markdown]
# ## 1. K' = [P_k; K], V' = [P_v; V], checked by hand — and a zero prefix is not "nothing"
#
# For the first layer of the base we compute attention ourselves over the concatenated
# keys and values (softmax from PyTorch as the oracle) and compare with the model.
# Every real token's query sees all k prefix rows; no query is made *for* them, so the
# model predicts only the T real positions and the prefix never counts in the loss.
# Positions follow PEFT on GPT-2: the prefixes are keys and values already "in the cache",
# so the real tokens are numbered k…k+T−1 (pretraining saw them at 0…T−1), and k + T may
# not exceed `block_size`. The whole model is then checked the same way: the token
# embeddings at positions k…k+T−1, every block with its layer's prefix, the tied head.
#
# Is a prefix of zeros "nothing"? No. A zero key scores q·0 = 0, so each of the k zero rows
# still takes exp(0) out of the softmax's sum Z: every real token's weight shrinks by
# Z / (Z + k), and the zero values put nothing back. The first layer's attention output
# changes on the same input; the whole model's logits change for that reason at every layer,
# and because the real tokens moved by k positions. The figure draws that share for every
# layer and head of the model with a zero prefix, averaged over the real tokens.

# %% [markdown] lang="zh"
# ## 1. 手算验证 K' = [P_k; K]、V' = [P_v; V]，以及全零前缀并不等于“没有”
#
# 对基座模型的第一层，我们在拼接后的键和值上自己计算注意力（以 PyTorch 的 softmax 作为参照），再与模型的
# 结果比较。每个真实 token 的查询都能看到全部 k 行前缀；但不会*为*前缀生成查询，所以模型只预测 T 个真实位置，
# 前缀永远不计入损失。位置编号沿用 PEFT 在 GPT-2 上的做法：前缀相当于“已经在缓存里”的键和值，所以真实 token
# 的位置编号是 k…k+T−1（预训练时它们位于 0…T−1），且 k + T 不能超过 `block_size`。接着用同样的方法手算
# 整个模型：位于 k…k+T−1 的 token 嵌入、每个 Transformer 块连同它所在层的前缀，以及与嵌入共享权重的输出层。
#
# 全零的前缀是不是“什么都没有”？不是。全零的键得分为 q·0 = 0，所以 k 个全零行中的每一行仍会从 softmax 的
# 分母 Z 里分走 exp(0) 这一份：每个真实 token 的权重都要乘上 Z / (Z + k) 而变小，而全零的值又补不回任何东西。
# 于是在相同的输入上，第一层的注意力输出变了；整个模型的 logits 也会变，一是因为每一层都有这种影响，二是因为
# 真实 token 的位置后移了 k。下图画出了带全零前缀的模型中，每一层、每个注意力头里前缀占去的注意力比例
# （对真实 token 取平均）。

# %%
k = 4
model = minituner.ptuning_v2(base, num_virtual_tokens=k, init="text", init_text=phrase(k))
idx = task.test.x[:4]  # (B, T)
B, T = idx.shape
d, nh = c.n_embd, c.n_head
with torch.no_grad():
    attn = model.base.h[0].attn
    x = model.base.h[0].ln_1(model.base.wte(idx) + model.base.wpe(torch.arange(k, k + T)))  # (B, T, d), at k..k+T-1
    pk, pv = model.prefixes()[0]  # (k, d) each
    heads = lambda t: t.view(B, t.size(1), nh, d // nh).transpose(1, 2)  # (B, ·, d) -> (B, nh, ·, hs)  # noqa: E731
    Q = heads(attn.q_proj(x))  # (B, nh, T, hs)
    K = heads(torch.cat([pk.expand(B, k, d), attn.k_proj(x)], dim=1))  # (B, nh, k + T, hs): K' = [P_k; K]
    V = heads(torch.cat([pv.expand(B, k, d), attn.v_proj(x)], dim=1))  # (B, nh, k + T, hs): V' = [P_v; V]
    seen = torch.cat([torch.ones(T, k, dtype=torch.bool), torch.ones(T, T, dtype=torch.bool).tril()], dim=1)
    S = (Q @ K.transpose(-2, -1) / (d // nh) ** 0.5).masked_fill(~seen, float("-inf"))  # (B, nh, T, k + T)
    by_hand = attn.o_proj((torch.softmax(S, -1) @ V).transpose(1, 2).reshape(B, T, d))  # (B, T, d)
    layer_residual = (attn(x, prefix=(pk, pv)) - by_hand).abs().max().item()
    h = model.base.wte(idx) + model.base.wpe(torch.arange(k, k + T))  # (B, T, d): the real tokens at k..k+T-1
    for block, prefix in zip(model.base.h, model.prefixes(), strict=True):
        h = block(h, prefix=prefix)  # (B, T, d): each layer's [P_k; K], [P_v; V]
    logits = model(idx)  # (B, T, V)
    model_residual = (logits - model.base.ln_f(h) @ model.base.wte.weight.T).abs().max().item()
    print(_("P_k, P_v {shape} per layer × {layers} layers; max |attention(x, prefix) − by hand| = {layer:.1e}; the "
            "whole model by hand, real tokens at positions {first}…{last}: max |model(X) − by hand| = {model:.1e}").format(
        shape=tuple(pk.shape), layers=c.n_layer, layer=layer_residual, first=k, last=k + T - 1, model=model_residual))
    assert layer_residual < 1e-5 and model_residual < 1e-4, "the by-hand K' = [P_k; K], V' = [P_v; V] must be the model's"
    print(_("logits {logits} for input {input}: only the real positions are predicted").format(
        logits=tuple(logits.shape), input=tuple(idx.shape)))
    zero = minituner.ptuning_v2(base, num_virtual_tokens=k)
    zero.prefix.zero_()
    real = S[..., k:]  # (B, nh, T, T): the real keys' scores, masked where causal
    share = k / (k + real.exp().sum(-1))  # (B, nh, T): what k zero keys take, k / (k + Z)
    is_real = (idx != task.tokenizer.pad_id).unsqueeze(1).expand_as(share)  # (B, nh, T): not padding
    zeros = torch.zeros(k, d)
    print(_("a prefix of {k} zero keys and values, in layer 0 on the same input: max |attention output − without "
            "prefix| = {change:.3f} (not 0); they take {mean:.0%} of a real token's attention on average, {first:.0%} "
            "at the first token. Over the whole model (every layer, positions moved by {k}): max |logits − base "
            "logits| = {logits:.3f}").format(
        k=k, change=(attn(x, prefix=(zeros, zeros)) - attn(x)).abs().max().item(), mean=share[is_real].mean(),
        first=share[..., 0].mean(), logits=(zero(idx) - base(idx)).abs().max().item()))
    empty = torch.zeros(0, d)
    print(_("a prefix of length 0 is the base exactly: {same}").format(
        same=torch.equal(base(idx, prefixes=[(empty, empty)] * c.n_layer), base(idx))))
    zero_k, taken = k, torch.zeros(c.n_layer, nh)  # (L, nh): the zero keys' share, per layer and head
    h = base.wte(idx) + base.wpe(torch.arange(k, k + T))  # (B, T, d): the zero-prefix model's input
    for layer, block in enumerate(base.h):
        a = block.ln_1(h)  # (B, T, d)
        Q, K = heads(block.attn.q_proj(a)), heads(block.attn.k_proj(a))  # (B, nh, T, hs)
        S = (Q @ K.transpose(-2, -1) / (d // nh) ** 0.5).masked_fill(~seen[:, k:], float("-inf"))  # (B, nh, T, T)
        share = k / (k + S.exp().sum(-1))  # (B, nh, T): k zero keys score 0 each, exp(0) = 1
        taken[layer] = torch.stack([share[:, i][is_real[:, i]].mean() for i in range(nh)])
        h = block(h, prefix=(zeros, zeros))  # (B, T, d): on to the next layer, with its zero prefix
print(_("the zero prefix's share of attention over all layers and heads: {lo} to {hi}").format(
    lo=pct(taken.min().item()), hi=pct(taken.max().item())))
fig, ax = plt.subplots(figsize=(5, 3.5))
im = ax.imshow(taken.numpy(), vmin=0, vmax=1, cmap="viridis")
for i in range(c.n_layer):
    for j in range(nh):
        ax.text(j, i, pct(taken[i, j].item()), ha="center", va="center", fontsize=8, color="white")
ax.set_xticks(range(nh))
ax.set_yticks(range(c.n_layer))
ax.set_xlabel(label("head"))
ax.set_ylabel(label("layer"))
fig.colorbar(im, ax=ax)
ax.set_title(label("Share of attention {k} zero prefix keys take").format(k=zero_k))
save_figure(fig, args.out / "zero_prefix_share.png");

# %% [markdown]
# ## 2. What trains: the MLP while training, plain prefixes after `fold()`
#
# Li & Liang found training the prefixes directly unstable and made them with an MLP
# from a small embedding E (k × d): P = W2·tanh(W1·E + b1) + b2, read as one (P_k, P_v)
# pair per layer. The MLP is a training device: `fold()` computes P = MLP(E) once and
# keeps only that. P-Tuning v2 trains the 2·L·k·d numbers directly from the start.
# Each count is compared with its closed form, and the last lines compare the sizes of
# the numbers each form's optimiser moves.

# %% [markdown] lang="zh"
# ## 2. 训练的是什么：训练时是 MLP，`fold()` 之后只剩普通前缀
#
# Li & Liang 发现直接训练前缀不稳定，于是用一个 MLP 从一个小的嵌入 E（k × d）生成前缀：
# P = W2·tanh(W1·E + b1) + b2，再把结果读作每层一对 P_k、P_v。MLP 只是训练时的辅助手段：`fold()`
# 计算一次 P = MLP(E) 并只保留这个结果。P-Tuning v2 则从一开始就直接训练这 2·L·k·d 个数。
# 每种形式的参数量都与它的闭式公式核对；最后几行比较两种形式下优化器所更新的那些数的大小。

# %%
k, h = args.ks[-1], c.n_embd
mlp = minituner.prefix_tuning(base, k, encoder_hidden_size=h, init="text", init_text=phrase(k))
v2 = minituner.ptuning_v2(base, k, init="text", init_text=phrase(k))
counts = []
for name, m, closed, formula in [
    ("prefix tuning (MLP)", mlp, prefix_parameter_count(k, d, c.n_layer, h), f"k·d + (d·h + h) + (h·2Ld + 2Ld), h={h}"),
    ("P-Tuning v2 (direct)", v2, prefix_parameter_count(k, d, c.n_layer), "2·L·k·d"),
]:
    trainable, total = minituner.count_parameters(m)
    counts.append({"model": name, "k": k, "closed form": formula, "trainable": trainable,
                   "= closed form": trainable == closed, "trainable %": 100 * trainable / total})
show(markdown_table(counts))
with torch.no_grad():
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    kv = text_keys_values(base, torch.tensor(task.tokenizer.encode(phrase(k))))  # (L, 2, k, C): the base's own
    rand_rms = rms(minituner.ptuning_v2(base, k, seed=args.seed).prefix)
    print(_("root-mean-square size: the base's own keys and values {kv:.2f}; P-Tuning v2's prefixes (text init) "
            "{v2:.2f}; a random init N(0, 1) {random:.2f}; the MLP's W1 {w1:.3f}, W2 {w2:.3f}, E {e:.2f}").format(
        kv=rms(kv), v2=rms(v2.prefix), random=rand_rms, w1=rms(mlp.mlp_in.weight), w2=rms(mlp.mlp_out.weight),
        e=rms(mlp.embedding)))

# %% [markdown]
# ## 3. Prefix tuning and P-Tuning v2 side by side, sweeping k
#
# All runs: the same base, steps and batch. Prefix tuning starts from Li & Liang's init
# from real words: the base reads a phrase of k characters and each layer's own keys and
# values of it become the starting prefix (`init="text"`; with the MLP, its last layer is
# solved so that MLP(E) equals them at step 0). P-Tuning v2 is shown with a random init
# (N(0, 1): PEFT's default for its prefix embedding, not a choice of the paper) and with
# the same text init. Full fine-tuning is the reference.
#
# The two forms get different learning rates (printed at the top): an AdamW step moves
# each number by about the learning rate, and section 2 printed how large each form's
# numbers are. Try others with `--prefix-lr` and `--v2-lr`.

# %% [markdown] lang="zh"
# ## 3. 前缀微调与 P-Tuning v2 并排比较，扫描 k
#
# 所有实验都用同一个基座模型、相同的步数和批次。前缀微调采用 Li & Liang 用真实词语初始化的方法：让基座模型
# 读一段 k 个字符的短语，每一层为它算出的键和值就作为初始前缀（`init="text"`；带 MLP 时，求解 MLP 的最后
# 一层，使第 0 步的 MLP(E) 恰好等于这些键和值）。P-Tuning v2 分别用随机初始化（按 N(0, 1) 采样，这是 PEFT
# 前缀嵌入的默认做法，并非论文的选择）和同样的文本初始化。全量微调作为参照。
#
# 两种形式使用不同的学习率（见开头的输出）：AdamW 每一步大约让每个数变化一个学习率的量，而第 2 节已经打印出
# 每种形式的数有多大。可以用 `--prefix-lr` 和 `--v2-lr` 试试别的取值。

# %%
every = max(2, args.steps // 8)
rows, histories = reference_rows(base, task, args.steps, args.full_lr, args.batch_size, args.seed, every)
models, trained = {}, {}  # (name, k) -> the trained model, its row
for k in args.ks:
    text = dict(init="text", init_text=phrase(k))
    for name, method, kwargs, lr in [("prefix (MLP), text init", minituner.prefix_tuning, text, args.prefix_lr),
                                     ("v2, random init", minituner.ptuning_v2, {}, args.v2_lr),
                                     ("v2, text init", minituner.ptuning_v2, text, args.v2_lr)]:
        run_name = _("{name}, k={k}").format(name=_(name), k=k)  # as tables and figures show it
        tuned = models[name, k] = method(base, k, seed=args.seed, **kwargs)
        row, histories[run_name] = run(run_name, tuned, task, args.steps, lr, batch_size=args.batch_size,
                                       seed=args.seed, eval_every=every)
        if tuned.reparameterized:
            tuned.fold()  # what is kept after training: 2·L·k·d numbers
        row["stored"] = minituner.count_parameters(tuned)[0]
        rows.append(row)
        trained[name, k] = row
show(markdown_table(rows, ["run", "trainable", "stored", "trainable %", "lr", "train loss", "train acc", "val acc",
                           "test loss", "test acc"]))
plot_curves(histories, _("classify: prefix tuning, P-Tuning v2, full fine-tuning"),
            args.out / "prefix_tuning_curves.png");

# %% [markdown]
# ## 4. Why can a random deep prompt score below the base?
#
# As with prompt tuning (lesson 04), an untrained prefix is not neutral: its keys take
# a share of every softmax row at *every* layer, and its values are mixed into every
# position. Scored before any training, for each k and each init, beside the trained
# rows; for the random init also the test loss, at step 0 and after training, to see how
# far training brought it back towards the base's.

# %% [markdown] lang="zh"
# ## 4. 随机的深度提示为什么会比基座模型还差？
#
# 和提示微调（第 04 课）一样，未经训练的前缀并不是中性的：它的键在*每一层*都会从每一行 softmax 中分走一部分
# 权重，它的值也会混进每个位置。下表在任何训练之前，对每个 k、每种初始化打分，旁边列出训练后的结果；对随机
# 初始化还列出第 0 步和训练后的测试集损失，看训练把它往基座模型的损失拉回了多少。

# %%
start = []
for k in args.ks:
    entry = {"k": k, "base": rows[0]["test acc"]}
    for init, kwargs, at_step0, after in (
            ("random", {}, "v2 at step 0, random init", "v2 trained, random init"),
            ("text", dict(init="text", init_text=phrase(k)), "v2 at step 0, text init", "v2 trained, text init")):
        at0 = minituner.evaluate(minituner.ptuning_v2(base, k, seed=args.seed, **kwargs), task.test)
        entry[at_step0] = at0["accuracy"]
        entry[after] = trained[f"v2, {init} init", k]["test acc"]
        if init == "random":
            entry["random: test loss at step 0"] = at0["loss"]
            entry["random: test loss trained"] = trained["v2, random init", k]["test loss"]
    start.append(entry)
show(markdown_table(start))
plot_tradeoff([(r["run"], r["trainable"], r["test acc"]) for r in rows[1:]],
              _("Prefix tuning and P-Tuning v2: trainable parameters vs accuracy"), args.out / "params_vs_accuracy.png",
              xlabel="trainable parameters while training (log)", baseline=rows[0]["test acc"]);

# %% [markdown]
# ## 5. The folded prefix at work
#
# After `fold()` the prefix model gives the logits it gave with the MLP, and `generate()`
# works unchanged: the prefix is put before the cached keys and values at every step, so
# the tokens with and without the KV cache (lesson 04) are the same.

# %% [markdown] lang="zh"
# ## 5. 折叠后的前缀投入使用
#
# `fold()` 之后，前缀模型给出的 logits 与带 MLP 时相同，`generate()` 也不用做任何改动：每一步都把前缀放在
# 缓存的键和值之前，所以用不用 KV 缓存（第 04 课），生成的 token 都相同。

# %%
k = args.ks[-1]
fresh = minituner.prefix_tuning(base, k, init="text", init_text=phrase(k))
with torch.no_grad():
    before = fresh(task.test.x[:8])
    print(_("fold(): max |logits with MLP − folded| = {change:.1e}").format(
        change=(fresh.fold()(task.test.x[:8]) - before).abs().max().item()))
print_answers(models["prefix (MLP), text init", k], task, n=args.answers)
print(_("the base is bit-identical after all of it: {same}").format(same=minituner.fingerprint(base) == fingerprint))

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above. The best row is the one the validation split prefers;
# its test accuracy is reported beside it.

# %% [markdown] lang="zh"
# ## 小结
#
# 以下结论由上面的表格自动生成。最好的一行是验证集选出的那一行，它的测试集准确率并列报告。

# %%
top = best(rows[2:])
full = rows[1]
climbing = [s for s in start if s["random: test loss at step 0"] > s["random: test loss trained"] > rows[0]["test loss"]]
show(conclusions(
    _("Best prefix row on validation: {run}, val acc {val:.3f}, test acc {test:.3f}, with {trainable:,} trainable "
      "numbers; full fine-tuning test {full:.3f}; the base {base:.3f}.").format(
        run=top["run"], val=top["val acc"], test=top["test acc"], trainable=top["trainable"], full=full["test acc"],
        base=rows[0]["test acc"]),
    _("A prefix of {k} zero keys is not nothing: it takes {lo}–{hi} of the attention of every layer and head.").format(
        k=zero_k, lo=pct(taken.min().item()), hi=pct(taken.max().item())),
    *[_("k={k}: P-Tuning v2 starts at test acc {random0:.3f} with random prefixes and {text0:.3f} with the phrase's "
        "own keys and values (base {base:.3f}); after training {random1:.3f} and {text1:.3f}.").format(
          k=s["k"], random0=s["v2 at step 0, random init"], text0=s["v2 at step 0, text init"], base=s["base"],
          random1=s["v2 trained, random init"], text1=s["v2 trained, text init"]) for s in start],
    _("From random, training lowered the test loss but left it above the base's {loss:.2f} for k in {ks}: {steps} "
      "steps were still climbing back.").format(loss=rows[0]["test loss"], ks=[s["k"] for s in climbing],
                                                steps=args.steps) if climbing else "",
    _("Size: a random N(0, 1) prefix has root-mean-square {random:.2f}, the base's own keys and values {kv:.2f}.").format(
        random=rand_rms, kv=rms(kv)),
))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/05_prefix_kv.py`; write the function bodies, then run `minituner check 05_prefix_kv` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `prepend_prefix`.** Write K′ = [P_k; K] in every head: prefix_k (nh, n, hs) before k (B, nh, T, hs). Also `prefix_params`, the closed-form count without the MLP.
# 2. **Compare.** Why does prefix tuning train 2·L times the parameters of prompt tuning at the same n? Check the ratio with your two count functions.
# 3. **Design.** Train prefix tuning with and without the reparameterisation MLP on three seeds; is the difference beyond noise (use the verdict rule)?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/05_prefix_kv.py`：写好函数体后运行 `minituner check 05_prefix_kv --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`prepend_prefix`。** 在每个注意力头里实现 K′ = [P_k; K]：把 prefix_k (nh, n, hs) 放在 k (B, nh, T, hs) 之前。再写 `prefix_params`，即不带 MLP 时参数量的闭式公式。
# 2. **比较。** 在相同的 n 下，前缀微调的可训练参数为什么是提示微调的 2·L 倍？用你写的两个计数函数核对这个比例。
# 3. **设计。** 在三个随机种子上分别训练带和不带重参数化 MLP 的前缀微调；两者的差异是否超出了噪声（用 verdict 的规则判断）？
