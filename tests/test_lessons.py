"""Every lesson runs as a notebook in its --smoke preset and shows each section's result under it.

The convention every lesson (lessons/NN_*.py, jupytext percent format) follows:
- Its presets are read once, at the top: `args = minituner.lesson.options(...)`. As a script
  they come from the command line (`python lessons/NN_x.py --smoke --out DIR`); in a notebook
  kernel from the variable MINITUNER_LESSON_ARGS (unset: the full lesson's defaults).
- No `main()`: each section is a markdown cell with a `## ` heading, then code at the top level
  of its cell that ends with what it shows (a printed table or check, a figure saved with
  `minituner.report.save_figure`, which a notebook shows inline).
- A code cell right under a `## ` heading must show something. At most MAX_SILENT such cells
  may stay silent, each stating why on its first line: `# silent: <reason>`.
- It draws at least one figure (a PNG written into args.out).

Each lesson is executed once, as the notebook `minituner notebooks` makes of it, in a Jupyter
kernel with MINITUNER_LESSON_ARGS="--smoke --out DIR" (tests/notebook_runs.py, started by
conftest.py beside the other tests); the same checks then read the committed notebooks' full
outputs. As a script a lesson differs only in where options() reads its words, so one lesson
also runs as `python lessons/NN_x.py --smoke --out DIR`.
"""

import functools
import runpy
import sys

import nbformat
import pytest
import torch

import minituner
from minituner.lesson import LESSON_ARGS, MatmulCounter, options, run
from minituner.notebooks import NOTEBOOKS, lessons, out_of_sync

LESSONS = lessons()
MAX_SILENT = 2


def silent_cells(cells) -> tuple[list[str], int]:
    """cells: (kind, source, shows) in order -> (headings whose first code cell shows nothing, allowed silences)."""
    bad, allowed, heading = [], 0, None
    for kind, source, shows in cells:
        if kind == "markdown":
            heading = next((line for line in source.splitlines() if line.startswith("## ")), None)
            continue
        if heading and not shows:
            if source.lstrip().startswith("# silent:"):
                allowed += 1
            else:
                bad.append(heading)
        heading = None
    return bad, allowed


def shows(cell) -> bool:
    """A code cell shows something: printed text, a value, a figure (stderr, e.g. a progress bar, does not count)."""
    return any(o.output_type != "stream" or (o.name == "stdout" and o.text.strip()) for o in cell.get("outputs", []))


def check_sections(name: str, nb) -> None:
    """Each section of the executed notebook shows its result under it, and each figure a cell saves is drawn there."""
    bad, allowed = silent_cells([(c.cell_type, c.source, c.cell_type == "code" and shows(c)) for c in nb.cells])
    assert not bad, f"{name}: no output under {bad}"
    assert allowed <= MAX_SILENT, f"{name}: {allowed} silent section cells, at most {MAX_SILENT}"
    for c in nb.cells:
        if c.cell_type == "code":
            drawn = sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
            assert drawn >= c.source.count("save_figure("), f"{name}: a figure is not shown under its cell"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_as_a_notebook_and_shows_each_section(path, lesson_notebook):
    nb, out = lesson_notebook
    check_sections(path.name, nb)
    pngs = list(out.rglob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs), f"{path.name} drew no figure into --out"


def test_a_lesson_runs_as_a_script_in_the_language_it_is_told(monkeypatch, tmp_path, capsys):
    """`python lessons/00_….py --smoke --lang zh` prints Chinese, `--lang en` English, the same numbers in both."""
    import re

    path, printed = LESSONS[0], {}
    for lang in ("en", "zh"):
        monkeypatch.setattr(sys, "argv", [str(path), "--smoke", "--out", str(tmp_path / lang), "--lang", lang])
        runpy.run_path(str(path), run_name="__main__")
        printed[lang] = capsys.readouterr().out
        assert printed[lang].strip() and list((tmp_path / lang).rglob("*.png")), f"{path.name} showed nothing"
    han = re.compile(r"[\u4e00-\u9fff]")
    assert not han.search(printed["en"]) and len(han.findall(printed["zh"])) > 100
    numbers = re.compile(r"\d+(?:,\d{3})*\.\d+(?:e[-+]\d+)?")  # measured values (decimals); counts may be reworded
    assert sorted(numbers.findall(printed["en"])) == sorted(numbers.findall(printed["zh"]))


def test_silent_cells_are_found():
    cells = [("markdown", "## 1. A", False), ("code", "x = 1", False),
             ("markdown", "## 2. B", False), ("code", "# silent: defines\nf = 1", False),
             ("markdown", "## 3. C", False), ("code", "print(1)", True), ("code", "y = 2", False)]
    assert silent_cells(cells) == (["## 1. A"], 1)


