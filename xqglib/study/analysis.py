"""Analysis: every table, test and sweep of the book as a function of the tidy results table.

The results table (:mod:`xqglib.evaluation.rq1`) holds one row per condition, query and measure. This
module only reads it, the way PyTerrier's ``pt.Experiment`` turns a list of systems into one frame
and every comparison into a function of that frame. Nothing here runs a model or a search.

Aggregation follows the official scorers: R@Nkt is a percentage per language and a **macro**
average over languages (as the XOR-Retrieve scorer); every other measure is a mean per language
and over all questions.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import PAPER_ALPHA, Profile
from xqglib.evaluation.rq1 import FALLBACK, GOLD_RANK, XOR_MEASURES
from xqglib.evaluation.significance import compare_by_language
from xqglib.study import experiments as E


def is_macro(measure: str) -> bool:
    """R@Nkt measures (and their fallback variants) are percentages, macro-averaged over languages."""
    return measure.split(" ")[0] in XOR_MEASURES


def select(results: pd.DataFrame, conditions: Sequence[str] | None = None,
           measures: Sequence[str] | None = None) -> pd.DataFrame:
    rows = results
    if conditions is not None:
        rows = rows[rows["condition"].isin(conditions)]
    if measures is not None:
        rows = rows[rows["measure"].isin(measures)]
    return rows


def outcomes(results: pd.DataFrame, condition: str, measure: str) -> dict[str, float]:
    """``{query_id: value}`` of one condition and measure."""
    rows = select(results, [condition], [measure])
    return dict(zip(rows["query_id"], rows["value"]))


def languages(results: pd.DataFrame) -> dict[str, str]:
    return dict(zip(results["query_id"], results["language"]))


def per_language(results: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Rows: conditions (in table order); columns: languages; R@Nkt in percent."""
    rows = select(results, measures=[measure])
    table = rows.groupby(["condition", "language"], sort=False)["value"].mean().unstack("language")
    return table * 100 if is_macro(measure) else table


def average(results: pd.DataFrame, measure: str) -> pd.Series:
    """One figure per condition: the macro average over languages for R@Nkt, else the mean over
    all questions."""
    if is_macro(measure):
        table = per_language(results, measure)
        return table.apply(lambda row: statistics.mean(row.dropna().tolist()), axis=1)
    rows = select(results, measures=[measure])
    # np.mean in question order (pairwise summation), as every report of this study computes it
    return rows.groupby("condition", sort=False)["value"].agg(lambda v: float(np.mean(v.to_numpy())))


