"""What the committed notebooks and docs show renders anywhere and belongs to no machine.

Every Markdown table renders: each row has as many cells as its header, counted the way GitHub-flavoured
Markdown splits a row (at every `|` not escaped by a backslash) — in the committed notebooks' outputs
(text/markdown and text/plain), in docs/ and in both READMEs. A Markdown parser pads or cuts each row to
the header's width, so only a count like this one sees a stray `|`. And no notebook output names a
temporary or home folder of the machine that ran it."""

import json
import re
from pathlib import Path

import pytest

from minituner.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
DELIMITER = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")  # |---|:--:|


def cells(line: str) -> int:
    """The number of cells GFM finds in a table row: split at unescaped pipes, the outer ones dropped."""
    parts = re.split(r"(?<!\\)\|", line.strip())
    if parts and not parts[0].strip():
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    return len(parts)


def bad_rows(text: str) -> list[str]:
    """Rows of the Markdown tables in `text` whose cell count differs from their header's."""
    lines, bad = text.splitlines(), []
    for i in range(len(lines) - 1):
        if "|" in lines[i] and DELIMITER.match(lines[i + 1].strip()) and "-" in lines[i + 1]:
            width = cells(lines[i])
            if cells(lines[i + 1]) != width:
                bad.append(f"delimiter of {lines[i]!r}")
            for row in lines[i + 2:]:
                if "|" not in row or not row.strip():
                    break
                if cells(row) != width:
                    bad.append(f"{cells(row)} cells under a header of {width}: {row!r}")
    return bad


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DOCS = sorted([*(ROOT / "docs").rglob("*.md"), ROOT / "README.md", ROOT / "README.zh-CN.md"])


def output_texts(path: Path):
    """(where, text) of every output of a notebook: streams, and text/markdown and text/plain displays."""
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        for out in cell.get("outputs", []):
            for text in [out.get("text", "")] + [out.get("data", {}).get(k, "") for k in ("text/markdown", "text/plain")]:
                if text:
                    yield f"cell {i}", "".join(text)


def test_the_count_splits_as_github_does():
    assert cells("| a | b |") == 2 and cells("a | b") == 2 and cells("| a \\| b | c |") == 2
    assert cells("| max |Δlogits| vs alone | x |") == 4  # the header lesson 07 once showed
    assert bad_rows("| a | b |\n|---|---|\n| 1 | 2 |\n| x|y | 3 |\n\nnot a | table") == [
        "3 cells under a header of 2: '| x|y | 3 |'"]
    assert bad_rows("| a \\| b | c |\n|---|---|\n| 1 | 2 |") == []


def test_markdown_table_escapes_a_pipe_in_headers_and_cells():
    table = markdown_table([{"max |Δ|": 0.5, "check": "‖P‖ = |x|"}])
    assert bad_rows(table) == []
    assert "max \\|Δ\\|" in table and "‖P‖ = \\|x\\|" in table


@pytest.mark.parametrize("path", NOTEBOOKS + DOCS, ids=lambda p: p.name)
def test_every_table_row_has_its_headers_cell_count(path):
    texts = output_texts(path) if path.suffix == ".ipynb" else [("", path.read_text())]
    assert [f"{where}: {row}" for where, text in texts for row in bad_rows(text)] == []


MACHINE_PATH = re.compile(r"/tmp/|/root/|/home/|/work/|/var/folders/|/private/var/|/Users/|[A-Za-z]:\\{1,2}Users")  # C:\Users, or as a repr C:\\Users


def test_the_path_pattern_finds_machine_folders():
    for text in ("ValueError: /tmp/tmpcgdzzipx/adapter_classify was", "saved to /home/ana/runs", r"C:\Users\ana", r"'C:\\Users\\ana'",
                 "/var/folders/x1/T/tmp", "/work/wt/verdicts/minituner/x.py"):
        assert MACHINE_PATH.search(text), text
    assert not MACHINE_PATH.search("runs/07_lora/adapter_classify and docs/memory.md")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_output_names_a_folder_of_the_machine_that_ran_it(path):
    found = [f"{where}: {text[max(0, m.start() - 60):m.end() + 60]!r}" for where, text in output_texts(path)
             if (m := MACHINE_PATH.search(text))]
    assert found == []
