"""The book's figures, from the outcome tables and the run's logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.method.convergence import Convergence
from xqglib.study import analysis as A
from xqglib.study import experiments as E
from xqglib.study.tables import SIGNIFICANCE_MARK


def plot_losses(logs: Mapping[str, Sequence[Mapping[str, float]]], key: str, title: str,
                criterion: Convergence | None = None):
    """Loss curves, one line per model; dev losses as markers where present (and the dev MRR@10,
    where logged, on the right-hand axis). With the ``criterion`` the models trained until, the
    kept checkpoint (the best of its measure) is starred on the dev loss and a dotted line marks
    where training stopped, converged or not."""
    import matplotlib.pyplot as plt

    from xqglib.method.convergence import verdict_of_log

    fig, ax = plt.subplots(figsize=(6, 4.2))
    right = None
    for name, log in logs.items():
        ax.plot([r["step"] for r in log], [r[key] for r in log], label=f"{name} ({key})", alpha=0.8)
        dev = {int(r["step"]): r for r in log if "dev_loss" in r}
        if not dev:
            continue
        line, = ax.plot(list(dev), [r["dev_loss"] for r in dev.values()], "o--", label=f"{name} (dev-article loss)")
        if any("dev_mrr" in r for r in dev.values()):
            right = right or ax.twinx()
            mrr = [(step, r["dev_mrr"]) for step, r in dev.items() if "dev_mrr" in r]
            right.plot(*zip(*mrr), "s:", color=line.get_color(), alpha=0.6, label=f"{name} (dev MRR@10, right)")
        found = verdict_of_log(criterion, log) if criterion is not None and "passes" in log[-1] else None
        if found is not None and found.best_step in dev:
            ax.plot([found.best_step], [dev[found.best_step]["dev_loss"]], "*", markersize=14, color=line.get_color(),
                    label=f"{name}: kept (best {criterion.label})")
            ax.axvline(found.steps, linestyle=":", color=line.get_color(),
                       label=f"{name}: {'converged' if found.converged else 'stopped unconverged'} "
                             f"after {found.passes:.2f} passes")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel("dev MRR@10")
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    # below the axes: the dev curves fill the plot's upper half
    ax.legend(handles, labels, fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def plot_n_sweep(sweep: pd.DataFrame, title: str, plain: Mapping[str, float] | None = None):
    """R@2kt / R@5kt against n (:func:`xqglib.study.analysis.n_sweep`), with † where the difference from
    the plain retriever (drawn dashed when given) is significant."""
    import matplotlib.pyplot as plt

    rows = sweep.reset_index().to_dict("records")
    fig, ax = plt.subplots(figsize=(5, 3))
    for measure, marker in (("R@2kt", "o"), ("R@5kt", "s")):
        xs, ys = [r["n"] for r in rows], [r[measure] for r in rows]
        line, = ax.plot(xs, ys, marker=marker, label=measure)
        if plain is not None:
            ax.axhline(plain[measure], color=line.get_color(), linestyle="--", linewidth=1,
                       label=f"{measure}, no xQG")
        for x, y, r in zip(xs, ys, rows):
            if r[f"{measure} p"] < 0.05:
                ax.annotate(SIGNIFICANCE_MARK, (x, y), textcoords="offset points", xytext=(0, 5), ha="center")
    ax.margins(y=0.15)  # room for the marks
    ax.set_xlabel("generated queries per language (n)")
    ax.set_ylabel("score")
    ax.set_xticks([r["n"] for r in rows])
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def plot_language_bars(cfg: Profile, results: pd.DataFrame, name: str, measure: str):
    """Per-language bars of one retriever without and with xQG, each pair labelled with the
    difference; languages that have generated queries are starred."""
    import matplotlib.pyplot as plt

    langs = list(cfg.data.query_languages)
    table = A.per_language(results, measure).reindex(columns=langs).fillna(0.0)
    plain = table.loc[E.plain(cfg, name).name].tolist()
    xqg = table.loc[E.xqg(cfg, name, cfg.augmentation.alpha).name].tolist()
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(langs) + 2), 3.2))
    xs = range(len(langs))
    ax.bar([x - 0.2 for x in xs], plain, width=0.4, label=name)
    ax.bar([x + 0.2 for x in xs], xqg, width=0.4, label=f"{name} + xQG")
    for x, a, b in zip(xs, plain, xqg):
        ax.annotate(f"{b - a:+.1f}", (x, max(a, b)), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=7)
    ax.set_xticks(list(xs), [f"{l}*" if l in cfg.generation.languages else l for l in langs])
    ax.set_ylabel(measure)
    ax.set_ylim(0, 110)
    ax.set_title(f"{measure} per query language ({cfg.name} profile)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, -0.38), ncol=2)
    fig.tight_layout()
    return fig


def plot_gains(gains: pd.DataFrame, x: str, y: str, title: str):
    """One point per language: the gain of one change (x) against the gain of another (y)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.scatter(gains[x], gains[y])
    for lang, row in gains.iterrows():
        ax.annotate(lang, (row[x], row[y]), textcoords="offset points", xytext=(3, 3), fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_fusion_sweep(sweep: pd.DataFrame, measure: str, title: str):
    """Each retriever's B1 average against alpha, the official sum (solid) and renormalised (dashed)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    colours = {}
    for (retriever, fusion), values in sweep.items():
        style = "-" if fusion == "sum" else "--"
        line, = ax.plot(sweep.index, values, style, marker="o", color=colours.get(retriever),
                        label=f"{retriever} ({fusion})")
        colours[retriever] = line.get_color()
    ax.set_xlabel("alpha")
    ax.set_ylabel(measure)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def plot_matrix(rows: dict[str, dict[str, pd.DataFrame]], title: str,
                marks: dict[str, dict[str, pd.DataFrame]] | None = None, diverging: bool = False):
    """Heat maps of query language (rows of a panel) x passage language (its columns): one row of
    panels per key of ``rows`` (a retriever, say), one panel per table, the value written in each
    cell; with ``marks`` (the same nesting, boolean tables) a significant cell gets a star.
    ``diverging``: differences, coloured around zero on one scale for every panel."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(panels) for panels in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 + 2.3 * n_cols, 0.6 + 3.6 * n_rows), squeeze=False)
    values = np.concatenate([t.to_numpy(dtype=float).ravel() for panels in rows.values() for t in panels.values()])
    values = values[np.isfinite(values)]
    if diverging:
        bound = max(float(np.abs(values).max()) if values.size else 1.0, 1e-9)
        vmin, vmax, cmap = -bound, bound, "RdBu"
    else:
        vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        cmap = "viridis"
    image = None
    for r, (row_label, panels) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(panels):
                ax.axis("off")
                continue
            name, table = list(panels.items())[c]
            image = ax.imshow(table.to_numpy(dtype=float), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            ax.set_xticks(range(table.shape[1]), table.columns, fontsize=7)
            ax.set_yticks(range(table.shape[0]), table.index, fontsize=7)
            ax.set_title(f"{row_label}: {name}" if row_label else name, fontsize=8)
            star_table = (marks or {}).get(row_label, {}).get(name)
            for i in range(table.shape[0]):
                for j in range(table.shape[1]):
                    value = table.iat[i, j]
                    star = "*" if star_table is not None and bool(star_table.iat[i, j]) else ""
                    ax.text(j, i, f"{value:.0f}{star}" if abs(value) >= 10 else f"{value:.1f}{star}",
                            ha="center", va="center", fontsize=6)
            if r == n_rows - 1:
                ax.set_xlabel("passage language", fontsize=7)
            if c == 0:
                ax.set_ylabel("query language", fontsize=7)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    fig.suptitle(title, fontsize=9)
    return fig
