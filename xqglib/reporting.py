"""Tables and figures for the book, and the paper's own numbers to set beside ours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import analysis as A
from . import experiments as E
from .artifacts import RunDir
from .formats import read_jsonl, sha256_file
from .settings import Profile
from .significance import ALPHA

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


SIGNIFICANCE_MARK = "†"
SIGNIFICANCE_CAPTION = ("† marks a +xQG score that differs from the same retriever without xQG with "
                        "p < 0.05 in a two-sided paired t-test on per-question hits (per language: "
                        "Bonferroni-corrected over the languages; Avg: over all questions).")


def _label(cfg: Profile, condition: E.Condition) -> str:
    spec = cfg.retriever_spec(condition.retriever)
    return (spec.label or spec.name) + (" + xQG" if condition.augmentation == "xqg" else "")


def table1(cfg: Profile, results: pd.DataFrame, measure: str,
           significance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 1 layout: one row per system, one column per query language, the average, and the
    paper's average for the row it stands in for ("paper Avg", where the paper gives one).

    With ``significance`` (:func:`xqglib.analysis.xqg_significance`), +xQG cells whose difference
    from the same retriever without xQG is significant carry :data:`SIGNIFICANCE_MARK`.
    """
    conditions = E.experiment(cfg, "table1")
    table = A.scores(results, [c.name for c in conditions], measure, cfg.data.query_languages)
    table.index = [_label(cfg, c) for c in conditions]
    paper = [paper_average(cfg, c, measure) for c in conditions]
    if significance is None:
        return table.astype(float).round(2).assign(**{"paper Avg": paper})
    marked = table.map(_fmt).astype(object)
    for row, c in zip(table.index, conditions):
        if c.augmentation != "xqg":
            continue
        sig = significance[(significance["B"] == c.name) & (significance["measure"] == measure)].set_index("language")
        for column in table.columns:
            key = "all" if column == "Avg" else column
            if key in sig.index and sig.loc[key, "significant"]:
                marked.loc[row, column] += SIGNIFICANCE_MARK
    marked["paper Avg"] = ["" if p is None else f"{p:.2f}" for p in paper]
    return marked


#: The paper's averages that are known per measure: R@2kt for every row (the paper's Table 1),
#: R@5kt only for mBERT (the official repository's README).
PAPER_AVERAGES = {"R@2kt": PAPER_AVERAGES_R2KT,
                  "R@5kt": {"mBERT xDR": 51.84, "mBERT xDR + xQG": 53.35}}


def paper_average(cfg: Profile, condition: E.Condition, measure: str) -> float | None:
    """The paper's average for the row that ``condition`` stands in for, where it is known."""
    counterpart = PAPER_COUNTERPART.get(cfg.retriever_spec(condition.retriever).training)
    if counterpart is None:
        return None
    return PAPER_AVERAGES.get(measure, {}).get(counterpart[condition.augmentation == "xqg"])


def _fmt(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2f}"


def significance_table(significance: pd.DataFrame, b: str, measure: str) -> pd.DataFrame:
    """Per language: mean difference (points), t-test p (raw and Bonferroni), permutation and McNemar p."""
    sig = significance[(significance["B"] == b) & (significance["measure"] == measure)].set_index("language")
    return pd.DataFrame({"questions": sig["n"].astype(int), "diff (points)": (100 * sig["diff"]).map(points),
                         "p t-test": sig["p_ttest"].map(p_value),
                         "p t-test (Bonferroni)": sig["p_ttest_corrected"].map(p_value),
                         "p permutation": sig["p_permutation"].map(p_value), "p McNemar": sig["p_mcnemar"].map(p_value)})


def points(value: float) -> str:
    """A difference in points, two decimals with its sign."""
    return "" if pd.isna(value) else f"{value:+.2f}"


