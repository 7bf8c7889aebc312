"""The course in two languages (issue 38): one message catalogue, one lesson source, two notebooks.

Each check here is a property over every message, every lesson cell, every Chinese page or every committed
notebook, so that a message, a cell or a page added later is held to it too:
- the catalogue (minituner/locale/zh/*.po): read by gettext, each message defined once, translated, with the
  same {fields} as its English, used somewhere in the code, and every literal message of the code in it;
- the lessons: every English markdown cell has its Chinese counterpart right after it, with the same
  headings; the Chinese prose is Chinese (at least MIN_CHINESE of it), punctuated as Chinese, and speaks
  the glossary's terms (docs/notation.md);
- the notebooks: notebooks/ and notebooks/zh/ hold every lesson, with the same code cells byte for byte,
  and the same numbers in their tables (the same seeds; times aside); the Chinese tables speak Chinese.
"""

from __future__ import annotations

import ast
import io
import re
import string
from functools import cache
from pathlib import Path

import nbformat
import pytest

from minituner import i18n
from minituner.notebooks import FOLDERS, cell_language, lessons, notebook

ROOT = Path(__file__).resolve().parents[1]
LESSONS = lessons()
MIN_CHINESE = 0.6  # of a Chinese notebook's prose: CJK characters against English words
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
ENGLISH_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
# ASCII , ; : ( ) ! ? touching a Chinese character: Chinese sentences take the full-width forms ，；：（）！？
ASCII_PUNCTUATION = re.compile(r"[\u3400-\u9fff][,;:()!?]|[,;:(!?][\u3400-\u9fff]|\)[\u3400-\u9fff]")
ZH_PAGES = sorted((ROOT / "docs" / "zh").glob("*.md")) + [ROOT / "README.zh-CN.md"]


def prose(markdown: str) -> str:
    """What a reader reads as sentences: fenced code, inline code, link targets, URLs, HTML comments,
    formulas in $…$ and a message's {fields} taken out."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"\{[A-Za-z_][^{}]*\}", " ", text)
    text = re.sub(r'"[A-Za-z_][A-Za-z_ ]*"', " ", text)  # "value" in ASCII quotes is a key, not a word
    return re.sub(r"\$[^$\n]*\$", " ", text)


def chinese_share(text: str) -> float:
    """CJK characters against English words: 1.0 all Chinese, 0.0 all English."""
    han, words = len(HAN.findall(text)), len(ENGLISH_WORD.findall(text))
    return han / (han + words) if han + words else 1.0


# "小了十倍" ("ten times smaller"): a calque Chinese readers stumble on (smaller by ten times what?); Chinese
# says 为十分之一, 降为十分之一 or names the ratio the other way round (全量微调是它的 10 倍)
TIMES_SMALLER = re.compile(r"(小|少|低|短|慢|轻|降低|减少|缩小)了?\s*(\{[^}]*\}|[0-9.]+|[一二两三四五六七八九十百千万]+)\s*倍")


def calques(text: str) -> list[str]:
    return [m.group(0) for m in TIMES_SMALLER.finditer(text)]


def punctuation_faults(text: str) -> list[str]:
    text = prose(text)
    return [text[max(0, m.start() - 8): m.end() + 8] for m in ASCII_PUNCTUATION.finditer(text)]


# ---------------------------------------------------------------- the catalogue


@cache
def entries() -> list[tuple[Path, dict]]:
    return [(path, e) for path in i18n.catalogue_files("zh") for e in i18n.read_po(path)]


def fields(template: str) -> list[tuple[str, str, str | None]]:
    """The replacement fields of a str.format template: (name, format spec, conversion), sorted."""
    return sorted((name, spec or "", conv) for _, name, spec, conv in string.Formatter().parse(template)
                  if name is not None)


@cache
def code_strings() -> set[str]:
    """Every string constant in minituner/ and lessons/ (the texts a message may come from)."""
    found = set()
    for path in sorted((ROOT / "minituner").rglob("*.py")) + sorted((ROOT / "lessons").glob("*.py")):
        found |= {n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return found


MESSAGE_CALLS = {"_", "label", "translate", "gettext", "ngettext"}  # functions whose first argument is a message


def literal_messages(source: str) -> list[tuple[int, str, str | None]]:
    """(line, text, plural or None) of each string literal the code passes as a message: _("…"),
    label("…"), translate("…", lang), gettext("…"), ngettext("…", "…", n)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if name in MESSAGE_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                plural = node.args[1] if name == "ngettext" and len(node.args) > 1 else None
                found.append((node.lineno, first.value, plural.value if isinstance(plural, ast.Constant) else None))
    return found


