"""The READMEs, the errata and the glossary link to files and headings that exist (as GitHub renders them)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "docs" / "zh").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script kept), spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a '#' in a code block is no heading
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page):
    assert page.exists(), f"{page.relative_to(ROOT)} is missing"
    bad = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with that anchor")
    assert not bad, "\n".join(bad)


def test_slug_matches_github():
    assert slug("### 3. ΔW = AB in the article, ΔW = BA in the paper (§3.2, LoRA)".lstrip("# ")) == \
        "3-δw--ab-in-the-article-δw--ba-in-the-paper-32-lora"
    assert slug("全文对照表") == "全文对照表"


def headings(page: Path) -> list[int]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [len(m.group(1)) for m in re.finditer(r"^(#+) ", text, flags=re.M)]


def test_the_two_readmes_have_the_same_sections_and_the_english_one_stays_short():
    assert headings(ROOT / "README.md") == headings(ROOT / "README.zh-CN.md")
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize(("page", "lang"), [("README.md", "en"), ("README.zh-CN.md", "zh"),
                                            ("docs/compare/results.md", "en")])
def test_result_tables_are_the_ones_results_json_gives(page, lang):
    """The README's results block (and docs/compare/results.md) hold exactly what docs/compare/*/results.json say."""
    from minituner.experiments.tables import readme_block, summaries

    text = (ROOT / page).read_text()
    expected = summaries(ROOT / "docs" / "compare", lang) if page.startswith("docs") else \
        readme_block(ROOT / "docs" / "compare", lang)
    assert expected in text, f"{page}: run `minituner compare --task all --seeds 3 --out docs/compare --update-readme`"


MEASURED = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:s|ms|MB|GB|MiB|GiB|kB)\b")


def test_no_measured_time_or_size_is_typed_into_a_docstring():
    """A time or a size written in a docstring goes stale: code prints it, or a generated file holds it."""
    import ast

    found = []
    for path in sorted((ROOT / "minituner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
                found += [f"{path.name}: {m.group(0)}" for m in MEASURED.finditer(ast.get_docstring(node))]
    assert not found, found


def test_generated_pages_equal_what_the_code_renders():
    """docs/memory.md and erratum 8's numbers are rendered by `python -m minituner.docs` from the estimator and
    the committed comparison results; nothing is re-measured here."""
    from minituner.docs import rendered

    for path, text in rendered().items():
        assert path.read_text() == text, f"{path.name} is out of date: run `python -m minituner.docs`"


def test_a_page_without_its_generated_block_is_refused():
    from minituner.docs import render_blocks

    assert render_blocks("a\n<!-- generated: x -->\nold\n<!-- end: x -->\nb", {"x": lambda: "new"}) == \
        "a\n<!-- generated: x -->\nnew\n<!-- end: x -->\nb"
    with pytest.raises(ValueError, match="no block 'x'"):
        render_blocks("no markers here", {"x": lambda: "new"})


# ---------------------------------------------------------------- docs/zh: the Chinese pages


def test_every_translated_page_has_its_chinese_page_with_the_same_headings():
    """docs/zh/X.md for each page minituner.docs.TRANSLATED names, and every docs/zh/X.md has the heading
    levels of docs/X.md in the same order (the same count): a section added to one language is added to both."""
    from minituner.docs import TRANSLATED

    zh = ROOT / "docs" / "zh"
    missing = [name for name in TRANSLATED if not (zh / name).exists()]
    assert not missing, f"no Chinese page docs/zh/ for {missing}"
    for page in sorted(zh.glob("*.md")):
        english = ROOT / "docs" / page.name
        assert english.exists(), f"docs/zh/{page.name} has no English page docs/{page.name}"
        assert headings(page) == headings(english), \
            f"docs/zh/{page.name}: heading levels {headings(page)}, docs/{page.name}: {headings(english)}"


def test_a_generated_page_is_generated_in_both_languages():
    """Where an English page of TRANSLATED is rendered (whole, or a block of it), its Chinese page is rendered
    by the same code, and each committed docs/zh page equals its render."""
    from minituner.docs import DOCS, TRANSLATED, rendered

    pages = rendered()
    for path in pages:
        if path.parent == DOCS and path.name in TRANSLATED:
            assert DOCS / "zh" / path.name in pages, f"docs/{path.name} is generated but docs/zh/{path.name} is not"
    for page in sorted((DOCS / "zh").glob("*.md")):
        if page in pages:
            assert page.read_text() == pages[page], f"docs/zh/{page.name} is out of date: run `python -m minituner.docs`"


def table_numbers(text: str) -> list[list[str]]:
    """The numbers of each Markdown table row, in order (header and delimiter rows give none)."""
    rows = [line for line in text.splitlines() if line.startswith("|") and not set(line) <= set("|-")]
    return [re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", row) for row in rows]


def test_the_chinese_memory_page_holds_the_english_pages_numbers():
    """One generator, two languages: the tables of docs/zh/memory.md hold the numbers of docs/memory.md, and its
    prose is the catalogue's (no English paragraph of the page is left in it)."""
    from minituner.docs import memory_page

    en, zh = memory_page("en"), memory_page("zh")
    assert table_numbers(en) == table_numbers(zh)
    left = [p[:60] for p in en.split("\n\n") if not p.startswith("|") and p in zh]
    assert not left, f"English left in the Chinese page: {left}"
    from minituner import i18n

    try:  # each page in its own language, whatever the run speaks, and the run's choice put back after
        i18n.set_language("zh")
        assert memory_page("en") == en and i18n.language() == "zh"
    finally:
        i18n.set_language(None)
