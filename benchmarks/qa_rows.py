"""How many training rows make `qa` learnable, and which answers: validation accuracy against
the fact kinds per animal that the training split shows (2 to 5 of 6; each fact asked forwards
and backwards, so 64 rows per kind), for full fine-tuning and LoRA at their settings selected on
qa; and, at 4 kinds, the same questions with answers that restate the whole fact
("q: what does the cat eat?" -> " the cat eats fish." instead of " it eats fish.";
"q: which animal eats fish?" -> " the cat eats fish." instead of " the cat.").

    python benchmarks/qa_rows.py [--out docs/compare/qa_rows.md]

The validation and test animals stay the same; only their held-out kinds shrink as more are
shown (shown 2: val 80 rows, 3: 60, 4: 40, 5: 20), so the larger settings are noisier.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minituner.checkpoint import atomic_write, load_base
from minituner.data import make_task, task_examples
from minituner.dataset import Dataset, encode_examples
from minituner.experiments import STEPS, row, run, selected_settings
from minituner.jobs import default_jobs, run_all
from minituner.report import markdown_table

SHOWN = (2, 3, 4, 5)


def restating(data: Dataset) -> Dataset:
    """The same questions and splits, every answer the whole fact in the corpus's words. The rows
    come in pairs, forwards then backwards (" it eats fish.", " the cat."), and the corpus's
    sentence is the one with "it" named: " the cat" + " eats fish." (data.FORWARD, data.CLAUSE)."""
    tok, splits = data.tokenizer, {}
    for split, rows in task_examples(data.world, "qa").items():
        splits[split] = []
        for (forwards, it_does), (backwards, the_animal) in zip(rows[0::2], rows[1::2]):
            fact = the_animal.removesuffix(".") + it_does.removeprefix(" it")
            splits[split] += [(forwards, fact), (backwards, fact)]
    return Dataset("qa", *(encode_examples(s, splits[s], tok) for s in ("train", "val", "test")), tok, data.world)


def one(key: str, shown: int, answers: str, hp: dict) -> dict:
    data = make_task("qa", shown=shown)
    if answers == "the whole fact":
        data = restating(data)
    _, hist, val = run(row(key), hp, load_base(), data, seed=0, steps=STEPS["qa"])
    half = val["correct"]  # rows alternate: forwards, backwards
    return {"method": row(key).label, "answers": answers, "kinds shown": shown, "train rows": len(data.train),
            "val rows": len(data.val), "val acc": val["accuracy"],
            "forwards": sum(half[0::2]) / len(half[0::2]), "backwards": sum(half[1::2]) / len(half[1::2]),
            "best step": hist.best_step}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="also write the table as Markdown here")
    p.add_argument("--jobs", type=int, default=default_jobs())
    args = p.parse_args(argv)
    qa = selected_settings()["qa"]
    calls = [(key, shown, "what was asked", qa[key]) for key in ("full", "lora") for shown in SHOWN]
    calls += [(key, 4, "the whole fact", qa[key]) for key in ("full", "lora")]
    rows = run_all(one, calls, args.jobs)
    table = markdown_table(rows)
    print(table)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(
            "`qa` learnability against training rows and answer form (seed 0, settings selected on qa with 4 kinds "
            "shown; early stopping on validation accuracy; forwards/backwards: validation accuracy on each half):\n\n"
            + table + "\n"))


if __name__ == "__main__":
    main()
