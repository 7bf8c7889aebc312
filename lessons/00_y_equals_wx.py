# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 00 · Y = WX: a language model is a stack of matrices (大模型 = 矩阵 W)
#
# The article (§1) reduces a large model to one formula: an input sequence
# X = [x1, …, xm] becomes an output Y by **Y = WX**, and "the model" is the matrix W. It adds
# that real models hold many matrices and some other parameters. This lesson opens
# minituner's tiny GPT and checks each part of that sentence:
#
# 1. one layer really is Y = WX (+ b);
# 2. the model's parameters are almost all matrices W;
# 3. attention (注意力), the one place where a token reads the others, is matrices too, plus a
#    softmax and a causal mask;
# 4. but a stack of matrices alone would collapse into *one* matrix: LayerNorm, attention's
#    softmax and GELU are what make the stack more than that;
# 5. what the stack does with a sentence.
#
# Code writes rows, the article writes columns: with tokens as rows, `y = x @ W.T + b`
# (`minituner.functional.linear`); with tokens as columns, Y = WX + b. Same numbers.
#
# Run it: `python lessons/00_y_equals_wx.py` (add `--smoke` for the quick test preset).
# In a notebook the full lesson runs.

# %%
import matplotlib.pyplot as plt
import torch

import minituner
from minituner import functional as F
from minituner import lesson
from minituner.data import FORWARD
from minituner.lesson import conclusions, num, pct
from minituner.report import label, markdown_table, save_figure, show

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = lesson.options("Lesson 00: Y = WX", smoke=dict(rows=8, prompts=1), out="runs/00_y_equals_wx",
                      rows=64, prompts=3)
out = args.out

torch.manual_seed(0)
base, tok = minituner.load_base(), minituner.CharTokenizer()
print(f"the shipped base: {base.config}")

# %% [markdown]
# ## 1. One layer is Y = WX (一层就是 Y = WX)
#
# Take the first attention projection `h.0.attn.q_proj` of the shipped base and a real
# sentence. Computing it the article's way (tokens as columns) and the code's way (tokens as
# rows) gives the same numbers. Mind the shapes (printed below): W is (out, in), it maps *each
# token's vector* to another vector, so X and Y both have one column per token. The article's
# m and n (the lengths of X and Y in §1) are not W's m × n of §3.2 (a matrix's shape):
# [errata 7](../docs/errata.md).

# %%
ids = torch.tensor([tok.encode("the cat says meow.")])  # (1, T)
x = base.wte(ids) + base.wpe(torch.arange(ids.size(1)))  # (1, T, C): token + position embeddings
layer = base.h[0].attn.q_proj
W, b = layer.weight, layer.bias  # W (out, in), b (out,)
X = x[0].T  # (C, T): the article's X, one column per token
Y_article = W @ X + b[:, None]  # (out, T): Y = WX (+ b)
y_code = F.linear(x[0], W, b)  # (T, out): y = x Wᵀ + b
step1_residual = (Y_article - y_code.T).abs().max().item()
print(f"W is {tuple(W.shape)}, X is {tuple(X.shape)}, Y is {tuple(Y_article.shape)} "
      f"for T = {ids.size(1)} tokens")
print(f"max |Y_article − y_codeᵀ| = {step1_residual:.2e}")

# %% [markdown]
# ## 2. The whole model, matrix by matrix (整个模型:一摞矩阵)
#
# Every tensor of the model, its shape and its size. The 2-D ones are the article's W's; the
# 1-D ones are biases and LayerNorm scales, the "other parameters" the article mentions.
# `wte` is used twice: to embed tokens and, transposed, as the output head (GPT-2 ties them),
# so it is counted once. The count from the config's closed form must equal PyTorch's.

# %%
rows, by_kind = [], {}
for name, p in base.named_parameters():
    rows.append({"tensor": name, "shape": " × ".join(map(str, p.shape)), "numel": p.numel()})
    kind = name.split(".")[-2] if name.startswith("h.") else name.split(".")[0]  # q_proj, ln_1, wte, …
    by_kind[kind] = by_kind.get(kind, 0) + p.numel()
