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
# float32 and float64. Last, it serves several tasks from one base at once: soft prompts,
# prefixes and LoRA adapters for both tasks, chosen per request, mixed in one batch.
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
import minituner.experiments as cmp
from minituner.lesson import options
from minituner.methods.lora import lora_layers
from minituner.report import markdown_table, save_figure, show
from minituner.serving import Server

args = options("Lesson 07: switching LoRA adapters", smoke=dict(rows=48, steps=4, switches=20, checks=2, serve_steps=2, serve_every=16),
               out="runs/07_lora_switching", steps=100, batch_size=8, lr=1e-2, r=4, alpha=16.0, switches=2000,
               checks=4, serve_steps=60, serve_every=4, seed=0, rows=None)
torch.manual_seed(args.seed)
t0 = time.perf_counter()
TASKS = ("classify", "relabel")
base = minituner.load_base()
fingerprint = minituner.fingerprint(base)
tasks = {name: minituner.make_task(name, rows=args.rows) for name in TASKS}
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
    adapter_rows.append({"adapter": name, "val acc": minituner.evaluate(model, tasks[name].val)["accuracy"],
                         "test acc": minituner.evaluate(model, tasks[name].test)["accuracy"],
                 "file bytes": (paths[name] / "adapter_model.safetensors").stat().st_size, "steps": args.steps, "train s": hist.seconds,
                 "ms per step": 1000 * hist.seconds / args.steps})
base_file = minituner.save_model(base, folder / "base")
adapter_rows.append({"adapter": "(the base itself)", "file bytes": base_file.stat().st_size})
show(markdown_table(adapter_rows))
try:
    minituner.PeftModel.from_pretrained(minituner.GPT(base.config, seed=1), paths[TASKS[0]])
except ValueError as e:  # the message names the folder: shown by its own name, not the machine's temporary path
    print(f"onto another GPT of the same shape: ValueError: {str(e).replace(str(paths[TASKS[0]]), paths[TASKS[0]].name)}")

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
show(markdown_table(switch_rows))

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
show(markdown_table([{"switches": N, **{k: v[i] for k, v in results.items()}} for i, N in enumerate(checkpoints)]))
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
save_figure(fig, args.out / "lora_switch_drift.png");

# %% [markdown]
# ## 5. Many tasks on one base, in one batch (一个基座,按需调用多个任务)
#
# Switching serves one task at a time. The article's §3.2 points further: the base stays as it is
# and each task's few parameters are called on demand (按需调用), put before W (soft prompts and
# prefixes, 按需要在W前面拼接一些参数) or added to it (LoRA's ΔW). A server can then answer
# requests of different tasks in **one batch**, each row with its own adapter
# (`minituner/serving.py`):
#
# - soft prompts: row b gets its adapter's P, a (B, k, C) tensor in `GPT.forward`'s prompt slot;
# - prefixes: row b gets its adapter's P_k, P_v at every layer, (B, k, C) each;
# - LoRA: in every LoRALinear the rows of adapter a get a's (α/r)·(x Aᵀ)Bᵀ (PEFT's mixed batch,
#   `adapter_names=` per row); W x is computed once for all rows.
#
# Rows of one kind and length share one forward (one for the soft prompts, one for the prefixes,
# one for LoRA and the plain base). Beside the two LoRA adapters of section 1, a soft prompt and a
# P-Tuning v2 prefix are trained for each task at the setting `minituner sweep` chose on validation.
# One batch then holds test rows of both tasks (every `serve_every`-th) once per adapter, shuffled. Checked: each row's
# logits against that adapter's own model run on that row alone; each adapter's accuracy read
# from the mixed batch and from the rows alone.

# %%
chosen = cmp.selected_settings()
server = Server(base)
for name in TASKS:
    server.add(f"{name}-lora", minituner.PeftModel.from_pretrained(base, paths[name]))
serve_rows, served = [], {}
for kind in ("prompt", "ptuning-v2"):
    for name in TASKS:
        hp, method = chosen[name][kind], cmp.row(kind)
        served[f"{name}-{kind}"] = m = cmp.build(method, base, hp, seed=args.seed)
        minituner.train(m, tasks[name], steps=args.serve_steps, lr=hp["lr"], batch_size=args.batch_size,
                        seed=args.seed, progress=False)
        server.add(f"{name}-{kind}", m)
        serve_rows.append({"adapter": f"{name}-{kind}", "setting": method.describe(hp), "steps": args.serve_steps})
for name in TASKS:
    served[f"{name}-lora"] = minituner.PeftModel.from_pretrained(base, paths[name])
show(markdown_table(serve_rows))

# %%
# One batch: the test split of each adapter's task, once per adapter, padded to one length T
# (<pad> is id 0 and its mask 0: a causal model's real positions never see the padding after them).
T = max(t.test.x.size(1) for t in tasks.values())
parts = {a: tasks[a.split("-")[0]].test for a in served}
x, y, mask = (torch.cat([torch.nn.functional.pad(getattr(split, f)[::args.serve_every], (0, T - split.x.size(1)))
                         for split in parts.values()]) for f in ("x", "y", "mask"))  # (B, T) each
