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

# %% [markdown] lang="zh"
# # 07 · 一个基座，多个适配器：切换 LoRA（原文 §3.2）
#
# 原文在 LoRA 一节的结尾写道：要适配另一个场景，切换只需一次简单的矩阵加减，**(W + ΔW) − ΔW + ΔW′**。一个冻结的基座模型服务多个任务，每个任务只占一个小小的 ΔW = AB（代码里 ΔW = (α/r)·`lora_B`·`lora_A`：原文的 A 是我们的 `lora_B`，原文的 B 是我们的 `lora_A`，见第 06 课）。
#
# 本课在同一个基座模型上为两个任务各训练一个适配器，各存成一个小文件，再把两者都加载到同一个基座模型上，用三种方式在它们之间切换：
#
# 1. **不合并**：W 保持基座模型的值，前向计算时加上当前适配器的 (α/r)·(x Aᵀ) Bᵀ。切换只是选用哪一对 A、B：结果精确，但每次前向计算都要多做两次矩阵乘法。
# 2. **合并，按原文的做法**：先做一次 W ← W + ΔW，之后每次切换都原地计算 W ← W − ΔW + ΔW′。推理时没有额外开销，但每切换一次，W 就多经历一次舍入。
# 3. **合并，从未改动的副本重建**（`model.merge_adapter(keep_copy=True)`）：每次切换都用保留下来的 W_base 副本计算 W ← W_base + ΔW′。结果精确（只舍入一次），代价是每个被适配的矩阵在内存里要多存一份。
#
# 接着测量原文的原地做法在多次切换后会漂移多远，分别在 float32 和 float64 下测。最后，让一个基座模型同时服务多个任务：两个任务各有软提示、前缀和 LoRA 适配器，每个请求按需调用自己的那一个，全都混在同一批里。
#
# 运行：`python lessons/07_lora_switching.py`（加 `--smoke` 是测试用的快速配置）；最后一个单元格打印本课用时。

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
from minituner.i18n import _
from minituner.lesson import options
from minituner.methods.lora import lora_layers
from minituner.report import label, markdown_table, save_figure, show
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
print(_("{steps} steps per adapter, batch {batch}, lr {lr}, r={r}, α={alpha:g}; {switches:,} switches in the drift experiment").format(
    steps=args.steps, batch=args.batch_size, lr=args.lr, r=args.r, alpha=args.alpha, switches=args.switches))

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

# %% [markdown] lang="zh"
# ## 1. 两个适配器，两个任务，两个小文件
#
# `classify` 根据描述说出是哪种动物；`relabel` 是原文自己举的重新打标签的例子（§4 第 3 步：原来认作猫的，现在要叫它狗），描述不变，只是猫和狗互换。两个适配器都从同一个基座模型开始训练，用 `model.save_pretrained(folder)` 保存：只存 LoRA 的张量（`adapter_model.safetensors`），外加一个 `adapter_config.json`，记录 r、α、目标模块和基座模型的指纹，所以适配器拒绝加载到别的模型上。

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
    print(_("onto another GPT of the same shape: ValueError: {error}").format(
        error=str(e).replace(str(paths[TASKS[0]]), paths[TASKS[0]].name)))

# %% [markdown]
# ## 2. One base, both adapters, switched unmerged
#
# `PeftModel.from_pretrained(base, folder, adapter_name=…)` puts the first adapter on a copy
# of the base (the base itself stays untouched); `model.load_adapter(folder, adapter_name=…)`
# adds the second under its own name. `model.set_adapter` chooses which one runs. The same descriptions of a cat and a dog
# (from the training split), two adapters: each answers with its own labels.

# %% [markdown] lang="zh"
# ## 2. 一个基座模型挂两个适配器，不合并地切换
#
# `PeftModel.from_pretrained(base, folder, adapter_name=…)` 把第一个适配器装到基座模型的一份副本上（基座模型本身保持不变）；`model.load_adapter(folder, adapter_name=…)` 以另一个名字加入第二个适配器；`model.set_adapter` 选择运行哪一个。同样的猫和狗的描述（取自训练集），交给两个适配器：各自用自己的标签作答。

# %%
model = minituner.PeftModel.from_pretrained(base, paths[TASKS[0]], adapter_name=TASKS[0])
model.load_adapter(paths[TASKS[1]], adapter_name=TASKS[1])
for name in TASKS:
    model.set_adapter(name)
    for prompt in prompts:
        print(_("  adapter {name:8s} {prompt!r} -> {answer!r}").format(
            name=name, prompt=prompt, answer=minituner.answer(model, tok, prompt)))