total = sum(r["numel"] for r in rows)
in_matrices = sum(p.numel() for p in base.parameters() if p.dim() == 2)
c = base.config
d = c.n_embd
closed_form = c.vocab_size * d + c.block_size * d + c.n_layer * (12 * d * d + 13 * d) + 2 * d
show(markdown_table(rows[:18]))
print(f"… {len(rows)} tensors in all: {total:,} parameters, {in_matrices:,} ({in_matrices / total:.1%}) "
      f"in matrices W")
print(f"closed form V·d + T·d + L·(12d² + 13d) + 2d = {closed_form:,}; match: {closed_form == total}")
minituner.print_trainable_parameters(base)

fig, ax = plt.subplots(figsize=(7, 3.5))
names = sorted(by_kind, key=by_kind.get)
ax.barh(names, [by_kind[n] for n in names])
ax.set_xlabel(label("parameters (all layers)", "参数个数(所有层)"))
ax.set_title(label("Where the tiny GPT's parameters are", "参数都在哪里"))
save_figure(fig, out / "parameters_by_matrix.png");

# %% [markdown]
# ## 3. Attention: where tokens read each other (注意力)
#
# Y = WX treats each token alone: the column of token t in Y depends only on the column of
# token t in X. The one place where tokens meet is attention. Each token's vector x is
# projected three ways, by three matrices W of the kind section 1 checked: a **query**
# q = W_q x (what it looks for), a **key** k = W_k x (what it offers) and a **value**
# v = W_v x (what it passes on). Token t scores every token j by q_t · k_j / √hs, softmax
# turns each row of scores into weights that are positive and sum to 1, and token t's
# output is the weighted sum of the values. The **causal mask** (因果掩码) sets the scores of
# later tokens (j > t) to −∞ before the softmax, so their weight is exactly 0: a language
# model predicting the next character may not read it. The model splits its width into a
# few heads (nh heads of hs numbers each) that attend separately, then joins them and
# applies one more matrix, W_o.
#
# Below, the first block's attention on section 1's sentence, written out step by step
# (shapes printed), against the model's own `CausalSelfAttention`.

# %%
attn = base.h[0].attn
nh, hs = attn.n_head, d // attn.n_head
with torch.no_grad():
    a_in = base.h[0].ln_1(x)  # (1, T, C): what the first attention reads
    T = a_in.size(1)
    q = attn.q_proj(a_in).view(1, T, nh, hs).transpose(1, 2)  # (1, nh, T, hs): queries, one set per head
    k = attn.k_proj(a_in).view(1, T, nh, hs).transpose(1, 2)  # (1, nh, T, hs): keys
    v = attn.v_proj(a_in).view(1, T, nh, hs).transpose(1, 2)  # (1, nh, T, hs): values
    scores = q @ k.transpose(-2, -1) / hs**0.5  # (1, nh, T, T): q_t · k_j / sqrt(hs)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): token t may read tokens 0..t
    weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)  # (1, nh, T, T)
    mixed = (weights @ v).transpose(1, 2).reshape(1, T, d)  # (1, T, C): the heads side by side again
    attn_by_hand = attn.o_proj(mixed)  # (1, T, C): W_o
    attn_residual = (attn_by_hand - attn(a_in)).abs().max().item()
print(f"{nh} heads of {hs}: q, k, v {tuple(q.shape)}, scores and weights {tuple(weights.shape)}, output "
      f"{tuple(attn_by_hand.shape)}")
print(f"each row of weights sums to 1: max |sum − 1| = {(weights.sum(-1) - 1).abs().max().item():.1e}; "
      f"weight on later tokens: {weights[..., ~causal].abs().max().item()}")
print(f"max |by hand − model's attention| = {attn_residual:.1e}")

chars = list(tok.decode(ids[0].tolist()))
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(weights[0, 0].numpy(), cmap="viridis")
ax.set_xticks(range(T), chars, fontsize=7)
ax.set_yticks(range(T), chars, fontsize=7)
ax.set_xlabel(label("key: the token read", "被读取的字符(键)"))
ax.set_ylabel(label("query: the token reading", "读取者(查询)"))
ax.set_title(label("Layer 0, head 0: attention weights", "第 0 层第 0 头的注意力权重"))
save_figure(fig, out / "attention_weights.png");

