"""Drawing what a run did: tables (Markdown) and figures (PNG, headless)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path

from .checkpoint import atomic_write
from .i18n import _


def pyplot():
    """matplotlib.pyplot, imported on first use (``import minituner`` imports no matplotlib): a notebook
    keeps its inline backend; scripts and tests draw off-screen (Agg)."""
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _module_key(name: str, depth: int) -> str:
    """'h.0.attn.q_proj.weight' -> 'h.0.attn' at depth 2: the owning module's path, cut to
    `depth` levels, a list index staying with its list ('h.0' is one level)."""
    parts = name.split(".")[:-1] or [name]  # a parameter held by the model itself is its own row
    levels: list[str] = []
    for part in parts:
        if part.isdigit() and levels:
            levels[-1] += "." + part
        elif len(levels) < depth:
            levels.append(part)
        else:
            break
    return ".".join(levels)


def parameter_table(model, depth: int = 2, markdown: bool = False):
    """Trainable and frozen element counts per module, in the model's own order, then a total.

    depth 2 gives rows like wte, wpe, h.0.ln_1, h.0.attn, h.0.ln_2, h.0.mlp, …, ln_f;
    depth 1 gives one row per block (h.0, h.1, …). A shared tensor (the tied head) counts
    once, under its first name (wte). Returns a list of dicts {module, trainable, frozen,
    total}, or its Markdown table when markdown=True.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1 (1: one row per block, 2: attn/mlp/LayerNorms), got {depth}")
    rows: dict[str, dict] = {}
    for name, p in model.named_parameters():  # named_parameters yields a shared tensor once
        key = _module_key(name, depth)
        row = rows.setdefault(key, {"module": key, "trainable": 0, "frozen": 0, "total": 0})
        row["trainable" if p.requires_grad else "frozen"] += p.numel()
        row["total"] += p.numel()
    out = list(rows.values())
    out.append({"module": "all", **{k: sum(r[k] for r in out) for k in ("trainable", "frozen", "total")}})
    return markdown_table(out) if markdown else out


