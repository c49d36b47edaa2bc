"""The book's tables from a hand-made results table with known values."""

from __future__ import annotations

import pandas as pd
import pytest

from xqglib.config.profiles import load_profile
from xqglib.evaluation.rq1 import COLUMNS
from xqglib.study import analysis as A
from xqglib.study import tables as R

CFG = load_profile("smoke", {"retriever.retrievers": [{"name": "xdr", "training": "crosslingual", "label": "xDR"}],
                             "data.query_languages": ["ar", "de"]})


def hand_made() -> pd.DataFrame:
    """Two conditions, 2 languages: ar has 4 questions, de 2 (so macro != micro average)."""
    hits = {  # query -> (xdr hit, xdr+xQG hit) for R@2kt; RR@10 = hit / 2
        "q1-ar": (1, 1), "q2-ar": (0, 1), "q3-ar": (0, 1), "q4-ar": (0, 0),
        "q1-de": (1, 1), "q2-de": (1, 0),
    }
    rows = []
    for condition, aug, alpha, column in (("xdr", "none", None, 0), ("xdr+xQG", "xqg", 0.01, 1)):
        for qid, pair in hits.items():
            for measure, value in (("R@2kt", float(pair[column])), ("RR@10", pair[column] / 2)):
                rows.append({"benchmark": "b1", "condition": condition, "retriever": "xdr", "augmentation": aug,
                             "alpha": alpha, "n": None, "language": qid[-2:], "query_id": qid,
                             "measure": measure, "value": value})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_averages_follow_the_official_scorers():
    results = hand_made()
    per_lang = A.per_language(results, "R@2kt")
    assert per_lang.loc["xdr", "ar"] == 25.0 and per_lang.loc["xdr", "de"] == 100.0
    assert per_lang.loc["xdr+xQG", "ar"] == 75.0 and per_lang.loc["xdr+xQG", "de"] == 50.0
    # R@Nkt: macro over languages, in percent; other measures: mean over all questions
    assert A.average(results, "R@2kt").to_dict() == {"xdr": 62.5, "xdr+xQG": 62.5}
    assert A.average(results, "RR@10").to_dict() == pytest.approx({"xdr": 3 / 12, "xdr+xQG": 4 / 12})


def test_table1_from_the_results_table():
    results = hand_made()
    table = R.table1(CFG, results, "R@2kt")
    assert list(table.index) == ["xDR", "xDR + xQG"]
    assert list(table.columns) == ["ar", "de", "Avg", "paper Avg"]
    assert table.loc["xDR + xQG"].tolist() == [75.0, 50.0, 62.5, 46.2]  # beside the paper's mBERT xDR + xQG
    assert table.loc["xDR", "paper Avg"] == 44.1
    sig = A.xqg_significance(CFG, results, ["R@2kt"]).set_index("language")
    # ar: differences (0, 1, 1, 0): mean 0.5; de: (0, -1); all six: (0, 1, 1, 0, 0, -1)
    assert sig.loc["ar", "diff"] == 0.5 and sig.loc["de", "diff"] == -0.5
    assert sig.loc["all", "diff"] == pytest.approx(1 / 6) and sig.loc["all", "n"] == 6
    assert sig.loc["ar", "p_mcnemar"] == pytest.approx(0.5)  # 2 discordant, both for B: 2 * 0.5^2
    marked = R.table1(CFG, results, "R@2kt", A.xqg_significance(CFG, results, ["R@2kt"]))
    assert marked.loc["xDR + xQG", "Avg"] == "62.50"  # not significant: no mark
    assert marked.loc["xDR", "ar"] == "25.00"