def summary(results: pd.DataFrame, measures: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows: conditions; columns: measures (averages as :func:`average`)."""
    measures = measures or list(dict.fromkeys(results["measure"]))
    return pd.DataFrame({m: average(results, m) for m in measures})


def scores(results: pd.DataFrame, conditions: Sequence[str], measure: str,
           language_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-language scores and the average ("Avg") of some conditions, in the given order."""
    table = per_language(results, measure).reindex(list(conditions))
    if language_order is not None:
        table = table.reindex(columns=list(language_order))
    table["Avg"] = average(results, measure).reindex(list(conditions))
    return table


def compare(results: pd.DataFrame, a: str, b: str, measure: str, seed: int = 0) -> pd.DataFrame:
    """Condition ``b`` against ``a`` on one measure: paired tests per language (Bonferroni) and
    over all questions (:func:`xqglib.evaluation.significance.compare_by_language`); ``diff`` > 0 favours b."""
    return compare_by_language(outcomes(results, a, measure), outcomes(results, b, measure),
                               languages(results), seed=seed)


def comparisons(results: pd.DataFrame, pairs: Sequence[tuple[str, str]], measures: Sequence[str],
                seed: int = 0) -> pd.DataFrame:
    """Many comparisons as one long frame: A, B, measure, language and the tests' columns."""
    frames = []
    for a, b in pairs:
        for measure in measures:
            table = compare(results, a, b, measure, seed).rename_axis("language").reset_index()
            frames.append(table.assign(A=a, B=b, measure=measure))
    out = pd.concat(frames, ignore_index=True)
    return out[["A", "B", "measure", "language"] + [c for c in out.columns if c not in ("A", "B", "measure", "language")]]


# --------------------------------------------------------------------------------------------
# The study's tables
# --------------------------------------------------------------------------------------------

def table1_pairs(cfg: Profile) -> list[tuple[str, str]]:
    """(plain, +xQG) condition names per retriever, in Table 1 order."""
    main = E.experiment(cfg, "table1")
    return [(main[i].name, main[i + 1].name) for i in range(0, len(main), 2)]


def xqg_significance(cfg: Profile, results: pd.DataFrame, measures: Sequence[str] = XOR_MEASURES) -> pd.DataFrame:
    """Each retriever against itself + xQG, per language and overall."""
    return comparisons(results, table1_pairs(cfg), measures, cfg.seed)


def seed_gains(cfg: Profile, results: pd.DataFrame, seed_results: pd.DataFrame,
               measures: Sequence[str] = XOR_MEASURES) -> pd.DataFrame:
    """xQG's gain over each plain retriever (in Table 1's averages: points for R@Nkt) for every sampling seed
    (``run.seed``'s queries, then ``generation.seeds``'), their mean and 95% interval over the
    seeds, beside ``run.seed``'s per-question paired t-test over all questions and the difference
    it detects (80% power). One row per retriever and measure."""
    from xqglib.evaluation.significance import seed_interval

    tests = xqg_significance(cfg, results, measures)
    tests = tests[tests.language == "all"].set_index(["B", "measure"])
    rows = []
    for spec in cfg.retrievers:
        plain, with_xqg = E.plain(cfg, spec.name).name, E.xqg(cfg, spec.name, cfg.augmentation.alpha).name
        for measure in measures:
            base = average(results, measure)[plain]
            gains = {cfg.seed: average(results, measure)[with_xqg] - base}
            for seed, frame in seed_results.groupby("seed", sort=False):
                if with_xqg in set(frame.condition):
                    gains[int(seed)] = average(frame, measure)[with_xqg] - base
            mean, low, high = seed_interval(list(gains.values()))
            test = tests.loc[(with_xqg, measure)]
            scale = 100 if is_macro(measure) else 1  # the tests' differences, in the averages' units
            rows.append({"retriever": spec.name, "measure": measure,
                         "seeds": len(gains), **{f"gain, seed {k}": g for k, g in gains.items()},
                         "mean gain": mean, "95% low": low, "95% high": high,
                         f"p (t-test, seed {cfg.seed})": test["p_ttest"],
                         f"detectable (seed {cfg.seed})": scale * test["detectable"]})
    return pd.DataFrame(rows)


def pairwise_significance(cfg: Profile, results: pd.DataFrame,
                          measures: Sequence[str] = XOR_MEASURES) -> pd.DataFrame:
    """Every pair of retrievers, without and with xQG (a positive diff favours B)."""
    pairs = table1_pairs(cfg)
    out = []
    for column in (0, 1):
        names = [p[column] for p in pairs]
        out += [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return comparisons(results, out, measures, cfg.seed)


def n_sweep(cfg: Profile, results: pd.DataFrame, measures: Sequence[str] = XOR_MEASURES) -> pd.DataFrame:
    """The sweep retriever with the first n generated queries per language, each tested against
    the plain retriever (paired t-test over all questions, as the paper's figure)."""
    plain = E.plain(cfg, cfg.sweep_retriever).name
    rows = []
    for n, condition in enumerate(E.experiment(cfg, "n_sweep"), start=1):
        row: dict[str, Any] = {"n": n, "condition": condition.name}
        for measure in measures:
            test = compare(results, plain, condition.name, measure, cfg.seed).loc["all"]
            row[measure] = average(results, measure)[condition.name]
            row[f"{measure} p"] = test["p_ttest"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("n")


def alpha_sweep(cfg: Profile, results: pd.DataFrame,
                measures: Sequence[str] = ("R@2kt", "R@5kt", "RR@10")) -> pd.DataFrame:
    """The sweep retriever's averages as alpha varies (alpha 0 is the plain retriever)."""
    conditions = E.experiment(cfg, "alpha_sweep")
    table = summary(results, measures).reindex([c.name for c in conditions])
    table.index = pd.Index(list(cfg.augmentation.alpha_sweep), name="alpha")
    return table


def scaled_alpha(cfg: Profile, results: pd.DataFrame, measures: Sequence[str] = XOR_MEASURES) -> pd.DataFrame:
    """Every retriever without xQG, at the paper's alpha and at the scaled alpha."""
    alpha = cfg.augmentation.alpha
    labels = ("no xQG", f"alpha {alpha:g} (" + ("the paper's" if alpha == PAPER_ALPHA else "this run's") + ")",
              f"alpha {cfg.scaled_alpha:.4g} (scaled)")
    conditions = E.experiment(cfg, "scaled_alpha")
    means = summary(results, measures)
    rows = [{"retriever": c.retriever, "xQG": labels[i % 3], **means.loc[c.name].to_dict()}
            for i, c in enumerate(conditions)]
    return pd.DataFrame(rows).pivot(index="retriever", columns="xQG", values=list(measures))


def gold_rank_changes(cfg: Profile, results: pd.DataFrame, retriever: str | None = None) -> pd.DataFrame:
    """Per language: where the gold passage ranks without and with xQG, and how often it moved."""
    retriever = retriever or cfg.sweep_retriever
    plain_name = E.plain(cfg, retriever).name
    xqg_name = E.xqg(cfg, retriever, cfg.augmentation.alpha).name
    before = select(results, [plain_name], [GOLD_RANK]).set_index("query_id")
    after = select(results, [xqg_name], [GOLD_RANK]).set_index("query_id")["value"]
    both = before.assign(after=after.reindex(before.index))
    rows = []
    for lang, group in both.groupby("language"):
        b, a = group["value"], group["after"]
        rows.append({"lang": lang, "questions": len(group), "mean rank": b.mean(), "mean rank +xQG": a.mean(),
                     "improved %": 100 * (a < b).mean(), "worsened %": 100 * (a > b).mean(),
                     "unchanged %": 100 * (a == b).mean()})
    return pd.DataFrame(rows).set_index("lang")


def tokenizer_difference(cfg: Profile, results: pd.DataFrame) -> pd.DataFrame:
    """What the fallback tokenisation changes against the exact ``nltk.word_tokenize``: per Table 1
    system and measure, the questions whose hit differs, and both averages. Empty where the
    exact tokeniser is not installed (then the main results themselves use the fallback)."""
    rows = []
    for condition in E.experiment(cfg, "table1"):
        for measure in XOR_MEASURES:
            exact = outcomes(results, condition.name, measure)
            fallback = outcomes(results, condition.name, measure + FALLBACK)
            if not fallback:
                continue
            changed = [q for q, hit in fallback.items() if hit != exact[q]]
            rows.append({"system": condition.name, "measure": measure, "questions changed": len(changed),
                         "gained by fallback": sum(bool(fallback[q]) for q in changed),
                         "exact": average(results, measure)[condition.name],
                         "fallback": average(results, measure + FALLBACK)[condition.name]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The second research question
# --------------------------------------------------------------------------------------------

def on(results: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """The rows of one benchmark (condition names repeat across benchmarks)."""
    return results[results["benchmark"] == benchmark]


def rq2_pairs(cfg: Profile) -> list[tuple[str, str, str]]:
    """(A, B, what B - A measures) of the second research question: xQG on each retriever; each
    contrastive arm (and the xDR) against the encoder as is, and each arm against the xDR, without
    and with xQG."""
    specs = cfg.rq2_retrievers
    with_xqg = {s.name: E.xqg(cfg, s.name, cfg.augmentation.alpha).name for s in specs}
    pairs = [(s.name, with_xqg[s.name], "xQG") for s in specs]
    untrained = [s.name for s in specs if s.training == "none"]
    trained_ref = [s.name for s in specs if s.training == "crosslingual"]
    for arm in [s.name for s in specs if s.training != "none"]:
        for ref in untrained + [r for r in trained_ref if r != arm]:
            kind = "training" if ref in untrained else "contrastive vs xDR"
            pairs += [(ref, arm, kind), (with_xqg[ref], with_xqg[arm], kind + " (+xQG)")]
    return pairs


def rq2_significance(cfg: Profile, results: pd.DataFrame, benchmark: str, measures: Sequence[str],
                     n_resamples: int = 2000) -> pd.DataFrame:
    """Every RQ2 pair on one benchmark: per pair and measure the mean difference over all
    questions with its 95% bootstrap interval, the paired t-test, the languages where B wins and
    loses, and those where it is significant after Bonferroni (``significant_in``)."""
    from xqglib.evaluation.significance import bootstrap_interval

    rows = on(results, benchmark)
    out = []
    for a, b, kind in rq2_pairs(cfg):
        for measure in measures:
            tests = compare(rows, a, b, measure, cfg.seed)
            overall, langs = tests.loc["all"], tests.drop(index="all")
            oa, ob = outcomes(rows, a, measure), outcomes(rows, b, measure)
            common = [q for q in oa if q in ob]
            low, high = bootstrap_interval([oa[q] for q in common], [ob[q] for q in common], n_resamples, cfg.seed)
            out.append({"benchmark": benchmark, "A": a, "B": b, "comparison": kind, "measure": measure,
                        "questions": int(overall["n"]), "diff": overall["diff"], "ci_low": low, "ci_high": high,
                        "p_ttest": overall["p_ttest"], "significant": bool(overall["significant"]),
                        "detectable": overall["detectable"],
                        "wins": int((langs["diff"] > 0).sum()), "losses": int((langs["diff"] < 0).sum()),
                        "languages": len(langs), "languages_significant": int(langs["significant"].sum()),
                        "significant_in": sorted(langs.index[langs["significant"].astype(bool)])})
    return pd.DataFrame(out)


def rq2_seed_gains(cfg: Profile, results: pd.DataFrame, seed_results: pd.DataFrame, benchmark: str,
                   measure: str) -> pd.DataFrame:
    """Every RQ2 pair with xQG on a side (xQG on each retriever; each arm against the encoder and
    the xDR, both with xQG) on one benchmark: B - A over all questions (the tests' ``diff``) for
    every sampling seed, their mean and 95% interval over the seeds, beside ``run.seed``'s paired
    t-test and the difference it detects (80% power). Pairs without xQG are left out: the sampling
    seed does not change them."""
    from xqglib.evaluation.significance import seed_interval

    rows, seeded = on(results, benchmark), on(seed_results, benchmark)
    with_xqg = {c.name for c in E.rq2_table(cfg) if c.alpha is not None}
    out = []
    for a, b, kind in rq2_pairs(cfg):
        if not {a, b} & with_xqg:
            continue
        test = compare(rows, a, b, measure, cfg.seed).loc["all"]
        gains = {cfg.seed: float(test["diff"])}
        for seed, frame in seeded.groupby("seed", sort=False):
            side = {n: outcomes(frame if n in with_xqg else rows, n, measure) for n in (a, b)}
            common = [q for q in side[a] if q in side[b]]
            if common:
                gains[int(seed)] = float(np.mean([side[b][q] - side[a][q] for q in common]))
        mean, low, high = seed_interval(list(gains.values()))
        scale = 1 if measure.startswith("AP@") else 100  # the chapter's units: mAP, points of R@Nkt
        out.append({"benchmark": benchmark, "A": a, "B": b, "comparison": kind, "measure": measure,
                    "seeds": len(gains), **{f"gain, seed {k}": scale * g for k, g in gains.items()},
                    "mean gain": scale * mean, "95% low": scale * low, "95% high": scale * high,
                    f"p (t-test, seed {cfg.seed})": float(test["p_ttest"]),
                    f"detectable (seed {cfg.seed})": scale * float(test["detectable"])})
    return pd.DataFrame(out)


def rq2_scores(cfg: Profile, results: pd.DataFrame, benchmark: str, measure: str) -> pd.DataFrame:
    """Per-language scores and the average of every RQ2 table condition on one benchmark."""
    names = [c.name for c in E.experiment(cfg, "rq2_table") if c.benchmark == benchmark]
    rows = on(results, benchmark)
    order = sorted(rows["language"].unique())
    return scores(rows, names, measure, order)


def gain_pairs(cfg: Profile) -> list[tuple[str, str]]:
    """The two gains the second research question sets side by side, per language: xQG on the
    xDR (``xdr -> xdr+xQG``), and contrastive alignment over the xDR (``xdr -> xdr-align``); the
    first cross-lingual row and the first ``align`` arm (else the first rows there are)."""
    specs = cfg.rq2_retrievers
    reference = next((s.name for s in specs if s.training == "crosslingual"), specs[0].name)
    arm = next((s.name for s in cfg.contrastive.arms if s.training == "align"), cfg.contrastive.arms[0].name)
    return [(reference, E.xqg(cfg, reference, cfg.augmentation.alpha).name), (reference, arm)]


def language_gains(results: pd.DataFrame, benchmark: str, measure: str,
                   pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Per language, the gain B - A of each pair (columns named ``B - A``), on one benchmark."""
    table = per_language(on(results, benchmark), measure)
    return pd.DataFrame({f"{b} - {a}": table.loc[b] - table.loc[a] for a, b in pairs})


def fusion_sweep(cfg: Profile, results: pd.DataFrame, measure: str = "R@2kt") -> pd.DataFrame:
    """B1 average of every RQ2 retriever at every alpha, fused as the official sum and
    renormalised (rows: alpha; columns: (retriever, fusion))."""
    rows = on(results, cfg.data.benchmark)
    means = average(rows, measure)
    table = {}
    for spec in cfg.rq2_retrievers:
        for renorm, label in ((False, "sum"), (True, "renormalised")):
            names = [E.xqg(cfg, spec.name, a, renorm=renorm).name for a in cfg.augmentation.alpha_sweep]
            table[(spec.name, label)] = [means.get(n, np.nan) for n in names]
    out = pd.DataFrame(table, index=pd.Index(list(cfg.augmentation.alpha_sweep), name="alpha"))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["retriever", "fusion"])
    return out
