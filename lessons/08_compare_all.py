# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 08 · Every method side by side (全量微调, 冻结, 提示微调, 前缀微调, P-Tuning v2, LoRA)
#
# The article (§3) sorts fine-tuning into three families: full fine-tuning, prompt-style
# tuning (prompt tuning, prefix tuning, P-Tuning v2) and LoRA; §4 adds freezing. This
# lesson trains each of them from the same shipped base, on the same task, with the
# same data order and seed, and one more row from a random initialisation (the floor:
# what the task alone teaches). It is the same code as `minituner compare`.
#
# Each method gets the settings `minituner sweep` chose for it on the validation split
# (learning rate, and k or r; `minituner/assets/selected.json`); training early-stops on
# validation, and the test split is scored once, at the end (article §4 steps 7 and 8).
#
# Validation and test ask facts that the task's training split never shows, so the test
# accuracy measures how much of the pretrained knowledge each method can put to use.
#
# Run it: `python lessons/08_compare_all.py` (`--smoke` for the test preset).

# %%
import argparse
import sys

import minituner.compare as cmp
from minituner.report import markdown_table


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 08: every method on one base")
    p.add_argument("--task", default="classify", choices=["classify", "relabel", "qa"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (5 steps per method)")
    p.add_argument("--out", default="runs/08_compare_all", help="folder for the table and figures")
    return p.parse_args(argv)


# %% [markdown]
# ## The comparison
#
# Columns: what is trained (count and share of the model), the optimiser's memory
# (AdamW keeps two numbers per trainable parameter), the held-out loss and exact-match
# accuracy, the training time, the memory one step holds, and what must be saved to
# keep the result (a LoRA adapter file is a few kB; full fine-tuning saves a whole model).

# %%
def main(argv=None):
    args = parse(argv)
    steps = 5 if args.smoke else args.steps
    print(f"Step 1 — train every method for {steps} steps on `{args.task}`")
    rows = cmp.compare(task=args.task, steps=steps, out=args.out, progress=True)
    print("\nStep 2 — the table")
    print(markdown_table(rows, ["method", "setting", "trainable params", "trainable %",
                                "val acc", "test loss", "test acc", "train s"]))
    print("\nStep 3 — memory")
    print(markdown_table(rows, ["method", "step memory bytes"]))
    print(f"\nfigures: {args.out}/curves.png, {args.out}/tradeoff.png")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
