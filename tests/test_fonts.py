"""Chinese in figures on every machine (issue 38, item 4): the package ships an OFL CJK font subset
(minituner/assets/fonts/), registers it with matplotlib at run time, and it draws every Chinese character
the course puts in a figure, whatever fonts the machine has."""

import io
import logging
import warnings
from pathlib import Path

import pytest

from minituner import fonts

ROOT = Path(__file__).resolve().parents[1]


def drawing_warnings(texts: list[str]) -> list[str]:
    """The warnings (Python's and matplotlib's logger's) from drawing a figure holding `texts` with Agg."""
    import matplotlib.pyplot as plt

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    keep = Keep()
    logger = logging.getLogger("matplotlib")
    logger.addHandler(keep)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig, ax = plt.subplots()
            ax.plot([0, 1], [1, 0], label=texts[0])
            ax.set_title(texts[-1])
            ax.set_xlabel(" ".join(texts))
            ax.legend()
            fig.savefig(io.BytesIO(), format="png")
            plt.close(fig)
    finally:
        logger.removeHandler(keep)
    return [str(w.message) for w in caught] + keep.messages


def missing_glyphs(messages: list[str]) -> list[str]:
    return [m for m in messages if "missing from" in m or ("Glyph" in m and "missing" in m)]


def test_the_shipped_font_is_the_one_registered_and_found():
    from matplotlib import font_manager

    from minituner.report import cjk_font

    assert cjk_font() == fonts.FAMILY
    found = font_manager.findfont(font_manager.FontProperties(family=fonts.FAMILY), fallback_to_default=False)
    assert Path(found).resolve() == fonts.FONT_PATH.resolve()  # the package's file, not a font the machine has
    assert Path(found).resolve().is_relative_to(ROOT / "minituner")  # nothing of matplotlib's installation used


def test_a_figure_with_chinese_labels_draws_every_glyph():
    import matplotlib

    from minituner.i18n import set_language, translations
    from minituner.report import label, pyplot

    pyplot()  # Agg off a notebook
    set_language("zh")
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):  # the default, whatever this machine set
        texts = [label("training loss"), label("validation loss (answer tokens)"), label("base, untrained")]
        everything = "".join(sorted({c for path in fonts.figure_texts(ROOT) for s in fonts.figure_texts(ROOT)[path]
                                     for c in s}))  # every character the catalogue may put in a figure
        texts += [everything[i: i + 60] for i in range(0, len(everything), 60)]
        assert texts[0] == translations("zh").gettext("training loss") != "training loss"
        assert matplotlib.rcParams["font.family"] == ["DejaVu Sans", fonts.FAMILY]  # the fallback, appended
        messages = drawing_warnings(texts)
    assert missing_glyphs(messages) == [], messages


def test_a_figure_made_before_its_labels_draws_every_glyph(tmp_path):
    """A lesson's order: the axes (and their label texts) first, label() after, save_figure last."""
    import matplotlib

    from minituner import report
    from minituner.i18n import set_language, translate

    plt = report.pyplot()
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        set_language("zh")
        ax.set_xlabel(report.label("step"))
        ax.set_ylabel(report.label("training loss"))
        ax.set_title(translate("validation loss (answer tokens)", "zh"))  # Chinese set without label()
        messages = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report.save_figure(fig, tmp_path / "f.png")
            messages += [str(w.message) for w in caught]
        plt.close(fig)
    assert (tmp_path / "f.png").stat().st_size > 0
    assert missing_glyphs(messages) == [], messages


def test_chinese_without_the_shipped_font_would_warn():
    """The check above can fail: the same text, drawn without the CJK fallback, warns of missing glyphs."""
    import matplotlib

    from minituner.report import pyplot

    pyplot()
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        assert missing_glyphs(drawing_warnings(["训练损失"]))


def test_every_chinese_character_in_a_figure_is_in_the_shipped_subset():
    from matplotlib import ft2font

    cmap = ft2font.FT2Font(str(fonts.FONT_PATH)).get_charmap()
    texts = fonts.figure_texts(ROOT)
    assert "minituner/locale/zh/minituner.po" in texts and any("/lessons/" in f for f in texts)  # the reader reads
    missing = {f: "".join(sorted({c for s in found for c in s if fonts.needs_cjk_font(c) and ord(c) not in cmap}))
               for f, found in texts.items()}
    missing = {f: chars for f, chars in missing.items() if chars}
    assert not missing, (f"figure text uses characters the shipped font subset lacks: {missing}; "
                         f"rebuild it: {fonts.REBUILD}")
    assert all(ord(c) in cmap for c in fonts.CJK_PROBE + "".join(map(chr, range(0x20, 0x7F))))
    probe = {cmap[ord(c)] for c in fonts.CJK_PROBE}
    assert len(probe) == len(fonts.CJK_PROBE)  # a glyph of its own for each, not one box for all


def test_the_reader_finds_the_catalogue_and_text_calls(tmp_path):
    (tmp_path / "minituner" / "locale" / "zh").mkdir(parents=True)
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "99_x.py").write_text(
        'ax.plot(x, label="甲" if i else "乙")\n'
        'ax.set_title("丙 title")\nprint("戊")\nlabel("only English")\n', encoding="utf-8")
    (tmp_path / "minituner" / "locale" / "zh" / "x.po").write_text(
        'msgid "only English"\nmsgstr "丁"\n\nmsgid "b"\nmsgstr "b"\n', encoding="utf-8")
    assert fonts.figure_texts(tmp_path) == {"lessons/99_x.py": {"甲", "乙", "丙 title"},
                                            "minituner/locale/zh/x.po": {"丁"}}


def test_the_license_ships_beside_the_font_and_in_the_package_data():
    import tomllib

    assert fonts.FONT_PATH.is_file() and fonts.FONT_PATH.stat().st_size < 500_000  # a subset, not the 19 MB font
    text = fonts.LICENSE_PATH.read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in text and "Copyright" in text and fonts.FONT_PATH.name in text
    assert fonts.LICENSE_PATH.parent == fonts.FONT_PATH.parent
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    assert "assets/fonts/*" in data["minituner"]


def test_import_minituner_registers_no_font():
    import subprocess
    import sys

    code = "import sys, minituner; assert 'matplotlib' not in sys.modules; assert 'minituner.fonts' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_rebuild_command_documents_itself(capsys):
    with pytest.raises(SystemExit):
        fonts.main(["--help"])
    out = capsys.readouterr().out
    assert "--build" in out and fonts.REBUILD in out
