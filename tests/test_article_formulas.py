"""The reader's checklist: every formula of the article, checked numerically on the real model.

The same checks print as a table with `minituner verify`.
"""

import pytest

from minituner.verify import all_checks

CHECKS = all_checks()


@pytest.mark.parametrize("c", CHECKS, ids=[f"{c.section} {c.fn.__name__}" for c in CHECKS])
def test_formula_holds(c):
    residual, tolerance = c.fn()
    assert residual <= tolerance, f"{c.section} {c.formula}: residual {residual:.3g} > {tolerance:.0g}"


def test_verify_command_prints_a_table_and_exits_zero(capsys):
    from minituner.cli import main

    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "Y = WX" in out and f"{len(CHECKS)} of {len(CHECKS)} formulas hold" in out
