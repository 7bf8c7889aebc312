# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 07 · One base, many adapters: switching LoRA (LoRA 切换, article §3.2)
#
# The article ends its LoRA section with: to adapt to another scenario, switching is a
# simple matrix addition, **(W + ΔW) − ΔW + ΔW′**. One frozen base serves many tasks; each
# task is only its small ΔW = AB (in the code ΔW = (α/r)·`lora_B`·`lora_A`: the article's
# A is our `lora_B`, its B our `lora_A`, see lesson 06).
#
# This lesson trains two adapters on one base, for two tasks, saves each as a small file,
# loads both onto one base, and switches between them three ways:
#
# 1. **unmerged**: W stays the base's; the forward adds (α/r)·(x Aᵀ) Bᵀ of the active
#    adapter. Switching only chooses which A, B: exact, but each forward pays for the
#    two extra matrix products.
# 2. **merged, the article's way**: W ← W + ΔW once, then each switch W ← W − ΔW + ΔW′
#    in place. No extra cost at inference, but every switch rounds W again.
# 3. **merged, from an untouched copy** (`model.merge_adapter(keep_copy=True)`): each switch sets
#    W ← W_base + ΔW′ from a kept copy of W_base. Exact (one rounding), at the price of
#    a second copy of every adapted matrix in memory.
#
# Then it measures how far the article's in-place way drifts after many switches, in
# float32 and float64.
#
# Run it: `python lessons/07_lora_switching.py` (under 30 s; `--smoke` for the test preset).

# %%
import argparse
import copy
import math
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.methods.lora import lora_layers
from minituner.report import markdown_table, save_figure

TASKS = ("classify", "relabel")


def parse(argv):
    p = argparse.ArgumentParser(description="Lesson 07: switching LoRA adapters")
    p.add_argument("--steps", type=int, default=100, help="training steps of each adapter")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--r", type=int, default=4)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--switches", type=int, default=2000, help="switches in the drift experiment")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny preset for tests")
    p.add_argument("--out", default="runs/07_lora_switching", help="folder for the adapters and figures")
    return p.parse_args(argv)


# %% [markdown]
# ## 1. Two adapters, two tasks, two small files
#
# `classify` names an animal from a description; `relabel` is the article's own example
# of a new labelling (§4 step 3: what was recognised as a cat is now to be called a dog),
# the same descriptions with cat and dog swapped. Each adapter is trained from the same
# base and saved with
# `model.save_pretrained(folder)`: the LoRA tensors only (`adapter_model.safetensors`), plus
# `adapter_config.json` that records r, α, the target modules and the fingerprint of the base, so it refuses to load onto another model.

