"""Every lesson runs end to end in its --smoke preset, and its notebook matches it."""

import importlib.util
from pathlib import Path

import pytest

from minituner.notebooks import lessons, out_of_sync

LESSONS = lessons()


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the lesson's functions; runs nothing (not __main__)
    return module


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_smoke_mode_and_draws(path, tmp_path, capsys):
    load(path).main(["--smoke", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Step 1" in out
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)


def test_notebooks_are_generated_from_the_lessons():
    assert out_of_sync() == [], "run `minituner notebooks` to regenerate them"
