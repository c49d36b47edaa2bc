"""Analysis of the third research question: cell tables, paired tests per cell, language groups
(by the encoder's pre-training data) and significance counts, from stage 12's tables only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.evaluation.significance import compare_by_language, seed_interval
from xqglib.study.experiments import CONDITIONS, GOLD, SEED_CONDITIONS

#: Pre-training data of XLM-R, the model multilingual-e5 starts from: CC-100 size per language in
#: GiB (Conneau et al., ACL 2020, "Unsupervised Cross-lingual Representation Learning at Scale",
#: Table 6; zh: simplified and traditional Chinese together). Transcribed from the paper, which
#: this project's machines cannot reach to check; the groups depend only on which side of
#: :data:`LOW_RESOURCE_GIB` a language falls, where the nearest (ar) is 2 GiB away.
CC100_GIB = {"ar": 28.0, "de": 66.6, "el": 46.9, "en": 300.8, "es": 53.3, "hi": 20.2, "ro": 61.4,
             "ru": 278.0, "th": 71.7, "tr": 20.9, "vi": 137.3, "zh": 63.5}

#: Languages with less CC-100 text than this (GiB) form the low-resource group.
LOW_RESOURCE_GIB = 30.0


def resource_table() -> pd.DataFrame:
    """The measure behind the language groups: CC-100 GiB per language and its group."""
    return pd.DataFrame({"CC-100 (GiB)": CC100_GIB, "group": {l: resource_group(l) for l in CC100_GIB}}
                        ).rename_axis("language").sort_values("CC-100 (GiB)")


def resource_group(lang: str) -> str:
    """"low" or "high" resource, by the encoder's pre-training data (:data:`CC100_GIB`)."""
    return "low" if CC100_GIB[lang] < LOW_RESOURCE_GIB else "high"


# --------------------------------------------------------------------------------------------
# Analysis: cells, tests, language groups (pure functions of stage 12's tables)
# --------------------------------------------------------------------------------------------

CELL = ["language", "passage_language"]


