"""``minituner verify``: every formula of the article, checked numerically on the real model.

Each section module registers its checks with ``@check``; a check returns the
largest residual it found and the tolerance it must be under. The same checks
run in tests/test_article_formulas.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# One module per part of the article, in the article's order.
SECTIONS = ["linear", "prompt", "prefix", "lora", "freeze", "vectors", "dora", "qlora"]


@dataclass
class Check:
    section: str  # where in the article, e.g. "§1"
    formula: str  # the formula, as the article (or the paper) writes it
    fn: Callable[[], tuple[float, float]]  # () -> (residual, tolerance)


CHECKS: list[Check] = []


def check(section: str, formula: str):
    """Register a check: the decorated function returns (residual, tolerance)."""

    def register(fn):
        CHECKS.append(Check(section, formula, fn))
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
        rows.append((c.section, c.formula, f"{residual:.2e}", f"{tol:.0e}", "pass" if passed else "FAIL"))
    if verbose:
        head = ("article", "formula", "residual", "tolerance", "")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
        for r in [head] + rows:
            print("  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip())
        print(f"\n{sum(r[4] == 'pass' for r in rows)} of {len(rows)} formulas hold")
    return ok
