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

# %% [markdown] lang="zh"
# # 00 · Y = WX：大模型就是一摞矩阵 W
#
# 文章（§1）把大模型归结为一个公式：输入序列 X = [x1, …, xm] 经过 **Y = WX** 变成输出 Y，而“模型”就是矩阵 W。文章还补充说，真实的模型里有许多个矩阵，另外还有一些其他参数。本课打开 minituner 的小型 GPT，把这句话拆开逐条检验：
#
# 1. 一层确实就是 Y = WX（+ b）；
# 2. 模型的参数几乎全在矩阵 W 里；
# 3. 注意力是 token 之间互相读取的唯一场所，它同样由矩阵构成，外加一个 softmax 和一个因果掩码；
# 4. 但如果只有矩阵，一层层叠起来也只会塌缩成*一个*矩阵：正是层归一化（LayerNorm）、注意力里的 softmax 和 GELU 激活函数，让这一摞矩阵不止于一个矩阵；
# 5. 这一摞矩阵拿到一句话之后会做什么。
#
# 代码按行写，文章按列写：把 token 排成行，就是 `y = x @ W.T + b`（`minituner.functional.linear`）；把 token 排成列，就是 Y = WX + b。两者算出的数完全相同。
#
# 运行方式：`python lessons/00_y_equals_wx.py`（加 `--smoke` 使用测试用的快速预设，加 `--lang zh` 让输出变成中文）。在 notebook 里运行的是完整的课程。

# %%
import matplotlib.pyplot as plt
import torch

import minituner
from minituner import functional as F
from minituner import lesson
from minituner.data import FORWARD
from minituner.i18n import _
from minituner.lesson import conclusions, num, pct
from minituner.report import label, markdown_table, save_figure, show

# presets: from the command line in a script, the full lesson's defaults in a notebook
args = lesson.options("Lesson 00: Y = WX", smoke=dict(rows=8, prompts=1), out="runs/00_y_equals_wx",
                      rows=64, prompts=3)
out = args.out

torch.manual_seed(0)
base, tok = minituner.load_base(), minituner.CharTokenizer()
print(_("the shipped base: {config}").format(config=base.config))

# %% [markdown]
# ## 1. One layer is Y = WX (一层就是 Y = WX)
#
# Take the first attention projection `h.0.attn.q_proj` of the shipped base and a real
# sentence. Computing it the article's way (tokens as columns) and the code's way (tokens as
# rows) gives the same numbers. Mind the shapes (printed below): W is (out, in), it maps *each
# token's vector* to another vector, so X and Y both have one column per token. The article's
# m and n (the lengths of X and Y in §1) are not W's m × n of §3.2 (a matrix's shape):
# [errata 7](../docs/errata.md).

# %% [markdown] lang="zh"
# ## 1. 一层就是 Y = WX
#
# 取发布的基座模型的第一个注意力投影 `h.0.attn.q_proj`，再取一句真实的句子。按文章的方式（token 排成列）和按代码的方式（token 排成行）分别计算，得到的数相同。留意各个形状（下面会打印出来）：W 的形状是 `(out, in)`，它把*每个 token 的向量*映射成另一个向量，所以 X 和 Y 都是每个 token 占一列。文章 §1 里的 m 和 n（X 与 Y 的长度）并不是 §3.2 里 W 的 m × n（矩阵的形状）：见[勘误 7](../docs/errata.md)。

# %%
ids = torch.tensor([tok.encode("the cat says meow.")])  # (1, T)
x = base.wte(ids) + base.wpe(torch.arange(ids.size(1)))  # (1, T, C): token + position embeddings
layer = base.h[0].attn.q_proj
W, b = layer.weight, layer.bias  # W (out, in), b (out,)
X = x[0].T  # (C, T): the article's X, one column per token
Y_article = W @ X + b[:, None]  # (out, T): Y = WX (+ b)
y_code = F.linear(x[0], W, b)  # (T, out): y = x Wᵀ + b
step1_residual = (Y_article - y_code.T).abs().max().item()
print(_("W is {W}, X is {X}, Y is {Y} for T = {T} tokens").format(
    W=tuple(W.shape), X=tuple(X.shape), Y=tuple(Y_article.shape), T=ids.size(1)))
print(f"max |Y_article − y_codeᵀ| = {step1_residual:.2e}")

# %% [markdown]
# ## 2. The whole model, matrix by matrix (整个模型:一摞矩阵)
#
# Every tensor of the model, its shape and its size. The 2-D ones are the article's W's; the
# 1-D ones are biases and LayerNorm scales, the "other parameters" the article mentions.
# `wte` is used twice: to embed tokens and, transposed, as the output head (GPT-2 ties them),
# so it is counted once. The count from the config's closed form must equal PyTorch's.

