"""The one rule for verdicts over seeds (minituner.verdict): paired by seed, n ≥ 3, one sign, mean > t·se."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minituner.i18n import set_language, translate
from minituner.verdict import MIN_SEEDS, compare, t_quantile, trend

# Student's t, two-sided 95% (p = 0.975), from the published tables
PUBLISHED = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 19: 2.093, 29: 2.045, 100: 1.984}


@pytest.mark.parametrize("df", PUBLISHED)
def test_t_quantile_matches_the_published_table(df):
    assert t_quantile(df) == pytest.approx(PUBLISHED[df], abs=6e-4)


def test_t_quantile_tends_to_the_normal_one():
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError, match="df >= 1"):
        t_quantile(0)


values = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False).map(lambda v: round(v, 3))
seeds = st.lists(st.tuples(values, values), min_size=0, max_size=8)


def as_runs(pairs):
    return {s: a for s, (a, _) in enumerate(pairs)}, {s: b for s, (_, b) in enumerate(pairs)}


@given(seeds)
def test_symmetric(pairs):
    a, b = as_runs(pairs)
    ab, ba = compare("A", a, "B", b, "acc"), compare("B", b, "A", a, "acc")
    assert ab.direction == (None if ba.direction is None else -ba.direction)
    assert ab.seeds == ba.seeds == len(pairs)
    assert ab.margin == ba.margin or math.isnan(ab.margin) and math.isnan(ba.margin)


@given(seeds)
def test_never_a_direction_with_too_few_seeds_or_mixed_signs(pairs):
    a, b = as_runs(pairs)
    v = compare("A", a, "B", b, "acc")
    gaps = [x - y for x, y in pairs]
    if len(pairs) < MIN_SEEDS:
        assert v.direction is None and "too few" in v.en() and "不足以下结论" in v.zh()
    elif not (all(g > 0 for g in gaps) or all(g < 0 for g in gaps)):
        assert v.direction == 0 and "within noise" in v.en()
    if v.direction:
        assert all(g * v.direction > 0 for g in gaps) and abs(v.mean_gap) > v.margin


@given(seeds)
def test_the_words_say_how_many_seeds(pairs):
    a, b = as_runs(pairs)
    v = compare("A", a, "B", b, "acc")
    assert f"{len(pairs)} seed" in v.en() and f"{len(pairs)} 个随机种子" in v.zh()


def test_paired_on_the_common_seeds_only():
    v = compare("A", {0: 0.5, 1: 0.6, 2: 0.7, 7: 9.0}, "B", {0: 0.4, 1: 0.5, 2: 0.6, 8: -9.0}, "acc")
    assert v.seeds == 3 and v.mean_gap == pytest.approx(0.1) and v.direction == 1  # sd 0: any positive mean


def test_the_threshold_is_t_times_the_standard_error_exactly():
    # gaps 1, 1, 1 + 3x: mean 1 + x, sd √3·x, se x; above iff 1 + x > t₂·x, i.e. x < 1 / (t₂ − 1)
    edge = 1 / (t_quantile(2) - 1)
    def verdict(x):
        return compare("A", {0: 1.0, 1: 1.0, 2: 1.0 + 3 * x}, "B", {0: 0.0, 1: 0.0, 2: 0.0}, "acc").direction
    assert verdict(edge * 0.999) == 1
    assert verdict(edge * 1.001) == 0
    v = compare("A", {0: 1.0, 1: 1.0, 2: 1.0 + 3 * edge}, "B", {0: 0.0, 1: 0.0, 2: 0.0}, "acc")
    assert v.margin == pytest.approx(t_quantile(2) * edge) and v.mean_gap == pytest.approx(1 + edge)


def test_equal_runs_are_within_noise_and_words_are_the_callers():
    same = {0: 0.3, 1: 0.4, 2: 0.5}
    assert compare("A", same, "B", same, "acc").direction == 0
    v = compare("lr 1e-3", {0: 10, 1: 12, 2: 11}, "lr 1e-4", {0: 30, 1: 31, 2: 33}, "steps to target",
                words=("slower than", "faster than"))
    assert v.direction == -1 and v.en().startswith("lr 1e-3 faster than lr 1e-4 on steps to target over 3 seeds")
    assert f"每次都{translate('faster than', 'zh')} lr 1e-4" in v.zh()  # the words, the names: the catalogue's
    assert compare("A", {0: 1, 1: 1.1, 2: 1.2}, "B", {0: 0, 1: 0, 2: 0}, "val acc").zh() == (
        "在 3 个随机种子上，A 的验证集准确率每次都高于 B（平均差 +1.1，95% 界限 0.248）")


def test_a_verdict_speaks_the_runs_language():
    v = compare("A", {0: 1, 1: 1.1, 2: 1.2}, "B", {0: 0, 1: 0, 2: 0}, "val acc")
    set_language("zh")
    assert str(v) == v.zh() and f"{v}" == v.zh()
    set_language("en")
    assert str(v) == v.en() == "A above B on val acc over 3 seeds, on every seed (mean gap +1.1, 95% margin 0.248)"


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        compare("A", {0: math.inf, 1: 1, 2: 1}, "B", {0: 0, 1: 0, 2: 0}, "steps")


def test_a_trend_holds_only_when_every_neighbouring_pair_agrees():
    runs = [{0: 1.0, 1: 1.1, 2: 1.2}, {0: 2.0, 1: 2.1, 2: 2.2}, {0: 3.0, 1: 3.1, 2: 3.3}]
    assert trend(["a", "b", "c"], runs, "x").direction == -1  # each below the next
    assert "holds between every neighbouring pair" in trend(["a", "b", "c"], runs, "x").en("rises")
    flat = [runs[0], runs[1], runs[1]]
    t = trend(["a", "b", "c"], flat, "x")
    assert t.direction == 0 and "does not hold" in t.en("rises") and "within noise" in t.en("rises")
    mixed = [runs[0], runs[2], runs[1]]  # up then down: every pair separated, not one direction
    assert trend(["a", "b", "c"], mixed, "x").direction == 0
    two = [{0: 1.0, 1: 1.0}, {0: 2.0, 1: 2.0}]
    assert trend(["a", "b"], two, "x").direction is None and "不足以下结论" in trend(["a", "b"], two, "x").zh("升")
    assert trend(["a", "b"], two, "x").text("rises", "zh") == trend(["a", "b"], two, "x").zh("rises")
    with pytest.raises(ValueError, match="two points"):
        trend(["a"], runs[:1], "x")