def test_options_read_the_command_line_or_the_full_lesson_in_a_kernel(monkeypatch, tmp_path):
    preset = dict(description="t", smoke=dict(steps=3), out="runs/t", steps=100, ks=(1, 4), lr=1e-3)
    args = options(**preset, argv=["--smoke", "--out", str(tmp_path), "--ks", "2,8"])
    assert (args.steps, args.ks, args.lr, args.out) == (3, (2, 8), 1e-3, tmp_path)
    monkeypatch.setattr(sys, "argv", ["/x/ipykernel_launcher.py", "-f", "kernel.json"])
    monkeypatch.setitem(sys.modules, "ipykernel", sys)
    assert options(**preset).steps == 100  # the kernel's own argv is not read
    monkeypatch.setenv(LESSON_ARGS, "--smoke")
    assert options(**preset).steps == 3
    with pytest.raises(ValueError, match="batch"):
        options("t", smoke=dict(batch=1), out="o", steps=1)
    unlimited = dict(description="t", smoke=dict(rows=8), out="o", rows=None)  # None: not limited; given, an int
    assert options(**unlimited, argv=[]).rows is None and options(**unlimited, argv=["--smoke"]).rows == 8
    assert options(**unlimited, argv=["--rows", "16"]).rows == 16


def test_matmul_counter_counts_the_forwards_products(base):
    x = torch.zeros(1, 5, dtype=torch.long)
    L = base.config.n_layer
    with MatmulCounter() as plain, torch.no_grad():
        base(x)
    with MatmulCounter() as adapted, torch.no_grad():
        minituner.lora(base, r=2, target_modules=["q_proj", "v_proj"])(x)
    assert plain.n == 8 * L + 1  # q, k, v, o, QKᵀ, AV, up, down per block; the tied head
    assert adapted.n == plain.n + 2 * 2 * L  # (x Aᵀ) Bᵀ: two more per adapted matrix


def test_run_gives_one_row_per_model(base, classify):
    row, hist = run("top block", minituner.freeze(base, trainable_layers=1), classify, steps=2, lr=1e-3,
                    batch_size=4, eval_every=1)
    assert row["trainable"] == minituner.count_parameters(minituner.freeze(base, trainable_layers=1))[0]
    assert row["steps"] == 2 and len(hist.losses) == 2 and len(hist.val) == 2
    untrained, none = run("base", base, classify, steps=0)
    assert none is None and untrained["trainable"] == 0 and untrained["lr"] == ""
    with pytest.raises(ValueError, match="learning rate"):
        run("x", minituner.full(base), classify, steps=1)


NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "zh").glob("*.ipynb"))
NOTEBOOK_IDS = [p.relative_to(NOTEBOOKS).with_suffix("").as_posix() for p in NOTEBOOK_PATHS]
COMMITTED = pytest.mark.xdist_group("committed-notebooks")  # one worker reads them all, and stale() once


@functools.cache
def stale() -> set[str]:
    """The notebooks (notebooks/NN.ipynb, notebooks/zh/NN.ipynb) missing or no longer generated from their
    lesson (reads every lesson and notebook)."""
    return {name.removeprefix("notebooks/") for name in out_of_sync()}


def executed(path, cells) -> None:
    """A committed notebook is executed (its outputs kept) from its current lesson."""
    assert any(c.get("outputs") for c in cells if c.cell_type == "code"), f"{path.name} has not been executed"
    if path.relative_to(NOTEBOOKS).as_posix() in stale():
        pytest.skip(f"{path.name} is older than its lesson (test_notebooks_are_generated_from_the_lessons says so)")


@COMMITTED
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=NOTEBOOK_IDS)
def test_executed_notebook_shows_each_section_under_its_heading(path):
    nb = nbformat.read(path, as_version=4)
    executed(path, nb.cells)
    check_sections(path.name, nb)


@COMMITTED
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=NOTEBOOK_IDS)
def test_executed_notebook_shows_a_progress_bar_once(path):
    """A progress bar on stderr is redrawn many times; a notebook keeps one stream per cell (minituner
    notebooks executes with coalesce_streams), not one output per redraw."""
    cells = nbformat.read(path, as_version=4).cells
    executed(path, cells)
    for i, cell in enumerate(cells):
        streams = [o.name for o in cell.get("outputs", []) if o.output_type == "stream"]
        assert len(streams) == len(set(streams)), f"{path.name} cell {i}: {len(streams)} stream outputs"


@COMMITTED
def test_notebooks_are_generated_from_the_lessons():
    assert sorted(stale()) == [], "run `minituner notebooks` to regenerate them"