def test_the_catalogue_is_read_by_gettext_and_each_message_is_defined_once():
    seen: dict[str, str] = {}
    twice = []
    for path, e in entries():
        key = e["msgid"] if e["msgid_plural"] is None else f"{e['msgid']} | {e['msgid_plural']}"
        where = f"{path.relative_to(ROOT)}:{e['line']}"
        if key in seen:
            twice.append(f"{e['msgid']!r} in {seen[key]} and {where}")
        seen[key] = where
    assert not twice, "a message is defined in one .po file only:\n" + "\n".join(twice)
    assert len(seen) > 50
    t = i18n.translations("zh")
    for path, e in entries():
        if e["msgid_plural"] is None:
            assert t.gettext(e["msgid"]) == e["msgstr"][0], f"gettext does not read {e['msgid']!r} ({path.name})"


def test_every_message_is_translated_with_the_fields_of_its_english():
    bad = []
    for path, e in entries():
        where = f"{path.relative_to(ROOT)}:{e['line']}"
        if "fuzzy" in e["flags"] or not all(e["msgstr"]) or not e["msgstr"]:
            bad.append(f"{where}: {e['msgid']!r} has no (or a fuzzy) translation")
            continue
        if e["msgid_plural"] is not None and fields(e["msgid"]) != fields(e["msgid_plural"]):
            bad.append(f"{where}: the singular and plural of {e['msgid']!r} have different fields")
        for msgstr in e["msgstr"]:
            try:
                same = fields(msgstr) == fields(e["msgid_plural"] or e["msgid"])
            except ValueError as err:  # an unbalanced brace
                same, msgstr = False, f"{msgstr!r} ({err})"
            if not same:
                bad.append(f"{where}: {e['msgid']!r} -> {msgstr!r}: the {{fields}} differ")
    assert not bad, "\n".join(bad)


def test_every_message_comes_from_the_code():
    unused = [f"{path.relative_to(ROOT)}:{e['line']}: {e['msgid']!r}" for path, e in entries()
              if e["msgid"] not in code_strings()]
    assert not unused, "messages no code says (dead entries):\n" + "\n".join(unused)


def test_every_message_the_code_passes_literally_is_in_the_catalogue():
    t = i18n.translations("zh")
    missing = []
    for path in sorted((ROOT / "minituner").rglob("*.py")) + sorted((ROOT / "lessons").glob("*.py")):
        for line, text, plural in literal_messages(path.read_text(encoding="utf-8")):
            translated = t.gettext(text) != text if plural is None else t.ngettext(text, plural, 2) != plural
            if text.strip() and not translated:
                missing.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not missing, "messages without a Chinese translation:\n" + "\n".join(missing)


def test_literal_messages_are_found():
    code = 'print(_("a {x}").format(x=1)); label("b"); ngettext("c", "cs", n); translate("d", "zh"); f(_(name))'
    assert sorted(m[1:] for m in literal_messages(code)) == [("a {x}", None), ("b", None), ("c", "cs"), ("d", None)]


def test_chinese_messages_are_punctuated_as_chinese():
    bad = [f"{path.relative_to(ROOT)}:{e['line']}: {fault!r}" for path, e in entries() for s in e["msgstr"]
           for fault in punctuation_faults(s)]
    assert not bad, "ASCII punctuation touching Chinese (use ，；：（）！？):\n" + "\n".join(bad)