# %%
def train_adapters(base, args, folder):
    paths, rows = {}, []
    for i, name in enumerate(TASKS):
        task = minituner.make_task(name)
        model = minituner.lora(base, r=args.r, lora_alpha=args.alpha, target_modules=("q_proj", "v_proj"), seed=args.seed + i)
        hist = minituner.train(model, task, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                               seed=args.seed, warmup=min(10, args.steps // 5), progress=False)
        paths[name] = Path(model.save_pretrained(folder / f"adapter_{name}"))
        rows.append({"adapter": name, "test acc": minituner.evaluate(model, task.test)["accuracy"],
                     "file bytes": (paths[name] / "adapter_model.safetensors").stat().st_size, "train s": hist.seconds})
    base_file = minituner.save_model(base, folder / "base")
    rows.append({"adapter": "(the base itself)", "test acc": float("nan"), "file bytes": base_file.stat().st_size,
                 "train s": float("nan")})
    print(markdown_table(rows))
    return paths


# %% [markdown]
# ## 2. One base, both adapters, switched unmerged
#
# `load_adapter(base, path, adapter_name=…)` puts the first adapter on a copy of the base (the
# base itself stays untouched); `model.load_adapter(path, adapter_name=…)` adds the second under its own
# name. `set_adapter` chooses which one runs. The same descriptions of a cat and a dog
# (from the training split), two adapters: each answers with its own labels.

# %%
def cat_dog_prompts(task):
    return [p for p, a in task.train.examples if a in (" cat.", " dog.")][::4]


def answers(model, tok, prompts):
    return [minituner.answer(model, tok, p) for p in prompts]


def show_answers(model, tok, prompts):
    for name in TASKS:
        model.set_adapter(name)
        for prompt, a in zip(prompts, answers(model, tok, prompts), strict=True):
            print(f"  adapter {name:8s} {prompt!r} -> {a!r}")


# %% [markdown]
# ## 3. The article's switch on merged weights, checked after every switch
#
# Merge the classify adapter (W + ΔW), then switch in place, back and forth:
# W ← (W + ΔW) − ΔW + ΔW′. After each switch the merged model is checked against the exact
# reference (the unmerged model with that adapter active): the largest logit difference,
# the answers to the cat and dog prompts, and the accuracy on the active adapter's task.

# %%
@torch.no_grad()
def merged_switching(model, reference, tasks, prompts, n):
    tok = tasks[TASKS[0]].tokenizer
    model.set_adapter(TASKS[0])
    model.merge_adapter()  # W + ΔW
    rows = []
    for i in range(n):
        name = TASKS[(i + 1) % 2]
        model.set_adapter(name)  # (W + ΔW) − ΔW + ΔW′, in place
        reference.set_adapter(name)  # unmerged: exact by construction
        x = tasks[name].test.x
        got = answers(model, tok, prompts)
        rows.append({"switch": i + 1, "active": name,
                     "max |Δlogits| vs unmerged": (model(x) - reference(x)).abs().max().item(),
                     "same answers": got == answers(reference, tok, prompts), "answers": " ".join(a.strip() for a in got),
                     "test acc": minituner.evaluate(model, tasks[name].test)["accuracy"],
                     "unmerged acc": minituner.evaluate(reference, tasks[name].test)["accuracy"]})
    print(markdown_table(rows))


# %% [markdown]
# ## 4. Drift: how far does W wander after N in-place switches?
#
# Each in-place switch does W − ΔW + ΔW′ in floating point, and each subtraction and
# addition rounds to the nearest float. The error is measured after N switches (N even,
# so the first adapter is active again) against W_base + ΔW computed in float64, as the
# largest absolute difference over every adapted matrix, for: in place in float32, in
# place in float64, and the exact way from an untouched copy in float32 (one rounding,
# whatever N is). The table and the fitted slope say how the error grows with N: the
# same two additions repeat with almost the same numbers, so an element that rounds up
# once tends to round up every time, and the errors add up instead of cancelling.

# %%
@torch.no_grad()
def drift(base, paths, checkpoints):
    results = {}
    for label, dtype, exact in (("float32, in place", torch.float32, False),
                                ("float64, in place", torch.float64, False),
                                ("float32, from W_base", torch.float32, True)):
        model = minituner.load_adapter(base, paths[TASKS[0]], adapter_name=TASKS[0])
        model.load_adapter(paths[TASKS[1]], adapter_name=TASKS[1])
        model.to(dtype)  # base and adapters alike (the fingerprint check happened in float32)
        model.set_adapter(TASKS[0])
        layers = lora_layers(model.base)
        a = TASKS[0]
        truth = {n: base.get_submodule(n).weight.double()  # W_base + ΔW, computed once in float64
                 + l.scale[a] * l.lora_B[a].double() @ l.lora_A[a].double() for n, l in layers.items()}
        model.merge_adapter(keep_copy=exact)
        errs, done = [], 0
        for N in checkpoints:
            for i in range(done, N):
                model.set_adapter(TASKS[(i + 1) % 2])
            done = N
            errs.append(max((l.weight.double() - truth[n]).abs().max().item() for n, l in layers.items()))
        results[label] = errs
    return results


def draw_drift(checkpoints, results, out):
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, errs), style in zip(results.items(), ("o-", "s-", "^--"), strict=True):
        ax.plot(checkpoints, [max(e, 1e-18) for e in errs], style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of switches N (W − ΔW + ΔW′, in place)")
    ax.set_ylabel("max |W − (W_base + ΔW)|")
    ax.set_title("Floating-point drift of the article's in-place switch")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, Path(out) / "lora_switch_drift.png")


def main(argv=None):
    args = parse(argv)
    if args.smoke:
        args.steps, args.switches = 4, 20
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    out = Path(args.out)
    base = minituner.load_base()
    tasks = {name: minituner.make_task(name) for name in TASKS}
    tok, prompts = tasks[TASKS[0]].tokenizer, cat_dog_prompts(tasks[TASKS[0]])
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        print(f"Step 1 — train one adapter per task ({args.steps} steps, r={args.r}, α={args.alpha}) and save it")
        paths = train_adapters(base, args, folder)
        print("\nStep 2 — one base, two adapters, switched unmerged")
        model = minituner.load_adapter(base, paths[TASKS[0]], adapter_name=TASKS[0])
        model.load_adapter(paths[TASKS[1]], adapter_name=TASKS[1])
        minituner.print_trainable_parameters(model)
        show_answers(model, tok, prompts)
        reference = copy.deepcopy(model)
        print("\nStep 3 — the article's switch, (W + ΔW) − ΔW + ΔW′, in place on merged weights")
        merged_switching(model, reference, tasks, prompts, n=2 if args.smoke else 4)
        print(f"\nStep 4 — drift after up to {args.switches:,} in-place switches")
        checkpoints = [c for c in (2, 4, 10, 20, 40, 100, 200, 400, 1000, 2000, 4000, 10000) if c < args.switches]
        checkpoints.append(args.switches)
        results = drift(base, paths, checkpoints)
        rows = [{"switches": N, **{k: v[i] for k, v in results.items()}} for i, N in enumerate(checkpoints)]
        print(markdown_table(rows))
        e, mid = results["float32, in place"], len(checkpoints) // 2  # the slope past the first roundings
        slope = math.log(e[-1] / e[mid]) / math.log(checkpoints[-1] / checkpoints[mid])
        print(f"float32 in place: error ∝ N^{slope:.2f} (1 would be errors that add up, 0.5 a random walk); "
              f"{e[-1] / checkpoints[-1]:.1e} per switch; float64 stays {results['float64, in place'][-1]:.1e}")
        print(f"figure: {draw_drift(checkpoints, results, out)}")
    print(f"\nlesson time {time.perf_counter() - t0:.1f} s")


# %%
if __name__ == "__main__":
    main(None if "ipykernel" not in sys.modules else [])