# %% [markdown] lang="zh"
# ## 2. 整个模型，一个矩阵一个矩阵地看
#
# 下面列出模型的每个张量、它的形状和大小。二维的张量就是文章所说的 W；一维的是偏置和层归一化的缩放参数，也就是文章提到的“其他参数”。`wte` 用了两次：一次把 token 变成向量（嵌入），一次转置后用作输出头（GPT-2 让两者共享同一份权重），所以只算一次。由配置写出的闭式公式算出的参数量，必须和 PyTorch 数出来的一致。

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
print(_("… {n} tensors in all: {total:,} parameters, {in_matrices:,} ({share:.1%}) in matrices W").format(
    n=len(rows), total=total, in_matrices=in_matrices, share=in_matrices / total))
print(_("closed form V·d + T·d + L·(12d² + 13d) + 2d = {closed_form:,}; match: {match}").format(
    closed_form=closed_form, match=closed_form == total))
minituner.print_trainable_parameters(base)

fig, ax = plt.subplots(figsize=(7, 3.5))
names = sorted(by_kind, key=by_kind.get)
ax.barh(names, [by_kind[n] for n in names])
ax.set_xlabel(label("parameters (all layers)"))
ax.set_title(label("Where the tiny GPT's parameters are"))
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

# %% [markdown] lang="zh"
# ## 3. 注意力：token 在这里互相读取
#
# Y = WX 把每个 token 单独处理：Y 中 token t 的那一列只取决于 X 中 token t 的那一列。token 之间唯一相遇的地方是注意力。每个 token 的向量 x 被三个矩阵 W（正是第 1 节验证过的那种）分别投影：**查询** q = W_q x（它要找什么）、**键** k = W_k x（它能提供什么）和**值** v = W_v x（它要传出什么）。token t 用 q_t · k_j / √hs 给每个 token j 打分，softmax 把每一行分数变成全为正、和为 1 的权重，token t 的输出就是各个值按这些权重的加权和。**因果掩码**在 softmax 之前把后面各 token（j > t）的分数设成 −∞，于是它们的权重恰好为 0：预测下一个字符的语言模型不能偷看那个字符。模型把宽度分给几个头（nh 个头，每个头 hs 维），各头分别做注意力，再拼接起来，最后乘上另一个矩阵 W_o。
#
# 下面把第一个 Transformer 块的注意力作用在第 1 节那句话上，一步一步手写出来（打印出各个形状），再与模型自己的 `CausalSelfAttention` 对比。

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
print(_("{nh} heads of {hs}: q, k, v {q}, scores and weights {w}, output {o}").format(
    nh=nh, hs=hs, q=tuple(q.shape), w=tuple(weights.shape), o=tuple(attn_by_hand.shape)))
print(_("each row of weights sums to 1: max |sum − 1| = {err:.1e}; weight on later tokens: {later}").format(
    err=(weights.sum(-1) - 1).abs().max().item(), later=weights[..., ~causal].abs().max().item()))
print(_("max |by hand − model's attention| = {diff:.1e}").format(diff=attn_residual))

chars = list(tok.decode(ids[0].tolist()))
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(weights[0, 0].numpy(), cmap="viridis")
ax.set_xticks(range(T), chars, fontsize=7)
ax.set_yticks(range(T), chars, fontsize=7)
ax.set_xlabel(label("key: the token read"))
ax.set_ylabel(label("query: the token reading"))
ax.set_title(label("Layer 0, head 0: attention weights"))
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

# %% [markdown] lang="zh"
# ## 4. 为什么这一摞不会塌缩成一个矩阵
#
# 如果每一层都只是 Y = WX，两层就是 W₂(W₁X) = (W₂W₁)X：还是一个矩阵；叠上一百层，也不过相当于一层。阻止这种塌缩的，是模型里那些*不是*矩阵乘法的部分：
#
# - 多层感知机（MLP）两个矩阵之间的 **GELU** 激活函数（它是一条曲线，不是直线）；
# - **层归一化**（LayerNorm），它把每个向量除以该向量自身的大小，因此 LN(2x) = LN(x)，而线性映射会让结果翻倍；
# - 注意力里的 **softmax**，它给出的权重总是和为 1，因此 softmax(2s) ≠ 2·softmax(s)。
#
# 下面在真实的 token 向量上检验第一个 Transformer 块的 MLP：去掉 GELU，它的两个矩阵恰好合成一个矩阵；有了 GELU，哪怕是*最好*的单个矩阵（对所有向量做最小二乘拟合）也差得很明显。接着是两项缩放检验。

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
print(_("over {n:,} token vectors of the corpus").format(n=len(h)))

fig, ax = plt.subplots(figsize=(5, 3.5))
z = torch.linspace(-4, 4, 200)
ax.plot(z, F.gelu(z), label="GELU(z)")
ax.plot(z, z, ls=":", color="grey", label=label("a line: z"))
ax.set_xlabel("z")
ax.set_title(label("GELU bends: the MLP is not one matrix"))
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

