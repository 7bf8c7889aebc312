"""The main job: every method side by side on one base (`minituner compare`), settings chosen on
validation (`minituner sweep`). One file per job:

    protocol.py   the rows, the sweep, the seeds, selection on validation, the one look at test
    relabel.py    where relabelling landed (also called by the lessons that relabel)
    aggregate.py  mean ± std over seeds
    tables.py     table.md, results.json, results.md and the README's results block
    figures.py    curves.png, tradeoff.png, tasks.png (the only file that imports matplotlib)

The grids are the registry's data (minituner/methods/registry.py). What the comparison prints and draws
speaks the run's language (minituner.i18n; its messages are minituner/locale/zh/experiments.po); the
files it writes as records (table.md, results.json, results.md, sweep_<task>.md) stay English, and the
README's results block takes its README's language.
"""

from .aggregate import mean_std, pm
from .figures import method_name
from .protocol import (
    BATCH,
    EVAL_EVERY,
    PATIENCE,
    SCRATCH,
    SELECTED,
    STEPS,
    build,
    compare,
    compare_all,
    job,
    parameter_counts,
    row,
    rows,
    run,
    selected_settings,
    setting_text,
    sweep,
)
from .relabel import RELABEL_COLS, relabel_scores

__all__ = ["BATCH", "EVAL_EVERY", "PATIENCE", "SCRATCH", "SELECTED", "STEPS", "RELABEL_COLS", "build", "compare",
           "compare_all", "job", "mean_std", "method_name", "parameter_counts", "pm", "relabel_scores", "row", "rows", "run",
           "selected_settings", "setting_text", "sweep"]
