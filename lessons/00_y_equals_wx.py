# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 00 · Y = WX: a language model is a stack of matrices (大模型 = 矩阵 W)
#
# The article (§1) reduces a large model to one formula: an input sequence
# X = [x1, …, xm] becomes an output Y by **Y = WX**, and "the model" is the matrix W.
# It adds that real models hold many matrices. This lesson opens minituner's tiny GPT
# and shows exactly that: every weight is a matrix W, every layer computes Y = WX (+ b),
# and the parameter count is the sum of the matrices' sizes.
#
# Code writes rows, the article writes columns: with tokens as rows, `y = x @ W.T + b`
# (`minituner.functional.linear`); with tokens as columns, Y = WX + b. Same numbers.
#
# Run it: `python lessons/00_y_equals_wx.py` (add `--smoke` for the quick test preset).

# %%
import argparse
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import minituner
from minituner import functional as F
from minituner.report import markdown_table, save_figure


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 00: Y = WX")
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (same steps, fewer rows)")
    p.add_argument("--out", default="runs/00_y_equals_wx", help="folder for the figure")
    return p.parse_args(argv)


# %% [markdown]
# ## 1. One layer is Y = WX
#
# Take the first attention projection `h.0.attn.q_proj` of the shipped base and a real
# sentence. Computing it the article's way (columns) and the code's way (rows) gives
# the same numbers.

# %%
def one_layer(base, tok):
    ids = torch.tensor([tok.encode("the cat says meow.")])  # (1, T)
    x = base.wte(ids) + base.wpe(torch.arange(ids.size(1)))  # (1, T, C): token + position
    layer = base.h[0].attn.q_proj
    W, b = layer.weight, layer.bias  # W (out, in), b (out,)
    X = x[0].T  # (C, T): the article's X, one column per token
    Y_article = W @ X + b[:, None]  # (out, T): Y = WX (+ b)
    y_code = F.linear(x[0], W, b)  # (T, out): y = x Wᵀ + b
    print(f"W is {tuple(W.shape)}, X is {tuple(X.shape)}, Y is {tuple(Y_article.shape)}")
    print(f"max |Y_article − y_codeᵀ| = {(Y_article - y_code.T).abs().max().item():.2e}")


# %% [markdown]
# ## 2. The whole model, matrix by matrix
#
# Every tensor of the model, its shape and its size. The 2-D ones are the W's of the
# article; the 1-D ones are biases and LayerNorm scales, the "other parameters" the
# article mentions. `wte` is used twice: to embed tokens and, transposed, as the output
# head (GPT-2 ties them), so it is counted once.

# %%
def all_matrices(base):
    rows, by_kind = [], {}
    for name, p in base.named_parameters():
        rows.append({"tensor": name, "shape": "×".join(map(str, p.shape)), "numel": p.numel()})
        kind = name.split(".")[-2] if name.startswith("h.") else name.split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0) + p.numel()
    total = sum(r["numel"] for r in rows)
    matrices = sum(p.numel() for p in base.parameters() if p.dim() == 2)
    print(markdown_table(rows[:12]))
    print(f"... {len(rows)} tensors in all: {total:,} parameters, {matrices:,} ({matrices / total:.1%}) in matrices W")
    return by_kind


# %% [markdown]
# ## 3. What the matrices do to a sentence
#
# The base predicts the next character of a mini-world sentence. Greedy decoding
# (always the most likely character) finishes a fact it learned in pretraining.

# %%
def draw(by_kind, out):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = sorted(by_kind, key=by_kind.get)
    ax.barh(names, [by_kind[n] for n in names])
    ax.set_xlabel("parameters (all layers)")
    ax.set_title("Where the tiny GPT's parameters are")
    return save_figure(fig, Path(out) / "parameters_by_matrix.png")


def main(argv=None):
    args = parse(argv)
    torch.manual_seed(0)
    base, tok = minituner.load_base(), minituner.CharTokenizer()
    print("Step 1 — one layer is Y = WX")
    one_layer(base, tok)
    print("\nStep 2 — the model is a stack of W")
    by_kind = all_matrices(base)
    minituner.print_trainable_parameters(base)
    print("\nStep 3 — the stack at work")
    prompts = ["the cat says"] if args.smoke else ["the cat says", "the animal that says woof is the", "the owl lives in the"]
    for prompt in prompts:
        print(f"  {prompt!r} -> {minituner.answer(base, tok, prompt)!r}")
    print(f"\nfigure: {draw(by_kind, args.out)}")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
