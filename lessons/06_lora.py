# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 06 · LoRA: a frozen W plus a low-rank ΔW (低秩适配 LoRA, article §3.2)
#
# The article (§3.2) writes LoRA in four steps: turn Y = WX into **Y = (W + ΔW)X**, where
# ΔW is what fine-tuning learns; factor it as **ΔW = AB** with ΔW m×n, A m×r, B r×n and a
# small rank r; train only A and B; at inference add ΔW into W, so inference costs no more.
#
# minituner's `LoRALinear` (in `minituner/methods/lora.py`) is that formula, in the row
# form code uses:
#
#     y = linear(x, W, b) + scale * (x @ A.T) @ B.T        scale = α / r
#
# **One warning about letters.** The code uses the LoRA paper's and PEFT's names,
# ΔW = B·A with `lora_A` (r × in, random) and `lora_B` (out × r, zeros). The article
# writes the same product the other way round, ΔW = AB with A m×r and B r×n. So the
# article's **A is our `lora_B`** and the article's **B is our `lora_A`**; step 1 checks
# it numerically. `lora_B` starts at zero, so ΔW = 0 and a fresh LoRA model *is* its base.
#
# This lesson trains LoRA on two mini-world tasks, sweeps the rank r and the target
# modules, and compares with full fine-tuning (全量微调): how many parameters each
# trains, and what it buys on the held-out split that needs pretrained knowledge.
#
# Run it: `python lessons/06_lora.py` (about 30 s on two CPU cores; `--smoke` for the
# test preset). Eight runs must fit in that time, so each is short (`--steps`, batch 8)
# and uses one seed: read the table for its trends, not its third digit, and try
# `--steps 300` to see where longer runs go.

# %%
import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.methods.lora import lora_layers
from minituner.report import count_parameters, markdown_table, plot_losses, save_figure


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 06: LoRA")
    p.add_argument("--steps", type=int, default=80, help="training steps of every run")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2, help="LoRA learning rate")
    p.add_argument("--alpha", type=float, default=16, help="LoRA α (scale = α / r)")
    p.add_argument("--full-lr", type=float, default=5e-4, help="full fine-tuning learning rate (as lesson 02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests (a few steps, two ranks)")
    p.add_argument("--out", default="runs/06_lora", help="folder for the figures")
    return p.parse_args(argv)


def full_copy(base):
    """Full fine-tuning: minituner.full where it exists, else a trainable deep copy."""
    if hasattr(minituner, "full"):
        return minituner.full(base)
    model = copy.deepcopy(base)
    model.requires_grad_(True)
    return model


# %% [markdown]
# ## 1. One LoRA layer, and the article's letters
#
# Wrap the shipped base's query projections (`q_proj`) and value projections (`v_proj`),
# LLaMA's default targets in the article's §5 table. Three facts, each computed:
# the shapes of the article's A and B; a fresh LoRA model gives exactly the base's
# logits; the trainable count is r·(in + out) per targeted matrix.

# %%
def anatomy(base, task, r):
    model = minituner.lora(base, r=r, lora_alpha=2 * r, target_modules=("q_proj", "v_proj"))
    layer = model.base.h[0].attn.q_proj
    A_article, B_article = layer.lora_B["default"], layer.lora_A["default"]  # article's A = lora_B, B = lora_A
    m, n = layer.weight.shape
    print(f"W of h.0.attn.q_proj is {m}×{n}; the article's A = lora_B is {tuple(A_article.shape)} (m×r), "
          f"its B = lora_A is {tuple(B_article.shape)} (r×n)")
    with torch.no_grad():
        B_article.normal_()  # pretend-trained values, on a throwaway copy, to check the mapping
        A_article.normal_()
        x = torch.randn(6, n)
        Y = (layer.weight + layer.scale["default"] * A_article @ B_article) @ x.T + layer.base_layer.bias[:, None]  # (m, 6)
        print(f"max |layer(x) − ((W + A·B) X + b)ᵀ| = {(layer(x) - Y.T).abs().max().item():.2e}  (article form, letters mapped)")
    fresh = minituner.lora(base, r=r, lora_alpha=2 * r)
    x = task.test.x[:16]
    print(f"fresh LoRA vs base, max |Δlogits| = {(fresh(x) - base(x)).abs().max().item():.1e}  (lora_B = 0, so ΔW = 0)")
    d, L = base.config.n_embd, base.config.n_layer
    analytic = r * (d + d) * 2 * L  # r·(in + out) · 2 targets · L blocks
    print(f"trainable: r·(in + out)·2·L = {r}·({d} + {d})·2·{L} = {analytic:,}; counted {count_parameters(fresh)[0]:,}")
    fresh.print_trainable_parameters()


