"""The reader's checklist: every formula of the article, checked numerically on the real model.

The same checks print as a table with `minituner verify`.
"""

import contextlib
import io
import re

import pytest

from minituner.verify import all_checks

CHECKS = all_checks()


VERIFY = pytest.mark.xdist_group("verify_output")  # one worker runs every check, once


@pytest.fixture(scope="module")
def verify_run() -> tuple[int, str]:
    """`minituner verify`: its exit status, and what it prints: a row per check (its residual, its tolerance, pass
    or FAIL). It runs every check once, and every test here reads it."""
    from minituner.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["verify"])
    return code, out.getvalue()


@VERIFY
@pytest.mark.parametrize("c", CHECKS, ids=[f"{c.section} {c.fn.__name__}" for c in CHECKS])
def test_formula_holds(c, verify_run):
    rows = [re.split(r" {2,}", line) for line in verify_run[1].splitlines()]
    row = [r for r in rows if len(r) == 6 and r[2] == c.formula]
    assert len(row) == 1 and row[0][5] == "pass", f"{c.section} {c.formula}: {row}"  # residual <= tolerance


@VERIFY
def test_verify_command_prints_a_table_and_exits_zero(verify_run):
    code, out = verify_run
    assert code == 0 and "Y = WX" in out and f"{len(CHECKS)} of {len(CHECKS)} formulas hold" in out


@VERIFY
def test_each_check_says_whether_the_article_states_it(verify_run):
    from minituner.verify import check

    sources = {c.formula: c.source for c in CHECKS}
    assert set(sources.values()) == {"article", "added"}
    assert sources["Y = WX (a layer's output is its matrix times the input)"] == "article"
    assert sources["prompt tuning with k = 0 virtual tokens is the base, exactly"] == "added"
    with pytest.raises(ValueError, match="source"):
        check("§1", "a check with no source", source="paper")
    lines = verify_run[1].splitlines()
    assert lines[0].split()[:3] == ["article", "source", "formula"]
    n_article = sum(s == "article" for s in sources.values())
    assert f"({n_article} stated by the article, {len(CHECKS) - n_article} added by minituner)" in lines[-1]