def p_value(p: float | None) -> str:
    """A p-value, three decimals (``< 0.001`` below)."""
    if p is None or pd.isna(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def pairwise_table(pairwise: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of systems and measure: the difference B - A over all questions (points),
    its p-values, and in how many languages it is significant (t-test, Bonferroni-corrected)."""
    rows = []
    for (a, b, measure), group in pairwise.groupby(["A", "B", "measure"], sort=False):
        overall = group[group["language"] == "all"].iloc[0]
        langs = group[group["language"] != "all"]
        rows.append({"A": a, "B": b, "measure": measure, "B - A (points)": points(100 * overall["diff"]),
                     "p t-test": p_value(overall["p_ttest"]), "p permutation": p_value(overall["p_permutation"]),
                     "p McNemar": p_value(overall["p_mcnemar"]),
                     "languages significant": f"{int((langs['p_ttest_corrected'] < ALPHA).sum())}/{len(langs)}"})
    return pd.DataFrame(rows).set_index(["A", "B", "measure"])


def beside_paper(cfg: Profile, results: pd.DataFrame) -> pd.DataFrame:
    """Our averages next to the paper's row that each of our rows stands in for."""
    means = A.summary(results, ["R@2kt", "R@5kt"])
    rows = []
    for c in E.experiment(cfg, "table1"):
        counterpart = PAPER_COUNTERPART.get(cfg.retriever_spec(c.retriever).training)
        paper_row = counterpart[c.augmentation == "xqg"] if counterpart else None
        rows.append({"ours": _label(cfg, c), "ours R@2kt": round(means.loc[c.name, "R@2kt"], 2),
                     "ours R@5kt": round(means.loc[c.name, "R@5kt"], 2),
                     "paper row": paper_row or "(no counterpart)",
                     "paper R@2kt": PAPER_AVERAGES_R2KT.get(paper_row, "–") if paper_row else "–"})
    return pd.DataFrame(rows).set_index("ours")


def standard_table(cfg: Profile, results: pd.DataFrame,
                   measures: Sequence[str] = ("R@2kt", "R@5kt", "R@2", "R@5", "R@20", "RR@10", "nDCG@10")) -> pd.DataFrame:
    """The Table 1 systems' averages, every measure in percent (R@Nkt already is) so that one
    scale serves the whole table."""
    names = [c.name for c in E.experiment(cfg, "table1")]
    table = A.summary(results, list(measures)).reindex(names)
    for measure in table.columns:
        if not A.is_macro(measure):
            table[measure] = 100 * table[measure]
    return table.round(2).rename(columns=lambda m: f"{m} (%)")


def query_quality_table(quality: pd.DataFrame) -> pd.DataFrame:
    """:func:`xqglib.evaluation.generated_query_quality` for reading: shares in percent."""
    table = quality.set_index("language").copy()
    for column in ("in requested language", "its share", "own passage first"):
        if column in table:
            table[column] = (100 * table[column]).round(1)
    return table.rename(columns={"in requested language": "in requested language (%)",
                                 "its share": "its share (%)", "own passage first": "own passage first (%)"})


def generator_summary(cfg: Profile, logs: Mapping[str, Sequence[Mapping[str, float]]]) -> pd.DataFrame:
    """One row per trained generator: steps run, whether it stopped at the plateau, train losses,
    the best dev-article loss and the dev loss's relative fall over the last 20% of the steps."""
    from .generation import PLATEAU_GAIN, PLATEAU_WINDOW, at_plateau, recent_gain

    gain = PLATEAU_GAIN if cfg.generator.plateau is None else cfg.generator.plateau
    rows = {}
    for name, log in logs.items():
        dev = [r["dev_loss"] for r in log if "dev_loss" in r]
        fall = recent_gain(log)
        rows[name] = {"steps": len(log), "of at most": cfg.generator.steps,
                      "at plateau": "yes" if at_plateau(log, gain) else "no",
                      "first train loss": round(log[0]["train_loss"], 3),
                      "last train loss": round(log[-1]["train_loss"], 3),
                      "best dev-article loss": round(min(dev), 3) if dev else None,
                      f"dev-loss fall over the last {PLATEAU_WINDOW:.0%}+ of steps (%)":
                          None if fall is None else round(100 * fall, 2)}
    return pd.DataFrame(rows).T


def cost_table_readable(costs: pd.DataFrame) -> pd.DataFrame:
    """:func:`xqglib.cost.run_costs` for reading: GFLOP, seconds and shares rounded."""
    table = costs.set_index(["stage", "what"]).copy()
    table.insert(0, "GFLOP", (1000 * table.pop("TFLOP")).round(1))
    for column in ("wall s", "roof s"):
        table[column] = table[column].round(0).astype("Int64")
    table["share of roof (%)"] = table["share of roof (%)"].astype(float).round(0).astype("Int64")
    return table


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


#: Columns of a stage record that give the time of work a reuse stands for.
REUSED_WORK = ("training seconds", "generation seconds", "reading seconds")


def timings_table(timings: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Stage records, with a total of the work done: where a rerun reused a trained model, a
    generated file or a reading, the time that work took (its training log, its record) counts
    instead of the seconds the reuse took."""
    df = pd.DataFrame.from_dict(timings, orient="index")
    df = df.loc[sorted(df.index, key=lambda k: int(k.split(" ", 1)[0]))]  # stage order
    work = df["seconds"]
    for reused in REUSED_WORK:  # the work a reuse stands for
        if reused in df:
            work = np.fmax(work, df[reused])  # fmax: a missing time is ignored
    df.loc["total", "seconds"] = work.sum()
    return df


def readable_timings(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`timings_table` for a reader: named columns, whole seconds, counts as integers and
    blanks (not NaN) where a detail does not apply to a stage."""
    names = {"seconds": "wall time (s)", "training seconds": "training time (s)",
             "generation seconds": "generation time (s)", "reading seconds": "reading time (s)",
             "peak_rss_gib": "peak memory (GiB)"}
    out = pd.DataFrame(index=table.index)
    for column in list(names) + [c for c in table.columns if c not in names]:
        if column not in table:
            continue
        values = table[column]
        if column == "peak_rss_gib":
            shown = values.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        elif column == "seconds" or column in REUSED_WORK:
            shown = values.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
        else:
            shown = values.map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v))
                               else f"{v:,.0f}" if isinstance(v, (int, float)) and float(v).is_integer() else str(v))
        out[names.get(column, column)] = shown
    out.index.name = "stage"
    return out


