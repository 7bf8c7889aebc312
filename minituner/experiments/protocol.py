"""The comparison's protocol (the article's §4 steps 7 and 8): choose each method's setting on
validation (``sweep``), then train it for N seeds at that setting and score the test split once
per run (``compare``).

``sweep`` trains each method at every setting of its grid (the registry's data: learning rate, and
k or r) and keeps the one with the best validation accuracy (ties: lower validation loss).
``compare`` trains each method at its selected setting for N seeds (the seed sets the adapter's
init and the data order; the base stays the same), early-stops on validation, and only then scores
the test split, reporting mean ± std over the seeds. Nothing here reads the test split before the
final score.

Forgetting (Biderman et al. 2024, "LoRA Learns Less and Forgets Less"): after the test score, each
run also answers the fact probe (every fact the base knows, asked both ways in the corpus's words)
with its adapter active; forgetting = the base's probe accuracy minus the run's, on the accuracy
scale (0.05: five facts in a hundred lost). Once per run, at the end; the from-scratch row has none.

The rows: a from-scratch floor (same shape, random init, all trainable: the article's reason to
fine-tune at all), then every registered method in the registry's order. The runs go to `jobs`
single-thread worker processes (minituner/jobs.py); the results do not depend on how many.

Memory: on the CPU there is no per-run allocator peak, so the step memory counts what one
training step must hold (memory.measure_step: weights, gradients, AdamW's moments, the tensors
autograd saves, each storage once).
"""

from __future__ import annotations

import functools
import json
import os
import unicodedata
from pathlib import Path

import torch

from ..checkpoint import ASSETS, atomic_write, check_writable, load_base
from ..checks import refuse
from ..data import TASKS, make_fact_probe, make_task
from ..device import check_device
from ..files import read_json
from ..functional import fused
from ..i18n import _, speaking
from ..jobs import default_jobs, run_all
from ..memory import measure_step
from ..methods import FullConfig, FullModel, Method, get_peft_model, ordered
from ..model import GPT, count_parameters
from ..quant import numel_4bit
from ..report import markdown_table
from ..train import best_score, evaluate, train
from .aggregate import aggregate
from .figures import plot_compare, plot_forgetting, plot_tasks
from .relabel import RELABEL_COLS, relabel_scores
from .tables import write_summary, write_task

SELECTED = ASSETS / "selected.json"  # the sweep's choices, per task and method (shipped)
BATCH, EVAL_EVERY, PATIENCE = 16, 25, 4  # the comparison's budget per run ...
STEPS = {"classify": 250, "relabel": 250, "qa": 500}  # ... and its steps at most (qa's chosen runs peak later)
SCRATCH = Method("scratch", "from scratch", FullConfig, FullModel, order=0, grid={"lr": [1e-3, 3e-3]},
                 note="random init")


def rows() -> list[Method]:
    """The comparison's rows: the from-scratch floor, then every registered method."""
    return [SCRATCH, *ordered()]


def row(key: str) -> Method:
    by_key = {m.key: m for m in rows()}
    if key not in by_key:
        raise ValueError(f"unknown method {key!r}; the methods are {', '.join(by_key)}")
    return by_key[key]


def padded(label: str, width: int = 28) -> str:
    """A method's label in the run's language, padded for a progress line: the English label by characters
    (as `minituner compare` has always printed it), a translation by the columns a terminal gives it (two
    for a Chinese character), so that the columns after it line up."""
    shown = _(label)
    if shown == label:
        return f"{label:{width}s}"
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in shown)
    return shown + " " * max(1, width - columns)


def setting_text(r: dict) -> str:
    """A comparison row's setting (Method.describe's words, e.g. "all trainable, lr=0.0003") as the run's
    language shows it: the method's note through the catalogue, the values as they are."""
    note = row(r["key"]).note
    if not note or note not in r["setting"]:
        return r["setting"]
    head, _sep, tail = r["setting"].rpartition(note)
    return head + _(note) + tail


def build(method: Method, base: GPT, setting: dict, seed: int):
    """The model to train at setting (config fields and "lr"); seed: the adapter's init."""
    torch.manual_seed(seed)
    if method is SCRATCH:
        base = GPT(base.config, seed=seed + 1)
    values = {k: v for k, v in setting.items() if k != "lr"}
    if "seed" in {f.name for f in method.fields()}:
        values["seed"] = seed
    return get_peft_model(base, method.make_config(**values))


