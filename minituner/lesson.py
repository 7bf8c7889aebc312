"""What every lesson shares: its presets, and the one train-then-evaluate row its tables are made of.

A lesson (lessons/NN_*.py) runs top to bottom, as a script, in the test harness and as a
notebook. Its presets are read once, at the top:

    args = minituner.lesson.options("Lesson 02", smoke=dict(steps=3), out="runs/02", steps=100, lr=5e-4)

As a script (`python lessons/02_full_finetune.py --smoke --out DIR`) they come from the
command line. In a notebook kernel sys.argv belongs to the kernel, so they are the full
lesson's defaults (or, for a quick run of the notebooks, the words in the environment
variable MINITUNER_LESSON_ARGS, e.g. "--smoke").
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .i18n import LANGUAGES, language, set_language

LESSON_ARGS = "MINITUNER_LESSON_ARGS"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (the process was started by ipykernel_launcher)."""
    return "ipykernel" in sys.modules and Path(sys.argv[0]).name.startswith("ipykernel")


def _parser_type(value):
    if isinstance(value, bool):
        raise TypeError("a lesson flag is a number, a string, a tuple of ints or None; --smoke is the only switch")
    if value is None:  # "not limited" (e.g. rows=None: every row); given, it is an int
        return int
    if isinstance(value, tuple):
        return lambda s: tuple(int(v) for v in s.split(","))  # "1,4,16" -> (1, 4, 16)
    return type(value)


def options(description: str, *, smoke: dict, out: str, argv: list[str] | None = None, **defaults):
    """The lesson's presets: `defaults` (one --flag each), `--smoke` (which applies `smoke` on top),
    `--out` (the folder for figures and files). argv: the words to read; None reads the command
    line, or in a notebook the variable MINITUNER_LESSON_ARGS (empty: the full lesson)."""
    unknown = set(smoke) - set(defaults)
    if unknown:
        raise ValueError(f"smoke sets {sorted(unknown)}, which are not presets of this lesson: {sorted(defaults)}")
    p = argparse.ArgumentParser(description=description)
    for name, value in defaults.items():
        p.add_argument("--" + name.replace("_", "-"), type=_parser_type(value), default=value,
                       help=f"default {value}")
    p.add_argument("--smoke", action="store_true", help=f"the quick preset of the tests: {smoke}")
    p.add_argument("--out", default=out, help="folder for the figures and files this lesson writes")
    p.add_argument("--lang", choices=LANGUAGES, default=None,
                   help="the language of what the lesson prints and draws (default: MINITUNER_LANG, the notebook's "
                        "folder, then the locale; minituner.i18n)")
    if argv is None:
        argv = shlex.split(os.environ.get(LESSON_ARGS, "")) if in_notebook() else sys.argv[1:]
    args = p.parse_args(argv)
    if args.lang:
        set_language(args.lang)
    args.lang = language()
    if args.smoke:
        for name, value in smoke.items():
            setattr(args, name, value)
    args.out = Path(args.out)
    return args


def run(name: str, model, data, steps: int, lr: float | None = None, batch_size: int = 16, seed: int = 0,
        eval_every: int = 0, device: str = "cpu", **train_kwargs):
    """Train `model` (its trainable tensors) on data.train, then one table row about it; (row, History).

    steps=0 trains nothing (the row of a model as it is, e.g. the base: 0 trained). The row: trainable
    count and share, lr, steps, "train loss" (mean of the last ten steps' losses, or the split's loss
    when untrained), accuracy on the training split, loss and accuracy on the test split,
    seconds of training. eval_every > 0 records the validation curve in the History. With a device
    (e.g. "cuda") the model trains there and comes back to the CPU, where the splits are scored.
    """
    from .model import count_parameters
    from .train import evaluate, train

    trainable, total = count_parameters(model)
    trainable = trainable if steps else 0  # nothing was trained, whatever requires_grad says
    hist = None
    if steps:
        if lr is None:
            raise ValueError(f"run {name!r} trains {steps} steps: give it a learning rate lr")
        hist = train(model, data, steps=steps, lr=lr, batch_size=batch_size, seed=seed, eval_every=eval_every,
                     device=device, progress=False, **train_kwargs)
        model.to("cpu")
    ev_train, ev_val, ev_test = evaluate(model, data.train), evaluate(model, data.val), evaluate(model, data.test)
    last = hist.losses[-10:] if hist else []
    row = {"run": name, "trainable": trainable, "trainable %": 100 * trainable / total,
           "lr": lr if steps else "", "steps": steps,
           "train loss": sum(last) / len(last) if last else ev_train["loss"],
           "train acc": ev_train["accuracy"], "val loss": ev_val["loss"], "val acc": ev_val["accuracy"],
           "test loss": ev_test["loss"], "test acc": ev_test["accuracy"],
           "s": hist.seconds if hist else 0.0}
    return row, hist


class MatmulCounter:
    """Count matrix products while a block runs: `with MatmulCounter() as c: model(x)`, then c.n.

    Counts calls of torch.matmul, the @ operator and addmm/bmm (minituner's linear is `b + x Wᵀ`), through
    torch's function-override mode, so nothing in the model has to change to be counted.
    """

    def __enter__(self):
        from torch.overrides import TorchFunctionMode

        counter = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                counter.n += getattr(func, "__name__", "") in ("__matmul__", "matmul", "addmm", "bmm", "baddbmm")
                return func(*args, **(kwargs or {}))

        self.n, self._mode = 0, Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


def reference_rows(base, data, steps: int, full_lr: float, batch_size: int = 16, seed: int = 0, eval_every: int = 0):
    """The two rows every method is read against: the base untrained, and full fine-tuning of it
    for the same steps; ([base row, full row], {"full fine-tuning": History})."""
    from .methods.shortcuts import full

    untrained, _ = run("base, untrained", base, data, steps=0)
    tuned, hist = run("full fine-tuning", full(base), data, steps, full_lr, batch_size=batch_size, seed=seed,
                      eval_every=eval_every)
    return [untrained, tuned], {"full fine-tuning": hist}


def best(rows: list[dict]) -> dict:
    """The row a lesson names best: the highest validation accuracy, ties to the lower validation loss
    (train.best_score's order). The test split is reported beside it, never chosen by."""
    from .train import best_score

    return max(rows, key=lambda r: best_score((0, r["val loss"], r["val acc"])))


class Prose(str):
    """Sentences generated from results: a str that a notebook renders as Markdown (text in a terminal)."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def num(v, digits: int = 3) -> str:
    """A measured value as prose writes it: ints with thousands separators, floats to `digits` decimals."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:.{digits}f}"


def pct(v: float) -> str:
    """A share (0..1) as a whole percentage: 0.774 -> '77%'."""
    return f"{v:.0%}"


def conclusions(*sentences: str) -> Prose:
    """The lesson's conclusions as a bullet list, one sentence each, generated from its results in the run's
    language (each sentence a message of the catalogue, minituner.i18n); show(conclusions(...)) renders it
    in a notebook. A sentence that compares runs over seeds takes its words from minituner.verdict, the one
    rule for verdicts."""
    return Prose("\n".join(f"- {s}" for s in sentences if s))