# %% [markdown] lang="zh"
# ## 5. 这一摞矩阵拿到一句话会做什么
#
# 模型最后的输出是给词表中每个字符的一个分数（输出头就是转置后的 `wte`），再由 softmax 变成概率。在 `"the cat "` 之后，下一个字符可能是这个小世界里任何一句关于猫的句子的开头（这些句子取自 `minituner.data`，下面会打印出来）；表格显示基座模型把概率放在了哪些字符上。贪心解码每次取最可能的字符，接到末尾后再运行一次模型：基座模型就这样补全它在预训练中学到的事实。

# %%
prompts = ["the cat says", "the animal that says woof is the", "the owl lives in the"][: args.prompts]
answers = {p: minituner.answer(base, tok, p) for p in prompts}
show(markdown_table([{"prompt": p, "greedy answer": a} for p, a in answers.items()]))

cat_sentences = [FORWARD[kind].format(a="cat", v=v) for kind, v in minituner.make_world().facts["cat"].items()]
print(_("the world's sentences about the cat:"), cat_sentences)
context = "the cat "
firsts = {s[len(context)] for s in cat_sentences if s.startswith(context)}  # the letters that begin what follows
with torch.no_grad():
    probs = torch.softmax(base(torch.tensor([tok.encode(context)]))[0, -1], dim=-1)  # (V,): Y, as probabilities
top = probs.topk(8)
show(markdown_table([{"next character": repr(tok.decode([i])), "probability": p}
                     for i, p in zip(top.indices.tolist(), top.values.tolist())]))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([repr(tok.decode([i])) for i in top.indices.tolist()], top.values.tolist())
ax.set_ylabel(label("probability"))
ax.set_title(label("Next character after {context}").format(context=repr(context)))
save_figure(fig, out / "next_character.png");

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the results above.

# %% [markdown] lang="zh"
# ## 小结
#
# 以下结论由上面的运行结果自动生成。

# %%
n_matrices = sum(p.dim() == 2 for p in base.parameters())
gelu_miss = collapse["W₂·GELU(W₁x) vs the best single matrix"]
ln_miss, sm_miss = collapse["LN(2x) vs 2·LN(x)"], collapse["softmax(2s) vs 2·softmax(s)"]
mass = sum(probs[tok.encode(c)[0]].item() for c in firsts)
prompt0, answer0 = next(iter(answers.items()))
show(conclusions(
    _("One layer is Y = WX: the article's column form and the code's row form differ by {diff:.1e}.").format(
        diff=step1_residual),
    _("The model is {total} numbers, {share} of them in {n} matrices W; the closed form matches PyTorch's count: "
      "{match}.").format(total=num(total), share=pct(in_matrices / total), n=n_matrices, match=closed_form == total),
    _("Attention is matrices too (q, k, v, o) plus a softmax and a causal mask; written out by hand it matches the "
      "model to {diff:.1e}.").format(diff=attn_residual),
    _("Without GELU two matrices are one; with it the best single matrix misses by {gelu}, and LayerNorm and softmax "
      "fail the doubling test by {ln} and {sm}: Y = WX is each layer's core, not the whole model.").format(
        gelu=pct(gelu_miss), ln=pct(ln_miss), sm=pct(sm_miss)),
    _("The stack has learned the world: {prompt} → {answer}; after {context} the letters that begin the world's "
      "sentences about the cat hold {mass} of the probability.").format(
        prompt=repr(prompt0), answer=repr(answer0), context=repr(context), mass=pct(mass)),
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/00_linear.py`; write the function bodies, then run `minituner check 00_linear` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `linear`.** Write y = x Wᵀ + b for any leading shape (the article's Y = WX, §1). Then explain in one sentence why code writes x Wᵀ where the article writes WX.
# 2. **Count.** Using `parameter_table`, predict the number of parameters of one block from C alone before printing it; where does most of the model live?
# 3. **Explore.** Change one entry of W in `h.0.mlp.up_proj` and watch the answer to a prompt: how large must the change be before the answer moves?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/00_linear.py`：写好函数体后运行 `minituner check 00_linear --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`linear`。** 实现 y = x Wᵀ + b，支持任意的前置维度（即文章 §1 的 Y = WX）。再用一句话说明：文章写 WX，代码为什么写 x Wᵀ？
# 2. **计数。** 只根据模型宽度 C，先预测一个 Transformer 块的参数量，再用 `parameter_table` 打印出来核对；模型的参数大部分在哪里？
# 3. **探索。** 改动 `h.0.mlp.up_proj` 中 W 的一个元素，观察同一个提示的回答：改动要多大，回答才会变？
