"""What changed from the one-seed run (xqglib.study.earlier): the verdict rules on hand-made
conclusions, and this run's figures read from hand-made tables of the shapes the notebooks pass."""

from __future__ import annotations

import pandas as pd
import pytest

from xqglib.config.profiles import load_profile
from xqglib.study import earlier as EARLIER
from xqglib.study import experiments as E
from xqglib.study.earlier import Now, Recorded


def claim(value: str, tested: bool) -> Recorded:
    return Recorded("RQ9", ("k",), "a comparison", "as recorded", value, tested)


def test_tested_conclusions_are_judged_by_the_first_seed_test():
    assert EARLIER.verdict(claim("+", True), Now("", mean=1.2, p=0.01)) == "held"
    assert EARLIER.verdict(claim("+", True), Now("", mean=1.2, p=0.2)) == \
        "changed: significantly better then, not significant now"
    assert EARLIER.verdict(claim("+", True), Now("", mean=-1.2, p=0.01)) == \
        "changed: significantly better then, significantly worse now"
    assert EARLIER.verdict(claim("0", True), Now("", mean=-3.0, p=0.3)) == "held"
    assert EARLIER.verdict(claim("0", True), Now("", mean=0.5, p=0.049)) == \
        "changed: not significant then, significantly better now"
    # "significant" with its sign not recorded: either sign holds it
    assert EARLIER.verdict(claim("significant", True), Now("", mean=-0.4, p=0.001)) == "held"
    assert EARLIER.verdict(claim("significant", True), Now("", mean=0.4, p=0.05)).startswith("changed")
    with pytest.raises(ValueError, match="needs this run's test"):
        EARLIER.verdict(claim("+", True), Now("", mean=1.0))


def test_point_conclusions_hold_only_outside_seed_noise():
    assert EARLIER.verdict(claim("+", False), Now("", mean=0.8, low=0.1, high=1.5)) == "held"
    assert EARLIER.verdict(claim("+", False), Now("", mean=0.8, low=-0.1, high=1.7)) == \
        "changed: the same sign, but within seed noise"
    assert EARLIER.verdict(claim("-", False), Now("", mean=0.8, low=0.2, high=1.4)) == "changed: reversed"
    assert EARLIER.verdict(claim("-", False), Now("", mean=0.3, low=-0.2, high=0.8)) == \
        "changed: reversed, within seed noise"
    # no interval (the sampling seed does not change it): the paired test decides
    assert EARLIER.verdict(claim("-", False), Now("", mean=-0.3, p=0.01)) == "held"
    assert EARLIER.verdict(claim("-", False), Now("", mean=-0.3, p=0.2)) == "changed: the same sign, but not significant"
    with pytest.raises(ValueError, match="interval over seeds or its test"):
        EARLIER.verdict(claim("-", False), Now("", mean=0.3))


def test_counts_must_match():
    assert EARLIER.verdict(claim("3 of 4", True), Now("", count=3, of=4)) == "held"
    assert EARLIER.verdict(claim("3 of 4", True), Now("", count=1, of=4)) == "changed: 3 of 4 significant then, 1 of 4 now"
    assert EARLIER.verdict(claim("none", True), Now("", count=0, of=96)) == "held"
    assert EARLIER.verdict(claim("none", True), Now("", count=2, of=96)) == "changed: none significant then, 2 of 96 now"


def _tables(cfg):
    """Hand-made tables with the columns the notebooks pass (seed 313 first, as the cpu profile)."""
    s = cfg.seed
    rq1 = pd.DataFrame([{"retriever": r, "measure": "R@2kt", "seeds": 3, f"gain, seed {s}": g, "mean gain": m,
                         "95% low": lo, "95% high": hi, f"p (t-test, seed {s})": p}
                        for r, g, m, lo, hi, p in (("base", 1.0, 0.9, 0.2, 1.6, 0.01), ("xdr", 0.3, 0.2, -0.5, 0.9, 0.4))])
    seed2 = pd.DataFrame([{"benchmark": b, "A": a, "B": a + "+xqg", "comparison": "xQG", "measure": m, "seeds": 3,
                           f"gain, seed {s}": g, "mean gain": g, "95% low": g - 0.5, "95% high": g + 0.5,
                           f"p (t-test, seed {s})": p}
                          for b, m in ((cfg.data.benchmark, "R@2kt"), (E.B2, f"AP@{cfg.xquadr.k}"))
                          for a, g, p in (("base", 0.5, 0.01), ("xdr", 0.1, 0.3), ("xdr-align", -0.2, 0.6),
                                          ("hybrid", 0.4, 0.02))])
    sig = pd.DataFrame([{"benchmark": b, "A": "xdr", "B": arm, "comparison": "contrastive vs xDR", "measure": m,
                         "diff": d, "p_ttest": p}
                        for b, m in ((cfg.data.benchmark, "R@2kt"), (E.B2, f"AP@{cfg.xquadr.k}"))
                        for arm, d, p in (("xdr-align", 0.02, 0.001), ("hybrid", -0.01, 0.5))])
    rq3 = pd.DataFrame([{"retriever": r, "condition": c, "seeds": 3, "mean gain": 1.0, "95% low": 0.5, "95% high": 1.5}
                        for r in ("base", "xdr", "xdr-align") for c in ("xqg", "text", "dual")])
    reading = pd.DataFrame({"measure": ["f1", "f1", "f1", "em"], "significant": [False, True, False, True],
                            "diff": [0.1, -2.0, 0.3, 1.0]})  # the claim is about F1: the EM row does not count
    return rq1, seed2, sig, rq3, reading