def test_chinese_messages_say_no_times_smaller():
    bad = [f"{path.relative_to(ROOT)}:{e['line']}: {c}" for path, e in entries() for s in e["msgstr"] for c in calques(s)]
    assert not bad, "write 为十分之一 (or turn the ratio round), not 小 N 倍:\n" + "\n".join(bad)


def test_calques_are_found():
    assert calques("学习率小了十倍；内存少 {ratio:.1f} 倍；慢 25 倍") == ["小了十倍", "少 {ratio:.1f} 倍", "慢 25 倍"]
    assert not calques("学习率降为十分之一；全量微调是它的 25 倍")


def test_punctuation_faults_are_found():
    assert len(punctuation_faults("冻结(freezing),再训练:")) == 3
    assert not punctuation_faults("冻结（freezing），再训练：`f(x, y)` 与 r=4, α=8")


# ---------------------------------------------------------------- the glossary


@cache
def glossary() -> list[tuple[list[str], list[str]]]:
    """docs/notation.md's glossary: ([Chinese terms], [English terms]) per row. An English term that the
    Chinese column also holds (LoRA, token) is one Chinese writing keeps, so it is left out."""
    text = (ROOT / "docs" / "notation.md").read_text(encoding="utf-8")
    rows = []
    for line in text.split("## Glossary", 1)[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in ("中文", "") or set(cells[0]) <= set("-"):
            continue
        zh = [t.strip() for t in re.split(r"[/(（)）]", cells[0]) if t.strip()]
        en_col = re.sub(r"\([^)]*\)", "", cells[1])
        en = [t.strip() for t in re.split(r",|/", en_col) if len(t.strip()) >= 4]
        rows.append((zh, [t for t in en if not any(t.lower() == z.lower() for z in zh)]))
    return rows


def glossary_faults(text: str, reach: int = 16) -> list[str]:
    """English glossary terms standing alone in Chinese prose: not within `reach` characters after one of
    the row's Chinese terms (全量微调（full fine-tuning） is the allowed form)."""
    text = prose(text)
    faults, covered = [], set()
    terms = sorted(((term, zh) for zh, en in glossary() for term in en), key=lambda t: -len(t[0]))
    for term, zh in terms:  # longest first: "full fine-tuning" is one term, not also "fine-tuning"
        # not inside a file name (merges.txt) nor a dotted name (minituner.memory)
        for m in re.finditer(rf"(?<![A-Za-z_.-]){re.escape(term)}(?:s|es)?(?![A-Za-z_-]|\.[A-Za-z])", text,
                             flags=re.I):
            if covered & set(range(m.start(), m.end())):
                continue
            covered |= set(range(m.start(), m.end()))
            before = text[max(0, m.start() - reach): m.start()]
            if not any(z in before for z in zh):
                faults.append(f"{term!r} alone in …{text[max(0, m.start() - 20): m.end() + 10]}…")
    return faults


def test_the_glossary_is_read():
    rows = dict((tuple(zh), en) for zh, en in glossary())
    assert rows[("全量微调", "全参数微调")] == ["full fine-tuning"]
    assert rows[("低秩适配", "LoRA")] == ["Low-Rank Adaptation"]
    assert len(rows) > 60


def test_glossary_faults_are_found():
    assert glossary_faults("我们先做 full fine-tuning，再做 prompt tuning。") and len(
        glossary_faults("我们先做 full fine-tuning，再做 prompt tuning。")) == 2
    assert not glossary_faults("全量微调（full fine-tuning）之后，是 LoRA 和 `prompt_tuning`。")


# ---------------------------------------------------------------- the lessons: one source, two languages


def lesson_cells(path: Path):
    import jupytext

    return jupytext.read(path).cells


def headings(markdown: str) -> list[str]:
    """The heading levels of a markdown cell, in order ('#', '##', …)."""
    return [line.split(" ", 1)[0] for line in markdown.splitlines() if re.match(r"#{1,6} ", line)]


def pairing_faults(cells) -> list[str]:
    """Each English markdown cell is followed by its Chinese counterpart, with the same heading levels."""
    faults = []
    for i, cell in enumerate(cells):
        lang = cell_language(cell)
        first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        if lang == "en":
            nxt = cells[i + 1] if i + 1 < len(cells) else None
            if nxt is None or cell_language(nxt) != "zh":
                faults.append(f"cell {i} ({first!r}) has no Chinese counterpart after it")
            elif headings(cell.source) != headings(nxt.source):
                faults.append(f"cell {i} ({first!r}): headings {headings(cell.source)} but its Chinese cell has "
                              f"{headings(nxt.source)}")
        elif lang == "zh" and (i == 0 or cell_language(cells[i - 1]) != "en"):
            faults.append(f"cell {i} ({first!r}) is Chinese with no English cell before it")
    return faults


def chinese_prose(path: Path) -> str:
    return "\n\n".join(c.source for c in lesson_cells(path) if cell_language(c) == "zh")


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_english_cell_has_its_chinese_counterpart(path):
    faults = pairing_faults(lesson_cells(path))
    assert not faults, f"{path.name}:\n" + "\n".join(faults)


def test_pairing_faults_are_found():
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell
    zh = {"lang": "zh"}
    nb.cells = [md("# T\n\n## A"), md("# 题\n\n## 甲", metadata=zh), md("## B"), nbformat.v4.new_code_cell("1"),
                md("## C"), md("### 丙", metadata=zh), md("孤", metadata=zh)]
    faults = pairing_faults(nb.cells)
    assert len(faults) == 3 and "cell 2" in faults[0] and "cell 4" in faults[1] and "cell 6" in faults[2]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_the_chinese_prose_is_chinese_punctuated_and_speaks_the_glossary(path):
    text = chinese_prose(path)
    share = chinese_share(prose(text))
    assert share >= MIN_CHINESE, f"{path.name}: {share:.0%} of its Chinese cells' prose is Chinese"
    assert not punctuation_faults(text), f"{path.name}: ASCII punctuation in Chinese: {punctuation_faults(text)}"
    assert not glossary_faults(text), f"{path.name}:\n" + "\n".join(glossary_faults(text))
    assert not calques(text), f"{path.name}: write 为十分之一 (or turn the ratio round): {calques(text)}"


@pytest.mark.parametrize("page", ZH_PAGES, ids=[p.name for p in ZH_PAGES])
def test_the_chinese_pages_are_chinese_punctuated_and_speak_the_glossary(page):
    text = page.read_text(encoding="utf-8")
    assert chinese_share(prose(text)) >= MIN_CHINESE, f"{page.name}: {chinese_share(prose(text)):.0%} Chinese"
    assert not punctuation_faults(text), f"{page.name}: ASCII punctuation in Chinese: {punctuation_faults(text)}"
    assert not glossary_faults(text), f"{page.name}:\n" + "\n".join(glossary_faults(text))
    assert not calques(text), f"{page.name}: write 为十分之一 (or turn the ratio round): {calques(text)}"


def test_chinese_messages_speak_the_glossary():
    bad = [f"{path.name}:{e['line']}: {f}" for path, e in entries() for s in e["msgstr"] for f in glossary_faults(s)]
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- the committed notebooks


def committed(path: Path, lang: str):
    return nbformat.read(FOLDERS[lang] / (path.stem + ".ipynb"), as_version=4)


TABLE_ROW = re.compile(r"^\|.*\|$", re.M)
NUMBER = re.compile(r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?")  # 1,234.5: a comma after "NF4" is no digit
TIME_COLUMN = re.compile(r"\b(s|ms|seconds?|time|wall|steps/s)\b", re.I)  # a column measured with the clock


def tables(nb) -> list[list[list[str]]]:
    """The Markdown tables a notebook's outputs show, in order: each a list of rows of cells."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown") or ""
            rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))] for line in TABLE_ROW.findall(text)]
            if rows:
                found.append(rows)
    return found


def numbers_beside(en_table, zh_table) -> list[str]:
    """Cells whose numbers differ between the two languages' table, time columns (by English header) aside."""
    faults = []
    header = en_table[0]
    for en_row, zh_row in zip(en_table[1:], zh_table[1:], strict=True):
        for col, (a, b) in enumerate(zip(en_row, zh_row, strict=True)):
            if TIME_COLUMN.search(header[col]):
                continue
            if NUMBER.findall(a.replace("−", "-")) != NUMBER.findall(b.replace("−", "-")):
                faults.append(f"{header[col]}: {a!r} vs {b!r}")
    return faults


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_both_notebooks_hold_the_same_code_and_the_same_numbers(path):
    en, zh = committed(path, "en"), committed(path, "zh")
    code = [[c.source for c in nb.cells if c.cell_type == "code"] for nb in (en, zh)]
    assert code[0] == code[1], f"{path.name}: the code cells of notebooks/ and notebooks/zh/ differ"
    assert code[0] == [c.source for c in notebook(path, "en").cells if c.cell_type == "code"]
    assert zh.metadata["minituner"]["lang"] == "zh" and en.metadata["minituner"]["lang"] == "en"
    en_tables, zh_tables = tables(en), tables(zh)
    assert len(en_tables) == len(zh_tables), f"{path.name}: {len(en_tables)} tables in English, {len(zh_tables)}"
    for k, (a, b) in enumerate(zip(en_tables, zh_tables, strict=True)):
        assert len(a) == len(b) and len(a[0]) == len(b[0]), f"{path.name}: table {k} has another shape"
        faults = numbers_beside(a, b)
        assert not faults, f"{path.name}, table {k}: numbers differ between the languages: {faults[:5]}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_the_chinese_notebook_prints_chinese(path):
    """The Chinese notebook's table headers and conclusions are Chinese: each header that holds words holds
    Chinese, and its printed and shown text is mostly Chinese."""
    nb = committed(path, "zh")
    english_headers = sorted({h for t in tables(nb) for h in t[0]
                              if ENGLISH_WORD.search(prose(h)) and not HAN.search(h) and len(h) > 2})
    assert not english_headers, f"{path.name}: table headers left in English: {english_headers}"
    shown = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                shown.append(out.text)
            elif "text/markdown" in out.get("data", {}) and not TABLE_ROW.search(out["data"]["text/markdown"]):
                shown.append(out["data"]["text/markdown"])
    share = chinese_share(prose("\n".join(shown)))
    assert share >= MIN_CHINESE, f"{path.name}: {share:.0%} of what the Chinese notebook prints is Chinese"


# English a Chinese notebook keeps on purpose, though the catalogue translates it where it is a column or a name
KEPT_ENGLISH = {"trainable params": "PEFT's print_trainable_parameters line, word for word as PEFT prints it",
                "who are you?": "the prompt of lesson 13's identity data, which is data, not prose",
                "LoRA r": "in run names such as LoRA r=8, which Chinese writing keeps",
                "‖ΔW‖/‖W‖": "a formula"}


def leaked_names(text: str) -> list[str]:
    """Messages of two words or more that the catalogue translates, found in English in `text`."""
    return sorted(e["msgid"] for _, e in entries() if "{" not in e["msgid"] and e["msgid"] not in KEPT_ENGLISH
                  and len(ENGLISH_WORD.findall(e["msgid"])) >= 2 and e["msgstr"][0] != e["msgid"]
                  and re.search(rf"(?<![A-Za-z]){re.escape(e['msgid'])}(?![A-Za-z])", text))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_the_chinese_notebook_shows_no_english_name_the_catalogue_translates(path):
    """A run name, a column or a setting the catalogue has in Chinese never shows in English in a Chinese
    notebook (an English name inside a Chinese sentence, a table cell the lesson forgot to translate)."""
    nb = committed(path, "zh")
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "")
                     for c in nb.cells for o in c.get("outputs", []) if o.get("name", "stdout") == "stdout")
    assert not leaked_names(text), f"{path.name}: {leaked_names(text)}"