# %% [markdown]
# ## 4. Why the stack does not collapse into one matrix (为什么不会塌缩成一个矩阵)
#
# If every layer were only Y = WX, two layers would be W₂(W₁X) = (W₂W₁)X: one matrix again,
# and a stack of a hundred layers would be no more than one layer. What stops that are the
# parts of the model that are *not* matrix products:
#
# - **GELU** between the MLP's two matrices (a curve, not a line);
# - **LayerNorm**, which divides each vector by its own size, so LN(2x) = LN(x) where a
#   linear map would double;
# - **softmax** in attention, whose weights always sum to 1, so softmax(2s) ≠ 2·softmax(s).
#
# Below, the first block's MLP on real token vectors: without GELU, its two matrices are
# exactly one matrix; with GELU, even the *best* single matrix (least squares over all the
# vectors) misses by a clear margin. Then the two scaling tests.

# %%
corpus = minituner.make_corpus(n_train=args.rows, n_test=1, length=c.block_size + 1)
with torch.no_grad():
    h = base.wte(corpus.train.x) + base.wpe(torch.arange(corpus.train.x.size(1)))  # (N, T, C)
    h = base.h[0].ln_2(h).reshape(-1, d)  # (N·T, C): what the first MLP reads
    up, down = base.h[0].mlp.up_proj, base.h[0].mlp.down_proj
    linear_only = down(up(h))  # (N·T, C): W₂(W₁x), no GELU
    one_matrix = h @ (down.weight @ up.weight).T + (down.weight @ up.bias + down.bias)  # (W₂W₁)x + b′
    with_gelu = down(F.gelu(up(h)))  # (N·T, C): the real MLP
    H1 = torch.cat([h, torch.ones(len(h), 1)], dim=1)  # (N·T, C + 1): a bias column
    best = H1 @ torch.linalg.lstsq(H1, with_gelu).solution  # the best single matrix (+ bias)
    s = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))  # attention scores
    ln = base.h[0].ln_1
    collapse = {
        "W₂(W₁x) vs one matrix (W₂W₁)x": (linear_only - one_matrix).abs().max().item() / linear_only.abs().max().item(),
        "W₂·GELU(W₁x) vs the best single matrix": (with_gelu - best).norm().item() / with_gelu.norm().item(),
        "LN(2x) vs 2·LN(x)": (ln(2 * h) - 2 * ln(h)).norm().item() / (2 * ln(h)).norm().item(),
        "softmax(2s) vs 2·softmax(s)": (torch.softmax(2 * s, -1) - 2 * torch.softmax(s, -1)).norm().item()
        / (2 * torch.softmax(s, -1)).norm().item(),
    }
show(markdown_table([{"comparison": k, "relative difference": v, "one matrix would give": "0"}
                     for k, v in collapse.items()]))
print(f"over {len(h):,} token vectors of the corpus")

fig, ax = plt.subplots(figsize=(5, 3.5))
z = torch.linspace(-4, 4, 200)
ax.plot(z, F.gelu(z), label="GELU(z)")
ax.plot(z, z, ls=":", color="grey", label=label("a line: z", "直线 z"))
ax.set_xlabel("z")
ax.set_title(label("GELU bends: the MLP is not one matrix", "GELU 是弯的:MLP 不是一个矩阵"))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
save_figure(fig, out / "gelu.png");

# %% [markdown]
# ## 5. What the stack does with a sentence (这一摞矩阵能做什么)
#
# The model's last output is one score per character of the vocabulary (the head is `wte`
# transposed), turned into probabilities by softmax. After "the cat " the next character
# could begin any of the world's sentences about the cat (printed below, from
# `minituner.data`); the table shows where the base puts its probability. Greedy decoding
# takes the most likely character, appends it and runs again: the base finishes facts it
# learned in pretraining.

# %%
prompts = ["the cat says", "the animal that says woof is the", "the owl lives in the"][: args.prompts]
answers = {p: minituner.answer(base, tok, p) for p in prompts}
show(markdown_table([{"prompt": p, "greedy answer": a} for p, a in answers.items()]))

