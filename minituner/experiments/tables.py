"""The comparison's text: each task's table.md and results.json, the summaries over tasks
(results.md: test accuracy and forgetting), and the README's results block — all written from
results.json, never typed.

The README (and README.zh-CN) hold the summary between two markers; ``minituner compare --task all
--seeds 3 --out docs/compare --update-readme`` rewrites it, and tests/test_docs.py fails when the
block differs from what docs/compare/*/results.json give. Each README's block is in its README's language
(README.zh-CN's captions, headers and method names are messages of minituner/locale/zh/experiments.po,
looked up whatever language the run speaks); table.md and results.md are English.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..checkpoint import atomic_write
from ..data import TASKS
from ..files import read_json
from ..i18n import speaking, translate
from ..report import markdown_table
from .aggregate import pm
from .relabel import RELABEL_COLS

BEGIN, END = "<!-- results: generated from docs/compare/*/results.json", "<!-- /results -->"
# the summary's captions, messages of the catalogue (minituner/locale/zh/experiments.po) like its headers
CAPTIONS = ("Test accuracy, mean ± std over the seeds:",
            "Forgetting: the base's fact-probe accuracy minus the fine-tuned model's (adapter active), "
            "mean ± std over the seeds; lower forgets less:")


def write_task(rows: list[dict], meta: dict, out: Path, budget: dict) -> None:
    """out/table.md (mean ± std over the seeds) and out/results.json (every run, every column); budget: the
    protocol's batch, eval_every and patience, for the table's header."""
    seeds = meta["seeds"]
    table = [{"method": r["method"], "setting": r["setting"], "trainable params": r["trainable params"],
              "trainable %": r["trainable %"], **{c: pm(r, c, seeds) for c in ("val acc", "test acc", "test loss")},
              "forgetting": pm(r, "forgetting", seeds) if "forgetting" in r else "—",
              "train s": f"{r['train s']:.1f}", "step memory MB": f"{r['step memory bytes'] / 1e6:.1f}"}
             for r in rows]
    header = (f"Task `{meta['task']}`: {seeds} seed(s) from {meta['seed']}, at most {meta['steps']} steps of batch "
              f"{budget['batch']}, early stopping on validation accuracy (every {budget['eval_every']} steps, "
              f"patience {budget['patience']}), "
              f"device {meta['device']}; settings chosen on validation by `minituner sweep`"
              + ("; mean ± std over the seeds" if seeds > 1 else "") +
              ". forgetting: the base's fact-probe accuracy "
              f"({meta['base']['probe acc']:.3f}) minus the fine-tuned model's, adapter active. "
              "train s: one thread per run, runs side by side.\n\n")
    with speaking("en"):  # table.md is the comparison's record, in English whatever the run speaks
        body = markdown_table(table)
        if meta["task"] == "relabel":
            swap = [{"method": r["method"], **{c: pm(r, c, seeds) for c in RELABEL_COLS}} for r in rows]
            body += ("\n\nWhere the swap landed (accuracy; seen: the cat/dog descriptions of the training split; "
                     "unseen: the test split's cat/dog rows, with the new name or still the old one; others: the "
                     "other animals' test rows, whose labels did not change):\n\n" + markdown_table(swap))
    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(header + body + "\n"))
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(
        json.dumps({**meta, "rows": rows}, indent=1, default=float) + "\n"))


def load_results(out) -> dict[str, dict]:
    """{task: results.json} for every task that out/<task>/results.json has."""
    found = {t: Path(out) / t / "results.json" for t in TASKS}
    return {t: read_json(p) for t, p in found.items() if os.path.lexists(p)}


def summary(out, lang: str = "en", col: str = "test acc") -> str:
    """col ("test acc" or "forgetting") by method and task (mean ± std over the seeds), from
    out/<task>/results.json, in language lang (headers and method names through the catalogue); a method
    without the column (from scratch has no forgetting) is left out."""
    results = load_results(out)
    if not results:
        raise FileNotFoundError(f"no <task>/results.json under {out}; run `minituner compare --task all --out {out}`")
    first = next(iter(results.values()))
    rows = []
    for i, r in enumerate(first["rows"]):
        if col in r:
            rows.append({"method": r["method"], "trainable % (classify)": r["trainable %"],
                         **{f"`{t}`": pm(res["rows"][i], col, res["seeds"]) for t, res in results.items()}})
    with speaking(lang):
        return markdown_table(rows)


def summaries(out, lang: str = "en") -> str:
    """Test accuracy, then forgetting, each under its caption, in language lang."""
    accuracy, forgetting = (translate(c, lang) for c in CAPTIONS)
    return f"{accuracy}\n\n{summary(out, lang)}\n\n{forgetting}\n\n{summary(out, lang, 'forgetting')}"


def write_summary(out) -> None:
    """out/results.md: the summary table and what it was made with."""
    seeds = {res["seeds"] for res in load_results(out).values()}
    text = (f"By method and task, over {', '.join(map(str, sorted(seeds)))} seed(s); "
            f"each task's full table is <task>/table.md.\n\n{summaries(out)}\n")
    atomic_write(Path(out) / "results.md", lambda tmp: Path(tmp).write_text(text))


def readme_block(out, lang: str) -> str:
    """The README's results block (markers included) for language lang ("en" or "zh")."""
    return f"{BEGIN} by `minituner compare --update-readme`; do not edit -->\n{summaries(out, lang)}\n{END}"


def update_readme(path, out, lang: str) -> None:
    """Rewrite the results block of the README at path from out's results.json files."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no results block ({BEGIN!r} … {END!r}) to rewrite")
    new = text[:start] + readme_block(out, lang) + text[end + len(END):]
    atomic_write(path, lambda tmp: Path(tmp).write_text(new, encoding="utf-8"))
