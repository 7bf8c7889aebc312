# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 04 · Prompt tuning (提示微调, article §3.2)
#
# The article's prompt tuning keeps the base model as it is and, for each task, trains
# a few extra "tokens" put in front of the input:
#
# X = [x1, …, xm]  becomes  X' = [x'1, …, x'k; x1, …, xm],  and  Y = W X'.
#
# The x' are not characters of the vocabulary: they are k free vectors of the model's
# width d, a *soft prompt* P (k × d), the only thing that trains (Lester et al. 2021).
# In minituner that is one line of `model.py`, the `prompt=` slot of `GPT.forward`:
# `x = torch.cat([P.expand(B, -1, -1), x], dim=1)`.
#
# This lesson checks that line by hand, sweeps k against full fine-tuning (lesson 02),
# and shows what prompt tuning needs at this small scale: it is known to lag behind
# full fine-tuning on small models (Lester et al. found the gap closes only as models
# approach ten billion parameters), and the numbers below are printed as measured.
#
# Run it: `python lessons/04_prompt_tuning.py` (add `--smoke` for the quick test preset).

# %%
import argparse
import copy
import sys
from pathlib import Path

import torch

import minituner
from minituner.methods.prompt import prompt_parameter_count
from minituner.report import markdown_table, plot_losses, plot_tradeoff, print_answers

PHRASE = "the animal that says woof is the dog.\n"  # a sentence the base read in pretraining


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 04: prompt tuning")
    p.add_argument("--ks", default="1,4,16", help="numbers of virtual tokens k to sweep")
    p.add_argument("--steps", type=int, default=64, help="training steps of each run")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-2, help="prompt tuning's learning rate (large: P is few numbers)")
    p.add_argument("--full-lr", type=float, default=5e-4, help="full fine-tuning's learning rate (as lesson 02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (a few steps)")
    p.add_argument("--out", default="runs/04_prompt_tuning", help="folder for the figures")
    args = p.parse_args(argv)
    args.ks = [int(k) for k in args.ks.split(",")]
    if args.smoke:
        args.steps, args.ks = 3, [1, 4]
    return args


