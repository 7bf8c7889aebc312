"""The course in two languages: one message catalogue, and the language a run speaks.

Every text a lesson or the command line prints or draws (table headers, run names, conclusions,
figure titles, axes and legends, --help) is written once, in English, in the code, and looked up in
the catalogue when the run speaks Chinese:

    from minituner.i18n import _
    print(_("{steps} steps per run").format(steps=40))   # "40 steps per run" / "每次训练 40 步"

The catalogue is GNU gettext's: the .po files under minituner/locale/zh/ (one for the library, one for
the command line, one per lesson, so that lessons are edited apart; a message is defined in one file
only), read into Python's own ``gettext.GNUTranslations``. A message without a translation prints in
English; tests/test_i18n.py fails on one, and on a translation whose {fields} differ from the English.

The language of a run, first found wins:
1. ``set_language(...)`` (a lesson's ``--lang``; the command line's ``--lang`` where it has one);
2. the environment variable MINITUNER_LANG ("en" or "zh");
3. in a Jupyter kernel, the notebook's folder: a notebook under notebooks/zh/ speaks Chinese;
4. the locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG; gettext's order): zh_CN.UTF-8 speaks Chinese;
5. English.
"""

from __future__ import annotations

import ast
import gettext as _gettext
import io
import os
import struct
import sys
from contextlib import contextmanager
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "zh")
ENV = "MINITUNER_LANG"
LOCALE = Path(__file__).resolve().parent / "locale"
HEADER = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=1; plural=0;\n"  # Chinese: one form

_chosen: str | None = None


def check_language(lang: str) -> str:
    """'zh', 'zh_CN', 'zh-Hans' -> 'zh'; 'en', 'en_US' -> 'en'; anything else is refused."""
    code = str(lang).strip().lower().replace("-", "_").split(".")[0]
    for known in LANGUAGES:
        if code == known or code.startswith(known + "_"):
            return known
    raise ValueError(f"language {lang!r} is not one the course speaks: choose one of {', '.join(LANGUAGES)}")


def set_language(lang: str | None) -> None:
    """Speak `lang` from now on in this process (None: back to the environment's choice)."""
    global _chosen
    _chosen = None if lang is None else check_language(lang)


def _notebook_folder() -> Path | None:
    """The folder of the notebook this Jupyter kernel runs: Jupyter's JPY_SESSION_NAME, VS Code's
    __vsc_ipynb_file__, else the kernel's working folder (Jupyter starts it in the notebook's)."""
    if "ipykernel" not in sys.modules:
        return None
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        return Path(session).parent
    ipython = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    vscode = (ipython.user_ns.get("__vsc_ipynb_file__") if ipython is not None else None)
    return Path(vscode).parent if vscode else Path.cwd()


def _locale_language() -> str | None:
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            first = value.split(":")[0]
            return "zh" if first.lower().startswith("zh") else None
    return None


@contextmanager
def speaking(lang: str):
    """Speak `lang` inside the block, then as before (the choice made, or none): a file keeps its own
    language (a README's block its README's, a generated English page English) whatever the run speaks."""
    global _chosen
    before = _chosen
    set_language(lang)
    try:
        yield
    finally:
        _chosen = before


def language() -> str:
    """The language this run speaks, "en" or "zh" (the module's docstring gives the order)."""
    if _chosen:
        return _chosen
    if os.environ.get(ENV):
        return check_language(os.environ[ENV])
    folder = _notebook_folder()
    if folder is not None and folder.name == "zh":
        return "zh"
    return _locale_language() or "en"


# ---------------------------------------------------------------- the catalogue: .po files, read by gettext


def catalogue_files(lang: str = "zh") -> list[Path]:
    return sorted((LOCALE / lang).rglob("*.po"))


def _unquote(line: str, path: Path, number: int) -> str:
    try:
        value = ast.literal_eval(line)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, str) or not line.startswith('"'):
        raise ValueError(f"{path}:{number}: expected a quoted string, got {line!r}")
    return value


