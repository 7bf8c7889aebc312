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
# 3. but a stack of matrices alone would collapse into *one* matrix: LayerNorm, attention's
#    softmax and GELU are what make the stack more than that;
# 4. what the stack does with a sentence.
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
from minituner.report import label, markdown_table, save_figure

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
# rows) gives the same numbers. Mind the shapes: W is (out, in) = 64 × 64, it maps *each
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
print(markdown_table(rows[:18]))
print(f"… {len(rows)} tensors in all: {total:,} parameters, {in_matrices:,} ({in_matrices / total:.1%}) "
      f"in matrices W")
print(f"closed form V·d + T·d + L·(12d² + 13d) + 2d = {closed_form:,}; match: {closed_form == total}")
minituner.print_trainable_parameters(base)

fig, ax = plt.subplots(figsize=(7, 3.5))
names = sorted(by_kind, key=by_kind.get)
ax.barh(names, [by_kind[n] for n in names])
ax.set_xlabel(label("parameters (all layers)", "参数个数(所有层)"))
ax.set_title(label("Where the tiny GPT's parameters are", "参数都在哪里"))
save_figure(fig, out / "parameters_by_matrix.png")

# %% [markdown]
# ## 3. Why the stack does not collapse into one matrix (为什么不会塌缩成一个矩阵)
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
print(markdown_table([{"comparison": k, "relative difference": v, "one matrix would give": "0"}
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
save_figure(fig, out / "gelu.png")

# %% [markdown]
# ## 4. What the stack does with a sentence (这一摞矩阵能做什么)
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
print(markdown_table([{"prompt": p, "greedy answer": a} for p, a in answers.items()]))

cat_sentences = [FORWARD[kind].format(a="cat", v=v) for kind, v in minituner.make_world().facts["cat"].items()]
print("the world's sentences about the cat:", cat_sentences)
context = "the cat "
firsts = {s[len(context)] for s in cat_sentences if s.startswith(context)}  # the letters that begin what follows
with torch.no_grad():
    probs = torch.softmax(base(torch.tensor([tok.encode(context)]))[0, -1], dim=-1)  # (V,): Y, as probabilities
top = probs.topk(8)
print(markdown_table([{"next character": repr(tok.decode([i])), "probability": p}
                      for i, p in zip(top.indices.tolist(), top.values.tolist())]))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([repr(tok.decode([i])) for i in top.indices.tolist()], top.values.tolist())
ax.set_ylabel(label("probability", "概率"))
ax.set_title(label(f"Next character after {context!r}", f"{context!r} 之后的下一个字符"))
save_figure(fig, out / "next_character.png")

# %% [markdown]
# ## Conclusions (小结)
#
# Read from the results above, not typed in by hand:

# %%
print(f"- One layer is Y = WX: the article's column form and the code's row form differ by "
      f"{step1_residual:.1e} ({'identical' if step1_residual == 0 else 'float32 rounding'}).")
print(f"- The model is {total:,} numbers, {in_matrices / total:.1%} of them in {sum(p.dim() == 2 for p in base.parameters())} "
      f"matrices W; the closed form matches PyTorch's count: {closed_form == total}.")
print(f"- Two matrices without GELU are one matrix (difference {collapse['W₂(W₁x) vs one matrix (W₂W₁)x']:.1e}); "
      f"with GELU the best single matrix misses by {collapse['W₂·GELU(W₁x) vs the best single matrix']:.0%}, "
      f"LayerNorm and softmax fail the doubling test by {collapse['LN(2x) vs 2·LN(x)']:.0%} and "
      f"{collapse['softmax(2s) vs 2·softmax(s)']:.0%}: Y = WX is each layer's core, not the whole model.")
likeliest = {tok.decode([i]) for i in probs.topk(len(firsts)).indices.tolist()}
print(f"- The stack has learned the world: {next(iter(answers))!r} → {next(iter(answers.values()))!r}; "
      f"after {context!r} the {len(firsts)} letters that begin the world's sentences about the cat "
      f"({', '.join(sorted(firsts))}) hold {sum(probs[tok.encode(c)[0]].item() for c in firsts):.0%} of the probability"
      + (f", and they are the {len(firsts)} likeliest characters." if likeliest == firsts else "."))
