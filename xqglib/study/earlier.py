"""What changed from the one-seed run: the conclusions of the `cpu` run before models trained to
convergence (generator stopped after an eighth of a pass, retrievers after 30 steps, reader after
80; one sampling seed), as CHANGELOG.md records them, each set beside this run's figure with a
verdict.

The recorded conclusions are of two kinds. *Tested*: a paired test's verdict on the first seed
(``+``/``-``: significantly better/worse; ``0``: not significant; ``significant``: significant,
its sign not recorded); this run is judged by the same test on its first seed, and its interval
over seeds is shown beside. *Point*: a gain's sign, with no test recorded; this run holds it where
its mean over seeds has the same sign and its 95% interval over seeds excludes zero (where the sampling seed
does not change the comparison: where its paired test is significant). *A count*
(``k of n``, or ``none``): how many tested comparisons of a family were significant; held where
this run's count is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from xqglib.config.settings import Profile
from xqglib.study import experiments as E
from xqglib.study.findings import listing, p_phrase

#: Where the recorded conclusions come from, and the profile they are of (another profile's run is
#: shown beside them, not judged).
SOURCE = "CHANGELOG.md, 'The published cpu run' (the README of commit c61a82d): sampler 2, one seed"
PROFILE = "cpu"
#: The level of the paired tests, then and now.
ALPHA = 0.05


@dataclass(frozen=True)
class Recorded:
    """One conclusion of the one-seed run: which comparison (``key``, see :func:`this_run`), in
    words, the figure as recorded, and the claim it made (see the module's docstring)."""

    rq: str
    key: tuple[str, ...]
    what: str
    recorded: str
    claim: str
    tested: bool


#: The one-seed run's conclusions, transcribed from :data:`SOURCE`.
ONE_SEED_RUN: tuple[Recorded, ...] = (
    Recorded("RQ1", ("xqg", "b1", "base"), "xQG on the encoder as is (B1 R@2kt)",
             "of the xQG gains on RQ2's four retrievers (-0.20 to +1.23 points) only this one significant "
             "(its sign not recorded)", "significant", True),
    Recorded("RQ1", ("xqg", "b1", "xdr"), "xQG on the xDR (B1 R@2kt)",
             "within -0.20 to +1.23 points, not significant", "0", True),
    Recorded("RQ2", ("xqg", "b1", "xdr-align"), "xQG on xDR + alignment (B1 R@2kt)",
             "within -0.20 to +1.23 points, not significant", "0", True),
    Recorded("RQ2", ("xqg", "b1", "hybrid"), "xQG on the hybrid arm (B1 R@2kt)",
             "within -0.20 to +1.23 points, not significant", "0", True),
    Recorded("RQ2", ("xqg-count", "xquadr"), "xQG on each of the four retrievers (XQuAD-R mAP)",
             "-0.001 to +0.002 mAP, significant for three of the four", "3 of 4", True),
    Recorded("RQ2", ("arm", "b1", "xdr", "xdr-align"), "xDR + alignment against the xDR (B1 R@2kt)",
             "+1.56 points (84.45 against 82.89, p < 0.001)", "+", True),
    Recorded("RQ2", ("arm", "b1", "xdr", "hybrid"), "the hybrid arm against the xDR (B1 R@2kt)",
             "-0.27 points, not significant", "0", True),
    Recorded("RQ2", ("arm", "xquadr", "xdr", "xdr-align"), "xDR + alignment against the xDR (XQuAD-R mAP)",
             "+0.038 mAP (0.309 against 0.271)", "+", False),
    Recorded("RQ2", ("arm", "xquadr", "xdr", "hybrid"), "the hybrid arm against the xDR (XQuAD-R mAP)",
             "-0.049 mAP (0.222 against 0.271)", "-", False),
    *(Recorded("RQ3", ("rq3", retriever, condition), f"{condition} against none with {label} (MRR@10 averaged over all cells)",
               f"{gain:+.2f} points", "+" if gain > 0 else "-", False)
      for condition, gains in (("xqg", (0.78, -1.63, -2.30)), ("text", (-6.08, -1.73, -2.32)),
                               ("dual", (1.28, -0.24, -0.45)))
      for (retriever, label), gain in zip((("base", "the encoder as is"), ("xdr", "the xDR"),
                                           ("xdr-align", "xDR + alignment")), gains)),
    Recorded("RQ3", ("reading",), "any condition against none in reading (F1, per cell)",
             "no cell's F1 difference significant (F1 18.6 with the gold passage)", "none", True),
)


@dataclass(frozen=True)
class Now:
    """This run's figure for one comparison: the first seed's difference and paired test's p
    (``p``), and the mean and 95% interval over the sampling seeds where they vary it; or, for a
    count, how many of ``of`` were significant."""

    text: str
    mean: float = 0.0
    p: float | None = None
    low: float | None = None
    high: float | None = None
    count: int | None = None
    of: int | None = None


def _sign(value: float) -> str:
    return "+" if value > 0 else "-" if value < 0 else "0"


def verdict(claim: Recorded, now: Now, alpha: float = ALPHA) -> str:
    """``held``, or ``changed: ...`` saying how (the rules of the module's docstring)."""
    if claim.claim == "none" or " of " in claim.claim:
        if now.count is None:
            raise ValueError(f"{claim.what}: a count needs this run's count")
        k, _, n = claim.claim.partition(" of ")
        held = now.count == (0 if k == "none" else int(k)) and (not n or now.of == int(n))
        return "held" if held else f"changed: {claim.claim} significant then, {now.count} of {now.of} now"
    if claim.tested:
        if now.p is None:
            raise ValueError(f"{claim.what}: a tested conclusion needs this run's test")
        found = "0" if now.p >= alpha else _sign(now.mean)
        held = found != "0" if claim.claim == "significant" else found == claim.claim
        words = {"+": "significantly better", "-": "significantly worse", "0": "not significant",
                 "significant": "significant"}
        return "held" if held else f"changed: {words[claim.claim]} then, {words[found]} now"
    if now.low is not None and now.high is not None:
        resolved, noise = now.low > 0 or now.high < 0, "within seed noise"
    elif now.p is not None:  # a comparison the sampling seed does not change: its test
        resolved, noise = now.p < alpha, "not significant"
    else:
        raise ValueError(f"{claim.what}: a point conclusion needs this run's interval over seeds or its test")
    if _sign(now.mean) == claim.claim:
        return "held" if resolved else f"changed: the same sign, but {noise}"
    return "changed: reversed" + ("" if resolved else f", {noise}")


def _interval(mean: float, low: float, high: float, places: int, seeds: int) -> str:
    return f"{mean:+.{places}f} [{low:+.{places}f}, {high:+.{places}f}] over {seeds} seeds"


def _p(p: float) -> str:
    return f"p {p_phrase(p)}"


def this_run(cfg: Profile, *, rq1_seed_gains: pd.DataFrame | None = None, rq2_significance: pd.DataFrame | None = None,
             rq2_seed_gains: pd.DataFrame | None = None, rq3_seed_gains: pd.DataFrame | None = None,
             reading_tests: pd.DataFrame | None = None) -> dict[tuple[str, ...], Now]:
    """This run's figure for every key of :data:`ONE_SEED_RUN` that the given tables answer:
    ``rq1_seed_gains`` (:func:`xqglib.study.analysis.seed_gains`), ``rq2_significance`` (both
    benchmarks' :func:`~xqglib.study.analysis.rq2_significance`), ``rq2_seed_gains`` (both
    benchmarks' :func:`~xqglib.study.analysis.rq2_seed_gains`), ``rq3_seed_gains``
    (:func:`xqglib.study.rq3.seed_gains`) and ``reading_tests`` (:func:`xqglib.study.rq3.tests_for`
    on the reading table, its F1 rows)."""
    bench = {"b1": cfg.data.benchmark, "xquadr": E.B2}
    seed = cfg.seed
    out: dict[tuple[str, ...], Now] = {}
    if rq1_seed_gains is not None:
        for _, g in rq1_seed_gains[rq1_seed_gains["measure"] == "R@2kt"].iterrows():
            out[("xqg", "b1", g["retriever"])] = Now(
                f"{_interval(g['mean gain'], g['95% low'], g['95% high'], 2, int(g['seeds']))}; seed {seed}: "
                f"{g[f'gain, seed {seed}']:+.2f}, {_p(g[f'p (t-test, seed {seed})'])}",
                g[f"gain, seed {seed}"], g[f"p (t-test, seed {seed})"], g["95% low"], g["95% high"])
    if rq2_seed_gains is not None:
        for name, b in bench.items():
            part = rq2_seed_gains[(rq2_seed_gains["benchmark"] == b) & (rq2_seed_gains["comparison"] == "xQG")]
            places = 3 if name == "xquadr" else 2
            for _, g in part.iterrows():
                first, p = g[f"gain, seed {seed}"], g[f"p (t-test, seed {seed})"]
                out.setdefault(("xqg", name, g["A"]), Now(
                    f"{_interval(g['mean gain'], g['95% low'], g['95% high'], places, int(g['seeds']))}; seed {seed}: "
                    f"{first:+.{places}f}, {_p(p)}", first, p, g["95% low"], g["95% high"]))
            if len(part):
                significant = int((part[f"p (t-test, seed {seed})"] < ALPHA).sum())
                out[("xqg-count", name)] = Now(
                    f"{part['mean gain'].min():+.{places}f} to {part['mean gain'].max():+.{places}f} (means over "
                    f"seeds); significant on seed {seed} for {significant} of {len(part)}",
                    count=significant, of=len(part))
    if rq2_significance is not None:
        for name, b in bench.items():
            rows = rq2_significance[(rq2_significance["benchmark"] == b)
                                    & (rq2_significance["comparison"] == "contrastive vs xDR")
                                    & (rq2_significance["measure"].isin(["R@2kt", f"AP@{cfg.xquadr.k}"]))]
            scale, places, unit = (1, 3, "mAP") if name == "xquadr" else (100, 2, "points")
            for _, r in rows.iterrows():
                out[("arm", name, r["A"], r["B"])] = Now(
                    f"{scale * r['diff']:+.{places}f} {unit} over all questions, {_p(r['p_ttest'])} (training seed "
                    "not varied)",
                    scale * r["diff"], r["p_ttest"])
    if rq3_seed_gains is not None:
        for _, g in rq3_seed_gains.iterrows():
            out[("rq3", g["retriever"], g["condition"])] = Now(
                _interval(g["mean gain"], g["95% low"], g["95% high"], 2, int(g["seeds"])),
                g["mean gain"], None, g["95% low"], g["95% high"])
    if reading_tests is not None:
        f1 = reading_tests[reading_tests["measure"] == "f1"]
        significant = f1["significant"].astype(bool)
        better = int((significant & (f1["diff"] > 0)).sum())
        out[("reading",)] = Now(f"{int(significant.sum())} of {len(f1)} cells' F1 tests significant "
                                f"({better} better; seed {seed})", count=int(significant.sum()), of=len(f1))
    return out


#: The verdict where this run is of another profile than the one-seed run.
NOT_COMPARABLE = f"not judged: the one-seed run was of the {PROFILE} profile"


def changes(cfg: Profile, rq: str, now: Mapping[tuple[str, ...], Now]) -> pd.DataFrame:
    """One row per recorded conclusion of ``rq``: what, as recorded, this run's figure, the verdict
    (``not measured here`` where this run has no figure for it; :data:`NOT_COMPARABLE` where
    ``cfg`` is not the one-seed run's profile)."""
    rows: list[dict[str, Any]] = []
    for claim in ONE_SEED_RUN:
        if claim.rq != rq:
            continue
        found = now.get(claim.key)
        judged = "not measured here" if found is None else verdict(claim, found) if cfg.name == PROFILE else NOT_COMPARABLE
        rows.append({"comparison": claim.what, "one-seed run": claim.recorded,
                     "this run": found.text if found else "not in this run", "verdict": judged})
    return pd.DataFrame(rows, columns=["comparison", "one-seed run", "this run", "verdict"])


def changes_sentence(table: pd.DataFrame) -> str:
    """The table in one sentence: how many conclusions held, and which changed, grouped by how."""
    measured = table[table["verdict"] != "not measured here"]
    changed = measured[measured["verdict"].str.startswith("changed")]
    if measured.empty:
        return "none of the one-seed run's conclusions is measured here"
    if (measured["verdict"] == NOT_COMPARABLE).all():
        return f"none is judged here: the one-seed run was of the {PROFILE} profile, this run is not"
    head = f"{len(measured) - len(changed)} of {len(measured)} of the one-seed run's conclusions held"
    if changed.empty:
        return head
    by_how = changed.groupby(changed["verdict"].str.removeprefix("changed: "), sort=False)["comparison"]
    return head + "; changed: " + "; ".join(f"{how}: {listing(list(what))}" for how, what in by_how)


def table_and_sentence(cfg: Profile, rq: str, now: Mapping[tuple[str, ...], Now]) -> tuple[pd.DataFrame, str]:
    table = changes(cfg, rq, now)
    return table, changes_sentence(table)

