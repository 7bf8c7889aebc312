"""The reader's checklist: every formula of the article, checked numerically on the real model.

The same checks print as a table with `minituner verify`.
"""

import contextlib
import io

import pytest

from minituner.verify import all_checks

CHECKS = all_checks()


@pytest.fixture(scope="module")
def verify_output() -> str:
    """What `minituner verify` prints (it runs every check once, for both tests that read it)."""
    from minituner.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["verify"]) == 0
    return out.getvalue()


@pytest.mark.parametrize("c", CHECKS, ids=[f"{c.section} {c.fn.__name__}" for c in CHECKS])
def test_formula_holds(c):
    residual, tolerance = c.fn()
    assert residual <= tolerance, f"{c.section} {c.formula}: residual {residual:.3g} > {tolerance:.0g}"


@pytest.mark.xdist_group("verify_output")  # one worker runs the fixture, once
def test_verify_command_prints_a_table_and_exits_zero(verify_output):
    out = verify_output
    assert "Y = WX" in out and f"{len(CHECKS)} of {len(CHECKS)} formulas hold" in out


@pytest.mark.xdist_group("verify_output")  # one worker runs the fixture, once
def test_each_check_says_whether_the_article_states_it(verify_output):
    from minituner.verify import check

    sources = {c.formula: c.source for c in CHECKS}
    assert set(sources.values()) == {"article", "added"}
    assert sources["Y = WX (a layer's output is its matrix times the input)"] == "article"
    assert sources["prompt tuning with k = 0 virtual tokens is the base, exactly"] == "added"
    with pytest.raises(ValueError, match="source"):
        check("§1", "a check with no source", source="paper")
    lines = verify_output.splitlines()
    assert lines[0].split()[:3] == ["article", "source", "formula"]
    n_article = sum(s == "article" for s in sources.values())
    assert f"({n_article} stated by the article, {len(CHECKS) - n_article} added by minituner)" in lines[-1]