def test_seed_gains_by_hand():
    """xQG's gain per sampling seed, their mean and 95% interval, beside the first seed's test."""
    from scipy import stats

    results = hand_made()
    second = results[results.condition == "xdr+xQG"].copy()
    second["value"] = second["query_id"].map({"q4-ar": 1.0}).fillna(second["value"])  # one more hit in ar
    second = second.assign(seed=7)
    cfg = load_profile("smoke", {"retriever.retrievers": [{"name": "xdr", "training": "crosslingual", "label": "xDR"}],
                                 "data.query_languages": ["ar", "de"], "generation.seeds": [7]})
    gains = A.seed_gains(cfg, results, second, ["R@2kt"]).iloc[0]
    # seed 313: 62.5 - 62.5 = 0; seed 7: ar 100, de 50 -> 75 - 62.5 = 12.5 points
    assert gains["seeds"] == 2 and gains["gain, seed 313"] == 0.0 and gains["gain, seed 7"] == 12.5
    half = stats.t.ppf(0.975, 1) * stats.tstd([0.0, 12.5]) / 2 ** 0.5
    assert gains["mean gain"] == 6.25
    assert (gains["95% low"], gains["95% high"]) == pytest.approx((6.25 - half, 6.25 + half))
    test = A.compare(results, "xdr", "xdr+xQG", "R@2kt").loc["all"]
    assert gains["p (t-test, seed 313)"] == test["p_ttest"]
    assert gains["detectable (seed 313)"] == pytest.approx(100 * test["detectable"])


def test_rq2_seed_gains_by_hand():
    """Each RQ2 pair with xQG on a side, per sampling seed; pairs without xQG are left out."""
    from scipy import stats

    cfg = load_profile("smoke", {"retriever.retrievers": [{"name": "xdr", "training": "crosslingual", "label": "xDR"}],
                                 "contrastive.arms": [{"name": "arm", "training": "align", "label": "arm"}],
                                 "data.query_languages": ["ar"], "generation.seeds": [7]})
    hits = {"xdr": [1, 0, 0, 0], "xdr+xQG": [1, 1, 0, 0], "arm": [1, 1, 0, 0], "arm+xQG": [1, 1, 1, 0]}
    seed_7 = {"xdr+xQG": [1, 0, 0, 0], "arm+xQG": [1, 1, 1, 1]}

    def frame(table: dict[str, list[int]]) -> pd.DataFrame:
        return pd.DataFrame([{"benchmark": "b1", "condition": c, "retriever": c.split("+")[0],
                              "augmentation": "xqg" if "+" in c else "none", "alpha": 0.01 if "+" in c else None,
                              "n": None, "language": "ar", "query_id": f"q{i}", "measure": "R@2kt", "value": float(v)}
                             for c, values in table.items() for i, v in enumerate(values)], columns=COLUMNS)

    gains = A.rq2_seed_gains(cfg, frame(hits), frame(seed_7).assign(seed=7), "b1", "R@2kt").set_index(["A", "B"])
    assert ("xdr", "arm") not in gains.index  # no xQG on either side: the sampling seed changes nothing
    # points over all questions: xQG on xdr 25 then 0; on the arm 25 then 50; arm+xQG over xdr+xQG 25 then 75
    for pair, (first, second) in {("xdr", "xdr+xQG"): (25, 0), ("arm", "arm+xQG"): (25, 50),
                                  ("xdr+xQG", "arm+xQG"): (25, 75)}.items():
        g = gains.loc[pair]
        assert (g["gain, seed 313"], g["gain, seed 7"], g["mean gain"]) == pytest.approx((first, second, (first + second) / 2))
        half = stats.t.ppf(0.975, 1) * stats.tstd([first, second]) / 2 ** 0.5
        assert (g["95% low"], g["95% high"]) == pytest.approx(((first + second) / 2 - half, (first + second) / 2 + half))
        test = A.compare(frame(hits), *pair, "R@2kt").loc["all"]
        assert g["p (t-test, seed 313)"] == test["p_ttest"] and g["detectable (seed 313)"] == pytest.approx(100 * test["detectable"])
    assert gains.loc[("xdr+xQG", "arm+xQG"), "comparison"] == "contrastive vs xDR (+xQG)"
