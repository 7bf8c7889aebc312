"""The main job: every method of the article side by side on one base (`minituner compare`),
with its settings chosen on validation (`minituner sweep`).

The protocol (article §4 steps 7 and 8): ``sweep`` trains each method at every setting of
its grid (learning rate, and k or r) and keeps the one with the best validation accuracy
(ties: lower validation loss); ``compare`` trains each method at its selected setting for
N seeds (the seed sets the adapter's init and the data order; the base stays the same),
early-stops on validation, and only then scores the test split, once per run, reporting
mean ± std over the seeds. Nothing here reads the test split before the final score.

A from-scratch row (same shape, random init, all trainable) is the floor: the article's
reason to fine-tune at all.

Memory: on a GPU, the allocator's peak. On the CPU there is no per-run allocator peak, so
the column counts what one training step must hold: weights, gradients of the trainable
tensors, AdamW's two moments, and every tensor autograd saves for the backward pass
(measured with saved-tensor hooks, each storage counted once).
"""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .checkpoint import ASSETS, atomic_write, load_base
from .data import TASKS, make_task
from .memory import measure_step
from .methods.shortcuts import freeze, full, lora, prefix_tuning, prompt_tuning, ptuning_v2
from .model import GPT
from .report import count_parameters, markdown_table, save_figure
from .train import evaluate, train

PHRASE = "the animal that is "  # a real sentence start: text init for P-Tuning v2's prefixes
SELECTED = ASSETS / "selected.json"  # the sweep's choices, per task and method (shipped)
STEPS, BATCH, EVAL_EVERY, PATIENCE = 250, 16, 25, 4  # the comparison's budget per run


@dataclass(frozen=True)
class Method:
    key: str  # the name in selected.json and on the command line
    name: str  # the table's label
    grid: dict  # hyper-parameter -> candidates the sweep tries

    def build(self, base: GPT, hp: dict, seed: int):
        """The model to train, from the base, at setting hp; seed: the adapter's init."""
        torch.manual_seed(seed)
        if self.key == "scratch":
            return full(GPT(base.config, seed=seed + 1))
        if self.key == "full":
            return full(base)
        if self.key == "freeze":
            return freeze(base, trainable_layers=hp["layers"])
        if self.key == "prompt":
            return prompt_tuning(base, num_virtual_tokens=hp["k"], seed=seed)
        if self.key == "prefix":
            return prefix_tuning(base, num_virtual_tokens=hp["k"], seed=seed)
        if self.key == "ptuning_v2":
            return ptuning_v2(base, num_virtual_tokens=hp["k"], init="text", init_text=(PHRASE * 4)[: hp["k"]],
                              seed=seed)
        return lora(base, r=hp["r"], lora_alpha=4 * hp["r"], target_modules=("q_proj", "v_proj"), seed=seed)

    def setting(self, hp: dict) -> str:
        """hp in words for the table, e.g. 'r=4, α=16, q,v, lr=0.003'."""
        extra = {"scratch": "random init", "full": "all trainable", "freeze": f"top {hp.get('layers')} block(s)",
                 "prompt": f"k={hp.get('k')}", "prefix": f"k={hp.get('k')}, MLP reparam",
                 "ptuning_v2": f"k={hp.get('k')} per layer, text init",
                 "lora": f"r={hp.get('r')}, α={4 * hp.get('r', 0)}, q,v"}[self.key]
        return f"{extra}, lr={hp['lr']:g}"


METHODS = [
    Method("scratch", "from scratch", {"lr": [1e-3, 3e-3]}),
    Method("full", "full (全量微调)", {"lr": [1e-4, 3e-4, 1e-3]}),
    Method("freeze", "freeze (冻结)", {"layers": [1, 2], "lr": [1e-3, 3e-3]}),
    Method("prompt", "prompt tuning (提示微调)", {"k": [4, 16], "lr": [1e-2, 3e-2, 1e-1]}),
    Method("prefix", "prefix tuning (前缀微调)", {"k": [8], "lr": [3e-3, 1e-2, 3e-2]}),
    Method("ptuning_v2", "P-Tuning v2", {"k": [8], "lr": [1e-2, 3e-2, 1e-1]}),
    Method("lora", "LoRA", {"r": [4, 8], "lr": [3e-3, 1e-2]}),
]
BY_KEY = {m.key: m for m in METHODS}


def grid_settings(method: Method) -> list[dict]:
    """Every combination of the method's grid, as dicts."""
    keys = list(method.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(method.grid[k] for k in keys))]


