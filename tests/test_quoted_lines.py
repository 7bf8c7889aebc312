"""The code you read is the code that runs: every line of minituner that a lesson (or docs/article-map.md,
in the row of that lesson) quotes runs when the lesson runs.

A quote is a backquoted span or an indented code line in a lesson's markdown whose text, spaces
collapsed, is the whole code of a line of minituner/ (its comment cut off). Each lesson that quotes
such lines runs in this process at its --smoke preset under a line tracer limited to the quoted
files, and every quoted line must have run. The preset only shrinks the numbers: the fused
equivalents (minituner.fused(), off in lessons) decide which lines run, not the sizes.
"""

import ast
import inspect
import re
import runpy
import sys
from pathlib import Path

import pytest

import minituner
from minituner.notebooks import lessons

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(minituner.__file__).resolve().parent
ARTICLE_MAP = ROOT / "docs" / "article-map.md"
KNOWN = {  # the formula lines the lessons explain; each must stay quoted word for word
    "00_y_equals_wx": ["y = x @ W.T + b"],
    "04_prompt_tuning": ["x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)"],
    "05_prefix_tuning": ["k = torch.cat([prefix_k.expand(B, -1, -1, -1), k], dim=2)"],
    "06_lora": ["y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T"],
}


def code(line: str) -> str:
    """A line of Python without its comment, its spaces collapsed."""
    return " ".join(re.split(r"\s#\s|^#\s", line.strip(), maxsplit=1)[0].split())


def source_lines() -> dict[str, list[tuple[str, int]]]:
    """code -> [(file, line number)] over the statements of minituner/ (not docstrings, imports, defs)."""
    index = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            skip = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Expr)
            if isinstance(node, ast.stmt) and not isinstance(node, skip) or isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                index.setdefault(code(lines[node.lineno - 1]), []).append((str(path), node.lineno))
    return index


def quoted(text: str) -> set[str]:
    """The spans of markdown a reader sees as code: `backquoted`, and lines indented 4 spaces in a comment
    (the text after a gap of 3 or more spaces is a remark beside the code)."""
    spans = set(re.findall(r"`([^`\n]+)`", text))
    spans |= {re.split(r"\s{3,}", m)[0] for m in re.findall(r"^# {5}(\S.*)$", text, flags=re.M)}
    return {" ".join(s.split()) for s in spans}


def article_map_quotes(stem: str) -> set[str]:
    rows = [row for row in ARTICLE_MAP.read_text(encoding="utf-8").splitlines() if f"lessons/{stem}.py" in row]
    return quoted("\n".join(rows))


def quotes(path: Path, index) -> dict[str, list[tuple[str, int]]]:
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    return {q: index[q] for q in quoted(text) | article_map_quotes(path.stem) if q in index}


def executed_lines(path: Path, files: set[str], tmp_path, monkeypatch) -> set[tuple[str, int]]:
    """Run the lesson at --smoke; the (file, line) of `files` that ran."""
    ran = set()

    def local(frame, event, arg):
        if event == "line":
            ran.add((frame.f_code.co_filename, frame.f_lineno))
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename in files else None

    monkeypatch.setattr(sys, "argv", [str(path), "--smoke", "--out", str(tmp_path)])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = sys.gettrace()
    sys.settrace(calls)
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.settrace(before)
    return ran


def test_the_known_formula_lines_are_quoted_and_exist():
    index = source_lines()
    by_stem = {p.stem: p for p in lessons()}
    for stem, lines in KNOWN.items():
        assert set(lines) <= set(quotes(by_stem[stem], index)), f"{stem} no longer quotes {lines} word for word"


QUOTING = [p for p in lessons() if quotes(p, source_lines())]


@pytest.mark.parametrize("path", QUOTING, ids=[p.stem for p in QUOTING])
def test_every_quoted_line_runs_when_its_lesson_runs(path, tmp_path, monkeypatch):
    found = quotes(path, source_lines())
    files = {f for places in found.values() for f, _ in places}
    ran = executed_lines(path, files, tmp_path, monkeypatch)
    never = [q for q, places in found.items() if not any(place in ran for place in places)]
    assert not never, f"{path.name} quotes lines that never run when it runs: {never}"


def test_adamw_step_is_its_docstring_line_for_line():
    """Each update line of optim.py's docstring (m ←, v ←, θ ←) is, in order, the comment of a line of AdamW.step."""
    from minituner import optim

    def norm(s):
        return " ".join(s.split())

    formulas = [norm(re.split(r"\s{3,}", line.strip())[0]) for line in optim.__doc__.splitlines() if "←" in line]
    comments = [norm(line.split("  # ", 1)[1]) for line in inspect.getsource(optim.AdamW.step).splitlines()
                if "  # " in line]
    assert len(formulas) == 4 and [c for c in comments if c in formulas] == formulas, (formulas, comments)