reference = copy.deepcopy(model)  # stays unmerged: the exact answer to compare with
print(_("the base itself is bit-identical: {same}").format(same=minituner.fingerprint(base) == fingerprint))
model.print_trainable_parameters();

# %% [markdown]
# ## 3. The article's switch on merged weights, checked after every switch
#
# Merge the classify adapter (W + ΔW), then switch in place, back and forth:
# W ← (W + ΔW) − ΔW + ΔW′. After each switch the merged model is checked against the exact
# reference (the unmerged model with that adapter active): the largest logit difference,
# the answers to the cat and dog prompts, and the accuracy on the active adapter's task.

# %% [markdown] lang="zh"
# ## 3. 按原文的方式在合并后的权重上切换，每次切换后都检查
#
# 先合并 `classify` 适配器（W + ΔW），然后原地来回切换：W ← (W + ΔW) − ΔW + ΔW′。每次切换后，把合并后的模型与精确的参照（未合并、启用同一个适配器的模型）比较：logits 的最大差、对猫和狗那几条提示的回答，以及在当前适配器所属任务上的准确率。

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

# %% [markdown] lang="zh"
# ## 4. 漂移：原地切换 N 次之后，W 偏离了多远？
#
# 每次原地切换都要用浮点数计算 W − ΔW + ΔW′，每一次加减都会舍入到最近的浮点数。切换 N 次之后测量误差（N 取偶数，这时启用的又是第一个适配器），参照是用 float64 算出的 W_base + ΔW，误差取所有被适配矩阵上的最大绝对差。比较三种做法：float32 下原地切换，float64 下原地切换，以及 float32 下从未改动的副本精确重建（不论 N 多大，都只舍入一次）。表格和拟合出的斜率说明误差如何随 N 增长：同样的两次加减用几乎相同的数反复进行，某个元素一次向上舍入，往往每次都向上舍入，于是误差逐次累加，而不是相互抵消。