# %% [markdown]
# ## 2. Train: LoRA's rank and targets, against full fine-tuning
#
# Every run starts from the same base, sees the same batches (same seed) and the same
# number of steps. Full fine-tuning trains all parameters at a small learning rate (the
# base overfits at lr 1e-3); LoRA trains its A and B at a larger one: B starts at zero,
# and the α/r scale keeps the update size similar across ranks. Accuracy is exact match
# of the greedy answer on the held-out split, whose facts the task's training split
# never shows: only the pretrained base knows them.
#
# The sweeps: r = 1, 2, 4, 8, 16 on q,v (the trainable count grows linearly in r); then
# r fixed and the targets widened from q,v to every projection (`"all"`: q, k, v, o, up,
# down), several times the parameters (the table counts them).
#
# What to read in the table: more trainable parameters is not more accuracy here. The
# held-out split asks for facts the training split never shows, so a run must learn the
# answer's format while keeping the base's knowledge reachable. A run with train acc 1
# and a low test acc has learned a surface mapping of the descriptions it saw. The runs
# are short and use one seed: differences of a few rows (0.01 = one of 96) are noise.

# %%
def run(name, model, task, args, lr):
    trainable, total = count_parameters(model)
    hist = minituner.train(model, task, steps=args.steps, lr=lr, batch_size=args.batch_size,
                           seed=args.seed, warmup=min(10, args.steps // 5), progress=False)
    train_ev, test_ev = minituner.evaluate(model, task.train), minituner.evaluate(model, task.test)
    row = {"run": name, "trainable": trainable, "trainable %": 100 * trainable / total,
           "train loss": sum(hist.losses[-10:]) / len(hist.losses[-10:]),
           "test loss": test_ev["loss"], "train acc": train_ev["accuracy"], "test acc": test_ev["accuracy"],
           "s": hist.seconds}
    return row, hist, model


def lora_run(base, task, args, r, targets=("q_proj", "v_proj"), name=None):
    model = minituner.lora(base, r=r, lora_alpha=args.alpha, target_modules=targets, seed=args.seed)
    label = name or f"LoRA r={r} {'q,v' if targets == ('q_proj', 'v_proj') else targets}"
    return run(label, model, task, args, args.lr)


def sweeps(base, task, args, ranks, r_targets):
    rows, curves, models = [], {}, {}
    row, hist, _ = run("full fine-tuning", full_copy(base), task, args, args.full_lr)
    rows.append(row)
    curves[row["run"]] = hist.losses
    for r in ranks:
        row, hist, model = lora_run(base, task, args, r)
        rows.append(row)
        curves[row["run"]] = hist.losses
        models[r] = model
    row, hist, _ = lora_run(base, task, args, r_targets, targets="all", name=f"LoRA r={r_targets} all")
    rows.append(row)
    curves[row["run"]] = hist.losses
    return rows, curves, models


def draw_sweep(rows, out):
    lora_rows = [r for r in rows if r["run"].endswith("q,v")]
    full = next(r for r in rows if r["run"] == "full fine-tuning")
    every = next(r for r in rows if r["run"].endswith(" all"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "test acc", "held-out exact-match accuracy"), (axes[1], "test loss", "held-out loss (answer tokens)")):
        ax.plot([r["trainable"] for r in lora_rows], [r[key] for r in lora_rows], "o-", label="LoRA on q,v (r = 1…16)")
        for r in lora_rows:
            ax.annotate(r["run"].split()[1], (r["trainable"], r[key]), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.plot([every["trainable"]], [every[key]], "s", label=every["run"])
        ax.plot([full["trainable"]], [full[key]], "*", markersize=12, label="full fine-tuning")
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.suptitle("LoRA: trainable parameters vs held-out accuracy and loss (classify)")
    return save_figure(fig, Path(out) / "lora_rank_sweep.png")


def summary(rows, budget=3.0, target=0.90):
    """The best LoRA within the parameter budget, against full fine-tuning and the project's target."""
    full = next(r for r in rows if r["run"] == "full fine-tuning")
    small = [r for r in rows if r["run"].startswith("LoRA") and r["trainable %"] <= budget]
    best = max(small, key=lambda r: r["test acc"])
    print(f"best LoRA with ≤ {budget:g}% trainable: {best['run']}, {best['trainable %']:.2f}% of the parameters, "
          f"test acc {best['test acc']:.2f}; full fine-tuning {full['test acc']:.2f} with 100%. "
          f"The project's target (LoRA ≥ {target:.2f}) is {'met' if best['test acc'] >= target else 'not met'} "
          f"in this short run.")


# %% [markdown]
# ## 3. Relabelling with LoRA: a surface mapping, or knowledge?
#
# The article's §4 step 3: what was recognised as a cat is now to be called a dog. The
# relabel task swaps the two names. The training split shows two facts per animal; the
# test split describes the same animals by their other two facts. Does the adapter swap
# the *names* only for the descriptions it saw, or for the animals?

# %%
def relabel(base, args, r):
    task = minituner.make_task("relabel")
    row, _, model = lora_run(base, task, args, r, name=f"LoRA r={r} q,v (relabel)")
    correct = minituner.evaluate(model, task.test)["correct"]
    seen_swapped = minituner.evaluate(model, task.train)["correct"]
    counts = {"cat/dog rows": 0, "said the new name": 0, "said the old name": 0}
    pairs = {" dog.": " cat.", " cat.": " dog."}
    for (prompt, ans), ok in zip(task.test.examples, correct, strict=True):
        if ans in pairs:
            counts["cat/dog rows"] += 1
            counts["said the new name"] += ok
            counts["said the old name"] += minituner.answer(model, task.tokenizer, prompt) == pairs[ans]
    cd_seen = [ok for (_, a), ok in zip(task.train.examples, seen_swapped, strict=True) if a in pairs]
    others = [ok for (_, a), ok in zip(task.test.examples, correct, strict=True) if a not in pairs]
    print(f"seen cat/dog descriptions answered with the swapped name: {sum(cd_seen)} of {len(cd_seen)}")
    print(f"unseen cat/dog descriptions: {counts['said the new name']} of {counts['cat/dog rows']} swapped, "
          f"{counts['said the old name']} still the old name")
    print(f"the other animals, unseen descriptions: {sum(others) / len(others):.2f} accuracy")
    return row


# %% [markdown]
# ## 4. Merge: no extra cost at inference
#
# After training, W ← W + (α/r)·B·A folds the adapter into the matrix. The merged model
# computes the same logits (to float32 rounding) with exactly the base's matrix products:
# the forward is a plain `linear` again. The adapter alone is tiny on disk.

# %%
def merge_and_size(base, model, task):
    from torch.overrides import TorchFunctionMode

    class CountMatmuls(TorchFunctionMode):
        n = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.n += getattr(func, "__name__", "") in ("__matmul__", "matmul")
            return func(*args, **(kwargs or {}))

    x = task.test.x[:32]
    counts = {}
    for name, m in (("base", base), ("LoRA, unmerged", model)):
        with CountMatmuls() as c:
            before = m(x)
        counts[name] = c.n
    model.merge_adapter()
    with CountMatmuls() as c:
        after = model(x)
    counts["LoRA, merged"] = c.n
    print(f"max |merged − unmerged logits| = {(after - before).abs().max().item():.2e}")
    print("matrix products per forward: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"merged accuracy {minituner.evaluate(model, task.test)['accuracy']:.2f} (the same answers)")
    model.unmerge_adapter()
    with tempfile.TemporaryDirectory() as d:
        adapter = Path(model.save_pretrained(Path(d) / "adapter")) / "adapter_model.safetensors"
        base_file = minituner.save_model(base, Path(d) / "base")
        a, b = adapter.stat().st_size, base_file.stat().st_size
    print(f"adapter file {a:,} bytes ({len(lora_layers(model.base)) * 2} tensors) vs base {b:,} bytes: {a / b:.1%}")


# %% [markdown]
# ## 5. Why the article's table names different modules per model family
#
# The §5 table (LLaMA-Factory's defaults) says `q_proj,v_proj` for LLaMA, LLaMA-2 and
# InternLM, `query_key_value` for BLOOM, Falcon and ChatGLM3, `W_pack` for Baichuan,
# `c_attn` for Qwen and `Wqkv` for Phi-1.5. They are the same idea — LoRA on the
# attention's query and value projections — under each code base's own module names.
# LLaMA keeps q, k and v as three separate Linear layers, so LoRA can pick q and v.
# The others *fuse* them into one Linear of shape (3C × C) that computes [q; k; v] in
# one matrix product: there is no separate `q_proj` to name, so the target is the fused
# matrix, and one LoRA pair then adapts q, k and v together (rank r shared by all three,
# r·(C + 3C) parameters instead of 2·r·(C + C)). minituner's GPT keeps the projections
# split, as LLaMA does, so `target_modules=("q_proj", "v_proj")` means exactly what it means
# there, and an unknown name is a ValueError that lists the names this model has.

# %%
def fused_names(base):
    try:
        minituner.lora(base, target_modules=("query_key_value",))
    except ValueError as e:
        print(f"ValueError: {e}")


def main(argv=None):
    args = parse(argv)
    if args.smoke:
        args.steps, ranks, r_targets = 4, (1, 4), 1
    else:
        ranks, r_targets = (1, 2, 4, 8, 16), 4
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    base = minituner.load_base()
    task = minituner.make_task("classify")
    print("Step 1 — one LoRA layer, and the article's letters")
    anatomy(base, task, r=4)
    print(f"\nStep 2 — classify: full fine-tuning (lr {args.full_lr}), LoRA rank sweep on q,v and targets "
          f"q,v vs all (lr {args.lr}, α {args.alpha}); {args.steps} steps, batch {args.batch_size} each")
    rows, curves, models = sweeps(base, task, args, ranks, r_targets)
    print(markdown_table(rows))
    summary(rows)
    print(f"figure: {draw_sweep(rows, args.out)}")
    print(f"figure: {plot_losses(curves, 'Training loss: LoRA ranks and full fine-tuning (classify)', Path(args.out) / 'lora_losses.png')}")
    print("\nStep 3 — relabel cat ↔ dog with LoRA")
    print(markdown_table([relabel(base, args, r=4)]))
    print("\nStep 4 — merge, and the adapter on disk")
    merge_and_size(base, models[4], task)
    print("\nStep 5 — the names of the matrices")
    fused_names(base)
    print(f"\nlesson time {time.perf_counter() - t0:.1f} s")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
