"""Significance of differences between two systems on the same questions.

As PyTerrier's Experiment does: paired tests on per-question outcomes, per language and overall,
with the per-language p-values Bonferroni-corrected for the number of languages. Three tests:

- the paired t-test (scipy ``ttest_rel``), what the paper's marks use;
- a paired permutation test (random sign flips of the per-question differences, seeded);
- McNemar's exact test on the discordant pairs, for 0/1 outcomes such as R@Nkt hits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass
class PairedResult:
    n: int
    mean_a: float
    mean_b: float
    p_ttest: float
    p_permutation: float
    p_mcnemar: float | None  # only for 0/1 outcomes

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
    return PairedResult(int(d.size), float(x.mean()), float(y.mean()), p_t, p_perm, p_mc)


def compare_by_language(outcome_a: Mapping[str, float | None], outcome_b: Mapping[str, float | None],
                        languages: Mapping[str, str], seed: int = 0) -> dict[str, PairedResult | dict]:
    """Per-language paired tests (Bonferroni over languages) and one over all questions.

    Questions that either system leaves uncounted (``None``, e.g. yes/no answers) are dropped.
    Returns ``{lang: PairedResult, ..., "all": PairedResult, "bonferroni": {lang: corrected p}}``.
    """
    qids = [q for q in outcome_a if outcome_a[q] is not None and outcome_b.get(q) is not None]
    by_lang: dict[str, list[str]] = {}
    for q in qids:
        by_lang.setdefault(languages[q], []).append(q)
    out: dict[str, PairedResult | dict] = {}
    for lang, qs in sorted(by_lang.items()):
        out[lang] = paired_test([outcome_a[q] for q in qs], [outcome_b[q] for q in qs], seed=seed)
    out["all"] = paired_test([outcome_a[q] for q in qids], [outcome_b[q] for q in qids], seed=seed)
    m = len(by_lang)
    out["bonferroni"] = {lang: min(1.0, out[lang].p_ttest * m) for lang in by_lang}  # type: ignore[union-attr]
    return out


def significant(result: PairedResult, corrected_p: float | None = None) -> bool:
    return (result.p_ttest if corrected_p is None else corrected_p) < ALPHA
