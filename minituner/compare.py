"""The main job: every method of the article side by side on one base (`minituner compare`),
with its settings chosen on validation (`minituner sweep`).

The protocol (article §4 steps 7 and 8): ``sweep`` trains each method at every setting of
its grid (learning rate, and k or r) and keeps the one with the best validation accuracy
(ties: lower validation loss); ``compare`` trains each method at its selected setting for
N seeds (the seed sets the adapter's init and the data order; the base stays the same),
early-stops on validation, and only then scores the test split, once per run, reporting
mean ± std over the seeds. Nothing here reads the test split before the final score.

A from-scratch row (same shape, random init, all trainable) is the floor: the article's
reason to fine-tune at all. After the article's six methods come four that followed it:
BitFit, (IA)³, DoRA and LoRA on a 4-bit NF4 base (QLoRA), on the same protocol.

On `relabel` (the article's §4 step 3: cats are now to be called dogs and dogs cats) the
table also says where the swap landed: on the cat/dog descriptions the training split
shows, on the test split's unseen cat/dog descriptions (new name, or still the old one),
and on the other animals, whose labels did not change.

The runs go to `jobs` single-thread worker processes (minituner/jobs.py); the results do
not depend on how many.

Memory: on a GPU, the allocator's peak. On the CPU there is no per-run allocator peak, so
the column counts what one training step must hold: weights, gradients of the trainable
tensors, AdamW's two moments, and every tensor autograd saves for the backward pass
(measured with saved-tensor hooks, each storage counted once).
"""

from __future__ import annotations

import functools
import itertools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .checkpoint import ASSETS, atomic_write, load_base
from .data import TASKS, make_task
from .jobs import default_jobs, run_all
from .memory import measure_step
from .methods import shortcuts
from .model import GPT
from .quant import numel_4bit
from .report import count_parameters, markdown_table, save_figure
from .train import best_score, evaluate, train

PHRASE = "the animal that is "  # a real sentence start: text init for P-Tuning v2's prefixes
SELECTED = ASSETS / "selected.json"  # the sweep's choices, per task and method (shipped)
BATCH, EVAL_EVERY, PATIENCE = 16, 25, 4  # the comparison's budget per run ...
STEPS = {"classify": 250, "relabel": 250, "qa": 500}  # ... and its steps at most (the qa sweep's chosen runs peaked at steps 150-375)


@dataclass(frozen=True)
class Method:
    key: str  # the name in selected.json and on the command line
    name: str  # the table's label
    grid: dict  # hyper-parameter -> candidates the sweep tries

    def build(self, base: GPT, hp: dict, seed: int):
        """The model to train, from the base, at setting hp; seed: the adapter's init."""
        torch.manual_seed(seed)
        if self.key == "scratch":
            return shortcuts.full(GPT(base.config, seed=seed + 1))
        if self.key == "full":
            return shortcuts.full(base)
        if self.key == "freeze":
            return shortcuts.freeze(base, trainable_layers=hp["layers"])
        if self.key == "prompt":
            return shortcuts.prompt_tuning(base, num_virtual_tokens=hp["k"], seed=seed)
        if self.key == "prefix":
            return shortcuts.prefix_tuning(base, num_virtual_tokens=hp["k"], seed=seed)
        if self.key == "ptuning_v2":
            return shortcuts.ptuning_v2(base, num_virtual_tokens=hp["k"], init="text", init_text=(PHRASE * 4)[: hp["k"]],
                              seed=seed)
        if self.key == "bitfit":
            return shortcuts.bitfit(base)
        if self.key == "ia3":
            return shortcuts.ia3(base)
        low_rank = {"lora": shortcuts.lora, "dora": shortcuts.dora, "qlora": shortcuts.qlora}[self.key]
        return low_rank(base, r=hp["r"], lora_alpha=4 * hp["r"], target_modules=("q_proj", "v_proj"), seed=seed)

    def setting(self, hp: dict) -> str:
        """hp in words for the table, e.g. 'r=4, α=16, q,v, lr=0.003'."""
        low_rank = f"r={hp.get('r')}, α={4 * hp.get('r', 0)}, q,v"  # as build() sets them
        extra = {"scratch": "random init", "full": "all trainable", "freeze": f"top {hp.get('layers')} block(s)",
                 "prompt": f"k={hp.get('k')}", "prefix": f"k={hp.get('k')}, MLP reparam",
                 "ptuning_v2": f"k={hp.get('k')} per layer, text init", "lora": low_rank, "bitfit": "every bias",
                 "ia3": "k, v and MLP hidden scaled", "dora": low_rank, "qlora": f"NF4 base, {low_rank}"}[self.key]
        return f"{extra}, lr={hp['lr']:g}"


