# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 02 · Full fine-tuning, step by step (全量微调, article §3.1 and §4)
#
# Full fine-tuning (§3.1) trains *every* layer and parameter of a pretrained model on
# task data, with a small learning rate. The article lays fine-tuning out as eight steps
# (§4); this lesson takes them in order on the mini-world's `classify` task:
#
# 1. choose the pretrained model · 2. prepare the data · 3. adjust the input ·
# 4. define the loss · 5. freeze (nothing, here) · 6. optimiser and learning rate ·
# 7. train · 8. evaluate.
#
# Beside it runs the same training from a randomly initialised GPT of the same shape:
# the difference is what pretraining buys. Then the article's own example of step 3,
# "what was recognised as a cat is now to be called a dog": we teach the swap and
# measure what the model really learned.
#
# Run it: `python lessons/02_full_finetune.py` (`--smoke` for the quick test preset).

# %%
import argparse
import sys
from pathlib import Path

import torch

import minituner
from minituner.checkpoint import base_metadata
from minituner.optim import AdamW
from minituner.report import markdown_table, parameter_table, plot_losses


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 02: full fine-tuning")
    p.add_argument("--steps", type=int, default=100, help="training steps of each run")
    p.add_argument("--relabel-steps", type=int, default=50, help="steps teaching cat <-> dog")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4, help="fine-tuning learning rate (small: §4 step 6)")
    p.add_argument("--scratch-lr", type=float, default=None,
                   help="learning rate of the run from random weights (default: the base's pretraining lr)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (a few steps)")
    p.add_argument("--out", default="runs/02_full_finetune", help="folder for the figure")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.relabel_steps = 3, 3
    return args


# %% [markdown]
# ## Steps 1–4: the model, the data, the input, the loss
#
# **Step 1, choose the pretrained model.** The shipped base (lesson 01) has read every fact
# of the mini-world, both ways, but never a task.
#
# **Step 2, prepare the data.** `classify` describes an animal by two of its facts and asks
# for its name. For each animal, the training split uses two kinds of fact and the test
# split the *other* two: answering the test needs what pretraining taught.
#
# **Step 3, adjust the input.** Each example becomes one row, prompt then answer, phrased
# the way the corpus speaks ("…, so it is the" → " cat."). The loss counts only the answer
# characters (the `^` below): the prompt is given, not learned.
#
# **Step 4, define the loss.** Cross-entropy, −log softmax at the correct next character,
# averaged over the answer positions (`minituner.functional.cross_entropy`).

# %%
def show_row(task, i=0):
    """One training row: input x, target y (x shifted by one), and where the loss counts."""
    tok, s = task.tokenizer, task.train
    n = int((s.x[i] != tok.pad_id).sum())
    print(f"   x:    {tok.decode(s.x[i, :n])!r}")
    print(f"   y:    {tok.decode(s.y[i, :n])!r}")
    print("   mask:  " + "".join("^" if m else " " for m in s.mask[i, :n].tolist()))


def accuracy_row(name, model, task):
    train, test = minituner.evaluate(model, task.train), minituner.evaluate(model, task.test)
    return {"model": name, "train accuracy": train["accuracy"], "test loss": test["loss"],
            "test accuracy": test["accuracy"]}


# %% [markdown]
# ## Steps 5–7: freeze nothing, pick AdamW and a small learning rate, train
#
# `minituner.full(base)` returns a copy of the base with every tensor trainable (step 5:
# nothing frozen). AdamW (step 6) keeps two running means, m and v, for each trainable
# number: 2 × trainable × 4 bytes. The learning rate is small next to the one the base was
# pretrained with, as the article advises for a pretrained model: try `--lr 1e-3` to see
# the model fit its training split while its test accuracy falls. Gradient clipping at
# 1.0 is on (`train()`'s default).
#
# The run from scratch: `GPT(base.config, seed=…)`, the same shape with random weights,
# the same data, batch and number of steps, at the learning rate the base was pretrained
# with (a random model needs larger steps). Its training accuracy shows how much of the
# training split it managed to fit in that many steps.

# %%
def step5_to_7(base, task, args, out):
    model = minituner.full(base)
    minituner.print_trainable_parameters(model)
    print(markdown_table(parameter_table(model.base, depth=1)))
    trainable = minituner.count_parameters(model)[0]
    state = AdamW(model.parameters(), lr=args.lr).state_bytes()
    print(f"\nStep 6 — AdamW at lr {args.lr} ({args.pretrain_lr / args.lr:.0f}× smaller than pretraining's "
          f"{args.pretrain_lr}): optimiser state {state:,} bytes "
          f"= 2 × {trainable:,} trainable × 4 bytes: {state == 2 * trainable * 4}")
    print(f"\nStep 7 — training {args.steps} steps, batch {args.batch_size}")
    hist = minituner.train(model, task, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                           seed=args.seed)
    scratch = minituner.GPT(base.config, seed=args.seed + 1)
    scratch_hist = minituner.train(scratch, task, steps=args.steps, lr=args.scratch_lr,
                                   batch_size=args.batch_size, seed=args.seed)
    print(f"fine-tuned: {hist.seconds:.1f} s, final loss {hist.losses[-1]:.3f}; "
          f"from scratch: {scratch_hist.seconds:.1f} s, final loss {scratch_hist.losses[-1]:.3f}")
    fig = plot_losses({f"full fine-tuning of the base, lr {args.lr}": hist.losses,
                       f"same shape from random weights, lr {args.scratch_lr}": scratch_hist.losses},
                      "classify: training loss on the answer tokens", Path(out) / "full_finetune_loss.png")
    print(f"figure: {fig}")
    return model, scratch