def values(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The rows of one measure of a tidy RQ3 table (a measure it does not hold is an error)."""
    rows = frame[frame["measure"] == measure]
    if rows.empty:
        raise KeyError(f"no {measure!r} rows; the table holds {sorted(set(frame['measure']))}")
    return rows


def means(frame: pd.DataFrame, measure: str, by: Sequence[str]) -> pd.Series:
    """Mean of ``measure`` per group of ``by`` columns."""
    return values(frame, measure).groupby(list(by))["value"].mean()


def cell_table(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Mean of ``measure`` per cell: query languages as rows, passage languages as columns (MLQA's
    G-XLT layout)."""
    return values(frame, measure).pivot_table(index="language", columns="passage_language", values="value",
                                              aggfunc="mean")


def cell_tests(frame: pd.DataFrame, measure: str, baseline: str = "none") -> pd.DataFrame:
    """Every condition against ``baseline`` in every cell, paired over the cell's questions
    (:func:`xqglib.evaluation.significance.compare_by_language` with the cells as its groups:
    t-test, Bonferroni over the cells of a condition, and retriever and k where the frame has
    them): one row per condition and cell with the means, the difference, the verdict and the
    difference the test detects with 80% power."""
    groups = [c for c in ("retriever", "k") if c in frame.columns]
    rows_of = values(frame, measure)
    base = rows_of[rows_of["condition"] == baseline]
    rows = []
    for keys, part in rows_of[rows_of["condition"] != baseline].groupby([*groups, "condition"]):
        keys = keys if isinstance(keys, tuple) else (keys,)
        b = base
        for column, key in zip(groups, keys):
            b = b[b[column] == key]

        def outcome(rows: pd.DataFrame) -> dict[tuple[str, str, str], float]:
            return dict(zip(zip(rows["language"], rows["passage_language"], rows["query_id"]), rows["value"]))

        ours = outcome(part)
        table = compare_by_language(outcome(b), ours, {key: f"{key[0]}|{key[1]}" for key in ours})
        for cell, t in table.drop(index="all").iterrows():
            query_lang, passage_lang = cell.split("|")
            rows.append({**dict(zip([*groups, "condition"], keys)), "language": query_lang,
                         "passage_language": passage_lang, "n": int(t["n"]), "baseline": t["mean_a"],
                         "mean": t["mean_b"], "diff": t["diff"], "p": t["p_ttest"],
                         "p_corrected": t["p_ttest_corrected"], "significant": bool(t["significant"]),
                         "detectable": t["detectable"]})
    return pd.DataFrame(rows)


def with_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each row's language groups: query and passage resource group
    (:func:`resource_group`) and whether the pair is same-language or cross-language."""
    out = frame.copy()
    out["query group"] = out["language"].map(resource_group)
    out["passage group"] = out["passage_language"].map(resource_group)
    out["pair"] = np.where(out["language"] == out["passage_language"], "same-language", "cross-language")
    return out


def group_table(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Mean of ``measure`` per condition (rows) for each language group (columns): low- and
    high-resource query languages, low- and high-resource passage languages, same- and
    cross-language pairs, and all cells."""
    g = with_groups(values(frame, measure))
    columns = {}
    for label, column in (("query", "query group"), ("passage", "passage group")):
        for group in ("low", "high"):
            columns[f"{group}-resource {label}"] = g[g[column] == group].groupby("condition")["value"].mean()
    for pair in ("same-language", "cross-language"):
        columns[pair] = g[g["pair"] == pair].groupby("condition")["value"].mean()
    columns["all"] = g.groupby("condition")["value"].mean()
    table = pd.DataFrame(columns)
    return table.reindex([c for c in [*CONDITIONS, GOLD] if c in table.index])


def significance_counts(tests: pd.DataFrame) -> pd.DataFrame:
    """Per condition (and measure / retriever / k where the tests have them): cells significantly
    better and worse than the baseline, and the median difference a cell's test detects with 80%
    power at its corrected level."""
    groups = [c for c in ("measure", "retriever", "k") if c in tests.columns] + ["condition"]
    return tests.groupby(groups).apply(lambda t: pd.Series({
        "cells": len(t), "better": int((t["significant"] & (t["diff"] > 0)).sum()),
        "worse": int((t["significant"] & (t["diff"] < 0)).sum()), "mean difference": t["diff"].mean(),
        "median detectable difference": t["detectable"].median()}),
        include_groups=False)


def tests_for(frame: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """:func:`cell_tests` for several measures (a ``measure`` column tells them apart); the
    reader's gold-passage rows are not a system and are left out."""
    systems = frame[frame["condition"] != GOLD]
    return pd.concat([cell_tests(systems, m).assign(measure=m) for m in measures], ignore_index=True)


def marks(tests: pd.DataFrame, measure: str, conditions: Sequence[str], **where: Any) -> dict[str, pd.DataFrame]:
    """Per condition, the query x passage table of significant cells (for :func:`plot_matrix`)."""
    t = tests[tests["measure"] == measure]
    for column, value in where.items():
        t = t[t[column] == value]
    return {c: t[t["condition"] == c].pivot(index="language", columns="passage_language", values="significant")
            for c in conditions if c in set(t["condition"])}


def differences(frame: pd.DataFrame, measure: str, conditions: Sequence[str], baseline: str = "none") -> dict[str, pd.DataFrame]:
    """Per condition, its cell table minus the baseline's."""
    base = cell_table(frame[frame["condition"] == baseline], measure)
    return {c: cell_table(frame[frame["condition"] == c], measure) - base for c in conditions}


def seed_gains(cfg: Profile, retrieval: pd.DataFrame, seed_retrieval: pd.DataFrame, tests: pd.DataFrame | None = None,
               measure: str = "mrr@10") -> pd.DataFrame:
    """The seed sweep: each retriever's gain over ``none`` in ``measure`` under every condition
    that depends on the generated queries (:data:`SEED_CONDITIONS`), averaged over every cell as
    the chapter's headline is (:func:`means`), for every sampling seed (``run.seed``'s queries,
    then those of ``generation.seeds``: ``seed_retrieval``), their mean and 95% interval over the
    seeds (:func:`xqglib.evaluation.significance.seed_interval`), beside ``run.seed``'s per-cell
    paired tests (``tests``, :func:`tests_for`; computed where not given): the cells significantly
    better and worse of all, and the median difference a cell's test detects (80% power). ``none``
    does not change with the sampling seed. One row per retriever and condition."""
    if tests is None:
        tests = tests_for(retrieval, [measure])
    counts = significance_counts(tests[tests["measure"] == measure]).loc[measure]
    first = means(retrieval, measure, ["retriever", "condition"])
    by_seed = (means(seed_retrieval, measure, ["retriever", "condition", "seed"]) if len(seed_retrieval)
               else pd.Series(dtype=float))
    seeds = list(dict.fromkeys(int(s) for s in seed_retrieval["seed"]))
    rows = []
    for name in retrieval["retriever"].unique():
        base = first[(name, "none")]
        for condition in SEED_CONDITIONS:
            gains = {cfg.seed: first[(name, condition)] - base}
            gains |= {s: by_seed[(name, condition, s)] - base for s in seeds if (name, condition, s) in by_seed.index}
            mean, low, high = seed_interval(list(gains.values()))
            c = counts.loc[(name, condition)]
            rows.append({"retriever": name, "condition": condition, "measure": measure, "seeds": len(gains),
                         **{f"gain, seed {k}": g for k, g in gains.items()},
                         "mean gain": mean, "95% low": low, "95% high": high, "cells": int(c["cells"]),
                         f"cells better (seed {cfg.seed})": int(c["better"]),
                         f"cells worse (seed {cfg.seed})": int(c["worse"]),
                         f"median detectable (seed {cfg.seed})": c["median detectable difference"]})
    return pd.DataFrame(rows)