class Table(str):
    """A Markdown table that is also a str: printed in a terminal it is the text, and at the end of
    a notebook cell (or through ``show``) Jupyter renders it as a table."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's text/plain: the table's text, not its quoted repr
        p.text(str(self))


def show(obj) -> None:
    """Display obj: rendered (a Table as a table) in a notebook kernel, printed in a terminal."""
    if "ipykernel" in sys.modules:
        from IPython.display import display

        display(obj)
    else:
        print(obj)


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> Table:
    """A list of dicts -> a Markdown Table; floats get 4 significant digits. Headers and text cells are
    shown in the run's language (looked up in the message catalogue, minituner.i18n; the dicts' keys stay
    English, so code reads them the same in both). A `|` inside a header or a cell is escaped (`\\|`):
    GitHub-flavoured Markdown splits a row at every unescaped one."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return _(str(v)).replace("|", "\\|")

    lines = ["| " + " | ".join(fmt(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return Table("\n".join(lines))


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """The family name of the font figures draw Chinese with: the Noto Sans CJK SC subset shipped in
    minituner/assets/fonts/ (SIL OFL 1.1, minituner/fonts.py), registered with matplotlib's font manager
    on first use. The same on every machine, whatever fonts it has; matplotlib's installation is untouched."""
    from matplotlib import font_manager

    # imported here, not above: `import minituner` then leaves minituner.fonts for `python -m minituner.fonts`
    from .fonts import FAMILY, FONT_PATH

    if FAMILY not in {f.name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(FONT_PATH))  # this process's font list only
    return FAMILY


def label(text: str) -> str:
    """A figure's text in the run's language: `text` (English) looked up in the message catalogue
    (minituner.i18n), e.g. label("step") is "step" or "步数".

    The shipped CJK font (cjk_font) is appended to matplotlib's font families as a fallback: Latin
    text keeps the default font, Chinese characters come from the CJK one. A Chinese character the
    shipped subset lacks fails tests/test_fonts.py, which says how to rebuild it.
    """
    plt = pyplot()
    font = cjk_font()
    families = list(plt.rcParams["font.family"])
    if font not in families:
        plt.rcParams["font.family"] = [*families, font]
    return _(text)


def draw_chinese(fig) -> None:
    """Give each text of `fig` that holds Chinese the shipped CJK font as its fallback. A text made
    before the first label() call (an axis label is made with its axes) keeps the font families of
    that moment, which the CJK font was not yet among. The figure is drawn once first: a tick label of
    categories gets its text only when drawn."""
    from matplotlib.text import Text

    from .fonts import needs_cjk_font

    font = cjk_font()
    with warnings.catch_warnings():  # this draw only gives category tick labels their text; it is thrown away,
        warnings.simplefilter("ignore")  # and its missing-glyph warnings with it: the fonts are set below
        logger = logging.getLogger("matplotlib")
        level, logger.level = logger.level, logging.ERROR
        try:
            fig.canvas.draw()
        finally:
            logger.setLevel(level)
    for text in fig.findobj(Text):
        families = list(text.get_fontfamily())
        if font not in families and any(needs_cjk_font(c) for c in text.get_text()):
            text.set_fontfamily([*families, font])


def save_figure(fig, path) -> Path:
    """Save a figure as PNG atomically (and show that PNG inline when running in a notebook,
    whatever matplotlib backend the kernel has: with MPLBACKEND=Agg plt.show() shows nothing).
    Its Chinese is drawn with the shipped CJK font (draw_chinese)."""
    plt = pyplot()
    path = Path(path)
    draw_chinese(fig)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    if "ipykernel" in sys.modules and not os.environ.get("MINITUNER_NO_SHOW"):
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    plt.close(fig)
    return path


def running_mean(values: list[float], k: int = 10) -> list[float]:
    """The mean of the last k values at each position (fewer at the start)."""
    k = max(1, min(k, len(values)))
    return [sum(values[max(0, i - k + 1) : i + 1]) / len(values[max(0, i - k + 1) : i + 1]) for i in range(len(values))]


def _loss_axis(ax, curves: dict[str, list[float]], smooth: int):
    for name, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), running_mean(losses, smooth), label=_(name))
    ax.set_xlabel(label("step"))
    ax.set_ylabel(label("training loss (answer tokens, mean of {smooth} steps)").format(smooth=smooth))
    ax.set_yscale("log")
    ax.grid(alpha=0.3)


def plot_losses(curves: dict[str, list[float]], title: str, path, smooth: int = 10):
    """One line per run: the training loss per step (a running mean over `smooth` steps)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    _loss_axis(ax, curves, smooth)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_curves(histories: dict, title: str, path, smooth: int = 10):
    """Training and validation curves of several runs side by side: left the training loss per step
    (running mean), right the validation loss at each evaluation (History.val; train(eval_every=…))."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    _loss_axis(ax1, {name: h.losses for name, h in histories.items()}, smooth)
    ax1.set_title(label("training loss"))
    for name, h in histories.items():
        steps, losses = [e[0] for e in h.val], [e[1] for e in h.val]
        ax2.plot(steps, losses, "o-", ms=3, label=_(name))
    ax2.set_xlabel(label("step"))
    ax2.set_ylabel(label("validation loss (answer tokens)"))
    ax2.set_yscale("log")
    ax2.set_title(label("validation loss"))
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_tradeoff(points: list[tuple[str, float, float]], title: str, path, xlabel: str = "trainable parameters (log)",
                  baseline: float | None = None):
    """One dot per run: (label, trainable parameters, test accuracy), x on a log scale."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, x, acc in points:
        ax.scatter(x, acc, s=40)
        ax.annotate(_(name), (x, acc), fontsize=7, xytext=(4, 4), textcoords="offset points")
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls=":", label=label("base, untrained"))
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(label(xlabel))
    ax.set_ylabel(label("test accuracy (exact match)"))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