names = [a for a, split in parts.items() for _ in range(0, len(split), args.serve_every)]
order = torch.randperm(len(names), generator=torch.Generator().manual_seed(args.seed))  # requests arrive mixed
x, y, mask, names = x[order], y[order], mask[order], [names[i] for i in order]
t1 = time.perf_counter()
logits = server(x, names)  # (B, T, V), row b with adapter names[b]
batch_s = time.perf_counter() - t1


def exact(logits, rows):
    """Exact match of the greedy answer, over the given rows of the batch."""
    return ((logits.argmax(-1) == y[rows]) | (mask[rows] == 0)).all(dim=1).float().mean().item()


check = []
with torch.no_grad():
    for a, m in served.items():
        rows = [b for b, n in enumerate(names) if n == a]
        alone = torch.cat([m(x[b:b + 1]) for b in rows])  # each row by itself, through the adapter's own model
        check.append({"adapter": a, "rows in the batch": len(rows),
                      "max |Δlogits| vs alone": (logits[rows] - alone).abs().max().item(),
                      "test acc, mixed batch": exact(logits[rows], rows), "test acc, alone": exact(alone, rows)})
show(markdown_table(check))
print(f"one batch of {len(names):,} rows, {len({server.group(n) for n in names})} forwards, {batch_s:.2f} s")
prompt = prompts[0]
ids = torch.tensor([tok.encode(prompt)] * len(served))  # the same description, one row per adapter
for _ in range(6):  # greedy, one character per step: every row asks its own adapter
    ids = torch.cat([ids, server(ids, list(served))[:, -1].argmax(-1, keepdim=True)], dim=1)
for a, row in zip(served, ids[:, -6:].tolist(), strict=True):
    print(f"  {a:20s} {prompt!r} -> {tok.decode(row).split(chr(10))[0]!r}")

# %% [markdown]
# ## Conclusions (结论)
#
# Each line is printed from the tables above.

# %%
sizes = {r["adapter"]: r["file bytes"] for r in adapter_rows}
e32, e64, exact_copy = results.values()
worst = max(c["max |Δlogits| vs alone"] for c in check)
print(f"- One base ({sizes['(the base itself)']:,} bytes) serves both tasks; each LoRA adapter file holds "
      f"{sizes[TASKS[0]]:,} bytes.")
print(f"- In-place switching on merged weights gave the unmerged answers at every checked switch: "
      f"{all(r['same answers'] for r in switch_rows)}.")
print(f"- After {checkpoints[-1]:,} in-place switches W is off by {e32[-1]:.1e} in float32, {e64[-1]:.1e} in "
      f"float64; from an untouched copy by at most {max(exact_copy):.1e}, whatever N.")
print(f"- One batch of {len(names):,} requests, {len(served)} adapters of three kinds: every row's logits within "
      f"{worst:.1e} of its adapter run alone, and every adapter's accuracy the same both ways: "
      f"{all(c['test acc, mixed batch'] == c['test acc, alone'] for c in check)}.")

# %% [markdown]
# ## 小结
#
# 下面每句话里的数字都由代码从上面的结果打印。

# %%
print(f"- 一个冻结的基座({sizes['(the base itself)']:,} 字节)加上每个任务一个小小的 LoRA 适配器"
      f"({sizes[TASKS[0]]:,} 字节),就能服务两个任务。")
print(f"- 按文章的做法在合并后的权重上原地切换 (W + ΔW) − ΔW + ΔW′:{checkpoints[-1]:,} 次之后,float32 下 W "
      f"偏离 {e32[-1]:.1e},float64 下偏离 {e64[-1]:.1e};从未改动的 W 副本切换,误差始终不超过 {max(exact_copy):.1e}。")
print(f"- 同一批 {len(names):,} 个请求里混用 {len(served)} 个适配器(软提示、前缀、LoRA 各两个),每一行的 logits "
      f"与单独运行该行相差至多 {worst:.1e}:按需调用不必一次只服务一个任务。")
print(f"lesson time {time.perf_counter() - t0:.1f} s")
shutil.rmtree(folder)

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/07_lora_switch.py`; write the function bodies, then run `minituner check 07_lora_switch` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `switch`.** From a weight that already holds adapter 1, take it out and put adapter 2 in: (W + ΔW) − ΔW + ΔW′.
# 2. **Explain.** In float32 the switch is not exact to the last bit; where does the error come from, and how does keeping a copy of W avoid it?
# 3. **Homework.** Train two adapters on two tasks and serve both from one base: measure the time of a switch against the time of loading a second full model.
#
# 编程题的骨架在 `exercises/07_lora_switch.py`：写好函数体后运行 `minituner check 07_lora_switch --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`switch`。** 权重中已合并了适配器 1，把它减去再加上适配器 2：(W + ΔW) − ΔW + ΔW′。
# 2. **解释。** 在 float32 下切换并非逐位精确；误差从哪里来？保留一份 W 的副本为什么能避免它？
# 3. **作业。** 在两个任务上各训练一个适配器，用同一个基座轮流服务：测量一次切换的耗时与加载第二个完整模型的耗时。
