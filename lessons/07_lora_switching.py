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
# Run it: `python lessons/07_lora_switching.py` (`--smoke` for the test preset); the last cell
# prints how long it took.

# %%
import copy
import math
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.lesson import options
from minituner.methods.lora import lora_layers
from minituner.report import markdown_table, save_figure

args = options("Lesson 07: switching LoRA adapters", smoke=dict(steps=4, switches=20, checks=2),
               out="runs/07_lora_switching", steps=100, batch_size=8, lr=1e-2, r=4, alpha=16.0, switches=2000,
               checks=4, seed=0)
torch.manual_seed(args.seed)
t0 = time.perf_counter()
TASKS = ("classify", "relabel")
base = minituner.load_base()
fingerprint = minituner.fingerprint(base)
tasks = {name: minituner.make_task(name) for name in TASKS}
tok = tasks[TASKS[0]].tokenizer
prompts = [p for p, a in tasks[TASKS[0]].train.examples if a in (" cat.", " dog.")][::4]  # cat and dog descriptions
folder = Path(tempfile.mkdtemp())  # the adapter files; removed at the end
print(f"{args.steps} steps per adapter, batch {args.batch_size}, lr {args.lr}, r={args.r}, α={args.alpha:g}; "
      f"{args.switches:,} switches in the drift experiment")

# %% [markdown]
# ## 1. Two adapters, two tasks, two small files
#
# `classify` names an animal from a description; `relabel` is the article's own example
# of a new labelling (§4 step 3: what was recognised as a cat is now to be called a dog),
# the same descriptions with cat and dog swapped. Each adapter is trained from the same
# base and saved with
# `model.save_pretrained(folder)`: the LoRA tensors only (`adapter_model.safetensors`), plus
# `adapter_config.json`, which records r, α, the target modules and the fingerprint of the
# base, so it refuses to load onto another model.