cat_sentences = [FORWARD[kind].format(a="cat", v=v) for kind, v in minituner.make_world().facts["cat"].items()]
print("the world's sentences about the cat:", cat_sentences)
context = "the cat "
firsts = {s[len(context)] for s in cat_sentences if s.startswith(context)}  # the letters that begin what follows
with torch.no_grad():
    probs = torch.softmax(base(torch.tensor([tok.encode(context)]))[0, -1], dim=-1)  # (V,): Y, as probabilities
top = probs.topk(8)
show(markdown_table([{"next character": repr(tok.decode([i])), "probability": p}
                     for i, p in zip(top.indices.tolist(), top.values.tolist())]))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([repr(tok.decode([i])) for i in top.indices.tolist()], top.values.tolist())
ax.set_ylabel(label("probability", "概率"))
ax.set_title(label(f"Next character after {context!r}", f"{context!r} 之后的下一个字符"))
save_figure(fig, out / "next_character.png");

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the results above, in English and then in Chinese.

# %%
n_matrices = sum(p.dim() == 2 for p in base.parameters())
gelu_miss = collapse["W₂·GELU(W₁x) vs the best single matrix"]
ln_miss, sm_miss = collapse["LN(2x) vs 2·LN(x)"], collapse["softmax(2s) vs 2·softmax(s)"]
mass = sum(probs[tok.encode(c)[0]].item() for c in firsts)
prompt0, answer0 = next(iter(answers.items()))
show(conclusions(
    f"One layer is Y = WX: the article's column form and the code's row form differ by {step1_residual:.1e}.",
    f"The model is {num(total)} numbers, {pct(in_matrices / total)} of them in {n_matrices} matrices W; the closed "
    f"form matches PyTorch's count: {closed_form == total}.",
    f"Attention is matrices too (q, k, v, o) plus a softmax and a causal mask; written out by hand it matches the "
    f"model to {attn_residual:.1e}.",
    f"Without GELU two matrices are one; with it the best single matrix misses by {pct(gelu_miss)}, and LayerNorm "
    f"and softmax fail the doubling test by {pct(ln_miss)} and {pct(sm_miss)}: Y = WX is each layer's core, not the "
    "whole model.",
    f"The stack has learned the world: {prompt0!r} → {answer0!r}; after {context!r} the letters that begin the "
    f"world's sentences about the cat hold {pct(mass)} of the probability.",
    zh=f"一层就是 Y = WX:文章按列写、代码按行写,两者相差 {step1_residual:.1e}。整个模型共有 {num(total)} 个参数,"
       f"其中 {pct(in_matrices / total)} 在 {n_matrices} 个矩阵 W 里。注意力同样由矩阵(q、k、v、o)组成,再加上 "
       f"softmax 和因果掩码;手算结果与模型相差 {attn_residual:.1e}。去掉 GELU,两个矩阵就合成一个;有了 GELU,"
       f"最好的单个矩阵也差 {pct(gelu_miss)},LayerNorm 和 softmax 在加倍检验中分别差 {pct(ln_miss)} 和 "
       f"{pct(sm_miss)}:Y = WX 是每一层的核心,而不是模型的全部。预训练让模型学会了这个小世界:"
       f"{prompt0!r} 之后它接着写 {answer0!r}。",
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/00_linear.py`; write the function bodies, then run `minituner check 00_linear` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `linear`.** Write y = x Wᵀ + b for any leading shape (the article's Y = WX, §1). Then explain in one sentence why code writes x Wᵀ where the article writes WX.
# 2. **Count.** Using `parameter_table`, predict the number of parameters of one block from C alone before printing it; where does most of the model live?
# 3. **Explore.** Change one entry of W in `h.0.mlp.up_proj` and watch the answer to a prompt: how large must the change be before the answer moves?
#
# 编程题的骨架在 `exercises/00_linear.py`：写好函数体后运行 `minituner check 00_linear --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`linear`。** 实现 y = x Wᵀ + b，支持任意前置维度（文章 §1 的 Y = WX）。再用一句话说明：文章写 WX，代码为什么写 x Wᵀ？
# 2. **计数。** 只根据宽度 C，先预测一个 block 的参数量，再用 `parameter_table` 打印核对；模型的大部分参数在哪里？
# 3. **探索。** 改动 `h.0.mlp.up_proj` 中 W 的一个元素，观察同一个提示的回答：改动要多大，回答才会变化？