def read_po(path: Path) -> list[dict]:
    """The entries of one .po file, in order: {"msgid", "msgid_plural" (or None), "msgstr" (a list:
    one string, or one per plural form), "line", "flags"}. The header (msgid "") is left out.
    Raises ValueError naming the file and line of anything it cannot read."""
    entries: list[dict] = []
    entry: dict | None = None
    field: tuple | None = None  # where a continued "..." line goes: (key, index)
    flags: set[str] = set()

    def finish():
        nonlocal entry
        if entry is not None and entry["msgid"]:
            entries.append(entry)
        entry = None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#,"):
            flags |= {f.strip() for f in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            if field is None:
                raise ValueError(f"{path}:{number}: a continued string with nothing to continue")
            key, index = field
            if index is None:
                entry[key] += _unquote(line, path, number)
            else:
                entry[key][index] += _unquote(line, path, number)
        elif keyword == "msgid":
            finish()
            entry = {"msgid": _unquote(rest, path, number), "msgid_plural": None, "msgstr": [], "line": number,
                     "flags": flags}
            flags, field = set(), ("msgid", None)
        elif entry is None:
            raise ValueError(f"{path}:{number}: {keyword} before any msgid")
        elif keyword == "msgid_plural":
            entry["msgid_plural"], field = _unquote(rest, path, number), ("msgid_plural", None)
        elif keyword == "msgstr" or keyword.startswith("msgstr["):
            index = 0 if keyword == "msgstr" else int(keyword[7:-1])
            if index != len(entry["msgstr"]):
                raise ValueError(f"{path}:{number}: {keyword} out of order")
            entry["msgstr"].append(_unquote(rest, path, number))
            field = ("msgstr", index)
        else:
            raise ValueError(f"{path}:{number}: {keyword!r} is not a .po keyword minituner reads "
                             "(msgid, msgid_plural, msgstr, msgstr[N], comments)")
    finish()
    return entries


def compile_mo(entries: list[dict]) -> bytes:
    """The entries as a GNU .mo file (what msgfmt writes), for gettext.GNUTranslations: the header, then
    each translated entry (a plural's key is msgid NUL msgid_plural, its value the forms joined by NUL)."""
    pairs = {"": HEADER}
    for e in entries:
        if "fuzzy" in e["flags"] or not any(e["msgstr"]):
            continue  # as msgfmt: an untranslated or fuzzy entry is left out, so its English shows
        key = e["msgid"] if e["msgid_plural"] is None else e["msgid"] + "\0" + e["msgid_plural"]
        pairs[key] = "\0".join(e["msgstr"])
    keys = sorted(pairs, key=lambda k: k.encode())
    ids = [k.encode() for k in keys]
    strs = [pairs[k].encode() for k in keys]
    n = len(keys)
    start = 7 * 4 + 16 * n  # the header, then the two tables of (length, offset)
    offsets, data = [], b""
    for s in ids + strs:
        offsets.append((len(s), start + len(data)))
        data += s + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    tables = b"".join(struct.pack("<2I", *o) for o in offsets)
    return head + tables + data


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """lang's catalogue as gettext reads it (English: the messages as written)."""
    if lang == "en":
        return _gettext.NullTranslations()
    entries = [e for path in catalogue_files(lang) for e in read_po(path)]
    return _gettext.GNUTranslations(io.BytesIO(compile_mo(entries)))


def translate(message: str, lang: str | None = None) -> str:
    """`message` in `lang` (default: the run's language); itself where the catalogue has no translation
    (and "" stays "": gettext would give the catalogue's header for it)."""
    return translations(lang or language()).gettext(message) if message else message


def _(message: str) -> str:
    """`message` in the run's language: gettext's conventional name, so tools that collect messages find it."""
    return translate(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a counted message: English picks singular or plural by n, Chinese has one form."""
    return translations(language()).ngettext(singular, plural, n)
