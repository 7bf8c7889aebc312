"""One board run in its own process: `python -m minituner.board.worker RUN_FOLDER` runs
`minituner finetune` itself (cli.main with the argv in RUN_FOLDER/settings.json), and writes what
train() does to RUN_FOLDER/log.jsonl as it happens, one JSON object a line:

    {"step": 12, "loss": 0.41}                                    each training step
    {"eval": 25, "loss": 0.30, "accuracy": 0.62, "samples": [...]}  each validation, with greedy answers
    {"test": {"loss": 0.28, "accuracy": 0.66}}                      the final test score

It listens without changing the command: train()'s History is given lists that also write what is
appended to them, and evaluate() is wrapped to write its scores (and, on the validation split, the
model's answers to its first prompts). The wrappers are set before minituner.cli is imported, so
the command finds them whether it calls minituner.evaluate or imported it by name.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import minituner
from minituner.tokenizer import CharTokenizer

training = importlib.import_module("minituner.train")  # the module (minituner.train is the function)

SAMPLES = 3  # validation prompts answered at each evaluation


class Log:
    def __init__(self, path: Path):
        self.file = path.open("a", encoding="utf-8")

    def write(self, event: dict) -> None:
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()


class Logged(list):
    """A list that writes each appended item to the log as event(item)."""

    def __init__(self, log: Log, event):
        super().__init__()
        self.log, self.event = log, event

    def append(self, item) -> None:
        super().append(item)
        self.log.write(self.event(item))


def listen(log: Log) -> None:
    """Make train() and evaluate() in this process write to log (see the module docstring)."""
    evaluate, tok = training.evaluate, CharTokenizer()  # the board trains the shipped base: its tokenizer

    class History(training.History):
        samples = []  # the answers at the last validation

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.losses = Logged(log, lambda loss: {"step": len(self.losses), "loss": loss})
            self.val = Logged(log, lambda v: {"eval": v[0], "loss": v[1], "accuracy": v[2], "samples": self.samples})

    def listened(model, split, *args, **kwargs):
        out = evaluate(model, split, *args, **kwargs)
        if split.name == "test":
            log.write({"test": {"loss": out["loss"], "accuracy": out["accuracy"]}})
        else:
            was_training = model.training
            model.eval()
            History.samples = [{"prompt": p, "expected": a, "answer": training.answer(model, tok, p)}
                               for p, a in split.examples[:SAMPLES]]
            model.train(was_training)
        return out

    training.History, training.evaluate, minituner.evaluate = History, listened, listened


def main(folder: str) -> int:
    folder = Path(folder)
    argv = json.loads((folder / "settings.json").read_text(encoding="utf-8"))["argv"]
    listen(Log(folder / "log.jsonl"))
    from minituner import cli  # after listen(): see the module docstring

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
