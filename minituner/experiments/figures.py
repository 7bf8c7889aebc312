"""The comparison's figures: each task's curves.png (test accuracy with error bars, validation
curves), tradeoff.png (trainable share against test accuracy) and forgetting.png (gain on the task
against facts lost, one point per method and seed), and tasks.png over every task.
The only part of the comparison that imports matplotlib. Every text a figure draws is a message of the
catalogue (minituner/locale/zh/experiments.po): the figures speak the run's language."""

from __future__ import annotations

import statistics

from ..report import label, pyplot, save_figure

plt = pyplot()


def method_name(method: str) -> str:
    """A method's short name, as the figures (and lesson 08's tables) show it: in English its label without
    the Chinese gloss ("full (全量微调)" -> "full"), in Chinese the label's translation ("全量微调"). Through
    report.label, so the CJK font is set before the tick labels that draw it are made."""
    shown = label(method)
    return method.split(" (")[0] if shown == method else shown


def plot_tasks(results: dict[str, list[dict]], seeds: int, path) -> None:
    """Test accuracy by method (bars grouped) and task (colours), mean ± std over the seeds."""
    names = [method_name(r["method"]) for r in next(iter(results.values()))]  # before the axes: their ticks draw them
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(results)
    for i, (task, rows) in enumerate(results.items()):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [r["test acc"] for r in rows], width, yerr=[r["test acc std"] for r in rows], capsize=2,
               label=task)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(label("test accuracy (mean ± std, {seeds} seed(s))").format(seeds=seeds))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(label("Every method on every task, settings chosen per task on validation"))
    save_figure(fig, path)


def plot_compare(rows: list[dict], curves: dict, meta: dict, out) -> None:
    """out/curves.png and out/tradeoff.png for one task's rows (mean ± std over the seeds)."""
    task, seeds = meta["task"], meta["seeds"]
    names = [method_name(r["method"]) for r in rows]  # before the axes: their ticks draw them
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.barh(names, [r["test acc"] for r in rows], xerr=[r["test acc std"] for r in rows], capsize=3,
             color="tab:blue", alpha=0.8)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 1.05)
    ax1.set_xlabel(label("test accuracy (mean ± std, {seeds} seed(s))").format(seeds=seeds))
    ax1.grid(axis="x", alpha=0.3)
    ax1.set_title(label("`{task}`: test accuracy").format(task=task))
    for method, runs in curves.items():
        n = min(len(c) for c in runs)  # early stopping may end seeds at different steps
        mean = [statistics.fmean(c[i][1] for c in runs) for i in range(n)]
        ax2.plot([e[0] for e in runs[0][:n]], mean, "o-", ms=3, label=method_name(method))
    ax2.set_yscale("log")
    ax2.set_xlabel(label("step"))
    ax2.set_ylabel(label("validation loss (mean over seeds)"))
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    ax2.set_title(label("validation curves"))
    save_figure(fig, out / "curves.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, shown in zip(rows, names):
        ax.errorbar(r["trainable %"], r["test acc"], yerr=r["test acc std"], fmt="o", capsize=3)
        ax.annotate(shown, (r["trainable %"], r["test acc"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(label("trainable parameters (% of the model, log scale)"))
    ax.set_ylabel(label("test exact-match accuracy"))
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title(label("What each method trains, and what it buys"))
    save_figure(fig, out / "tradeoff.png")


def plot_forgetting(rows: list[dict], meta: dict, out) -> None:
    """out/forgetting.png: what each run learned against what it forgot, one point per method and seed
    (Biderman et al. 2024, Figure 1 in miniature). x: forgetting (the base's fact-probe accuracy minus
    the run's); y: gain (the run's test accuracy minus the base's own, before fine-tuning)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    base = meta["base"]["test acc"]
    for r in rows:
        if "forgetting" not in r:
            continue
        shown = method_name(r["method"])
        xs, ys = [run["forgetting"] for run in r["runs"]], [run["test acc"] - base for run in r["runs"]]
        points = ax.scatter(xs, ys, s=22, alpha=0.8, label=shown)
        ax.annotate(shown, (statistics.fmean(xs), statistics.fmean(ys)), fontsize=7, xytext=(4, 3),
                    textcoords="offset points", color=points.get_facecolor()[0])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(label("forgetting: fact-probe accuracy lost (base minus fine-tuned)"))
    ax.set_ylabel(label("gain: test accuracy minus the base's ({base:.3f})").format(base=base))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(label("`{task}`: learning against forgetting, {seeds} seed(s) per method").format(
        task=meta["task"], seeds=meta["seeds"]))
    save_figure(fig, out / "forgetting.png")