def plot_n_sweep(sweep: pd.DataFrame, title: str, plain: Mapping[str, float] | None = None):
    """R@2kt / R@5kt against n (:func:`xqglib.analysis.n_sweep`), with † where the difference from
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


def _lines(path: Path) -> int | None:
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def data_sizes(cfg: Profile, rd: RunDir) -> pd.DataFrame:
    """How much data each stage saw, counted from the run directory's files."""
    rows = {"corpus passages": _lines(rd.corpus), "test queries (question x language)": _lines(rd.test_queries),
            "generator train pairs": _lines(rd.generator_pairs("train")),
            "generator dev pairs": _lines(rd.generator_pairs("dev"))}
    for training in sorted({r.training for r in cfg.retrievers} - {"none"}):
        rows[f"retriever training rows ({training})"] = _lines(rd.retriever_rows(training))
    for name in cfg.generator.models:
        path = rd.generated(name)
        if path.exists():
            rows[f"generated queries ({name})"] = sum(
                len(qs) for r in read_jsonl(path) for qs in r["generated_queries"].values())
    return pd.DataFrame({"count": rows})


def data_files_table(cfg: Profile) -> pd.DataFrame:
    """Every data file the benchmark read, with the published SHA-256 it was checked against."""
    from .data import KNOWN_FILES, files_used

    return pd.DataFrame([{"file": rel, "SHA-256 (checked at load)": KNOWN_FILES[rel][1][:16] + "…",
                          "published at": KNOWN_FILES[rel][0]} for rel in files_used(cfg)]).set_index("file")


