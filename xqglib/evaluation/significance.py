"""Significance of differences between two systems on the same questions.

As PyTerrier's Experiment does: paired tests on per-question outcomes, per language and overall,
with the per-language p-values Bonferroni-corrected for the number of languages. Three tests:

- the paired t-test (scipy ``ttest_rel``), what the paper's marks use;
- a paired permutation test (random sign flips of the per-question differences, seeded);
- McNemar's exact test on the discordant pairs, for 0/1 outcomes such as R@Nkt hits.

Beside every t-test stands its power: the smallest mean difference it detects with probability
:data:`POWER` at its own (corrected) level, for its number of questions and the spread of their
differences (:func:`detectable_difference`), so that "not significant" says what it rules out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

ALPHA = 0.05
#: The power a minimum detectable difference is stated at.
POWER = 0.8


@dataclass
class PairedResult:
    n: int
    mean_a: float
    mean_b: float
    p_ttest: float
    p_permutation: float
    p_mcnemar: float | None  # only for 0/1 outcomes
    sd_diff: float = float("nan")  # standard deviation of the paired differences (ddof 1)

    @property
    def diff(self) -> float:
        return self.mean_b - self.mean_a


def paired_test(a: Sequence[float], b: Sequence[float], n_permutations: int = 10_000,
                seed: int = 0) -> PairedResult:
    """Is B different from A on the same items? Two-sided tests."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("paired outcomes must be two vectors of the same length")
    d = y - x
    if not np.any(d):
        p_t = p_perm = 1.0
    else:
        p_t = float(stats.ttest_rel(y, x).pvalue)
        rng = np.random.default_rng(seed)
        observed = abs(d.mean())
        signs = rng.choice([-1.0, 1.0], size=(n_permutations, d.size))
        extreme = np.count_nonzero(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12)
        p_perm = (extreme + 1) / (n_permutations + 1)
    p_mc = None
    if set(np.unique(np.concatenate([x, y]))) <= {0.0, 1.0}:
        only_b = int(np.sum((y == 1) & (x == 0)))
        only_a = int(np.sum((x == 1) & (y == 0)))
        p_mc = 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)
    sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
    return PairedResult(int(d.size), float(x.mean()), float(y.mean()), p_t, p_perm, p_mc, sd)


def detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest mean paired difference that a two-sided paired t-test at level ``alpha`` finds
    with probability ``power`` on ``n`` pairs whose differences have standard deviation ``sd``
    (exact, from the noncentral t distribution; NaN where it is undefined: fewer than 2 pairs or
    no spread)."""
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)

    def power_at(effect: float) -> float:
        shift = effect * np.sqrt(n) / sd  # both tails; the lower one by symmetry
        return float(stats.nct.sf(critical, df, shift) + stats.nct.sf(critical, df, -shift))

    high = sd
    while power_at(high) < power:
        high *= 2
    return float(optimize.brentq(lambda e: power_at(e) - power, 0.0, high, xtol=1e-12))


def compare_by_language(outcome_a: Mapping[str, float], outcome_b: Mapping[str, float],
                        languages: Mapping[str, str], seed: int = 0) -> pd.DataFrame:
    """Per-language paired tests (Bonferroni over languages) and one over all questions.

    Only questions with an outcome in both are compared (e.g. R@Nkt leaves yes/no answers out).
    One row per language and a last row ``"all"``; ``p_ttest_corrected`` is the Bonferroni-corrected
    p of a language (the raw p for ``"all"``), ``significant`` says whether it is below
    :data:`ALPHA`, and ``detectable`` is the difference the test finds with :data:`POWER` at the
    level it is judged at (:data:`ALPHA` over the languages for a language).
    """
    qids = [q for q in outcome_a if q in outcome_b]
    by_lang: dict[str, list[str]] = {}
    for q in qids:
        by_lang.setdefault(languages[q], []).append(q)
    m = len(by_lang)
    rows = {}
    for lang, qs in sorted(by_lang.items()) + [("all", qids)]:
        r = paired_test([outcome_a[q] for q in qs], [outcome_b[q] for q in qs], seed=seed)
        corrected = r.p_ttest if lang == "all" else min(1.0, r.p_ttest * m)
        level = ALPHA if lang == "all" else ALPHA / m
        rows[lang] = {"n": r.n, "mean_a": r.mean_a, "mean_b": r.mean_b, "diff": r.diff, "p_ttest": r.p_ttest,
                      "p_ttest_corrected": corrected, "p_permutation": r.p_permutation,
                      "p_mcnemar": r.p_mcnemar, "significant": corrected < ALPHA,
                      "detectable": detectable_difference(r.sd_diff, r.n, level)}
    return pd.DataFrame.from_dict(rows, orient="index")


def significant(result: PairedResult, corrected_p: float | None = None) -> bool:
    return (result.p_ttest if corrected_p is None else corrected_p) < ALPHA


def bootstrap_interval(a: Sequence[float], b: Sequence[float], n_resamples: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean paired difference ``b - a`` (questions resampled
    with replacement, seeded)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if d.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def seed_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """The mean of one figure over seeds and its ``level`` interval (Student's t over the seeds,
    ``k - 1`` degrees of freedom): ``(mean, low, high)``; a single seed has no interval (NaN)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half
