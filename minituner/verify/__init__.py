"""``minituner verify``: every formula of the article, checked numerically on the real model.

Each section module registers its checks with ``@check``; a check returns the
largest residual it found and the tolerance it must be under. The same checks
run in tests/test_article_formulas.py.

Each check says where it comes from: ``source="article"`` for a statement the article
itself makes (a formula of §1 or §3.2, a step of §4), ``source="added"`` for a check the
project adds to pin down what the article leaves out or gets wrong (initialisations, caches,
file round trips, the errata in docs/errata.md). ``minituner verify`` prints it as a column.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# One module per part of the article, in the article's order.
SECTIONS = ["linear", "prompt", "prefix", "lora", "intrinsic", "freeze", "vectors", "dora", "qlora"]


@dataclass
class Check:
    section: str  # where in the article, e.g. "§1"
    formula: str  # the formula, as the article (or the paper) writes it
    fn: Callable[[], tuple[float, float]]  # () -> (residual, tolerance)
    source: str = "added"  # "article": the article's own statement; "added": a check the project adds


SOURCES = ("article", "added")


CHECKS: list[Check] = []


def inputs(n: int = 8):
    """n real prompts (n, T) of the classify task's validation split: the inputs the checks run on."""
    from ..data import make_task

    return make_task("classify").val.x[:n]


def check(section: str, formula: str, source: str = "added"):
    """Register a check: the decorated function returns (residual, tolerance).
    source: "article" if the article states it, "added" if the project adds it."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES} (the article's statement, or a check the project adds), "
                         f"got {source!r}")

    def register(fn):
        CHECKS.append(Check(section, formula, fn, source))
        return fn

    return register


def all_checks() -> list[Check]:
    for name in SECTIONS:
        importlib.import_module(f"{__name__}.{name}")
    return CHECKS


def run(verbose: bool = True) -> bool:
    """Run every check, print the table, return True if all pass."""
    ok = True
    rows = []
    for c in all_checks():
        residual, tol = c.fn()
        passed = residual <= tol
        ok &= passed
        rows.append((c.section, c.source, c.formula, f"{residual:.2e}", f"{tol:.0e}", "pass" if passed else "FAIL"))
    if verbose:
        head = ("article", "source", "formula", "residual", "tolerance", "")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        for r in [head] + rows:
            print("  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip())
        n_article = sum(r[1] == "article" for r in rows)
        print(f"\n{sum(r[-1] == 'pass' for r in rows)} of {len(rows)} formulas hold "
              f"({n_article} stated by the article, {len(rows) - n_article} added by minituner)")
    return ok