def selected_settings(path=SELECTED) -> dict:
    """{task: {method key: hp}} as the last sweep wrote it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no selected settings at {path}; run `minituner sweep` first") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg})") from None


def run(method: Method, hp: dict, base: GPT, data, seed: int, device: str = "cpu", progress: bool = False,
        steps: int = STEPS, batch_size: int = BATCH):
    """Train one method at one setting with one seed, early-stopping on validation.
    Returns (model, history, validation scores); the test split is not touched."""
    model = method.build(base, hp, seed)
    hist = train(model, data, steps=steps, lr=hp["lr"], batch_size=batch_size, seed=seed, device=device,
                 eval_every=EVAL_EVERY, patience=PATIENCE, progress=progress)
    return model, hist, evaluate(model, data.val)


def sweep(task: str = "classify", seed: int = 0, device: str = "cpu", out="runs/sweep", progress: bool = True,
          methods: list[str] | None = None, steps: int = STEPS) -> dict:
    """Train every method at every setting of its grid on `task`; choose, per method, the
    setting with the best validation accuracy (then the lower validation loss). Writes
    sweep_<task>.md and selected.json (merged with what is there) into `out`; returns
    {method key: chosen hp}."""
    check_task(task)
    unknown = sorted(set(methods or []) - set(BY_KEY))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; the methods are {', '.join(BY_KEY)}")
    out = Path(out)
    check_out_dir(out)
    base, data = load_base(), make_task(task)
    rows, chosen = [], {}
    for method in [BY_KEY[k] for k in methods] if methods else METHODS:
        best = None
        for hp in grid_settings(method):
            _, hist, ev = run(method, hp, base, data, seed, device, steps=steps)
            rows.append({"method": method.name, "setting": method.setting(hp), "val acc": ev["accuracy"],
                         "val loss": ev["loss"], "best step": hist.best_step, "train s": hist.seconds})
            if best is None or (ev["accuracy"], -ev["loss"]) > best[0]:
                best = ((ev["accuracy"], -ev["loss"]), hp, len(rows) - 1)
            if progress:
                print(f"{method.name:28s} {method.setting(hp):38s} val acc {ev['accuracy']:.3f} "
                      f"val loss {ev['loss']:.4f}")
        chosen[method.key] = best[1]
        rows[best[2]]["chosen"] = "✓"
    header = (f"Sweep on `{task}`: every setting trained once (seed {seed}, {steps} steps of batch {BATCH}, "
              f"validation every {EVAL_EVERY} steps, patience {PATIENCE}); chosen (✓): the best validation "
              f"accuracy, ties broken by the lower validation loss. The test split is not used.\n\n")
    cols = ["method", "setting", "val acc", "val loss", "best step", "train s", "chosen"]
    for r in rows:
        r.setdefault("chosen", "")
    atomic_write(out / f"sweep_{task}.md", lambda tmp: Path(tmp).write_text(header + markdown_table(rows, cols) + "\n"))
    merged = selected_settings(out / "selected.json") if (out / "selected.json").exists() else {}
    merged[task] = merged.get(task, {}) | chosen
    atomic_write(out / "selected.json", lambda tmp: Path(tmp).write_text(json.dumps(merged, indent=2) + "\n"))
    return chosen


def step_memory_bytes(model, batch) -> int:
    """Bytes one training step holds on the CPU: weights, grads, AdamW moments, saved activations
    (memory.measure_step's parts; a weight autograd saves is counted once, as a weight)."""
    return sum(measure_step(model, batch).values())


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")


def compare_all(seeds: int = 1, seed: int = 0, device: str = "cpu", out="runs/compare", selected=SELECTED,
                progress: bool = True, steps: int = STEPS) -> dict[str, list[dict]]:
    """compare() on every task (each with its own selected settings) into out/<task>/, and
    out/tasks.png: test accuracy by method and task (mean ± std over the seeds)."""
    out = Path(out)
    check_out_dir(out)
    missing = [t for t in TASKS if t not in selected_settings(selected)]
    if missing:
        raise ValueError(f"{selected} has no settings for {missing}; run `minituner sweep --task ...` for each")
    results = {t: compare(t, seeds, seed, device, out / t, selected, progress, steps) for t in TASKS}
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(TASKS)
    names = [m.name.split(" (")[0] for m in METHODS]
    for i, (task, rows) in enumerate(results.items()):
        xs = [j + (i - (len(TASKS) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [r["test acc"] for r in rows], width, yerr=[r["test acc std"] for r in rows], capsize=2,
               label=task)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"test accuracy (mean ± std, {seeds} seed(s))")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Every method on every task, settings chosen per task on validation")
    save_figure(fig, out / "tasks.png")
    return results


def check_out_dir(out: Path) -> None:
    """Refuse, before any training, an output path that is a file."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; give a folder to write the tables and figures into")


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def compare(task: str = "classify", seeds: int = 1, seed: int = 0, device: str = "cpu", out="runs/compare",
            selected=SELECTED, progress: bool = True, steps: int = STEPS) -> list[dict]:
    """Train every method at its selected setting for seeds seed..seed+seeds-1; write table.md,
    results.json, curves.png and tradeoff.png into `out`; return the rows (mean ± std)."""
    check_task(task)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    out = Path(out)
    check_out_dir(out)
    settings = selected_settings(selected)
    if task not in settings:
        raise ValueError(f"{selected} has no settings for task {task!r}; run `minituner sweep --task {task}`")
    base, data = load_base(), make_task(task)
    rows, curves = [], {}
    for method in METHODS:
        hp = settings[task][method.key]
        runs = []
        for s in range(seed, seed + seeds):
            model, hist, val = run(method, hp, base, data, s, device, progress, steps=steps)
            test = evaluate(model, data.test)  # the one look at test, after training and selection
            runs.append({"val acc": val["accuracy"], "test acc": test["accuracy"], "test loss": test["loss"],
                         "train s": hist.seconds, "curve": hist.val})
            if progress:
                print(f"{method.name:28s} seed {s}: val acc {val['accuracy']:.3f}  test acc {test['accuracy']:.3f}"
                      f"  ({hist.seconds:.1f} s)")
        trainable, total = count_parameters(model)
        row = {"method": method.name, "setting": method.setting(hp), "trainable params": trainable,
               "trainable %": 100 * trainable / total}
        for col in ("val acc", "test acc", "test loss", "train s"):
            row[col], row[col + " std"] = mean_std([r[col] for r in runs])
        row["step memory bytes"] = step_memory_bytes(model.to("cpu"), data.train.batch(BATCH, torch.Generator().manual_seed(0)))
        row["runs"] = [{k: v for k, v in r.items() if k != "curve"} for r in runs]
        rows.append(row)
        curves[method.name.split(" (")[0]] = [r["curve"] for r in runs]  # English labels: no CJK font needed
    write_report(rows, curves, task, seeds, seed, device, steps, out)
    return rows


def pm(row: dict, col: str, digits: int = 3) -> str:
    """'0.912 ± 0.013' (the std over seeds)."""
    return f"{row[col]:.{digits}f} ± {row[col + ' std']:.{digits}f}"


def write_report(rows, curves, task, seeds, seed, device, steps, out: Path) -> None:
    """table.md, results.json, curves.png (test accuracy with error bars, validation curves), tradeoff.png."""
    table = [{"method": r["method"], "setting": r["setting"], "trainable params": r["trainable params"],
              "trainable %": r["trainable %"], "val acc": pm(r, "val acc"), "test acc": pm(r, "test acc"),
              "test loss": pm(r, "test loss"), "train s": f"{r['train s']:.1f}",
              "step memory bytes": r["step memory bytes"]} for r in rows]
    header = (f"Task `{task}`: {seeds} seed(s) from {seed}, {steps} steps of batch {BATCH}, early stopping on "
              f"validation (every {EVAL_EVERY} steps, patience {PATIENCE}), device {device}; settings chosen on "
              f"validation by `minituner sweep`; mean ± std over the seeds.\n\n")
    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(header + markdown_table(table) + "\n"))
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(json.dumps(
        {"task": task, "seeds": seeds, "seed": seed, "rows": rows}, indent=1, default=float) + "\n"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["method"].split(" (")[0] for r in rows]
    ax1.barh(names, [r["test acc"] for r in rows], xerr=[r["test acc std"] for r in rows], capsize=3,
             color="tab:blue", alpha=0.8)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 1.05)
    ax1.set_xlabel(f"test accuracy (mean ± std, {seeds} seed(s))")
    ax1.grid(axis="x", alpha=0.3)
    ax1.set_title(f"`{task}`: test accuracy")
    for name, runs in curves.items():
        n = min(len(c) for c in runs)  # early stopping may end seeds at different steps
        mean = [statistics.fmean(c[i][1] for c in runs) for i in range(n)]
        ax2.plot([e[0] for e in runs[0][:n]], mean, "o-", ms=3, label=name)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation loss (mean over seeds)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    ax2.set_title("validation curves")
    save_figure(fig, out / "curves.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, name in zip(rows, names):
        ax.errorbar(r["trainable %"], r["test acc"], yerr=r["test acc std"], fmt="o", capsize=3)
        ax.annotate(name, (r["trainable %"], r["test acc"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel("test exact-match accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("What each method trains, and what it buys")
    save_figure(fig, out / "tradeoff.png")