def phrase(k: int) -> str:
    """The last k characters of PHRASE (repeated as needed): text the base knows, ending where X begins."""
    return (PHRASE * (k // len(PHRASE) + 1))[-k:]


# %% [markdown]
# ## 1. X' = [P; X], checked by hand
#
# `minituner.prompt_tuning(base, num_virtual_tokens=k)` deep-copies the base, freezes
# every tensor of the copy, and adds one trainable tensor, `prompt`, of shape (k, d).
# We build X' ourselves (token embeddings plus positions, P in front), run the frozen
# blocks on it, and compare with the model's own forward.
#
# Two details the formula leaves open, and what minituner does:
# - **positions**: the virtual tokens get no position embedding (P is the whole vector);
#   the real tokens keep positions 0…T−1, where pretraining put them. The attention
#   length k + T may not exceed the context (`block_size`), or the model raises ValueError.
# - **the loss**: the model returns logits for the T real positions only, so the
#   answer-only mask of the task lines up with them; virtual positions never count.

# %%
def step1(base, task, k=4):
    model = minituner.prompt_tuning(base, num_virtual_tokens=k, init="vocab", seed=0)
    idx = task.test.x[:4]  # (B, T)
    B, T = idx.shape
    fb = model.base
    with torch.no_grad():
        x = fb.wte.weight[idx] + fb.wpe.weight[:T]  # (B, T, d): X with positions 0..T-1
        x = torch.cat([model.prompt.expand(B, -1, -1), x], dim=1)  # (B, k + T, d): X' = [P; X]
        for block in fb.h:
            x = block(x)
        by_hand = (fb.ln_f(x) @ fb.wte.weight.T)[:, k:]  # (B, T, V): the k virtual rows predict nothing
        logits = model(idx)
    print(f"P {tuple(model.prompt.shape)}, X {tuple(idx.shape)} -> X' ({B}, {k} + {T}, {base.config.n_embd}), "
          f"logits {tuple(logits.shape)}")
    print(f"max |model(X) − by hand| = {(logits - by_hand).abs().max().item():.1e}")
    trainable, total = minituner.count_parameters(model)
    print(f"trainable = k·d = {k}·{base.config.n_embd} = {prompt_parameter_count(k, base.config.n_embd)}: "
          f"{trainable == prompt_parameter_count(k, base.config.n_embd)}; the {total - trainable:,} base "
          "parameters are frozen")
    too_long = torch.zeros(1, base.config.block_size - k + 1, dtype=torch.long)
    try:
        model(too_long)
    except ValueError as e:
        print(f"k + T > block_size: ValueError: {e}")


# %% [markdown]
# ## 2. How many virtual tokens? A sweep of k, against full fine-tuning
#
# Each run starts from the same base and trains for the same number of steps. Full
# fine-tuning (every parameter, at its own small learning rate, as in lesson 02) is the
# reference. The test split asks about facts the task's training split never shows: only
# what the base learned in pretraining can answer it.

# %%
def run(name, model, task, args, lr=None, steps=None, k=""):
    steps = steps or args.steps
    hist = minituner.train(model, task, steps=steps, lr=lr or args.lr, batch_size=args.batch_size,
                           seed=args.seed, progress=False)
    test = minituner.evaluate(model, task.test)
    trainable, total = minituner.count_parameters(model)
    row = {"method": name, "k": k, "lr": lr or args.lr, "steps": steps, "trainable params": trainable,
           "trainable %": 100 * trainable / total, "train accuracy": minituner.evaluate(model, task.train)["accuracy"],
           "test loss": test["loss"], "test accuracy": test["accuracy"], "seconds": hist.seconds}
    return row, hist.losses


def full_model(base):
    """minituner.full if it exists, else a deep copy with every tensor trainable."""
    if hasattr(minituner, "full"):
        return minituner.full(base)
    model = copy.deepcopy(base)
    model.requires_grad_(True)
    return model


def step2(base, task, args):
    test = minituner.evaluate(base, task.test)
    rows = [{"method": "base, untrained", "k": "", "lr": "", "steps": 0, "trainable params": 0, "trainable %": 0.0,
             "train accuracy": minituner.evaluate(base, task.train)["accuracy"], "test loss": test["loss"],
             "test accuracy": test["accuracy"], "seconds": 0.0}]
    curves, models = {}, {}
    row, curves["full fine-tuning"] = run("full fine-tuning", full_model(base), task, args, lr=args.full_lr)
    rows.append(row)
    for k in args.ks:
        models[k] = minituner.prompt_tuning(base, num_virtual_tokens=k, seed=args.seed)
        row, curves[f"prompt tuning, k={k}"] = run("prompt tuning", models[k], task, args, k=k)
        rows.append(row)
    print(markdown_table(rows))
    return rows, curves, models


# %% [markdown]
# ## 3. What helps prompt tuning
#
# Three things the literature tries, each changed alone from the largest k above:
# - **text init** (Lester et al. 2021): start P from the embeddings of real text, here the
#   last k characters of a sentence the base read in pretraining, instead of random vectors;
# - **a larger learning rate**: P is a few hundred numbers, and its gradient reaches it
#   through every frozen layer; Lester et al. train at 0.3 (with Adafactor, whose steps
#   scale differently from AdamW's);
# - **more steps**: the same prompt, trained as long again.
#
# Which of them helps *here* is printed below the table, computed from it.

# %%
def step3(base, task, args, base_row, trained, trained_curve):
    k, rows, curves = base_row["k"], [base_row], {}
    variants = [
        ("text init", minituner.prompt_tuning(base, k, init="text", init_text=phrase(k), seed=args.seed), {}),
        (f"lr ×3 = {3 * args.lr:g}", minituner.prompt_tuning(base, k, seed=args.seed), dict(lr=3 * args.lr)),
        (f"then {args.steps} more steps", copy.deepcopy(trained), {}),  # continue the trained prompt
    ]
    for name, model, how in variants:
        row, curves[f"k={k}, {name}"] = run(f"prompt tuning, {name}", model, task, args, k=k, **how)
        rows.append(row)
    rows[-1]["steps"] += base_row["steps"]
    curves[f"k={k}, {variants[-1][0]}"] = trained_curve + curves[f"k={k}, {variants[-1][0]}"]  # one line, both runs
    print(f"init_text for k={k}: {phrase(k)!r}")
    print(markdown_table(rows, ["method", "k", "lr", "steps", "trainable params", "train accuracy", "test loss",
                                "test accuracy"]))
    for r in rows[1:]:
        delta = r["test accuracy"] - base_row["test accuracy"]
        verdict = "helps" if delta > 0 else "does not help" if delta < 0 else "changes nothing"
        print(f"  {r['method'].removeprefix('prompt tuning, ')}: {verdict} here ({delta:+.2f} test accuracy)")
    return rows, curves


# %% [markdown]
# ## 4. The trained prompt at work
#
# `generate()` works unchanged: the prompt is inserted once, then the KV cache keeps its
# keys and values (and those of the text) for the following tokens. With and without
# the cache the tokens are the same.

# %%
def step4(model, task, n=3):
    print_answers(model, task, n)


def draw(rows, out):
    points = [(f"{r['method']} {r['k']}", r["trainable params"], r["test accuracy"]) for r in rows[1:]]
    return plot_tradeoff(points, "Prompt tuning: trainable parameters vs accuracy", Path(out) / "params_vs_accuracy.png",
                         xlabel="trainable parameters (log)", baseline=rows[0]["test accuracy"])


def main(argv=None):
    args = parse(argv)
    torch.manual_seed(args.seed)
    base, task = minituner.load_base(), minituner.make_task("classify")
    fp = minituner.fingerprint(base)
    print("Step 1 — X' = [P; X], checked by hand")
    step1(base, task)
    print(f"\nStep 2 — sweep k = {args.ks}, {args.steps} steps each, lr {args.lr}; full fine-tuning at lr {args.full_lr}")
    rows, curves, models = step2(base, task, args)
    print(f"\nStep 3 — what helps, at k = {args.ks[-1]}")
    k = args.ks[-1]
    helps, more_curves = step3(base, task, args, rows[-1], models[k], curves[f"prompt tuning, k={k}"])
    best = max(rows[2:], key=lambda r: r["test accuracy"])["k"]  # the sweep's best prompt
    print(f"\nStep 4 — the trained prompt at work (k = {best}, the sweep's best)")
    step4(models[best], task, n=1 if args.smoke else 3)
    print(f"\nthe base is bit-identical after all of it: {minituner.fingerprint(base) == fp}")
    figs = [plot_losses({**curves, **more_curves}, "classify: prompt tuning vs full fine-tuning",
                        Path(args.out) / "prompt_tuning_loss.png"), draw(rows + helps[1:], args.out)]
    print("figures: " + ", ".join(map(str, figs)))


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
