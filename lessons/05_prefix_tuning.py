# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 05 · Prefix tuning (前缀微调) and P-Tuning v2 (article §3.2)
#
# The article's prefix tuning also leaves the base model unchanged, but instead of
# adding tokens to the input it puts trainable rows in front of the model's own
# matrices, "in every layer":
#
# W = [W]  becomes  W' = [Wp; W],  and  Y = W'X.
#
# In a Transformer the rows that are put in front are keys and values: at every layer
# l, attention runs over K' = [P_k; K] and V' = [P_v; V], with P_k, P_v of shape (k × d)
# (Li & Liang 2021). In minituner that is two lines of `model.py`, the `prefixes=` slot:
# `k = torch.cat([prefix_k, k], dim=2)` and the same for `v`.
#
# **P-Tuning v2** (Liu et al. 2022) is "deep prompt tuning": the same trainable keys and
# values at every layer, trained directly, without the MLP that Li & Liang put in front of
# them. In code it *is* `prefix_tuning(..., prefix_projection=False)`. Against prompt tuning
# (lesson 04), whose k vectors enter only at the bottom and must pass through every
# frozen layer, the deep prompts reach each layer directly, with 2·L times as many numbers.
#
# Run it: `python lessons/05_prefix_tuning.py` (add `--smoke` for the quick test preset).

# %%
import argparse
import copy
import sys
from pathlib import Path

import torch

import minituner
from minituner.methods.prefix import prefix_parameter_count
from minituner.report import markdown_table, plot_losses, plot_tradeoff, print_answers

PHRASE = "the animal that says woof is the dog.\n"  # a sentence the base read in pretraining


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 05: prefix tuning and P-Tuning v2")
    p.add_argument("--ks", default="2,8", help="numbers of virtual tokens k to sweep")
    p.add_argument("--steps", type=int, default=64, help="training steps of each run")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--prefix-lr", type=float, default=1e-2, help="prefix tuning's learning rate (E and the MLP)")
    p.add_argument("--v2-lr", type=float, default=1e-1, help="P-Tuning v2's learning rate (the prefixes themselves)")
    p.add_argument("--full-lr", type=float, default=5e-4, help="full fine-tuning's learning rate (as lesson 02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (a few steps)")
    p.add_argument("--out", default="runs/05_prefix_tuning", help="folder for the figures")
    args = p.parse_args(argv)
    args.ks = [int(k) for k in args.ks.split(",")]
    if args.smoke:
        args.steps, args.ks = 3, [2]
    return args


