"""Where relabelling landed (the article's §4 step 3: what was called a cat is now a dog, and a dog a cat).

Accuracy on four groups of rows: the cat/dog rows of the training split ("swap, seen": the new name
on descriptions it trained on), of the test split ("swap, unseen": the new name on descriptions it
never saw; "old name, unseen": still the old one, scored against classify's answers to the same
prompts), and the other animals' test rows ("others, test": labels that did not change, so what the
swap cost). One copy, called by the comparison and by the lessons that relabel.
"""

from __future__ import annotations

from ..data import make_task
from ..train import evaluate

RELABEL_COLS = ("swap, seen", "swap, unseen", "old name, unseen", "others, test")
SWAPPED = {" cat.", " dog."}  # in relabel only cat and dog rows answer cat or dog


def relabel_scores(model, data) -> dict:
    """{column of RELABEL_COLS: accuracy} for a model trained on the relabel task `data`."""
    old = make_task("classify").test

    def acc(split, rows, truth=None):
        correct = evaluate(model, truth or split)["correct"]
        picked = [c for c, r in zip(correct, rows) if r]
        return sum(picked) / len(picked)

    seen = [a in SWAPPED for _, a in data.train.examples]
    unseen = [a in SWAPPED for _, a in data.test.examples]
    if [p for p, _ in old.examples] != [p for p, _ in data.test.examples]:
        raise ValueError("relabel_scores needs the relabel task: its test prompts are classify's, in order")
    return {"swap, seen": acc(data.train, seen), "swap, unseen": acc(data.test, unseen),
            "old name, unseen": acc(data.test, unseen, truth=old),
            "others, test": acc(data.test, [not u for u in unseen])}
