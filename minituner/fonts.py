"""The font figures draw Chinese with, shipped with the package so that every machine draws it.

minituner/assets/fonts/NotoSansCJKsc-subset.otf is a subset of Noto Sans CJK SC Regular (Google and
Adobe, SIL Open Font License 1.1: OFL.txt beside it): only the glyphs the course's figures may use, the
Chinese of every message of the catalogue (minituner/locale/zh/*.po: a figure's titles, axes, legends and
tick labels are messages) and of every matplotlib text call in minituner/ and lessons/, CJK_PROBE, and
printable ASCII. Its family is renamed FAMILY, so matplotlib never mistakes it
for (or for it) a full Noto Sans CJK SC installed on the machine. report.cjk_font() registers the file
with matplotlib's font manager at run time (``fontManager.addfont``); nothing is written into
matplotlib's installation.

A figure that gains Chinese characters the subset lacks fails tests/test_fonts.py, which names the
characters. Rebuild the subset from a source checkout (Debian/Ubuntu: ``apt install fonts-noto-cjk``;
or NotoSansCJK-Regular.ttc from https://github.com/notofonts/noto-cjk):

    python -m minituner.fonts --build /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

FONT_DIR = Path(__file__).resolve().parent / "assets" / "fonts"
FONT_PATH = FONT_DIR / "NotoSansCJKsc-subset.otf"
LICENSE_PATH = FONT_DIR / "OFL.txt"
FAMILY = "Noto Sans CJK SC minituner subset"  # OFL: a modified version; the upstream reserved name is "Source"
SOURCE_FACE = "Noto Sans CJK SC"  # the Simplified Chinese face of the .ttc collection
CJK_PROBE = "微调损失"  # characters the figures' font must draw, each with its own glyph
REBUILD = "python -m minituner.fonts --build /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

ROOT = Path(__file__).resolve().parents[1]  # a source checkout: minituner/ and lessons/ beside each other
# matplotlib calls whose string arguments (and `label=` keywords anywhere) are drawn in a figure
TEXT_CALLS = {"label", "set_title", "set_xlabel", "set_ylabel", "suptitle", "title", "xlabel", "ylabel", "text",
              "annotate", "legend", "set_xticklabels", "set_yticklabels", "set_label", "figtext"}


def needs_cjk_font(ch: str) -> bool:
    """True for a character from the CJK blocks on (radicals, punctuation 、。:, ideographs, full-width
    forms): matplotlib's default font (DejaVu Sans) draws none of them; it does draw θ, φ, −, ₀."""
    return ord(ch) >= 0x2E80


def _strings(node: ast.AST) -> list[str]:
    """Every string constant under node (f-strings' literal parts included)."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def figure_texts(root: Path = ROOT) -> dict[str, set[str]]:
    """{file (relative to root): its strings holding Chinese that a figure may draw}: every translation in
    the message catalogue (root/minituner/locale/zh/*.po; a figure's text is a message, and so is a run
    name in its legend), and the string arguments of each matplotlib text call (TEXT_CALLS) and each `label=`
    keyword's in minituner/ and lessons/ (read from their syntax trees)."""
    from .i18n import read_po

    out: dict[str, set[str]] = {}
    for path in sorted((root / "minituner" / "locale" / "zh").rglob("*.po")):
        found = {s for e in read_po(path) for s in e["msgstr"] if any(needs_cjk_font(c) for c in s)}
        if found:
            out[path.relative_to(root).as_posix()] = found
    files = sorted((root / "minituner").rglob("*.py")) + sorted((root / "lessons").glob("*.py"))
    for path in files:
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            drawn: list[ast.AST] = [k.value for k in node.keywords if k.arg == "label"]
            if name in TEXT_CALLS:
                drawn += node.args
            found |= {s for d in drawn for s in _strings(d) if any(needs_cjk_font(c) for c in s)}
        if found:
            out[path.relative_to(root).as_posix()] = found
    return out


def course_characters(root: Path = ROOT) -> str:
    """The sorted characters the shipped font must draw: the figures' CJK ones and CJK_PROBE."""
    chars = {c for texts in figure_texts(root).values() for s in texts for c in s if needs_cjk_font(c)}
    return "".join(sorted(chars | set(CJK_PROBE)))


def build(source: Path, out: Path = FONT_PATH) -> Path:
    """Subset the Simplified Chinese face of `source` (a .ttc collection, or a single .otf) to the course's
    characters plus printable ASCII, rename its family to FAMILY, and write it to `out`."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection, TTFont

    if source.suffix.lower() in (".ttc", ".otc"):
        faces = TTCollection(str(source)).fonts
        names = [f["name"].getDebugName(1) for f in faces]
        if SOURCE_FACE not in names:
            raise SystemExit(f"{source} holds no {SOURCE_FACE!r} face, only {names}")
        font = faces[names.index(SOURCE_FACE)]
    else:
        font = TTFont(str(source))
    options = subset.Options()
    options.name_IDs = ["*"]  # keep the copyright and license fields (OFL condition 2)
    options.name_languages = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[*range(0x20, 0x7F), *map(ord, course_characters())])
    subsetter.subset(font)
    names = font["name"]
    for record in list(names.names):  # the family's names; a modified version takes its own (OFL condition 3)
        if record.nameID in (1, 3, 4, 16):
            names.setName(FAMILY, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:
            names.setName(FAMILY.replace(" ", ""), 6, record.platformID, record.platEncID, record.langID)
    if "CFF " in font:  # the PostScript name inside the CFF table too
        cff = font["CFF "].cff
        cff.fontNames = [FAMILY.replace(" ", "")]
        top = cff.topDictIndex[0]
        for key in ("FamilyName", "FullName"):
            if hasattr(top, key):
                setattr(top, key, FAMILY)
    font.recalcTimestamp = False  # the source's dates: the same source gives the same bytes
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minituner.fonts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, metavar="SOURCE", required=True,
                        help="the Noto Sans CJK font to subset (NotoSansCJK-Regular.ttc or NotoSansCJKsc-Regular.otf)")
    parser.add_argument("--out", type=Path, default=FONT_PATH, help=f"where to write the subset (default {FONT_PATH})")
    args = parser.parse_args(argv)
    out = build(args.build, args.out)
    print(f"wrote {out}: {out.stat().st_size:,} bytes, {len(course_characters())} CJK characters + printable ASCII")


if __name__ == "__main__":
    main()
