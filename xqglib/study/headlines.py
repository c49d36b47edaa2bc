"""The study's headline numbers as one tidy table, and the rules that say whether a rerun reproduced them.

:func:`headline_rows` computes, from a run's per-question tables only (``eval/*.parquet``) and with
the analysis functions the book's pages use, every number the study leads with: each cell of Table 1
(RQ1), each RQ2 arm's score on B1 and XQuAD-R, each RQ3 condition's retrieval and reading score,
and every headline *gain* (xQG against none per retriever, each RQ2 pair, each RQ3 condition
against none) with its p-value where the study computes one (RQ3 tests per cell: there the count of
cells significantly better and worse stands in for it). One row per number:
``rq, table, row, column, measure, kind, value, precision`` (``precision``: the decimals the book
prints it with).

:func:`compare_headlines` sets a rerun's rows beside the published ones and gives each a verdict
(:func:`verdict`): ``exact`` (equal at the printed precision), ``within`` (the difference is within
the measure's tolerance, :func:`tolerance`) or ``different``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from xqglib.config.settings import Profile
from xqglib.evaluation.rq1 import XOR_MEASURES
from xqglib.study import analysis as A
from xqglib.study import experiments as E
from xqglib.study import rq3 as A3

#: The columns of a headline table; the first six name a number.
COLUMNS = ["rq", "table", "row", "column", "measure", "kind", "value", "precision"]
KEY = ["rq", "table", "row", "column", "measure", "kind"]

#: What each verdict means, for the book.
VERDICTS = ("exact", "within", "different")

#: Tolerance of a score or a gain, in points (every headline score is in percent), per measure;
#: measures not named get :data:`DEFAULT_POINTS`. Retrieval: half a point. Two reruns on other CPUs
#: or thread counts sum floats in another order, so a few encodings move and near-tied passages swap;
#: on the cpu profile one question of one language is 1/301 of its score (0.33 points), and the
#: macro average over ten languages moves by a tenth of that per question flipped, so half a point
#: allows a handful of flips and no real change. Reading: a point, since the reader is trained
#: (its sampling and summation order move its weights) and reads only 30 questions a cell.
POINTS_TOLERANCE = {"em": 1.0, "f1": 1.0}
DEFAULT_POINTS = 0.5
#: p-values: 0.05 absolute (a p near 0.5 moves a lot with a few flipped questions; one near 0.01
#: does not, and the verdict a reader draws at 0.05 is what must hold).
P_TOLERANCE = 0.05
#: Counts of RQ3 cells significantly better or worse than none: one cell either way.
COUNT_TOLERANCE = 1.0


def row(rq: str, table: str, row_: str, column: str, measure: str, kind: str, value: float,
        precision: int) -> dict[str, Any]:
    """One headline row (a plain float value: numpy scalars would not compare as equal to read-back ones)."""
    return {"rq": rq, "table": table, "row": row_, "column": column, "measure": measure, "kind": kind,
            "value": float(value), "precision": int(precision)}


def rq1_rows(cfg: Profile, results: pd.DataFrame) -> list[dict[str, Any]]:
    """Table 1 (every system x language and the average, R@2kt and R@5kt) and the xQG gain of each
    retriever over all questions with its paired t-test p."""
    names = [c.name for c in E.experiment(cfg, "table1")]
    out = []
    for measure in XOR_MEASURES:
        table = A.scores(results, names, measure, cfg.data.query_languages)
        for name, values in table.iterrows():
            out += [row("RQ1", "Table 1", name, str(col), measure, "score", v, 2) for col, v in values.items()]
    sig = A.xqg_significance(cfg, results)
    for _, r in sig[sig["language"] == "all"].iterrows():
        pair = f"{r['A']} -> {r['B']}"
        out.append(row("RQ1", "xQG vs none", pair, "all", r["measure"], "gain", 100 * r["diff"], 2))
        out.append(row("RQ1", "xQG vs none", pair, "all", r["measure"], "p", r["p_ttest"], 3))
    return out


def seed_rows(cfg: Profile, results: pd.DataFrame, seed_results: pd.DataFrame) -> list[dict[str, Any]]:
    """The seed sweep: each retriever's xQG gain (R@2kt, R@5kt) as its mean and 95% interval over
    the sampling seeds (:func:`xqglib.study.analysis.seed_gains`)."""
    out = []
    for _, r in A.seed_gains(cfg, results, seed_results).iterrows():
        for column in ("mean gain", "95% low", "95% high"):
            if not math.isnan(r[column]):
                out.append(row("RQ1", "xQG vs none over seeds", r["retriever"], column, r["measure"], "gain", r[column], 2))
    return out


def rq2_rows(cfg: Profile, results: pd.DataFrame) -> list[dict[str, Any]]:
    """Each RQ2 table condition's scores per language and on average (B1 R@2kt, XQuAD-R AP@k, in
    percent as the chapter's tables), and every RQ2 pair (xQG per retriever, each arm against the
    encoder and the xDR, without and with xQG) with its gain and p over all questions."""
    b1, ap = cfg.data.benchmark, f"AP@{cfg.xquadr.k}"
    out = []
    for bench, measure in ((b1, "R@2kt"), (E.B2, ap)):
        table = A.rq2_scores(cfg, results, bench, measure)
        if not A.is_macro(measure):
            table = table * 100
        for name, values in table.iterrows():
            out += [row("RQ2", f"scores {bench}", name, str(col), measure, "score", v, 2)
                    for col, v in values.items() if not pd.isna(v)]
        rows = A.on(results, bench)
        for a, b, kind in A.rq2_pairs(cfg):
            test = A.compare(rows, a, b, measure, cfg.seed).loc["all"]
            out.append(row("RQ2", kind, f"{a} -> {b}", bench, measure, "gain", 100 * test["diff"], 2))
            out.append(row("RQ2", kind, f"{a} -> {b}", bench, measure, "p", test["p_ttest"], 3))
    return out


def rq2_seed_rows(cfg: Profile, results: pd.DataFrame, seed_results: pd.DataFrame) -> list[dict[str, Any]]:
    """RQ2's seed sweep: every pair with xQG on a side, its gain's mean and 95% interval over the
    sampling seeds (:func:`xqglib.study.analysis.rq2_seed_gains`), in points as :func:`rq2_rows`."""
    out = []
    for bench, measure in ((cfg.data.benchmark, "R@2kt"), (E.B2, f"AP@{cfg.xquadr.k}")):
        scale = 100 if measure.startswith("AP@") else 1  # rq2_seed_gains gives mAP, the rows points
        for _, r in A.rq2_seed_gains(cfg, results, seed_results, bench, measure).iterrows():
            for column in ("mean gain", "95% low", "95% high"):
                if not math.isnan(r[column]):
                    out.append(row("RQ2", f"{r['comparison']} over seeds", f"{r['A']} -> {r['B']}", f"{bench} {column}",
                                   measure, "gain", scale * r[column], 2))
    return out


def rq3_rows(cfg: Profile, retrieval: pd.DataFrame, reading: pd.DataFrame,
             tests: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Each RQ3 retriever x condition's MRR@10 and recall@1 over every cell, each condition's gain
    over none and the count of cells where it is significantly better and worse (paired t-tests per
    cell, Bonferroni over the cells); the reader's EM and F1 per condition and k (and with the gold
    passage), the gains over none and the same counts (``tests``: the retrieval's cell tests,
    :func:`xqglib.study.rq3.tests_for`, computed where not given)."""
    out = []
    if tests is None:
        tests = A3.tests_for(retrieval, ["mrr@10", "recall@1"])
    counts = A3.significance_counts(tests)
    for measure in ("mrr@10", "recall@1"):
        means = A3.means(retrieval, measure, ["retriever", "condition"])
        for (retriever, condition), v in means.items():
            out.append(row("RQ3", "retrieval", retriever, condition, measure, "score", v, 1))
            if condition != "none":
                out.append(row("RQ3", "retrieval vs none", retriever, condition, measure, "gain",
                               v - means[(retriever, "none")], 2))
                c = counts.loc[(measure, retriever, condition)]
                for side in ("better", "worse"):
                    out.append(row("RQ3", f"cells significantly {side}", retriever, condition, measure, "count", c[side], 0))
    reading_counts = A3.significance_counts(A3.tests_for(reading, ["em", "f1"])).reset_index()
    for measure in ("em", "f1"):
        means = A3.means(reading, measure, ["condition", "k"])
        for (condition, k), v in means.items():
            out.append(row("RQ3", "reading", condition, f"k={k}", measure, "score", v, 1))
            if condition not in ("none", E.GOLD):
                out.append(row("RQ3", "reading vs none", condition, f"k={k}", measure, "gain",
                               v - means[("none", k)], 2))
                c = reading_counts[(reading_counts["measure"] == measure) & (reading_counts["condition"] == condition)
                                   & (reading_counts["k"] == k)]
                for side in ("better", "worse"):  # summed over readers, where the table has several
                    out.append(row("RQ3", f"cells significantly {side}", condition, f"k={k}", measure, "count",
                                   c[side].sum(), 0))
    return out