METHODS = [
    Method("scratch", "from scratch", {"lr": [1e-3, 3e-3]}),
    Method("full", "full (全量微调)", {"lr": [1e-4, 3e-4, 1e-3]}),
    Method("freeze", "freeze (冻结)", {"layers": [1, 2], "lr": [1e-3, 3e-3]}),
    Method("prompt", "prompt tuning (提示微调)", {"k": [4, 16], "lr": [1e-2, 3e-2, 1e-1]}),
    Method("prefix", "prefix tuning (前缀微调)", {"k": [8], "lr": [3e-3, 1e-2, 3e-2]}),
    Method("ptuning_v2", "P-Tuning v2", {"k": [8], "lr": [1e-2, 3e-2, 1e-1]}),
    Method("lora", "LoRA", {"r": [4, 8], "lr": [3e-3, 1e-2]}),
    Method("bitfit", "BitFit", {"lr": [1e-3, 3e-3, 1e-2]}),
    Method("ia3", "(IA)³", {"lr": [3e-3, 1e-2, 3e-2]}),
    Method("dora", "DoRA", {"r": [8], "lr": [3e-3, 1e-2]}),
    Method("qlora", "QLoRA", {"r": [8], "lr": [3e-3, 1e-2]}),
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
        steps: int | None = None, batch_size: int = BATCH):
    """Train one method at one setting with one seed, early-stopping on validation (steps: at most,
    default the task's STEPS). Returns (model, history, validation scores); the test split is not touched."""
    model = method.build(base, hp, seed)
    hist = train(model, data, steps=steps or STEPS[data.name], lr=hp["lr"], batch_size=batch_size,
                 seed=seed, device=device, eval_every=EVAL_EVERY, patience=PATIENCE, progress=progress)
    return model, hist, evaluate(model, data.val)


@functools.cache
def _loaded(task: str):
    """The base and the task, once per process (the methods copy the base; nothing changes it)."""
    return load_base(), make_task(task)