def test_leaked_names_are_found():
    assert leaked_names("| 实验 | full fine-tuning |") == ["full fine-tuning"]
    assert not leaked_names("全量微调，trainable params: 4,096")


def test_numbers_beside_skips_times_and_finds_a_changed_number():
    en = [["run", "val acc", "s"], ["lora", "0.5", "1.2"]]
    assert not numbers_beside(en, [["实验", "验证集准确率", "秒"], ["lora", "0.5", "9.9"]])
    assert not numbers_beside([["run", "s / step"], ["NF4, fp32 scales", "0.1"]], [["实验", "秒/步"], ["NF4，fp32", "0.2"]])
    assert numbers_beside(en, [["实验", "验证集准确率", "秒"], ["lora", "0.6", "1.2"]]) == ["val acc: '0.5' vs '0.6'"]


# ---------------------------------------------------------------- the language of a run


@pytest.fixture
def clean_language(monkeypatch):
    for var in (i18n.ENV, "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "JPY_SESSION_NAME"):
        monkeypatch.delenv(var, raising=False)
    i18n.set_language(None)
    yield monkeypatch
    i18n.set_language(None)


def test_the_language_is_chosen_in_order(clean_language, tmp_path):
    mp = clean_language
    assert i18n.language() == "en"
    mp.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.language() == "zh"
    mp.setenv("LANGUAGE", "en_US:zh_CN")  # gettext reads LANGUAGE first
    assert i18n.language() == "en"
    mp.setenv(i18n.ENV, "zh")
    assert i18n.language() == "zh"
    i18n.set_language("en")
    assert i18n.language() == "en" and i18n._("val acc") == "val acc"
    i18n.set_language("zh_CN")
    assert i18n._("") == i18n.translate("", "zh") == ""  # not the catalogue's header, which gettext keys by ""
    assert i18n._("val acc") == "验证集准确率" and i18n.ngettext("{n} seed", "{n} seeds", 3) == "{n} 个随机种子"


def test_a_notebook_under_a_zh_folder_speaks_chinese(clean_language, tmp_path):
    import sys
    import types

    mp = clean_language
    mp.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    mp.setenv("JPY_SESSION_NAME", str(tmp_path / "notebooks" / "zh" / "03_freeze.ipynb"))
    assert i18n.language() == "zh"
    mp.setenv("JPY_SESSION_NAME", str(tmp_path / "notebooks" / "03_freeze.ipynb"))
    assert i18n.language() == "en"
    mp.delenv("JPY_SESSION_NAME")
    mp.chdir(tmp_path)
    (tmp_path / "zh").mkdir()
    assert i18n.language() == "en"
    mp.chdir(tmp_path / "zh")  # Jupyter starts a kernel in its notebook's folder
    assert i18n.language() == "zh"


@pytest.mark.parametrize("bad", ["fr", "", "chinese", "e"])
def test_an_unknown_language_is_refused(bad, clean_language):
    with pytest.raises(ValueError, match="choose one of en, zh"):
        i18n.set_language(bad)
    clean_language.setenv(i18n.ENV, bad or " ")
    with pytest.raises(ValueError, match="choose one of en, zh"):
        i18n.language()


def test_a_po_file_is_compiled_as_msgfmt_would(tmp_path):
    import gettext

    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  '#, python-format\nmsgid "a \\"{x}\\"\\n"\n"b"\nmsgstr "甲“{x}”\\n乙"\n\n'
                  'msgid "{n} seed"\nmsgid_plural "{n} seeds"\nmsgstr[0] "{n} 个"\n\n'
                  '#, fuzzy\nmsgid "f"\nmsgstr "模糊"\n\nmsgid "u"\nmsgstr ""\n', encoding="utf-8")
    entries_ = i18n.read_po(po)
    assert [e["msgid"] for e in entries_] == ['a "{x}"\nb', "{n} seed", "f", "u"]
    t = gettext.GNUTranslations(io.BytesIO(i18n.compile_mo(entries_)))
    assert t.gettext('a "{x}"\nb') == "甲“{x}”\n乙"
    assert t.ngettext("{n} seed", "{n} seeds", 1) == t.ngettext("{n} seed", "{n} seeds", 5) == "{n} 个"
    assert t.gettext("f") == "f" and t.gettext("u") == "u"  # fuzzy and untranslated: the English
    (tmp_path / "bad.po").write_text('msgid "a"\nmsgstr "甲"\nmsgctxt "c"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.po:3: 'msgctxt'"):
        i18n.read_po(tmp_path / "bad.po")


def test_every_catalogue_file_ships_in_the_package():
    """A wheel holds what package-data names: a .po file it missed would leave that part of the course English."""
    import fnmatch
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    package = ROOT / "minituner"
    files = [p.relative_to(package).as_posix() for p in i18n.catalogue_files("zh")]
    assert files and all(any(fnmatch.fnmatch(f, pattern) and f.count("/") == pattern.count("/")
                             for pattern in data["minituner"]) for f in files), files


def test_speaking_chooses_a_language_for_a_block_only(clean_language):
    clean_language.setenv("LANG", "zh_CN.UTF-8")
    with i18n.speaking("en"):
        assert i18n.language() == "en"
        with i18n.speaking("zh"):
            assert i18n._("val acc") == "验证集准确率"
        assert i18n.language() == "en"
    assert i18n.language() == "zh"  # back to the locale's: no choice had been made
    i18n.set_language("en")
    with pytest.raises(KeyError), i18n.speaking("zh"):
        raise KeyError
    assert i18n.language() == "en"


@pytest.mark.parametrize("folder, shown", [("zh", "验证集准确率"), ("notebooks", "val acc")])
def test_a_student_rerunning_a_chinese_notebook_in_jupyter_gets_chinese(tmp_path, folder, shown):
    """A real kernel, started as Jupyter starts one: in the notebook's folder, with no language chosen in the
    environment; the Chinese notebooks live in notebooks/zh/, so a kernel there speaks Chinese."""
    import os

    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from minituner.i18n import _, language\nprint(language(), _('val acc'))")])
    (tmp_path / folder).mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (i18n.ENV, "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG",
                                                            "JPY_SESSION_NAME")}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path / folder)}}
                   ).execute(env=env)
    assert nb.cells[0].outputs[0].text.strip().split(maxsplit=1) == ["zh" if folder == "zh" else "en", shown]


def test_the_catalogue_reads_the_same_through_gnu_msgfmt():
    """A differential test against the reference: GNU msgfmt --check accepts every .po file, and the
    catalogue gettext reads from msgfmt's .mo is the one minituner compiles (every message, every plural).
    .ci/run installs Debian's gettext, which has msgfmt."""
    import gettext
    import shutil
    import subprocess

    if shutil.which("msgfmt") is None:
        pytest.skip("GNU gettext's msgfmt is not installed (Debian: apt-get install gettext; .ci/run installs it)")
    for path in i18n.catalogue_files("zh"):
        done = subprocess.run(["msgfmt", "--check", "-o", "-", str(path)], capture_output=True)
        assert done.returncode == 0, f"{path.name}: {done.stderr.decode()}"
        reference = gettext.GNUTranslations(io.BytesIO(done.stdout))._catalog
        ours = gettext.GNUTranslations(io.BytesIO(i18n.compile_mo(i18n.read_po(path))))._catalog
        assert {k: v for k, v in ours.items() if k != ""} == {k: v for k, v in reference.items() if k != ""}, path.name