# %%
paths, adapter_rows = {}, []
for i, name in enumerate(TASKS):
    model = minituner.lora(base, r=args.r, lora_alpha=args.alpha, target_modules=["q_proj", "v_proj"], seed=args.seed + i)
    hist = minituner.train(model, tasks[name], steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                           seed=args.seed, warmup=min(10, args.steps // 5), progress=False)
    paths[name] = Path(model.save_pretrained(folder / f"adapter_{name}"))
    adapter_rows.append({"adapter": name, "test acc": minituner.evaluate(model, tasks[name].test)["accuracy"],
                 "file bytes": (paths[name] / "adapter_model.safetensors").stat().st_size, "steps": args.steps, "train s": hist.seconds,
                 "ms per step": 1000 * hist.seconds / args.steps})
base_file = minituner.save_model(base, folder / "base")
adapter_rows.append({"adapter": "(the base itself)", "file bytes": base_file.stat().st_size})
print(markdown_table(adapter_rows))
try:
    minituner.PeftModel.from_pretrained(minituner.GPT(base.config, seed=1), paths[TASKS[0]])
except ValueError as e:
    print(f"onto another GPT of the same shape: ValueError: {e}")

# %% [markdown]
# ## 2. One base, both adapters, switched unmerged
#
# `PeftModel.from_pretrained(base, folder, adapter_name=…)` puts the first adapter on a copy
# of the base (the base itself stays untouched); `model.load_adapter(folder, adapter_name=…)`
# adds the second under its own name. `model.set_adapter` chooses which one runs. The same descriptions of a cat and a dog
# (from the training split), two adapters: each answers with its own labels.

# %%
model = minituner.PeftModel.from_pretrained(base, paths[TASKS[0]], adapter_name=TASKS[0])
model.load_adapter(paths[TASKS[1]], adapter_name=TASKS[1])
for name in TASKS:
    model.set_adapter(name)
    for prompt in prompts:
        print(f"  adapter {name:8s} {prompt!r} -> {minituner.answer(model, tok, prompt)!r}")
reference = copy.deepcopy(model)  # stays unmerged: the exact answer to compare with
print(f"the base itself is bit-identical: {minituner.fingerprint(base) == fingerprint}")
model.print_trainable_parameters();

# %% [markdown]
# ## 3. The article's switch on merged weights, checked after every switch
#
# Merge the classify adapter (W + ΔW), then switch in place, back and forth:
# W ← (W + ΔW) − ΔW + ΔW′. After each switch the merged model is checked against the exact
# reference (the unmerged model with that adapter active): the largest logit difference,
# the answers to the cat and dog prompts, and the accuracy on the active adapter's task.

# %%
with torch.no_grad():
    model.set_adapter(TASKS[0])
    model.merge_adapter()  # W + ΔW
    switch_rows = []
    for i in range(args.checks):
        name = TASKS[(i + 1) % 2]
        model.set_adapter(name)  # (W + ΔW) − ΔW + ΔW′, in place
        reference.set_adapter(name)  # unmerged: exact by construction
        x = tasks[name].test.x
        got = [minituner.answer(model, tok, p) for p in prompts]
        switch_rows.append({"switch": i + 1, "active": name,
                     "max Δlogits vs unmerged": (model(x) - reference(x)).abs().max().item(),
                     "same answers": got == [minituner.answer(reference, tok, p) for p in prompts],
                     "answers": " ".join(a.strip() for a in got),
                     "test acc": minituner.evaluate(model, tasks[name].test)["accuracy"],
                     "unmerged acc": minituner.evaluate(reference, tasks[name].test)["accuracy"]})
print(markdown_table(switch_rows))

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
checkpoints = [n for n in (2, 4, 10, 20, 40, 100, 200, 400, 1000, 2000, 4000, 10000) if n < args.switches]
checkpoints.append(args.switches)
results = {}
with torch.no_grad():
    for label, dtype, exact in (("float32, in place", torch.float32, False),
                                ("float64, in place", torch.float64, False),
                                ("float32, from W_base", torch.float32, True)):
        m = minituner.PeftModel.from_pretrained(base, paths[TASKS[0]], adapter_name=TASKS[0])
        m.load_adapter(paths[TASKS[1]], adapter_name=TASKS[1])
        m.to(dtype)  # base and adapters alike (the fingerprint check happened in float32)
        m.set_adapter(TASKS[0])
        layers, a = lora_layers(m.base), TASKS[0]
        truth = {n: base.get_submodule(n).weight.double()  # W_base + ΔW, computed once in float64
                 + l.scale[a] * l.lora_B[a].double() @ l.lora_A[a].double() for n, l in layers.items()}
        m.merge_adapter(keep_copy=exact)
        errs, done = [], 0
        for N in checkpoints:
            for i in range(done, N):
                m.set_adapter(TASKS[(i + 1) % 2])
            done = N
            errs.append(max((l.weight.double() - truth[n]).abs().max().item() for n, l in layers.items()))
        results[label] = errs
print(markdown_table([{"switches": N, **{k: v[i] for k, v in results.items()}} for i, N in enumerate(checkpoints)]))
mid = len(checkpoints) // 2  # fit the slope past the first few roundings
slopes = {label: math.log(e[-1] / e[mid]) / math.log(checkpoints[-1] / checkpoints[mid])
          for label, e in results.items() if label.endswith("in place") and e[mid] > 0}
for label, slope in slopes.items():
    print(f"{label}: error ∝ N^{slope:.2f} (1: errors that add up; 0.5: a random walk); "
          f"{results[label][-1] / checkpoints[-1]:.1e} per switch")
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
save_figure(fig, args.out / "lora_switch_drift.png")

# %% [markdown]
# ## Conclusions
#
# Each line is printed from the tables above.

# %%
sizes = [r["file bytes"] for r in adapter_rows]
print(f"- The adapter files hold {sizes[0]:,} and {sizes[1]:,} bytes against the base's {sizes[2]:,}: one base "
      "serves both tasks. The adapters trained the same steps at the same batch: "
      + ", ".join(f"{r['adapter']} {r['ms per step']:.0f} ms per step" for r in adapter_rows[:2])
      + " (on a shared CPU, timings vary with what else runs).")
print(f"- Switching merged weights in place matched the unmerged model's answers at every checked switch: "
      f"{all(r['same answers'] for r in switch_rows)}; largest logit difference "
      f"{max(r['max Δlogits vs unmerged'] for r in switch_rows):.1e}.")
e32, e64, exact = (results[k] for k in results)
print(f"- After {checkpoints[-1]:,} in-place switches W is off by {e32[-1]:.1e} in float32 and {e64[-1]:.1e} in "
      f"float64; fitted growth N^{slopes.get('float32, in place', float('nan')):.2f} and "
      f"N^{slopes.get('float64, in place', float('nan')):.2f}: float64 is {e32[-1] / max(e64[-1], 1e-300):.0e}× "
      f"lower. From an untouched copy: {min(exact):.1e}–{max(exact):.1e} over every N.")
print(f"lesson time {time.perf_counter() - t0:.1f} s")
shutil.rmtree(folder)