def model_provenance(cfg: Profile) -> pd.DataFrame:
    """Every model of the profile: its role, where it comes from, and its weights' SHA-256."""
    from .model_builds import BUILDERS, model_source
    from .models import resolve

    rows = []
    for role, name in [("encoder (all retrievers start here)", cfg.retriever.encoder)] + \
                      [("query generator", g) for g in cfg.generator.models]:
        weights = Path(resolve(name)) / "model.safetensors" if name in BUILDERS else None
        rows.append({"role": role, "model": name, "source": model_source(name),
                     "weights SHA-256": sha256_file(weights)[:16] + "…" if weights and weights.exists() else "-"})
    return pd.DataFrame(rows).set_index("role")


def profile_table(cfg: Profile) -> pd.DataFrame:
    """Every setting of the run (seed included), grouped by section, and the derived values."""
    values = {}
    for path, value in cfg.flat().items():
        if path == "retriever.retrievers":
            value = "; ".join(f"{r['name']} ({r['training']})" for r in value)
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        values[path] = "null" if value is None else str(value)
    values["run.bf16 (resolved)"] = str(cfg.use_bf16)
    values["augmentation.alpha (scaled, derived)"] = f"{cfg.scaled_alpha:.6g}"
    return pd.DataFrame({"value": values})


# --------------------------------------------------------------------------------------------
# The second research question
# --------------------------------------------------------------------------------------------

#: Published XQuAD-R figures (mAP@20), set beside ours; their models and training data differ
#: from ours (see the chapter). LAReQA's README (mBERT baselines, full pool) and the hybrid-batch
#: paper (arXiv 2408.10536, LaBSE with hybrid batches, its three views).
XQUADR_ANCHORS = pd.DataFrame([
    {"source": "LAReQA README", "model": "mBERT En-En", "view": "pooled", "mAP@20": 0.29},
    {"source": "LAReQA README", "model": "mBERT X-X", "view": "pooled", "mAP@20": 0.23},
    {"source": "LAReQA README", "model": "mBERT X-X-mono", "view": "pooled", "mAP@20": 0.52},
    {"source": "LAReQA README", "model": "mBERT X-Y", "view": "pooled", "mAP@20": 0.66},
    {"source": "arXiv 2408.10536", "model": "LaBSE, hybrid batches", "view": "mono", "mAP@20": 0.817},
    {"source": "arXiv 2408.10536", "model": "LaBSE, hybrid batches", "view": "cross", "mAP@20": 0.767},
    {"source": "arXiv 2408.10536", "model": "LaBSE, hybrid batches", "view": "pooled", "mAP@20": 0.682},
])

#: Published figures beside the third research question's: zero-shot XQuAD with the gold paragraph
#: (XTREME, Hu et al. 2020, averages over XQuAD's languages) and translate-then-retrieve on
#: XOR-Retrieve's test set (Asai et al. 2021), human against machine translation of the question.
#: Transcribed (the XOR-TyDi figures as issue 13 quotes them); the papers cannot be reached from the
#: study's machines to check them.
RQ3_ANCHORS = pd.DataFrame([
    {"source": "XTREME (Hu et al. 2020)", "model": "mBERT, zero-shot", "task": "XQuAD, gold paragraph", "measure": "F1", "value": 64.5},
    {"source": "XTREME (Hu et al. 2020)", "model": "mBERT, zero-shot", "task": "XQuAD, gold paragraph", "measure": "EM", "value": 49.4},
    {"source": "XTREME (Hu et al. 2020)", "model": "XLM-R large, zero-shot", "task": "XQuAD, gold paragraph", "measure": "F1", "value": 76.6},
    {"source": "XTREME (Hu et al. 2020)", "model": "XLM-R large, zero-shot", "task": "XQuAD, gold paragraph", "measure": "EM", "value": 60.8},
    {"source": "XOR-TyDi (Asai et al. 2021)", "model": "translate-then-retrieve, human translation", "task": "XOR-Retrieve test",
     "measure": "R@5kt", "value": 72.1},
    {"source": "XOR-TyDi (Asai et al. 2021)", "model": "translate-then-retrieve, machine translation", "task": "XOR-Retrieve test",
     "measure": "R@5kt", "value": 67.2},
])

