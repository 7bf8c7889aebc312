"""One rule that turns a comparison over seeds into words, for every conclusion a lesson draws.

Two runs A and B are measured on the same seeds (the seed fixes the initialisation and the
order of the batches). Paired by seed, the gaps are g_s = A_s − B_s, s = 1..n. The rule:

    A above B  ⇔  n ≥ 3,  every g_s has the same sign (all > 0),  and  mean(g) > t₀.₉₇₅(n − 1) · sd(g) / √n

(sd with n − 1 in the denominator; t₀.₉₇₅(ν) is Student's t quantile, two-sided 95%). "Below" is
the same with the signs turned; anything else is "within noise"; fewer than 3 common seeds give
no verdict at all ("not enough seeds"). A trend over a sweep (lr 1e-4 → 5e-4 → 3e-3: "the
larger, the faster") holds only when the rule gives the same direction between every
neighbouring pair of the sweep.

Every verdict's words, in English and in Chinese (through the message catalogue, minituner.i18n),
say how many seeds it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from .i18n import language, translations

MIN_SEEDS = 3  # fewer paired seeds than this: no verdict


def _t_cdf(t: float, df: int) -> float:
    """P(T ≤ t) for Student's t with df degrees of freedom, t ≥ 0: ½ + ∫₀ᵗ the density (Simpson's rule)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def density(x):
        return c * (1 + x * x / df) ** (-(df + 1) / 2)

    n = 2000  # even; the density is smooth, so the error is far below the quantile's last printed digit
    h = t / n
    inner = sum((4 if i % 2 else 2) * density(i * h) for i in range(1, n))
    return 0.5 + h / 3 * (density(0.0) + inner + density(t))


@cache
def t_quantile(df: int, p: float = 0.975) -> float:
    """Student's t quantile t_p(df) (p = 0.975: the two-sided 95% threshold), by bisection on the CDF."""
    if df < 1:
        raise ValueError(f"Student's t needs df >= 1, got {df}")
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def _seeds(n: int, lang: str) -> str:
    return translations(lang).ngettext("{n} seed", "{n} seeds", n).format(n=n)


def _fmt(v: float) -> str:
    return f"{v:+.3g}"


@dataclass(frozen=True)
class Verdict:
    """What the rule says about A against B on `metric`: direction +1 (A above B), −1 (A below B),
    0 (within noise), None (fewer than MIN_SEEDS paired seeds: no verdict).

    str(verdict) is its sentence in the run's language (minituner.i18n); text(lang) in a chosen one.
    The names, the metric and the words are looked up in the message catalogue like every sentence."""

    a: str
    b: str
    metric: str
    seeds: int
    direction: int | None
    mean_gap: float  # mean of A_s − B_s
    margin: float  # t₀.₉₇₅(n − 1) · sd / √n: the mean gap must exceed it (nan with < 2 seeds)
    words: tuple[str, str] = ("above", "below")  # what A is when the gap is positive / negative

    def text(self, lang: str | None = None) -> str:
        lang = lang or language()
        t = translations(lang).gettext
        names = dict(a=t(self.a), b=t(self.b), metric=t(self.metric), seeds=_seeds(self.seeds, lang))
        if self.direction is None:
            return t("{a} against {b} on {metric}: {seeds}, too few for a verdict (the rule needs {min})").format(
                min=MIN_SEEDS, **names)
        gap = t("mean gap {gap}, 95% margin {margin}").format(gap=_fmt(self.mean_gap), margin=f"{self.margin:.3g}")
        if self.direction == 0:
            return t("{a} and {b} are within noise on {metric} over {seeds} ({gap})").format(gap=gap, **names)
        word = t(self.words[0] if self.direction > 0 else self.words[1])
        return t("{a} {word} {b} on {metric} over {seeds}, on every seed ({gap})").format(word=word, gap=gap, **names)

    def __str__(self) -> str:
        return self.text()

    def en(self) -> str:
        return self.text("en")

    def zh(self) -> str:
        return self.text("zh")


def compare(a: str, a_by_seed: Mapping[int, float], b: str, b_by_seed: Mapping[int, float], metric: str,
            words: tuple[str, str] = ("above", "below")) -> Verdict:
    """The rule's verdict on A against B, paired on the seeds both were measured on ({seed: value}).
    words: what A is when its values are larger / smaller (e.g. ("slower than", "faster than") for steps).
    The names, the metric and the words are English, or already in the run's language; the catalogue
    translates them where it has them."""
    seeds = sorted(set(a_by_seed) & set(b_by_seed))
    gaps = [float(a_by_seed[s]) - float(b_by_seed[s]) for s in seeds]
    if not all(math.isfinite(g) for g in gaps):
        raise ValueError(f"{metric}: every value must be finite, got gaps {gaps}")
    n = len(gaps)
    mean = sum(gaps) / n if n else math.nan
    margin = math.nan
    if n >= 2:
        sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (n - 1))
        margin = t_quantile(n - 1) * sd / math.sqrt(n)
    if n < MIN_SEEDS:
        direction = None
    elif all(g > 0 for g in gaps) and mean > margin:
        direction = 1
    elif all(g < 0 for g in gaps) and -mean > margin:
        direction = -1
    else:
        direction = 0
    return Verdict(a, b, metric, n, direction, mean, margin, words)


@dataclass(frozen=True)
class Trend:
    """The rule between every neighbouring pair of a sweep: holds when every pair has the same direction."""

    steps: list[Verdict]  # (sweep[0] vs sweep[1]), (sweep[1] vs sweep[2]), …

    @property
    def direction(self) -> int | None:
        """+1 / −1: every neighbouring pair in that direction; 0: not everywhere; None: too few seeds."""
        found = {v.direction for v in self.steps}
        if None in found:
            return None
        return found.pop() if len(found) == 1 and 0 not in found else 0

    def text(self, claim: str, lang: str | None = None) -> str:
        """The sentence on `claim` (e.g. "the larger, the faster"), in `lang` (default: the run's language)."""
        lang = lang or language()
        t = translations(lang).gettext
        seeds = _seeds(min(v.seeds for v in self.steps), lang)
        if self.direction is None:
            return t("'{claim}': {seeds}, too few for a verdict (the rule needs {min})").format(
                claim=t(claim), seeds=seeds, min=MIN_SEEDS)
        if self.direction:
            return t("'{claim}' holds between every neighbouring pair of the sweep, over {seeds}").format(
                claim=t(claim), seeds=seeds)
        broken = t("; ").join(v.text(lang) for v in self.steps)
        return t("'{claim}' does not hold at every step of the sweep, over {seeds}: {broken}").format(
            claim=t(claim), seeds=seeds, broken=broken)

    def en(self, claim: str) -> str:
        return self.text(claim, "en")

    def zh(self, claim: str) -> str:
        return self.text(claim, "zh")


def trend(names: list[str], by_seed: list[Mapping[int, float]], metric: str,
          words: tuple[str, str] = ("above", "below")) -> Trend:
    """The rule between each neighbouring pair of a sweep, in the sweep's order (names[i] against names[i+1])."""
    if len(names) != len(by_seed) or len(names) < 2:
        raise ValueError(f"a trend needs at least two points, one name each: {names}")
    return Trend([compare(names[i], by_seed[i], names[i + 1], by_seed[i + 1], metric, words)
                   for i in range(len(names) - 1)])
