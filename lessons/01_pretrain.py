# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 01 · Where a pretrained model comes from (预训练模型, article §4 step 1)
#
# Step 1 of the article's fine-tuning recipe is *choose a pretrained model*: "the
# mother of the model", trained on a large data set without labels. Here that data
# set is the mini-world corpus (`minituner.make_corpus`): plain sentences stating
# every fact of a small world of animals, in both directions
# ("the cat eats carrots." and "the animal that eats carrots is the cat.").
#
# Pretraining is language modelling: predict each next character, loss =
# cross-entropy over every position. This lesson runs a *short* pretraining — the
# same code as `minituner pretrain`, for a few hundred steps — and compares it with
# the shipped base, which ran the full recipe once (its metadata records how).
#
# Run it: `python lessons/01_pretrain.py` (about a minute; `--smoke` for the test preset).

# %%
import argparse
import sys
from pathlib import Path

import torch

import minituner
from minituner.checkpoint import base_metadata
from minituner.pretrain import pretrain
from minituner.report import markdown_table, plot_losses

PROMPTS = ["the cat eats", "the animal that says woof is the", "the owl lives in the"]


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 01: pretraining")
    p.add_argument("--steps", type=int, default=150, help="pretraining steps of the short run")
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (10 steps)")
    p.add_argument("--out", default="runs/01_pretrain", help="folder for the figure")
    return p.parse_args(argv)


# %% [markdown]
# ## 1. Before: a model that knows nothing
#
# A freshly initialised GPT of the same shape writes noise: every character is about
# equally likely, so its loss is near ln(V), the log of the vocabulary size.

# %%
def samples(model, tok, prompts):
    return {p: minituner.answer(model, tok, p, max_new_tokens=16) for p in prompts}


# %% [markdown]
# ## 2. Pretrain, briefly, and compare with the shipped base
#
# The short run's loss falls fast at first (spelling, spaces, the sentence frames),
# then slowly (the facts themselves: which animal eats what). The shipped base ran the
# full recipe; `fact accuracy` asks every fact both ways, in the corpus's words.

# %%
def compare(short, base, probe, corpus, meta):
    rows = []
    for name, m in (("short run", short), ("shipped base", base)):
        rows.append({"model": name, "held-out loss": minituner.evaluate(m, corpus.test)["loss"],
                     "facts answered both ways": minituner.evaluate(m, probe)["accuracy"]})
    print(markdown_table(rows))
    r = meta["recipe"]
    print(f"\nthe shipped base: {r['steps']} steps, lr {r['lr']}, batch {r['batch_size']}, seed {r['seed']}, "
          f"{meta['seconds']} s when it was made")


def main(argv=None):
    args = parse(argv)
    steps = 10 if args.smoke else args.steps
    torch.manual_seed(0)
    tok = minituner.CharTokenizer()
    fresh = minituner.GPT(minituner.GPTConfig(), seed=0)
    corpus = minituner.make_corpus(n_train=200, n_test=64, length=fresh.config.block_size + 1)
    print("Step 1 — before pretraining")
    print(f"held-out loss {minituner.evaluate(fresh, corpus.test)['loss']:.3f} (ln V = {torch.log(torch.tensor(float(tok.vocab_size))):.3f})")
    for p, a in samples(fresh, tok, PROMPTS[:1]).items():
        print(f"  {p!r} -> {a!r}")
    print(f"\nStep 2 — pretraining for {steps} steps (the same code as `minituner pretrain --steps {steps}`)")
    short, hist, meta = pretrain(steps=steps, progress=True, n_train=2000)
    print(f"{hist.seconds:.1f} s, final training loss {meta['final_train_loss']}")
    fig = plot_losses({f"pretraining, {steps} steps": hist.losses}, "Pretraining loss (all characters)",
                      Path(args.out) / "pretrain_loss.png")
    print(f"figure: {fig}")
    base = minituner.load_base()
    compare(short, base, minituner.make_fact_probe(), corpus, base_metadata())
    print("\nStep 3 — what each model writes")
    for name, m in (("short run", short), ("shipped base", base)):
        for p, a in samples(m, tok, PROMPTS[: 1 if args.smoke else 3]).items():
            print(f"  {name:12s} {p!r} -> {a!r}")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
