# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 03 · Freezing: how many layers must train? (冻结, article §4 step 5)
#
# The article's step 5: "you can choose to freeze part of the model, especially the
# bottom layers; this keeps the general features the pretrained model learned" — keep the
# steak recipe you already master, learn only the vegetables and the sauce.
#
# `minituner.freeze(base, trainable_layers=N)` copies the base, sets
# `requires_grad_(False)` on every tensor, then lets the top N blocks (and the final
# LayerNorm `ln_f` above them) train. The optimiser only ever sees the tensors that
# require gradients, so a frozen tensor gets no gradient, no optimiser state, and no
# change: it stays bit-identical (`minituner verify` checks all three).
#
# This lesson sweeps N from 0 to the model's depth on the `classify` task and puts the
# number of trainable parameters beside the final loss and the test accuracy.
# N = 0 with nothing else allowed is no training at all (the base as shipped); a second
# N = 0 row trains only the output head, which GPT-2 ties to the token embedding `wte`.
# The last row is full fine-tuning (every block plus the embeddings), as in lesson 02.
#
# Run it: `python lessons/03_freeze.py` (`--smoke` for the quick test preset).

# %%
import argparse
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.report import markdown_table, parameter_table, save_figure


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 03: freezing")
    p.add_argument("--steps", type=int, default=60, help="training steps of each run")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4, help="one learning rate for every row, for a fair sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (a few steps)")
    p.add_argument("--out", default="runs/03_freeze", help="folder for the figure")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps = 3
    return args


# %% [markdown]
# ## 1. What one setting freezes
#
# With N = 1 only the top block and `ln_f` train. The table below is computed from the
# model's own tensors (`minituner.parameter_table`); a block holds 12d² + 13d numbers
# (attention 4d² + 4d, MLP 8d² + 5d, two LayerNorms 4d).

# %%
def show_one(base):
    model = minituner.freeze(base, trainable_layers=1)
    minituner.print_trainable_parameters(model)
    print(markdown_table(parameter_table(model.base, depth=1)))


# %% [markdown]
# ## 2. The sweep
#
# Every row trains the same number of steps with the same learning rate, batch and seed;
# only what is frozen changes. "final loss" is the mean training loss of the last ten
# steps; test loss and accuracy are on the split whose facts the task never showed.
# Each run is shorter than lesson 02's so that the whole sweep takes seconds: the full row
# here trails lesson 02's run (`--steps` and `--lr` change every row alike).

# %%
def settings(depth):
    """(label, trainable_layers, kwargs) for each row: N = 0 … depth, then full fine-tuning."""
    rows = [("0 (no training: the base)", 0, None), ("0 + head (tied wte)", 0, {"train_head": True})]
    rows += [(f"{n}", n, {}) for n in range(1, depth + 1)]
    return rows + [("full (+ embeddings)", depth, {"train_embeddings": True})]


def sweep(base, task, args):
    rows, curves = [], {}
    total = minituner.count_parameters(base)[1]
    for label, n, kwargs in settings(base.config.n_layer):
        if kwargs is None:  # nothing trainable: freeze() refuses, the base itself is the row
            model, final = base, "—"
        else:
            model = minituner.freeze(base, trainable_layers=n, **kwargs)
            hist = minituner.train(model, task, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                                   seed=args.seed, progress=False)
            final, curves[label] = sum(hist.losses[-10:]) / len(hist.losses[-10:]), hist.losses
        trainable = minituner.count_parameters(model)[0] if kwargs is not None else 0
        test = minituner.evaluate(model, task.test)
        rows.append({"trainable layers": label, "trainable params": trainable,
                     "trainable %": 100 * trainable / total, "final loss": final,
                     "test loss": test["loss"], "test accuracy": test["accuracy"]})
        print(f"  {label:26s} trainable {trainable:>8,}  test accuracy {test['accuracy']:.3f}")
    return rows, curves


# %% [markdown]
# ## 3. The picture
#
# Left: test accuracy (bars) and the share of parameters trained (line), per setting. Right: the training loss
# of each run. Read them together: a row can fit its training split (low loss) yet not
# reach the test's facts, or keep the base's knowledge and still not learn the format.

# %%
def draw(rows, curves, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    xs = range(len(rows))
    ax1.bar(xs, [r["test accuracy"] for r in rows], color="tab:blue", alpha=0.7)
    ax1.set_ylabel("test accuracy (exact match)", color="tab:blue")
    ax1.set_ylim(0, 1)
    ax1.set_xticks(list(xs), [r["trainable layers"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax1.set_xlabel("trainable layers (top blocks)")
    twin = ax1.twinx()
    twin.plot(xs, [r["trainable %"] for r in rows], "o-", color="tab:red")
    twin.set_ylabel("trainable parameters, % of the model", color="tab:red")
    twin.set_ylim(0, 105)
    ax1.set_title("How much must train?")
    ax1.grid(alpha=0.3, axis="y")
    for label, losses in curves.items():
        k = 10
        ax2.plot([sum(losses[max(0, i - k + 1): i + 1]) / len(losses[max(0, i - k + 1): i + 1])
                  for i in range(len(losses))], label=label)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (answer tokens, running mean)")
    ax2.set_title("Training loss per setting")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return save_figure(fig, Path(out) / "freeze_sweep.png")


def main(argv=None):
    args = parse(argv)
    torch.manual_seed(args.seed)
    base, task = minituner.load_base(), minituner.make_task("classify")
    print("Step 1 — what freeze(base, trainable_layers=1) trains")
    show_one(base)
    print(f"\nStep 2 — sweep: {args.steps} steps each, lr {args.lr}, batch {args.batch_size}")
    rows, curves = sweep(base, task, args)
    print(markdown_table(rows))
    best = max(rows, key=lambda r: r["test accuracy"])
    print(f"best test accuracy {best['test accuracy']:.3f} with trainable layers = {best['trainable layers']} "
          f"({best['trainable %']:.1f}% of the parameters)")
    print(f"\nStep 3 — figure: {draw(rows, curves, args.out)}")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