# %%
checkpoints = [n for n in (2, 4, 10, 20, 40, 100, 200, 400, 1000, 2000, 4000, 10000) if n < args.switches]
checkpoints.append(args.switches)
results = {}
with torch.no_grad():
    for kind, dtype, exact in (("float32, in place", torch.float32, False),
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
        results[kind] = errs
show(markdown_table([{"switches": N, **{k: v[i] for k, v in results.items()}} for i, N in enumerate(checkpoints)]))
mid = len(checkpoints) // 2  # fit the slope past the first few roundings
slopes = {kind: math.log(e[-1] / e[mid]) / math.log(checkpoints[-1] / checkpoints[mid])
          for kind, e in results.items() if kind.endswith("in place") and e[mid] > 0}
for kind, slope in slopes.items():
    print(_("{kind}: error ∝ N^{slope:.2f} (1: errors that add up; 0.5: a random walk); {per:.1e} per switch").format(
        kind=_(kind), slope=slope, per=results[kind][-1] / checkpoints[-1]))
fig, ax = plt.subplots(figsize=(7, 4))
for (kind, errs), style in zip(results.items(), ("o-", "s-", "^--"), strict=True):
    ax.plot(checkpoints, [max(e, 1e-18) for e in errs], style, label=label(kind))
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(label("number of switches N (W − ΔW + ΔW′, in place)"))
ax.set_ylabel(label("max |W − (W_base + ΔW)|"))
ax.set_title(label("Floating-point drift of the article's in-place switch"))
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

# %% [markdown] lang="zh"
# ## 5. 一个基座模型，同一批里按需调用多个任务
#
# 切换一次只能服务一个任务。原文 §3.2 想得更远：基座模型保持原样，每个任务那一小部分参数按需调用，或者拼接在 W 前面（软提示和前缀，即原文的“按需要在W前面拼接一些参数”），或者加到 W 上（LoRA 的 ΔW）。这样一来，服务端就能在**同一批**里回答不同任务的请求，每一行用它自己的适配器（`minituner/serving.py`）：
#
# - 软提示：第 b 行取它的适配器的 P，放进 `GPT.forward` 的提示位置，整批是一个 (B, k, C) 张量；
# - 前缀：第 b 行在每一层取它的适配器的 P_k、P_v，各为 (B, k, C)；
# - LoRA：在每个 LoRALinear 里，属于适配器 a 的那些行加上 a 的 (α/r)·(x Aᵀ)Bᵀ（即 PEFT 的混合批次，用 `adapter_names=` 为每一行指定适配器）；W x 对所有行只算一次。
#
# 类型和长度相同的行共用一次前向计算（软提示一次，前缀一次，LoRA 与不加适配器的基座模型一次）。除了第 1 节的两个 LoRA 适配器，本节还为每个任务各训练一个软提示和一个 P-Tuning v2 前缀，超参数取 `minituner sweep` 在验证集上选出的那一组。然后在一批里放入两个任务的测试集行（每隔 `serve_every` 行取一行），每个适配器各一份，打乱顺序。检查两件事：每一行的 logits 与该适配器自己的模型单独运行这一行的结果是否一致；每个适配器的准确率，从混合批次里读出的与单独运行得到的是否相同。

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
        serve_rows.append({"adapter": f"{name}-{kind}", "setting": cmp.setting_text({"key": kind, "setting": method.describe(hp)}),
                           "steps": args.serve_steps})
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
print(_("one batch of {rows:,} rows, {forwards} forwards, {seconds:.2f} s").format(
    rows=len(names), forwards=len({server.group(n) for n in names}), seconds=batch_s))
prompt = prompts[0]
ids = torch.tensor([tok.encode(prompt)] * len(served))  # the same description, one row per adapter
for _step in range(6):  # greedy, one character per step: every row asks its own adapter
    ids = torch.cat([ids, server(ids, list(served))[:, -1].argmax(-1, keepdim=True)], dim=1)
for a, row in zip(served, ids[:, -6:].tolist(), strict=True):
    print(f"  {a:20s} {prompt!r} -> {tok.decode(row).split(chr(10))[0]!r}")

# %% [markdown]
# ## Conclusions (结论)
#
# Each line is printed from the tables above.

# %% [markdown] lang="zh"
# ## 结论
#
# 下面每一行都由代码根据上面的表格打印。

# %%
sizes = {r["adapter"]: r["file bytes"] for r in adapter_rows}
e32, e64, exact_copy = results.values()
worst = max(c["max |Δlogits| vs alone"] for c in check)
print("- " + _("One base ({base:,} bytes) serves both tasks; each LoRA adapter file holds {adapter:,} bytes.").format(
    base=sizes["(the base itself)"], adapter=sizes[TASKS[0]]))
print("- " + _("In-place switching on merged weights gave the unmerged answers at every checked switch: {same}.").format(
    same=all(r["same answers"] for r in switch_rows)))
print("- " + _("After {n:,} in-place switches W is off by {e32:.1e} in float32, {e64:.1e} in float64; from an untouched copy by at most {exact:.1e}, whatever N.").format(
    n=checkpoints[-1], e32=e32[-1], e64=e64[-1], exact=max(exact_copy)))
print("- " + _("One batch of {n:,} requests, {adapters} adapters of three kinds: every row's logits within {worst:.1e} of its adapter run alone, and every adapter's accuracy the same both ways: {same}.").format(
    n=len(names), adapters=len(served), worst=worst,
    same=all(c["test acc, mixed batch"] == c["test acc, alone"] for c in check)))
print(_("lesson time {t:.1f} s").format(t=time.perf_counter() - t0))
shutil.rmtree(folder)

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/07_lora_switch.py`; write the function bodies, then run `minituner check 07_lora_switch` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `switch`.** From a weight that already holds adapter 1, take it out and put adapter 2 in: (W + ΔW) − ΔW + ΔW′.
# 2. **Explain.** In float32 the switch is not exact to the last bit; where does the error come from, and how does keeping a copy of W avoid it?
# 3. **Homework.** Train two adapters on two tasks and serve both from one base: measure the time of a switch against the time of loading a second full model.

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/07_lora_switch.py`：写好函数体后运行 `minituner check 07_lora_switch --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`switch`。** 权重中已合并了适配器 1，把它减去再加上适配器 2：(W + ΔW) − ΔW + ΔW′。
# 2. **解释。** 在 float32 下切换并非逐位精确；误差从哪里来？保留一份 W 的副本为什么能避免它？
# 3. **作业。** 在两个任务上各训练一个适配器，用同一个基座轮流服务：测量一次切换的耗时与加载第二个完整模型的耗时。