def rq3_seed_rows(cfg: Profile, retrieval: pd.DataFrame, seed_retrieval: pd.DataFrame,
                  tests: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """RQ3's seed sweep: each retriever's MRR@10 gain over none under every generated-query
    condition, as its mean and 95% interval over the sampling seeds (:func:`xqglib.study.rq3.seed_gains`)."""
    out = []
    for _, r in A3.seed_gains(cfg, retrieval, seed_retrieval, tests).iterrows():
        for column in ("mean gain", "95% low", "95% high"):
            if not math.isnan(r[column]):
                out.append(row("RQ3", "retrieval vs none over seeds", r["retriever"], f"{r['condition']}: {column}",
                               r["measure"], "gain", r[column], 2))
    return out


def headline_rows(cfg: Profile, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every headline number of the study, from a run's per-question tables: ``tables`` maps
    ``results``, ``rq2_results``, ``rq3_retrieval`` and ``rq3_reading`` (the ``eval/<name>.parquet``
    files) to their frames (``seed_results``, ``rq2_seed_results`` and ``rq3_seed_results``: the seed
    sweeps'). One row per number (:data:`COLUMNS`), in a fixed order."""
    retrieval = tables["rq3_retrieval"]
    tests = A3.tests_for(retrieval, ["mrr@10", "recall@1"])  # once, for both
    rows = rq1_rows(cfg, tables["results"]) + seed_rows(cfg, tables["results"], tables["seed_results"]) \
        + rq2_rows(cfg, tables["rq2_results"]) + rq2_seed_rows(cfg, tables["rq2_results"], tables["rq2_seed_results"]) \
        + rq3_rows(cfg, retrieval, tables["rq3_reading"], tests) \
        + rq3_seed_rows(cfg, retrieval, tables["rq3_seed_results"], tests)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    duplicated = frame.duplicated(KEY)
    if duplicated.any():
        raise ValueError(f"headline rows named twice: {frame[duplicated][KEY].head(3).to_dict('records')}")
    return frame


#: The per-question tables :func:`headline_rows` reads, by name (``eval/<name>.parquet``).
TABLES = ("results", "seed_results", "rq2_results", "rq2_seed_results", "rq3_retrieval", "rq3_reading",
          "rq3_seed_results")


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------

def tolerance(measure: str, kind: str) -> float:
    """How far a rerun's number may lie from the published one and still count as reproduced
    (``within``): p-values :data:`P_TOLERANCE`, cell counts :data:`COUNT_TOLERANCE`, scores and
    gains in points per :data:`POINTS_TOLERANCE` (else :data:`DEFAULT_POINTS`)."""
    if kind == "p":
        return P_TOLERANCE
    if kind == "count":
        return COUNT_TOLERANCE
    return POINTS_TOLERANCE.get(measure, DEFAULT_POINTS)


def verdict(published: float, rerun: float, precision: int, tol: float) -> str:
    """``exact`` where both print the same at ``precision`` decimals (both missing counts too),
    ``within`` where they differ by at most ``tol``, ``different`` otherwise (one missing included)."""
    gone = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (published, rerun)]
    if all(gone):
        return "exact"
    if any(gone):
        return "different"
    if f"{published:.{precision}f}" == f"{rerun:.{precision}f}":
        return "exact"
    return "within" if abs(rerun - published) <= tol + 1e-12 else "different"


def compare_headlines(published: pd.DataFrame, rerun: pd.DataFrame) -> pd.DataFrame:
    """Every headline number of either table, the published value beside the rerun's: ``published``,
    ``rerun``, ``diff`` (rerun - published), ``tolerance`` and ``verdict``; a number only one table
    holds is ``different``."""
    both = published[COLUMNS].merge(rerun[KEY + ["value"]].rename(columns={"value": "rerun"}), on=KEY, how="outer",
                                    sort=False).rename(columns={"value": "published"})
    missing_precision = both["precision"].isna()
    if missing_precision.any():  # a number the published table lacks: the rerun says how it prints
        both.loc[missing_precision, "precision"] = both[missing_precision].merge(
            rerun[KEY + ["precision"]], on=KEY, how="left", suffixes=("_x", ""))["precision"].to_numpy()
    both["precision"] = both["precision"].astype(int)
    both["diff"] = both["rerun"] - both["published"]
    both["tolerance"] = [tolerance(m, k) for m, k in zip(both["measure"], both["kind"])]
    both["verdict"] = [verdict(p, r, n, t) for p, r, n, t in
                       zip(both["published"], both["rerun"], both["precision"], both["tolerance"])]
    return both[KEY + ["precision", "published", "rerun", "diff", "tolerance", "verdict"]]


def verdict_counts(compared: pd.DataFrame) -> dict[str, int]:
    """How many numbers got each verdict (every verdict named, zeros included)."""
    counts = compared["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}