def selected_settings(path=SELECTED) -> dict:
    """{task: {method key: setting}} as the last sweep wrote it."""
    path = Path(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no selected settings at {path}; run `minituner sweep` first")
    settings = read_json(path)
    keys = [m.key for m in rows()]
    unknown = sorted({f"{task}/{key}" for task, chosen in settings.items() for key in chosen if key not in keys}
                     | {task for task in settings if task not in TASKS})
    if unknown:
        raise refuse(ValueError, "selected", f"{path} names what minituner does not know: {', '.join(unknown)} "
                                             f"(tasks: {', '.join(TASKS)}; methods: {', '.join(keys)})")
    return settings


def run(method: Method, setting: dict, base: GPT, data, seed: int, device: str = "cpu", progress: bool = False,
        steps: int | None = None, batch_size: int = BATCH):
    """Train one method at one setting with one seed, early-stopping on validation (steps: at most,
    default the task's STEPS). Returns (model, history, validation scores); the test split is not touched."""
    model = build(method, base, setting, seed)
    hist = train(model, data, steps=steps or STEPS[data.name], lr=setting["lr"], batch_size=batch_size,
                 seed=seed, device=device, eval_every=EVAL_EVERY, patience=PATIENCE, progress=progress)
    _step, loss, accuracy = max(hist.val, key=best_score)  # the weights train() restored: no second evaluation
    return model, hist, {"loss": loss, "accuracy": accuracy}


@functools.cache
def _loaded(task: str):
    """The base and the task, once per process (the methods copy the base; nothing changes it)."""
    return load_base(), make_task(task)


@functools.cache
def base_scores(task: str) -> dict:
    """What the base itself scores, once per process: the task's test split (before any fine-tuning)
    and the fact probe (every fact of the world, asked both ways in the corpus's words)."""
    base, data = _loaded(task)
    return {"test acc": evaluate(base, data.test)["accuracy"], "probe acc": evaluate(base, make_fact_probe())["accuracy"]}


def job(task: str, key: str, setting: dict, seed: int, steps: int | None, device: str, score: bool) -> dict:
    """One run (in a worker process): train, score validation; with score, also the test split
    (once), the parameter counts, the step memory, and on relabel where the swap landed."""
    with fused():  # the faster equivalents, the same numbers: the comparison's tables were made so
        base, data = _loaded(task)
        model, hist, val = run(row(key), setting, base, data, seed, device, steps=steps)
        out = {"val acc": val["accuracy"], "val loss": val["loss"], "best step": hist.best_step,
               "train s": hist.seconds, "curve": hist.val}
        if score:  # the one look at test, after training and selection
            test = evaluate(model, data.test)
            out |= {"test acc": test["accuracy"], "test loss": test["loss"]}
            if key != SCRATCH.key:  # what fine-tuning forgot: the base's facts, asked with the adapter active
                out["forgetting"] = base_scores(task)["probe acc"] - evaluate(model, make_fact_probe())["accuracy"]
            if task == "relabel":
                out |= relabel_scores(model, data)
            model.to("cpu")
            out["trainable"], out["total"] = parameter_counts(model)
            batch = data.train.batch(BATCH, torch.Generator().manual_seed(0))
            out["step memory bytes"] = sum(measure_step(model, batch).values())
    return out


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) elements; a 4-bit weight counts as its in × out elements, as PEFT counts it."""
    trainable, total = count_parameters(model)
    return trainable, total + numel_4bit(model)


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")


def check_out_dir(out: Path) -> None:
    """Refuse, before any training, an output folder that cannot be written (a file, under a file, no permission)."""
    try:
        check_writable(out)
    except ValueError as e:
        raise ValueError(f"out={str(out)!r}: {e}") from None


def sweep(task: str = "classify", seed: int = 0, device: str = "cpu", out="runs/sweep", progress: bool = True,
          methods: list[str] | None = None, steps: int | None = None, jobs: int | None = None) -> dict:
    """Train every method at every setting of its grid on `task`; choose, per method, the setting
    with the best validation accuracy (then the lower validation loss). Writes sweep_<task>.md and
    selected.json (merged with what is there) into `out`; returns {method key: chosen setting}."""
    check_task(task)
    check_device(device)  # before any worker starts
    if methods and len(set(methods)) < len(methods):
        raise refuse(ValueError, "methods", f"methods {','.join(methods)} names a method twice; each is swept once")
    chosen_methods = [row(k) for k in methods] if methods else rows()
    out = Path(out)
    check_out_dir(out)
    steps = steps or STEPS[task]
    settings = [(m, s) for m in chosen_methods for s in m.settings()]

    def report(i, r):
        if progress:
            m, s = settings[i]
            words = setting_text({"key": m.key, "setting": m.describe(s)})
            print(f"{padded(m.label)} {words:38s} "
                  + _("val acc {acc:.3f} val loss {loss:.4f}").format(acc=r["val acc"], loss=r["val loss"]), flush=True)

    results = run_all(job, [(task, m.key, s, seed, steps, device, False) for m, s in settings],
                      jobs or default_jobs(), report)
    table, best = [], {}
    for (m, s), r in zip(settings, results):
        table.append({"method": m.label, "setting": m.describe(s), "val acc": r["val acc"], "val loss": r["val loss"],
                      "best step": r["best step"], "train s": r["train s"], "chosen": ""})
        key = best_score((r["best step"], r["val loss"], r["val acc"]))  # the order train() stops by
        if m.key not in best or key > best[m.key][0]:
            best[m.key] = (key, s, len(table) - 1)
    chosen = {k: s for k, (_key, s, _i) in best.items()}
    for _key, _s, i in best.values():
        table[i]["chosen"] = "✓"
    header = (f"Sweep on `{task}`: every setting trained once (seed {seed}, at most {steps} steps of batch {BATCH}, "
              f"validation every {EVAL_EVERY} steps, patience {PATIENCE}, keeping the best validation accuracy); "
              f"chosen (✓): the best validation accuracy, ties broken by the lower validation loss. The test "
              f"split is not used. train s: one thread per run, runs side by side.\n\n")
    cols = ["method", "setting", "val acc", "val loss", "best step", "train s", "chosen"]
    with speaking("en"):  # the sweep's record, in English whatever the run speaks
        body = markdown_table(table, cols)
    atomic_write(out / f"sweep_{task}.md", lambda tmp: Path(tmp).write_text(header + body + "\n"))
    merged = selected_settings(out / "selected.json") if (out / "selected.json").exists() else {}
    merged[task] = merged.get(task, {}) | chosen
    atomic_write(out / "selected.json", lambda tmp: Path(tmp).write_text(json.dumps(merged, indent=2) + "\n"))
    return chosen


def compare(task: str = "classify", seeds: int = 1, seed: int = 0, device: str = "cpu", out="runs/compare",
            selected=SELECTED, progress: bool = True, steps: int | None = None, jobs: int | None = None) -> list[dict]:
    """Train every method at its selected setting for seeds seed..seed+seeds-1; write table.md,
    results.json, curves.png, tradeoff.png and forgetting.png into `out`; return the rows (mean ± std).
    forgetting: the base's fact-probe accuracy minus the fine-tuned model's (adapter active), per seed."""
    check_task(task)
    check_device(device)  # before any worker starts
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    out = Path(out)
    check_out_dir(out)
    settings = selected_settings(selected)
    if task not in settings:
        raise ValueError(f"{selected} has no settings for task {task!r}; run `minituner sweep --task {task}`")
    missing = [m.key for m in rows() if m.key not in settings[task]]
    if missing:
        raise ValueError(f"{selected} has no {task!r} settings for {missing}; run "
                         f"`minituner sweep --task {task} --methods {','.join(missing)}`")
    steps = steps or STEPS[task]
    calls = [(task, m.key, settings[task][m.key], s, steps, device, True) for m in rows()
             for s in range(seed, seed + seeds)]

    def report(i, r):
        if progress:
            line = _("{method} seed {seed}: val acc {val:.3f}  test acc {test:.3f}").format(
                method=padded(row(calls[i][1]).label), seed=calls[i][3], val=r["val acc"], test=r["test acc"])
            if "forgetting" in r:
                line += "  " + _("forgetting {forgetting:.3f}").format(forgetting=r["forgetting"])
            print(line + "  " + _("({seconds:.1f} s)").format(seconds=r["train s"]), flush=True)

    results = run_all(job, calls, jobs or default_jobs(), report)
    table, curves = [], {}
    for j, method in enumerate(rows()):
        runs = results[j * seeds:(j + 1) * seeds]
        cols = (("val acc", "test acc", "test loss", "train s") + (RELABEL_COLS if task == "relabel" else ())
                + (("forgetting",) if method is not SCRATCH else ()))
        table.append({"method": method.label, "key": method.key,
                      "setting": method.describe(settings[task][method.key]),
                      "trainable params": runs[0]["trainable"],
                      "trainable %": 100 * runs[0]["trainable"] / runs[0]["total"], **aggregate(runs, cols),
                      "step memory bytes": runs[0]["step memory bytes"],
                      "runs": [{k: r[k] for k in cols} for r in runs]})
        curves[method.label] = [r["curve"] for r in runs]  # figures.method_name shows it
    meta = {"task": task, "seeds": seeds, "seed": seed, "device": device, "steps": steps, "base": base_scores(task)}
    write_task(table, meta, out, {"batch": BATCH, "eval_every": EVAL_EVERY, "patience": PATIENCE})
    plot_compare(table, curves, meta, out)
    plot_forgetting(table, meta, out)
    return table


def compare_all(seeds: int = 1, seed: int = 0, device: str = "cpu", out="runs/compare", selected=SELECTED,
                progress: bool = True, steps: int | None = None, jobs: int | None = None) -> dict[str, list[dict]]:
    """compare() on every task (each with its own selected settings) into out/<task>/, then
    out/tasks.png and out/results.md: test accuracy by method and task."""
    out = Path(out)
    check_out_dir(out)
    missing = [t for t in TASKS if t not in selected_settings(selected)]
    if missing:
        raise ValueError(f"{selected} has no settings for {missing}; run `minituner sweep --task ...` for each")
    results = {t: compare(t, seeds, seed, device, out / t, selected, progress, steps, jobs) for t in TASKS}
    plot_tasks(results, seeds, out / "tasks.png")
    write_summary(out)
    return results
