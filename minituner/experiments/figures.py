"""The comparison's figures: each task's curves.png (test accuracy with error bars, validation
curves), tradeoff.png (trainable share against test accuracy) and forgetting.png (gain on the task
against facts lost, one point per method and seed), and tasks.png over every task.
The only part of the comparison that imports matplotlib."""

from __future__ import annotations

import statistics

from ..report import pyplot, save_figure

plt = pyplot()


def plot_tasks(results: dict[str, list[dict]], seeds: int, path) -> None:
    """Test accuracy by method (bars grouped) and task (colours), mean ± std over the seeds."""
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(results)
    names = [r["method"].split(" (")[0] for r in next(iter(results.values()))]
    for i, (task, rows) in enumerate(results.items()):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [r["test acc"] for r in rows], width, yerr=[r["test acc std"] for r in rows], capsize=2,
               label=task)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"test accuracy (mean ± std, {seeds} seed(s))")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Every method on every task, settings chosen per task on validation")
    save_figure(fig, path)


def plot_compare(rows: list[dict], curves: dict, meta: dict, out) -> None:
    """out/curves.png and out/tradeoff.png for one task's rows (mean ± std over the seeds)."""
    task, seeds = meta["task"], meta["seeds"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["method"].split(" (")[0] for r in rows]
    ax1.barh(names, [r["test acc"] for r in rows], xerr=[r["test acc std"] for r in rows], capsize=3,
             color="tab:blue", alpha=0.8)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 1.05)
    ax1.set_xlabel(f"test accuracy (mean ± std, {seeds} seed(s))")
    ax1.grid(axis="x", alpha=0.3)
    ax1.set_title(f"`{task}`: test accuracy")
    for name, runs in curves.items():
        n = min(len(c) for c in runs)  # early stopping may end seeds at different steps
        mean = [statistics.fmean(c[i][1] for c in runs) for i in range(n)]
        ax2.plot([e[0] for e in runs[0][:n]], mean, "o-", ms=3, label=name)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation loss (mean over seeds)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    ax2.set_title("validation curves")
    save_figure(fig, out / "curves.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, name in zip(rows, names):
        ax.errorbar(r["trainable %"], r["test acc"], yerr=r["test acc std"], fmt="o", capsize=3)
        ax.annotate(name, (r["trainable %"], r["test acc"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel("test exact-match accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("What each method trains, and what it buys")
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
        name = r["method"].split(" (")[0]
        xs, ys = [run["forgetting"] for run in r["runs"]], [run["test acc"] - base for run in r["runs"]]
        points = ax.scatter(xs, ys, s=22, alpha=0.8, label=name)
        ax.annotate(name, (statistics.fmean(xs), statistics.fmean(ys)), fontsize=7, xytext=(4, 3),
                    textcoords="offset points", color=points.get_facecolor()[0])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("forgetting: fact-probe accuracy lost (base minus fine-tuned)")
    ax.set_ylabel(f"gain: test accuracy minus the base's ({base:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"`{meta['task']}`: learning against forgetting, {meta['seeds']} seed(s) per method")
    save_figure(fig, out / "forgetting.png")
