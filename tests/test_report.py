"""Parameter counts and tables against the closed-form formulas of the config."""

import pytest

import minituner
from minituner import freeze, parameter_table
from minituner.model import GPT, GPTConfig, count_parameters, print_trainable_parameters

V = minituner.CharTokenizer().vocab_size
CONFIGS = [GPTConfig(vocab_size=V, block_size=96, n_layer=2, n_head=2, n_embd=16),
           GPTConfig(vocab_size=V, block_size=40, n_layer=3, n_head=3, n_embd=24)]


def expected_rows(c):
    """Each module's size from the config: attention 4d²+4d, MLP 8d²+5d, a LayerNorm 2d."""
    d = c.n_embd
    rows = {"wte": c.vocab_size * d, "wpe": c.block_size * d}
    for i in range(c.n_layer):
        rows |= {f"h.{i}.ln_1": 2 * d, f"h.{i}.attn": 4 * d * d + 4 * d,
                 f"h.{i}.ln_2": 2 * d, f"h.{i}.mlp": 8 * d * d + 5 * d}
    return rows | {"ln_f": 2 * d}


@pytest.mark.parametrize("c", CONFIGS, ids=["d16", "d24"])
def test_every_module_row_matches_the_closed_form(c):
    model = GPT(c)
    rows = parameter_table(model)
    assert {r["module"]: r["total"] for r in rows[:-1]} == expected_rows(c)
    assert [r["module"] for r in rows[:-1]] == list(expected_rows(c))  # the model's own order
    assert rows[-1] == {"module": "all", "trainable": count_parameters(model)[0], "frozen": 0,
                        "total": count_parameters(model)[1]}


@pytest.mark.parametrize("c", CONFIGS, ids=["d16", "d24"])
def test_one_row_per_block_at_depth_1(c):
    d = c.n_embd
    rows = {r["module"]: r["total"] for r in parameter_table(GPT(c), depth=1)}
    assert [rows[f"h.{i}"] for i in range(c.n_layer)] == [12 * d * d + 13 * d] * c.n_layer
    assert rows["all"] == c.vocab_size * d + c.block_size * d + c.n_layer * (12 * d * d + 13 * d) + 2 * d


@pytest.mark.parametrize("c", CONFIGS, ids=["d16", "d24"])
def test_the_table_splits_trainable_from_frozen(c):
    model = freeze(GPT(c), trainable_layers=1, train_head=True).base  # the GPT inside, by its own names
    top = f"h.{c.n_layer - 1}."
    for r in parameter_table(model)[:-1]:
        trains = r["module"].startswith(top) or r["module"] in ("ln_f", "wte")
        assert (r["trainable"], r["frozen"]) == ((r["total"], 0) if trains else (0, r["total"])), r
    d = c.n_embd
    assert parameter_table(model)[-1]["trainable"] == 12 * d * d + 13 * d + 2 * d + c.vocab_size * d


def test_the_tied_head_is_counted_once(tiny):
    rows = parameter_table(tiny)
    assert sum(r["module"] == "wte" for r in rows) == 1
    assert rows[-1]["total"] == sum(p.numel() for p in tiny.parameters()) == count_parameters(tiny)[1]


def test_markdown_form_and_bad_depth(tiny, capsys):
    md = parameter_table(freeze(tiny, trainable_layers=1).base, markdown=True)
    lines = md.splitlines()
    assert lines[0] == "| module | trainable | frozen | total |" and lines[-1].startswith("| all |")
    assert len(lines) == 2 + len(parameter_table(tiny))
    assert print_trainable_parameters(freeze(tiny, trainable_layers=1)) is None  # PEFT's: it prints, returns nothing
    assert capsys.readouterr().out.startswith("trainable params: ")
    with pytest.raises(ValueError, match="depth"):
        parameter_table(tiny, depth=0)


def missing_glyph_warnings(text: str) -> list[str]:
    """Draw `text` off-screen and return matplotlib's 'Glyph … missing' warnings (empty boxes)."""
    import warnings

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_figure_labels_never_draw_boxes():
    import matplotlib

    from minituner.i18n import set_language
    from minituner.report import label

    with matplotlib.rc_context():
        set_language("zh")
        text = label("training loss")
        assert text == "训练损失"  # on every machine: the package ships its CJK font (tests/test_fonts.py)
        assert missing_glyph_warnings(text) == []


def test_label_speaks_the_runs_language_and_adds_the_cjk_font_as_a_fallback_only(monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    from minituner import report
    from minituner.i18n import set_language

    with matplotlib.rc_context():
        monkeypatch.setattr(report, "cjk_font", lambda: "Some CJK Sans")
        before = list(plt.rcParams["font.family"])
        assert report.label("step") == "step" and report.label("no such message") == "no such message"
        set_language("zh")
        assert report.label("step") == "步数" and report.label("validation loss") == "验证集损失"
        assert plt.rcParams["font.family"] == [*before, "Some CJK Sans"]  # appended once, after the default


def test_a_font_that_draws_every_character_as_one_box_is_not_chinese():
    from matplotlib import font_manager

    from minituner.report import cjk_font

    boxes = [f.name for f in font_manager.fontManager.ttflist if f.name.startswith("Last Resort")]
    if not boxes:
        pytest.skip("this matplotlib ships no Last Resort font")
    assert cjk_font() not in boxes  # it has a "glyph" for every code point: the same box


def test_the_plot_helpers_draw_in_the_runs_language(monkeypatch, tmp_path):
    import matplotlib

    from minituner import report
    from minituner.i18n import set_language
    from minituner.train import History

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig))
    curves = {"full fine-tuning": History(losses=[2.0, 1.0, 0.5], val=[(2, 1.5, 0.1), (3, 1.2, 0.2)])}

    def texts():
        fig = figures.pop()
        out = [t.get_text() for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
        out += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        matplotlib.pyplot.close(fig)
        return " ".join(out)

    with matplotlib.rc_context():
        report.plot_curves(curves, "t", tmp_path / "c.png")
        report.plot_tradeoff([("a", 10, 0.5)], "t", tmp_path / "t.png", baseline=0.3)
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in texts() + texts())  # English: no Chinese at all
        set_language("zh")
        report.plot_curves(curves, "t", tmp_path / "c.png")
        drawn = texts()
        assert "验证集损失" in drawn and "全量微调" in drawn and "validation" not in drawn  # axes and legend


def test_a_table_is_text_in_a_terminal_and_markdown_in_a_notebook(capsys):
    from IPython.core.formatters import DisplayFormatter

    from minituner.report import markdown_table, show

    table = markdown_table([{"method": "lora", "acc": 0.5}])
    data, _ = DisplayFormatter().format(table)
    assert data["text/markdown"] == table and data["text/plain"] == table  # rendered, not a quoted repr
    show(table)
    assert capsys.readouterr().out == table + "\n"
