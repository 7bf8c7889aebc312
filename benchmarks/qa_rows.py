"""How many training rows make `qa` learnable: validation accuracy against the fact kinds per
animal that the training split shows (2 to 5 of 6; each fact asked forwards and backwards, so
64 rows per kind), for full fine-tuning and LoRA at their settings selected on qa.

    python benchmarks/qa_rows.py [--out docs/compare/qa_rows.md]

The validation and test animals stay the same; only their held-out kinds shrink as more are
shown (shown 2: val 80 rows, 3: 60, 4: 40, 5: 20), so the larger settings are noisier.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minituner.checkpoint import atomic_write, load_base
from minituner.compare import BY_KEY, STEPS, run, selected_settings
from minituner.data import make_task
from minituner.jobs import default_jobs, run_all
from minituner.report import markdown_table

SHOWN = (2, 3, 4, 5)


def one(key: str, shown: int, hp: dict) -> dict:
    data = make_task("qa", shown=shown)
    _, hist, val = run(BY_KEY[key], hp, load_base(), data, seed=0, steps=STEPS["qa"])
    return {"method": BY_KEY[key].name, "kinds shown": shown, "train rows": len(data.train),
            "val rows": len(data.val), "val acc": val["accuracy"], "best step": hist.best_step}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="also write the table as Markdown here")
    p.add_argument("--jobs", type=int, default=default_jobs())
    args = p.parse_args(argv)
    qa = selected_settings()["qa"]
    calls = [(key, shown, qa[key]) for key in ("full", "lora") for shown in SHOWN]
    rows = run_all(one, calls, args.jobs)
    table = markdown_table(rows)
    print(table)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(
            "`qa` learnability against training rows (seed 0, settings selected on qa with 4 kinds shown; "
            "early stopping on validation accuracy):\n\n" + table + "\n"))


if __name__ == "__main__":
    main()