RQ2_MARKS = {"xQG": "†", "contrastive vs xDR": "‡", "contrastive vs xDR (+xQG)": "‡"}
RQ2_CAPTION = ("† a +xQG score that differs from the same retriever without xQG; ‡ a contrastive arm's score "
               "that differs from the xDR's with the same augmentation; both two-sided paired t-tests, p < 0.05 "
               "(per language Bonferroni-corrected over the languages; Avg over all questions).")


def _rq2_label(cfg: Profile, condition: E.Condition) -> str:
    spec = cfg.retriever_spec(condition.retriever)
    return (spec.label or spec.name) + (" + xQG" if condition.augmentation != "none" else "")


def rq2_table(cfg: Profile, results: pd.DataFrame, benchmark: str, measure: str,
              significance: pd.DataFrame) -> pd.DataFrame:
    """Table 1's layout for the second research question on one benchmark: rows the retrievers
    without and with xQG, columns the languages and the average, marked per :data:`RQ2_MARKS`
    where the tests of :func:`xqglib.analysis.rq2_significance` (per language, Bonferroni, and
    overall) find a difference. Scores in percent."""
    conditions = [c for c in E.experiment(cfg, "rq2_table") if c.benchmark == benchmark]
    table = A.rq2_scores(cfg, results, benchmark, measure)
    if not A.is_macro(measure):
        table = table * 100
    marked = table.map(_fmt).astype(object)
    for c in conditions:
        for kind, mark in RQ2_MARKS.items():
            pair = significance[(significance["B"] == c.name) & (significance["comparison"] == kind)
                                & (significance["measure"] == measure)]
            if pair.empty:
                continue
            test = pair.iloc[0]
            for column in table.columns:
                significant = test["significant"] if column == "Avg" else column in test["significant_in"]
                if significant and mark not in marked.loc[c.name, column]:
                    marked.loc[c.name, column] += mark
    marked.index = [_rq2_label(cfg, c) for c in conditions]
    return marked


def rq2_significance_table(significance: pd.DataFrame) -> pd.DataFrame:
    """:func:`xqglib.analysis.rq2_significance` for reading: differences in points with their
    bootstrap interval, p, and the languages won, lost and significant."""
    out = pd.DataFrame({
        "comparison": significance["comparison"], "A": significance["A"], "B": significance["B"],
        "measure": significance["measure"], "questions": significance["questions"],
        "B - A (points)": (100 * significance["diff"]).map(points),
        "95% interval": [f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" for lo, hi in zip(significance["ci_low"], significance["ci_high"])],
        "p t-test": significance["p_ttest"].map(p_value),
        "languages won / lost": [f"{w} / {l}" for w, l in zip(significance["wins"], significance["losses"])],
        "languages significant": [f"{s}/{n}" for s, n in zip(significance["languages_significant"], significance["languages"])]})
    return out.set_index(["comparison", "A", "B", "measure"])


def xquadr_views(cfg: Profile, results: pd.DataFrame) -> pd.DataFrame:
    """mAP@k of every XQuAD-R condition in the three views (pooled, mono, cross), test articles and,
    for the untrained encoder, the full pool."""
    k = cfg.xquadr.k
    rows = []
    for c in E.experiment(cfg, "rq2_table") + E.experiment(cfg, "rq2_full_pool"):
        if c.benchmark not in (E.B2, E.B2_FULL):
            continue
        data = A.select(A.on(results, c.benchmark), [c.name])
        means = data.groupby("measure")["value"].mean()
        rows.append({"pool": "all 48 articles" if c.benchmark == E.B2_FULL else "test articles",
                     "system": _rq2_label(cfg, c), "questions": int((data["measure"] == f"AP@{k}").sum()),
                     **{view: means.get(f"AP@{k}" + suffix, np.nan)
                        for view, suffix in (("pooled", ""), ("mono", " mono"), ("cross", " cross"))}})
    return pd.DataFrame(rows).set_index(["pool", "system"]).round(3)


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