def job(task: str, key: str, hp: dict, seed: int, steps: int | None, device: str, score: bool) -> dict:
    """One run (in a worker process): train, score validation; with score, also the test split
    (once), the parameter counts, the step memory, and on relabel where the swap landed."""
    base, data = _loaded(task)
    model, hist, val = run(BY_KEY[key], hp, base, data, seed, device, steps=steps)
    out = {"val acc": val["accuracy"], "val loss": val["loss"], "best step": hist.best_step,
           "train s": hist.seconds, "curve": hist.val}
    if score:  # the one look at test, after training and selection
        test = evaluate(model, data.test)
        out |= {"test acc": test["accuracy"], "test loss": test["loss"]}
        if task == "relabel":
            out |= relabel_scores(model, data)
        model.to("cpu")
        out["trainable"], out["total"] = parameter_counts(model)
        out["step memory bytes"] = step_memory_bytes(model, data.train.batch(BATCH, torch.Generator().manual_seed(0)))
    return out


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) elements; a 4-bit weight counts as its in × out elements, as PEFT counts it."""
    trainable, total = count_parameters(model)
    return trainable, total + numel_4bit(model)


def relabel_scores(model, data) -> dict:
    """Where relabelling landed (article §4 step 3: cat <-> dog). Accuracy on the cat/dog rows of
    the training split ("swap, seen": the new name on descriptions it trained on), of the test split
    ("swap, unseen": the new name on descriptions it never saw; "old name, unseen": still the old
    one, scored against classify's answers to the same prompts), and on the other animals' test rows
    ("others, test": labels that did not change: what the swap cost)."""
    old = make_task("classify").test
    swapped = {" cat.", " dog."}  # in relabel only cat and dog rows answer cat or dog

    def acc(split, rows, truth=None):
        correct = evaluate(model, truth or split)["correct"]
        picked = [c for c, r in zip(correct, rows) if r]
        return sum(picked) / len(picked)

    seen = [a in swapped for _, a in data.train.examples]
    unseen = [a in swapped for _, a in data.test.examples]
    assert [p for p, _ in old.examples] == [p for p, _ in data.test.examples]  # the same prompts, in order
    return {"swap, seen": acc(data.train, seen), "swap, unseen": acc(data.test, unseen),
            "old name, unseen": acc(data.test, unseen, truth=old),
            "others, test": acc(data.test, [not u for u in unseen])}


def sweep(task: str = "classify", seed: int = 0, device: str = "cpu", out="runs/sweep", progress: bool = True,
          methods: list[str] | None = None, steps: int | None = None, jobs: int | None = None) -> dict:
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
    steps = steps or STEPS[task]
    chosen_methods = [BY_KEY[k] for k in methods] if methods else METHODS
    settings = [(m, hp) for m in chosen_methods for hp in grid_settings(m)]

    def report(i, r):
        if progress:
            m, hp = settings[i]
            print(f"{m.name:28s} {m.setting(hp):38s} val acc {r['val acc']:.3f} val loss {r['val loss']:.4f}",
                  flush=True)

    results = run_all(job, [(task, m.key, hp, seed, steps, device, False) for m, hp in settings],
                      jobs or default_jobs(), report)
    rows, chosen, best = [], {}, {}
    for (m, hp), r in zip(settings, results):
        rows.append({"method": m.name, "setting": m.setting(hp), "val acc": r["val acc"], "val loss": r["val loss"],
                     "best step": r["best step"], "train s": r["train s"], "chosen": ""})
        key = best_score((r["best step"], r["val loss"], r["val acc"]))  # the order train() stops by
        if m.key not in best or key > best[m.key][0]:
            best[m.key] = (key, hp, len(rows) - 1)
    for k, (_, hp, i) in best.items():
        chosen[k] = hp
        rows[i]["chosen"] = "✓"
    header = (f"Sweep on `{task}`: every setting trained once (seed {seed}, at most {steps} steps of batch {BATCH}, "
              f"validation every {EVAL_EVERY} steps, patience {PATIENCE}, keeping the best validation accuracy); "
              f"chosen (✓): the best validation accuracy, ties broken by the lower validation loss. The test "
              f"split is not used. train s: one thread per run, runs side by side.\n\n")
    cols = ["method", "setting", "val acc", "val loss", "best step", "train s", "chosen"]
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
                progress: bool = True, steps: int | None = None, jobs: int | None = None) -> dict[str, list[dict]]:
    """compare() on every task (each with its own selected settings) into out/<task>/, and
    out/tasks.png: test accuracy by method and task (mean ± std over the seeds)."""
    out = Path(out)
    check_out_dir(out)
    missing = [t for t in TASKS if t not in selected_settings(selected)]
    if missing:
        raise ValueError(f"{selected} has no settings for {missing}; run `minituner sweep --task ...` for each")
    results = {t: compare(t, seeds, seed, device, out / t, selected, progress, steps, jobs) for t in TASKS}
    plot_tasks(results, seeds, out / "tasks.png")
    return results


def plot_tasks(results: dict[str, list[dict]], seeds: int, path) -> None:
    """Test accuracy by method (bars grouped) and task (colours), mean ± std over the seeds."""
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(results)
    names = [r["method"].split(" (")[0] for r in next(iter(results.values()))]
    for i, (task, rows) in enumerate(results.items()):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [r["test acc"] for r in rows], width, yerr=[r["test acc std"] for r in rows], capsize=2,
               label=task)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"test accuracy (mean ± std, {seeds} seed(s))")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Every method on every task, settings chosen per task on validation")
    save_figure(fig, path)


def check_out_dir(out: Path) -> None:
    """Refuse, before any training, an output path that is a file."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; give a folder to write the tables and figures into")


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def compare(task: str = "classify", seeds: int = 1, seed: int = 0, device: str = "cpu", out="runs/compare",
            selected=SELECTED, progress: bool = True, steps: int | None = None, jobs: int | None = None) -> list[dict]:
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
    missing = [m.key for m in METHODS if m.key not in settings[task]]
    if missing:
        raise ValueError(f"{selected} has no {task!r} settings for {missing}; run "
                         f"`minituner sweep --task {task} --methods {','.join(missing)}`")
    steps = steps or STEPS[task]
    calls = [(task, m.key, settings[task][m.key], s, steps, device, True) for m in METHODS
             for s in range(seed, seed + seeds)]

    def report(i, r):
        if progress:
            name, s = BY_KEY[calls[i][1]].name, calls[i][3]
            print(f"{name:28s} seed {s}: val acc {r['val acc']:.3f}  test acc {r['test acc']:.3f}  "
                  f"({r['train s']:.1f} s)", flush=True)

    results = run_all(job, calls, jobs or default_jobs(), report)
    rows, curves = [], {}
    for j, method in enumerate(METHODS):
        runs = results[j * seeds:(j + 1) * seeds]
        first = runs[0]
        row = {"method": method.name, "setting": method.setting(settings[task][method.key]),
               "trainable params": first["trainable"], "trainable %": 100 * first["trainable"] / first["total"]}
        for col in ("val acc", "test acc", "test loss", "train s") + (RELABEL_COLS if task == "relabel" else ()):
            row[col], row[col + " std"] = mean_std([r[col] for r in runs])
        row["step memory bytes"] = first["step memory bytes"]
        row["runs"] = [{k: v for k, v in r.items() if k in ("val acc", "test acc", "test loss", "train s", *RELABEL_COLS)}
                       for r in runs]
        rows.append(row)
        curves[method.name.split(" (")[0]] = [r["curve"] for r in runs]  # English labels: no CJK font needed
    write_report(rows, curves, task, seeds, seed, device, steps, out)
    return rows