def phrase(k: int) -> str:
    """The last k characters of PHRASE (repeated as needed): text the base knows, ending where X begins."""
    return (PHRASE * (k // len(PHRASE) + 1))[-k:]


# %% [markdown]
# ## 1. K' = [P_k; K], V' = [P_v; V], checked by hand — and a zero prefix is no no-op
#
# For the first layer of the base we compute attention ourselves over the concatenated
# keys and values (softmax from PyTorch as the oracle) and compare with the model.
# Every real token's query sees all k prefix rows; no query is made *for* them, so the
# model predicts only the T real positions and the prefix never counts in the loss. A
# prefix takes no position: real tokens keep positions 0…T−1, and k + T may not exceed
# `block_size`.
#
# Is a prefix of zeros "nothing"? No. A zero key scores q·0 = 0, so each of the k zero rows
# still takes exp(0) out of the softmax's sum Z: every real token's weight shrinks by
# Z / (Z + k), and the zero values put nothing back. The output changes.

# %%
def by_hand(attn, x, pk, pv):
    """Attention over [P_k; K], [P_v; V] written out: x (B, T, d) -> (B, T, d)."""
    B, T, d = x.shape
    k, nh = pk.size(0), attn.n_head
    heads = lambda t: t.view(B, t.size(1), nh, d // nh).transpose(1, 2)  # (B, nh, ·, hs)  # noqa: E731
    Q = heads(attn.q_proj(x))  # (B, nh, T, hs)
    K = heads(torch.cat([pk.expand(B, k, d), attn.k_proj(x)], dim=1))  # (B, nh, k + T, hs)
    V = heads(torch.cat([pv.expand(B, k, d), attn.v_proj(x)], dim=1))  # (B, nh, k + T, hs)
    seen = torch.cat([torch.ones(T, k, dtype=torch.bool), torch.ones(T, T, dtype=torch.bool).tril()], dim=1)
    S = (Q @ K.transpose(-2, -1) / (d // nh) ** 0.5).masked_fill(~seen, float("-inf"))  # (B, nh, T, k + T)
    return attn.o_proj((torch.softmax(S, -1) @ V).transpose(1, 2).reshape(B, T, d))  # (B, T, d)


def zero_share(base, idx, k):
    """k / (k + Z) per query of layer 0: the attention that k zero keys take, Z = Σ_j exp(s_j)."""
    x = base.h[0].ln_1(base.wte(idx) + base.wpe(torch.arange(idx.size(1))))  # (B, T, d)
    attn, (B, T, _) = base.h[0].attn, x.shape
    q, key = (p(x).view(B, T, attn.n_head, -1).transpose(1, 2) for p in (attn.q_proj, attn.k_proj))  # (B, nh, T, hs)
    s = (q @ key.transpose(-2, -1) / q.size(-1) ** 0.5).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return k / (k + torch.logsumexp(s, dim=-1).exp())  # (B, nh, T)


@torch.no_grad()
def step1(base, task, k=4):
    model = minituner.ptuning_v2(base, num_virtual_tokens=k, init="text", init_text=phrase(k))
    idx = task.test.x[:4]
    block = model.base.h[0]
    x = block.ln_1(model.base.wte(idx) + model.base.wpe(torch.arange(idx.size(1))))  # (B, T, d)
    pk, pv = model.prefixes()[0]
    print(f"P_k, P_v {tuple(pk.shape)} per layer × {base.config.n_layer} layers; "
          f"max |attention(x, prefix) − by hand| = {(block.attn(x, prefix=(pk, pv)) - by_hand(block.attn, x, pk, pv)).abs().max().item():.1e}")
    print(f"logits {tuple(model(idx).shape)} for input {tuple(idx.shape)}: only the real positions are predicted")
    zero = minituner.ptuning_v2(base, num_virtual_tokens=k)
    zero.prefix.zero_()
    change = (zero(idx) - base(idx)).abs().max().item()
    share = zero_share(base, idx, k)  # (B, nh, T): k / (k + Z) at every query of layer 0
    real = (idx != task.tokenizer.pad_id).unsqueeze(1).expand_as(share)  # (B, nh, T)
    print(f"a prefix of {k} zero keys and values: max |logits − base logits| = {change:.3f} (not 0); in layer 0 "
          f"they take {share[real].mean():.0%} of a real token's attention on average, {share[..., 0].mean():.0%} "
          "at the first token")
    empty = torch.zeros(0, base.config.n_embd)
    print(f"a prefix of length 0 is the base exactly: {torch.equal(base(idx, prefixes=[(empty, empty)] * base.config.n_layer), base(idx))}")


# %% [markdown]
# ## 2. What trains: the MLP while training, plain prefixes after `fold()`
#
# Li & Liang found training the prefixes directly unstable and made them with an MLP
# from a small embedding E (k × d): P = W2·tanh(W1·E + b1) + b2, read as one (P_k, P_v)
# pair per layer. The MLP is a training device: `fold()` computes P = MLP(E) once and
# keeps only that. P-Tuning v2 trains the 2·L·k·d numbers directly from the start.
# Each count is compared with its closed form.

# %%
def step2(base, k):
    c = base.config
    d, L, h = c.n_embd, c.n_layer, c.n_embd
    rows = []
    for name, model, closed, formula in [
        ("prefix tuning (MLP)", minituner.prefix_tuning(base, k, encoder_hidden_size=h), prefix_parameter_count(k, d, L, h),
         f"k·d + (d·h + h) + (h·2Ld + 2Ld), h={h}"),
        ("prefix tuning, folded", minituner.prefix_tuning(base, k, encoder_hidden_size=h).fold(), prefix_parameter_count(k, d, L),
         "2·L·k·d"),
        ("P-Tuning v2", minituner.ptuning_v2(base, k), prefix_parameter_count(k, d, L), "2·L·k·d"),
    ]:
        trainable, total = minituner.count_parameters(model)
        rows.append({"model": name, "k": k, "closed form": formula, "trainable params": trainable,
                     "= closed form": trainable == closed, "trainable %": 100 * trainable / total})
    print(markdown_table(rows))


# %% [markdown]
# ## 3. Prefix tuning and P-Tuning v2 side by side, sweeping k
#
# All runs: the same base, steps and batch. Prefix tuning starts from Li & Liang's init
# from real words: the base reads a phrase of k characters and each layer's own keys and
# values of it become the starting prefix (`init="text"`; with the MLP, its last layer is
# solved so that MLP(E) equals them at step 0). P-Tuning v2 is shown with its paper's
# random init (N(0, 1), about the scale of this base's keys and values) and with the same
# text init. Full fine-tuning is the reference.
#
# The two forms want different learning rates. P-Tuning v2's AdamW steps move the
# prefixes themselves, numbers of size about 1: it wants a rate like 1e-1 and barely moves
# at 3e-3. Prefix tuning's steps move E and the MLP's weights, which are ~10× smaller and
# multiply each other: 1e-2 suits it, and 3e-2 throws its text init away. Try others with
# `--prefix-lr` and `--v2-lr`.

# %%
def run(name, model, task, args, lr, k=""):
    hist = minituner.train(model, task, steps=args.steps, lr=lr, batch_size=args.batch_size,
                           seed=args.seed, progress=False)
    trainable, total = minituner.count_parameters(model)
    if getattr(model, "reparameterized", False):
        model.fold()  # what is kept after training: 2·L·k·d numbers
    test = minituner.evaluate(model, task.test)
    row = {"method": name, "k": k, "lr": lr, "trainable params": trainable,
           "trainable %": 100 * trainable / total, "stored params": minituner.count_parameters(model)[0],
           "train accuracy": minituner.evaluate(model, task.train)["accuracy"],
           "test loss": test["loss"], "test accuracy": test["accuracy"], "seconds": hist.seconds}
    return row, hist.losses


def full_model(base):
    """minituner.full if it exists, else a deep copy with every tensor trainable."""
    if hasattr(minituner, "full"):
        return minituner.full(base)
    model = copy.deepcopy(base)
    model.requires_grad_(True)
    return model


def step3(base, task, args):
    test = minituner.evaluate(base, task.test)
    rows = [{"method": "base, untrained", "k": "", "lr": "", "trainable params": 0, "trainable %": 0.0,
             "stored params": 0, "train accuracy": minituner.evaluate(base, task.train)["accuracy"],
             "test loss": test["loss"], "test accuracy": test["accuracy"], "seconds": 0.0}]
    curves, models = {}, {}
    row, curves["full fine-tuning"] = run("full fine-tuning", full_model(base), task, args, args.full_lr)
    rows.append(row)
    for k in args.ks:
        text = dict(init="text", init_text=phrase(k))
        for name, method, kwargs, lr in [("prefix tuning, text init", minituner.prefix_tuning, text, args.prefix_lr),
                                         ("P-Tuning v2, random init", minituner.ptuning_v2, {}, args.v2_lr),
                                         ("P-Tuning v2, text init", minituner.ptuning_v2, text, args.v2_lr)]:
            models[name, k] = method(base, k, seed=args.seed, **kwargs)
            row, curves[f"{name}, k={k}"] = run(name, models[name, k], task, args, lr, k=k)
            rows.append(row)
    print(markdown_table(rows))
    return rows, curves, models


# %% [markdown]
# ## 4. The folded prefix at work
#
# After `fold()` the prefix model gives the logits it gave with the MLP, and `generate()`
# works unchanged: the prefix is put before the cached keys and values at every step, so
# the tokens with and without the cache are the same.

# %%
@torch.no_grad()
def step4(base, task, trained, args, n=3):
    k = args.ks[-1]
    model = minituner.prefix_tuning(base, k, init="text", init_text=phrase(k))
    idx = task.test.x[:8]
    before = model(idx)
    print(f"fold(): max |logits with MLP − folded| = {(model.fold()(idx) - before).abs().max().item():.1e}")
    print_answers(trained, task, n)


def draw(rows, out):
    points = [(f"{r['method']} {r['k']}", r["trainable params"], r["test accuracy"]) for r in rows[1:]]
    return plot_tradeoff(points, "Prefix tuning and P-Tuning v2: trainable parameters vs accuracy", Path(out) / "params_vs_accuracy.png",
                         xlabel="trainable parameters while training (log)", baseline=rows[0]["test accuracy"])


def main(argv=None):
    args = parse(argv)
    torch.manual_seed(args.seed)
    base, task = minituner.load_base(), minituner.make_task("classify")
    fp = minituner.fingerprint(base)
    print("Step 1 — K' = [P_k; K], V' = [P_v; V], checked by hand")
    step1(base, task)
    print(f"\nStep 2 — what trains, k = {args.ks[-1]}")
    step2(base, args.ks[-1])
    print(f"\nStep 3 — side by side: k = {args.ks}, {args.steps} steps each; prefix tuning at lr {args.prefix_lr}, "
          f"P-Tuning v2 at lr {args.v2_lr}, full fine-tuning at lr {args.full_lr}")
    rows, curves, models = step3(base, task, args)
    print("\nStep 4 — fold, and the trained prefix at work")
    step4(base, task, models["prefix tuning, text init", args.ks[-1]], args, n=1 if args.smoke else 3)
    print(f"\nthe base is bit-identical after all of it: {minituner.fingerprint(base) == fp}")
    figs = [plot_losses(curves, "classify: prefix tuning, P-Tuning v2, full fine-tuning",
                        Path(args.out) / "prefix_tuning_loss.png"), draw(rows, args.out)]
    print("figures: " + ", ".join(map(str, figs)))


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
