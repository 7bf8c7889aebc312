"""notebooks/ and notebooks/zh/ are made from lessons/: the lessons are the single source (jupytext percent format).

A lesson holds one set of code cells and its explanation twice: each English markdown cell is followed
by its Chinese counterpart, a markdown cell marked ``# %% [markdown] lang="zh"``. The English notebook
(notebooks/NN_name.ipynb) keeps the English cells, the Chinese one (notebooks/zh/NN_name.ipynb, the same
file name) the Chinese; both keep every code cell, byte for byte. What the code prints and draws takes its
language from outside the cells (minituner.i18n): the Chinese notebooks are executed with MINITUNER_LANG=zh,
and a student who opens one in Jupyter runs it in notebooks/zh/, which speaks Chinese too.

    minituner notebooks              convert every lesson into both notebooks and execute them, keeping outputs
    minituner notebooks --lang zh    only the Chinese notebooks
    minituner notebooks --check      exit 1 if a notebook's cells differ from its lesson
    minituner notebooks --only 08    only the lessons whose name starts with 08

Needs the dev extra (jupytext, nbclient, ipykernel).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .i18n import ENV, LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
LESSONS, NOTEBOOKS = ROOT / "lessons", ROOT / "notebooks"
FOLDERS = {"en": NOTEBOOKS, "zh": NOTEBOOKS / "zh"}  # each language's notebooks, the same file names


def cell_language(cell) -> str | None:
    """The language of a lesson's cell: a markdown cell's metadata lang ("zh"), English when unmarked;
    None for a code cell, which both notebooks keep."""
    if cell.cell_type != "markdown":
        return None
    lang = cell.metadata.get("lang", "en")
    if lang not in LANGUAGES:
        raise ValueError(f"a markdown cell says lang={lang!r}; a lesson's languages are {', '.join(LANGUAGES)}")
    return lang


def notebook(lesson: Path, lang: str):
    """The notebook of `lesson` in `lang`: its code cells and its markdown cells in that language."""
    import jupytext

    nb = jupytext.read(lesson)
    nb.cells = [c for c in nb.cells if cell_language(c) in (None, lang)]
    for c in nb.cells:
        c.metadata.pop("lang", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    nb.metadata["minituner"] = {"lang": lang}
    return nb


def path(lesson: Path, lang: str) -> Path:
    return FOLDERS[lang] / (lesson.stem + ".ipynb")


def lessons() -> list[Path]:
    found = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if not found:
        raise FileNotFoundError(f"no lessons under {LESSONS}: run this from a clone of the repository")
    return found


def cells(nb) -> list[tuple[str, str]]:
    """(cell type, source) of each cell: what must agree between a lesson and its notebook."""
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def out_of_sync() -> list[str]:
    """The notebooks (notebooks/…, notebooks/zh/…) missing or whose cells differ from their lesson."""
    import jupytext

    bad = []
    for lesson in lessons():
        for lang in LANGUAGES:
            nb_path = path(lesson, lang)
            if not nb_path.exists() or cells(jupytext.read(nb_path)) != cells(notebook(lesson, lang)):
                bad.append(nb_path.relative_to(ROOT).as_posix())
    return bad


def build(check: bool = False, execute: bool = True, only: str | None = None, langs=LANGUAGES) -> int:
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
    for lesson in chosen:
        for lang in langs:
            t0 = time.perf_counter()
            nb = notebook(lesson, lang)
            if execute:
                # coalesce_streams: a progress bar's many stderr chunks become one text, its carriage returns
                # applied, as Jupyter shows it live; a bar that cleared itself (leave=False) leaves only blanks
                NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}},
                               coalesce_streams=True).execute(env={**os.environ, ENV: lang})
                for cell in nb.cells:
                    if cell.cell_type == "code":
                        cell.outputs = [o for o in cell.outputs if o.output_type != "stream" or o.text.strip()]
            out = path(lesson, lang)
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(out, lambda tmp, nb=nb: nbformat.write(nb, tmp))
            print(f"{out.relative_to(ROOT)}  ({time.perf_counter() - t0:.1f} s)")
    return 0
