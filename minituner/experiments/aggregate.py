"""From runs to table rows: mean ± std over seeds, and the cell that shows it."""

from __future__ import annotations

import statistics


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample std); the std of one value is 0 (and the table shows no ±)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(runs: list[dict], cols) -> dict:
    """{col: mean, col + " std": std} over the runs (one per seed)."""
    out = {}
    for col in cols:
        out[col], out[col + " std"] = mean_std([r[col] for r in runs])
    return out


def pm(row: dict, col: str, seeds: int, digits: int = 3) -> str:
    """'0.912 ± 0.013' (mean ± std over the seeds); with one seed just '0.912'."""
    if seeds == 1:
        return f"{row[col]:.{digits}f}"
    return f"{row[col]:.{digits}f} ± {row[col + ' std']:.{digits}f}"
