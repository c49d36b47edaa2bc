"""Paired significance tests against scipy's own and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xqglib.evaluation.significance import compare_by_language, paired_test


def test_ttest_and_mcnemar_by_hand():
    a = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    b = [1, 1, 1, 0, 1, 1, 1, 1, 1, 0]
    r = paired_test(a, b, seed=0)
    assert r.n == 10 and r.mean_a == 0.4 and r.mean_b == 0.8
    assert r.p_ttest == pytest.approx(stats.ttest_rel(b, a).pvalue)
    # 4 discordant pairs, all favouring b: exact two-sided binomial p = 2 * 0.5^4 = 0.125
    assert r.p_mcnemar == pytest.approx(0.125)


def test_permutation_matches_exact_enumeration():
    # with 8 items, enumerate all 256 sign flips: the exact two-sided p-value
    d = np.array([1.0, 2.0, -0.5, 3.0, 1.5, -1.0, 2.5, 0.5])
    a = np.zeros_like(d)
    flips = np.array(np.meshgrid(*[[-1, 1]] * 8)).reshape(8, -1).T
    exact = np.mean(np.abs((flips * d).mean(1)) >= abs(d.mean()) - 1e-12)
    r = paired_test(a, d, n_permutations=40_000, seed=1)
    assert r.p_permutation == pytest.approx(exact, abs=0.01)
    assert r.p_mcnemar is None  # not 0/1 outcomes


def test_identical_systems_are_not_different():
    r = paired_test([1, 0, 1], [1, 0, 1])
    assert (r.p_ttest, r.p_permutation, r.p_mcnemar) == (1.0, 1.0, 1.0)


def test_bonferroni_over_languages_and_uncounted_questions():
    rng = np.random.default_rng(0)
    a, b, langs = {}, {}, {}
    for i in range(300):
        lang = ["ar", "th", "zh"][i % 3]
        q = f"q{i}"
        langs[q] = lang
        a[q] = float(rng.random() < 0.3)
        b[q] = float(rng.random() < (0.6 if lang == "ar" else 0.3))
    b["skip"], langs["skip"] = 1.0, "ar"  # a question only one system has an outcome for
    out = compare_by_language(a, b, langs)
    assert list(out.index) == ["ar", "th", "zh", "all"]
    assert out.loc["ar", "n"] == 100 and out.loc["all", "n"] == 300
    for lang in ("ar", "th", "zh"):
        assert out.loc[lang, "p_ttest_corrected"] == pytest.approx(min(1.0, 3 * out.loc[lang, "p_ttest"]))
        qs = [q for q in a if langs[q] == lang]
        assert out.loc[lang, "mean_b"] - out.loc[lang, "mean_a"] == pytest.approx(
            sum(b[q] - a[q] for q in qs) / len(qs))
    assert out.loc["all", "p_ttest_corrected"] == out.loc["all", "p_ttest"]  # overall: not corrected
    assert out.loc["ar", "p_ttest_corrected"] < 0.05 and bool(out.loc["ar", "significant"])


def test_the_detectable_difference_against_a_hand_computation():
    """n = 30 pairs, differences of sd 1, two-sided 0.05, power 0.8: the normal-theory formula
    (t_{0.975,29} + t_{0.80,29}) sd / sqrt(n) = (2.0452 + 0.8542) / 5.4772 = 0.5294; the exact
    noncentral-t value is a hair below it (G*Power: dz = 0.5292)."""
    from scipy import stats

    from xqglib.evaluation.significance import detectable_difference

    exact = detectable_difference(1.0, 30)
    assert exact == pytest.approx(0.5292, abs=5e-5)
    by_hand = (stats.t.ppf(0.975, 29) + stats.t.ppf(0.80, 29)) / 30**0.5
    assert by_hand == pytest.approx(0.5294, abs=5e-5) and exact < by_hand
    # it scales with the spread, shrinks with more pairs, grows with a stricter (corrected) level
    assert detectable_difference(2.0, 30) == pytest.approx(2 * exact)
    assert detectable_difference(1.0, 120) < exact < detectable_difference(1.0, 30, alpha=0.05 / 10)
    assert np.isnan(detectable_difference(0.0, 30)) and np.isnan(detectable_difference(1.0, 1))


def test_each_test_states_what_it_can_detect():
    from xqglib.evaluation.significance import compare_by_language, detectable_difference

    a = {f"q{i}": float(i % 2) for i in range(40)}
    b = {f"q{i}": float((i // 2) % 2) for i in range(40)}
    langs = {f"q{i}": "ar" if i < 20 else "de" for i in range(40)}
    table = compare_by_language(a, b, langs)
    d = np.array([b[q] - a[q] for q in a if langs[q] == "ar"])
    assert table.loc["ar", "detectable"] == pytest.approx(detectable_difference(d.std(ddof=1), 20, 0.05 / 2))
    assert table.loc["all", "detectable"] < table.loc["ar", "detectable"]  # more pairs, no correction


def test_the_seed_interval_by_hand():
    from xqglib.evaluation.significance import seed_interval

    # mean 2, sd 1, t(0.975, 2 df) = 4.302653 -> half width 4.302653 / sqrt(3) = 2.484138
    mean, low, high = seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert (low, high) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)
    one = seed_interval([0.7])
    assert one[0] == 0.7 and np.isnan(one[1]) and np.isnan(one[2])