RELABEL_COLS = ("swap, seen", "swap, unseen", "old name, unseen", "others, test")


def pm(row: dict, col: str, digits: int = 3) -> str:
    """'0.912 ± 0.013' (the std over seeds)."""
    return f"{row[col]:.{digits}f} ± {row[col + ' std']:.{digits}f}"


def write_report(rows, curves, task, seeds, seed, device, steps, out: Path) -> None:
    """table.md, results.json, curves.png (test accuracy with error bars, validation curves), tradeoff.png."""
    table = [{"method": r["method"], "setting": r["setting"], "trainable params": r["trainable params"],
              "trainable %": r["trainable %"], "val acc": pm(r, "val acc"), "test acc": pm(r, "test acc"),
              "test loss": pm(r, "test loss"), "train s": f"{r['train s']:.1f}",
              "step memory bytes": r["step memory bytes"]} for r in rows]
    header = (f"Task `{task}`: {seeds} seed(s) from {seed}, at most {steps} steps of batch {BATCH}, early stopping "
              f"on validation accuracy (every {EVAL_EVERY} steps, patience {PATIENCE}), device {device}; settings "
              f"chosen on validation by `minituner sweep`; mean ± std over the seeds. train s: one thread per run, "
              f"runs side by side.\n\n")
    body = markdown_table(table)
    if task == "relabel":
        swap = [{"method": r["method"], **{c: pm(r, c) for c in RELABEL_COLS}} for r in rows]
        body += ("\n\nWhere the swap landed (accuracy; seen: the cat/dog descriptions of the training split; "
                 "unseen: the test split's cat/dog rows, with the new name or still the old one; others: the "
                 "other animals' test rows, whose labels did not change):\n\n" + markdown_table(swap))
    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(header + body + "\n"))
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
