"""Tables and figures for the book, and the paper's own numbers to set beside ours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .config import Profile

#: Paper (SIGIR 2023), XOR-Retrieve dev, average over the 7 languages, R@2kt.
PAPER_AVERAGES_R2KT = {
    "XLM-R xDR": 27.5, "XLM-R xDR + xQG": 29.8,
    "mBERT xDR": 44.1, "mBERT xDR + xQG": 46.2,
    "zero-shot mBERT (English NQ only)": 33.0, "zero-shot mBERT + xQG": 36.0,
}

#: Official repository README (mBERT, alpha 0.01), per language.
PAPER_MBERT_PER_LANGUAGE = pd.DataFrame(
    [[41.10, 49.01, 52.23, 37.34, 48.07, 33.33, 48.32, 44.20],
     [42.39, 54.93, 54.14, 33.61, 52.28, 33.76, 52.52, 46.23],
     [49.19, 57.57, 58.60, 42.74, 57.54, 41.35, 55.88, 51.84],
     [51.46, 60.53, 58.28, 43.57, 58.60, 40.93, 60.08, 53.35]],
    index=["mBERT R@2kt", "+xQG R@2kt", "mBERT R@5kt", "+xQG R@5kt"],
    columns=["ar", "bn", "fi", "ja", "ko", "ru", "te", "Avg"])

#: Which paper row each of our retriever trainings stands in for.
PAPER_COUNTERPART = {
    "english": ("zero-shot mBERT (English NQ only)", "zero-shot mBERT + xQG"),
    "crosslingual": ("mBERT xDR", "mBERT xDR + xQG"),
}


def table1(cfg: Profile, metrics: Mapping[str, Mapping[str, Any]], measure: str) -> pd.DataFrame:
    """Table 1 layout: one row per system, one column per query language, and the average."""
    rows = {}
    for spec in cfg.retrievers:
        for system in (spec.name, f"{spec.name}+xQG"):
            per_lang = metrics[system]["per_language"][measure]
            row = {lang: per_lang.get(lang) for lang in cfg.query_languages}
            row["Avg"] = metrics[system][measure]
            label = f"{spec.label or spec.name}" + (" + xQG" if system.endswith("+xQG") else "")
            rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def beside_paper(cfg: Profile, metrics: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Our average R@2kt next to the paper's row that each of our rows stands in for."""
    rows = []
    for spec in cfg.retrievers:
        counterpart = PAPER_COUNTERPART.get(spec.training, (None, None))
        for system, paper_row in zip((spec.name, f"{spec.name}+xQG"), counterpart):
            rows.append({"ours": f"{spec.label or spec.name}" + (" + xQG" if "+xQG" in system else ""),
                         "ours R@2kt": round(metrics[system]["R@2kt"], 2),
                         "ours R@5kt": round(metrics[system]["R@5kt"], 2),
                         "paper row": paper_row or "(no counterpart)",
                         "paper R@2kt": PAPER_AVERAGES_R2KT.get(paper_row) if paper_row else None})
    return pd.DataFrame(rows)


def standard_table(cfg: Profile, metrics: Mapping[str, Mapping[str, Any]],
                   measures: Sequence[str] = ("R@2kt", "R@5kt", "R@2", "R@5", "R@20", "RR@10", "nDCG@10")) -> pd.DataFrame:
    rows = {}
    for spec in cfg.retrievers:
        for system in (spec.name, f"{spec.name}+xQG"):
            rows[system] = {m: metrics[system][m] for m in measures}
    return pd.DataFrame.from_dict(rows, orient="index").round(3)


def plot_losses(logs: Mapping[str, Sequence[Mapping[str, float]]], key: str, title: str):
    """Loss curves, one line per model; dev losses as markers where present."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, log in logs.items():
        ax.plot([r["step"] for r in log], [r[key] for r in log], label=f"{name} ({key})", alpha=0.8)
        dev = [(r["step"], r["dev_loss"]) for r in log if "dev_loss" in r]
        if dev:
            ax.plot(*zip(*dev), "o--", label=f"{name} (dev-article loss)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def timings_table(timings: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame.from_dict(timings, orient="index")
    total = df["seconds"].sum()
    df.loc["total", "seconds"] = total
    return df