def test_this_runs_tables_answer_every_recorded_conclusion():
    cfg = load_profile("cpu")
    rq1, seed2, sig, rq3, reading = _tables(cfg)
    now = EARLIER.this_run(cfg, rq1_seed_gains=rq1, rq2_significance=sig, rq2_seed_gains=seed2,
                           rq3_seed_gains=rq3, reading_tests=reading)
    assert {c.key for c in EARLIER.ONE_SEED_RUN} <= set(now)
    # RQ1's own table wins over RQ2's for the retrievers both have
    assert now[("xqg", "b1", "base")].p == 0.01 and now[("xqg", "b1", "base")].low == 0.2
    assert (now[("xqg-count", "xquadr")].count, now[("xqg-count", "xquadr")].of) == (2, 4)
    # R@2kt differences in points, mAP as it is
    assert now[("arm", "b1", "xdr", "xdr-align")].mean == pytest.approx(2.0)
    assert now[("arm", "xquadr", "xdr", "hybrid")].mean == pytest.approx(-0.01)
    assert now[("reading",)].count == 1
    rq1_table = EARLIER.changes(cfg, "RQ1", now)
    assert list(rq1_table["verdict"]) == ["held", "held"]  # base significant, xdr not
    rq2_table, sentence = EARLIER.table_and_sentence(cfg, "RQ2", now)
    verdicts = dict(zip(rq2_table["comparison"], rq2_table["verdict"]))
    assert verdicts["xQG on the hybrid arm (B1 R@2kt)"] == "changed: not significant then, significantly better now"
    assert verdicts["xQG on each of the four retrievers (XQuAD-R mAP)"] == "changed: 3 of 4 significant then, 2 of 4 now"
    # a loss recorded without a test, judged by this run's test (the sampling seed does not change it)
    assert verdicts["the hybrid arm against the xDR (XQuAD-R mAP)"] == "changed: the same sign, but not significant"
    assert verdicts["xDR + alignment against the xDR (XQuAD-R mAP)"] == "held"
    assert sentence == ("4 of 7 of the one-seed run's conclusions held; changed: not significant then, significantly "
                        "better now: xQG on the hybrid arm (B1 R@2kt); 3 of 4 significant then, 2 of 4 now: xQG on each "
                        "of the four retrievers (XQuAD-R mAP); the same sign, but not significant: the hybrid arm "
                        "against the xDR (XQuAD-R mAP)")
    rq3_table, rq3_sentence = EARLIER.table_and_sentence(cfg, "RQ3", now)
    assert (rq3_table["verdict"] == "changed: reversed").sum() == 7  # the seven recorded losses
    assert rq3_sentence.startswith("2 of 10 of the one-seed run's conclusions held")
    assert rq3_table["verdict"].iloc[-1] == "changed: none significant then, 1 of 3 now"  # the reader


def test_nothing_measured_says_so_and_another_profile_is_not_judged():
    cpu = load_profile("cpu")
    table = EARLIER.changes(cpu, "RQ3", {})
    assert set(table["verdict"]) == {"not measured here"}
    assert EARLIER.changes_sentence(table) == "none of the one-seed run's conclusions is measured here"
    smoke = load_profile("smoke")
    now = EARLIER.this_run(cpu, rq3_seed_gains=_tables(cpu)[3])
    table, sentence = EARLIER.table_and_sentence(smoke, "RQ3", now)
    assert (table["verdict"].iloc[:-1] == EARLIER.NOT_COMPARABLE).all() and table["this run"].iloc[0] != "not in this run"
    assert sentence == "none is judged here: the one-seed run was of the cpu profile, this run is not"
