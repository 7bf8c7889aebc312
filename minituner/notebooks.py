"""notebooks/ is made from lessons/: the lessons are the single source (jupytext percent format).

    minituner notebooks            convert every lesson and execute it, keeping the outputs
    minituner notebooks --check    exit 1 if a notebook's cells differ from its lesson
    minituner notebooks --only 08  only the lessons whose name starts with 08

Needs the dev extra (jupytext, nbclient, ipykernel).
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS, NOTEBOOKS = ROOT / "lessons", ROOT / "notebooks"


def lessons() -> list[Path]:
    found = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if not found:
        raise FileNotFoundError(f"no lessons under {LESSONS}: run this from a clone of the repository")
    return found


def cells(nb) -> list[tuple[str, str]]:
    """(cell type, source) of each cell: what must agree between a lesson and its notebook."""
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def out_of_sync() -> list[str]:
    """Names of lessons whose notebook is missing or whose cells differ from the lesson."""
    import jupytext

    bad = []
    for lesson in lessons():
        nb_path = NOTEBOOKS / (lesson.stem + ".ipynb")
        if not nb_path.exists() or cells(jupytext.read(nb_path)) != cells(jupytext.read(lesson)):
            bad.append(lesson.name)
    return bad


def build(check: bool = False, execute: bool = True, only: str | None = None) -> int:
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    from .checkpoint import atomic_write

    if check:
        bad = out_of_sync()
        for name in bad:
            print(f"out of sync: {name} (run `minituner notebooks`)")
        return 1 if bad else 0
    chosen = [lesson for lesson in lessons() if not only or lesson.name.startswith(only)]
    if not chosen:
        raise ValueError(f"--only {only!r} matches no lesson; the lessons are "
                         f"{', '.join(lesson.name for lesson in lessons())}")
    NOTEBOOKS.mkdir(exist_ok=True)
    for lesson in chosen:
        t0 = time.perf_counter()
        nb = jupytext.read(lesson)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata.pop("jupytext", None)
        if execute:
            # coalesce_streams: a progress bar's many stderr chunks become one text, its carriage returns
            # applied, as Jupyter shows it live; a bar that cleared itself (leave=False) leaves only blanks
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}},
                           coalesce_streams=True).execute()
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = [o for o in cell.outputs if o.output_type != "stream" or o.text.strip()]
        out = NOTEBOOKS / (lesson.stem + ".ipynb")
        atomic_write(out, lambda tmp, nb=nb: nbformat.write(nb, tmp))
        print(f"{out.relative_to(ROOT)}  ({time.perf_counter() - t0:.1f} s)")
    return 0