# %% [markdown]
# ## Step 8: evaluate
#
# Exact match of the greedy answer, on the training split and on the test split, whose
# facts the task never showed. Compare the base before fine-tuning, the fine-tuned
# model, and the model trained from scratch on the task alone.

# %% [markdown]
# ## The article's example: what was a cat is now to be called a dog
#
# §4 step 3's note: "originally it recognised a cat, now make it call it a dog". The
# `relabel` task has the same descriptions as `classify`, with *cat* and *dog* swapped.
# We continue training the fine-tuned model on it, then ask about cats and dogs on
# descriptions it was trained on (seen) and on the test split's descriptions (unseen),
# and count which name it answers: the swapped one, the original one, or another.
# The other animals' labels did not change: their accuracy shows what the swap cost.
# Read the two rows together: a swap that holds on seen descriptions but not on unseen
# ones changed a mapping from those prompts, not what the model knows about cats and dogs.

# %%
def relabel_report(before, after, classify, relabel):
    rows = []
    for split in ("train", "test"):
        old, new = getattr(classify, split), getattr(relabel, split)
        assert [e[0] for e in old.examples] == [e[0] for e in new.examples]  # the same prompts, row by row
        swapped = torch.tensor([o[1] != n[1] for o, n in zip(old.examples, new.examples, strict=True)])
        said_new = torch.tensor(minituner.evaluate(after, new)["correct"])  # answered the new label
        said_old = torch.tensor(minituner.evaluate(after, old)["correct"])  # answered the original label
        right_before = torch.tensor(minituner.evaluate(before, old)["correct"])
        rows.append({
            "descriptions": "seen in training" if split == "train" else "unseen (test)",
            "cat/dog rows": int(swapped.sum()),
            "cat/dog: original, before": right_before[swapped].float().mean().item(),
            "cat/dog: swapped, after": said_new[swapped].float().mean().item(),
            "cat/dog: original, after": said_old[swapped].float().mean().item(),
            "other animals before": right_before[~swapped].float().mean().item(),
            "other animals after": said_new[~swapped].float().mean().item(),
        })
    print(markdown_table(rows))
    return rows


def main(argv=None):
    args = parse(argv)
    torch.manual_seed(args.seed)
    base = minituner.load_base()
    meta = base_metadata()
    args.pretrain_lr = meta["recipe"]["lr"]
    args.scratch_lr = args.scratch_lr or args.pretrain_lr
    print("Step 1 — choose the pretrained model: the shipped base")
    minituner.print_trainable_parameters(base)
    print(f"pretrained {meta['recipe']['steps']} steps; held-out corpus loss {meta['held_out_loss']}, "
          f"facts answered both ways {meta['fact_accuracy']:.1%}")
    task = minituner.make_task("classify")
    print(f"\nStep 2 — prepare the data: {len(task.train)} training rows, {len(task.test)} test rows, "
          f"no prompt in both: {not set(e[0] for e in task.train.examples) & set(e[0] for e in task.test.examples)}")
    for split in (task.train, task.test):
        p, a = split.examples[0]
        print(f"   {split.name}: {p!r} -> {a!r}")
    print("\nStep 3 — adjust the input: prompt + answer in one row, the loss on the answer only")
    show_row(task)
    before = accuracy_row("base, before fine-tuning", base, task)
    print(f"\nStep 4 — the loss: the base's cross-entropy on the test answers is {before['test loss']:.3f}")
    print("\nStep 5 — freeze: nothing; full fine-tuning trains every tensor")
    model, scratch = step5_to_7(base, task, args, args.out)
    print("\nStep 8 — evaluate (exact match of the greedy answer)")
    rows = [before, accuracy_row("full fine-tuning", model, task),
            accuracy_row("same shape, from scratch", scratch, task)]
    print(markdown_table(rows))
    print(f"test accuracy: pretraining buys {rows[1]['test accuracy'] - rows[2]['test accuracy']:+.2f} over "
          f"the same training from scratch; fine-tuning adds {rows[1]['test accuracy'] - rows[0]['test accuracy']:+.2f} "
          "to the base as shipped")
    relabel = minituner.make_task("relabel")
    print(f"\nRelabel — the fine-tuned model trains {args.relabel_steps} more steps on cat <-> dog")
    swapped = minituner.full(model.base)
    minituner.train(swapped, relabel, steps=args.relabel_steps, lr=args.lr, batch_size=args.batch_size,
                    seed=args.seed)
    seen, unseen = relabel_report(model, swapped, task, relabel)
    print(f"seen descriptions: {seen['cat/dog: swapped, after']:.0%} of the cat/dog rows answered with the "
          f"swapped name; unseen: {unseen['cat/dog: swapped, after']:.0%} swapped, "
          f"{unseen['cat/dog: original, after']:.0%} still the original name. The other animals on unseen "
          f"descriptions: {unseen['other animals before']:.2f} -> {unseen['other animals after']:.2f} accuracy.")
    tok = task.tokenizer
    for prompt, _ in [relabel.train.examples[0], relabel.test.examples[0]]:
        print(f"   {prompt!r}: before {minituner.answer(model, tok, prompt)!r}, "
              f"after {minituner.answer(swapped, tok, prompt)!r}")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
