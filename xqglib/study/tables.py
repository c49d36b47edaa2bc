"""The book's tables, from the outcome tables and the run's records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.formats import read_jsonl, sha256_file
from xqglib.core.timing import Timing
from xqglib.evaluation.significance import ALPHA
from xqglib.method.convergence import Convergence
from xqglib.study import analysis as A
from xqglib.study import experiments as E
from xqglib.study.reference import PAPER_AVERAGES_R2KT, PAPER_COUNTERPART, paper_average

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

    With ``significance`` (:func:`xqglib.study.analysis.xqg_significance`), +xQG cells whose difference
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


def _fmt(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2f}"


def significance_table(significance: pd.DataFrame, b: str, measure: str) -> pd.DataFrame:
    """Per language: mean difference (points), t-test p (raw and Bonferroni), permutation and McNemar
    p, and the difference the t-test detects with 80% power at its level."""
    sig = significance[(significance["B"] == b) & (significance["measure"] == measure)].set_index("language")
    return pd.DataFrame({"questions": sig["n"].astype(int), "diff (points)": (100 * sig["diff"]).map(points),
                         "p t-test": sig["p_ttest"].map(p_value),
                         "p t-test (Bonferroni)": sig["p_ttest_corrected"].map(p_value),
                         "p permutation": sig["p_permutation"].map(p_value), "p McNemar": sig["p_mcnemar"].map(p_value),
                         "detectable at 80% power (points)": (100 * sig["detectable"]).map(magnitude)})


def points(value: float) -> str:
    """A difference in points, two decimals with its sign."""
    return "" if pd.isna(value) else f"{value:+.2f}"


def magnitude(value: float) -> str:
    """A size in points, two decimals, no sign (blank where undefined)."""
    return "" if pd.isna(value) else f"{value:.2f}"


def p_value(p: float | None) -> str:
    """A p-value, three decimals (``< 0.001`` below)."""
    if p is None or pd.isna(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def pairwise_table(pairwise: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of systems and measure: the difference B - A over all questions (points),
    its p-values, the difference the t-test detects with 80% power, and in how many languages it
    is significant (t-test, Bonferroni-corrected)."""
    rows = []
    for (a, b, measure), group in pairwise.groupby(["A", "B", "measure"], sort=False):
        overall = group[group["language"] == "all"].iloc[0]
        langs = group[group["language"] != "all"]
        rows.append({"A": a, "B": b, "measure": measure, "B - A (points)": points(100 * overall["diff"]),
                     "p t-test": p_value(overall["p_ttest"]), "p permutation": p_value(overall["p_permutation"]),
                     "p McNemar": p_value(overall["p_mcnemar"]),
                     "detectable at 80% power (points)": magnitude(100 * overall["detectable"]),
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
    """:func:`xqglib.evaluation.rq1.generated_query_quality` for reading: shares in percent."""
    table = quality.set_index("language").copy()
    for column in ("in requested language", "its share", "own passage first"):
        if column in table:
            table[column] = (100 * table[column]).round(1)
    return table.rename(columns={"in requested language": "in requested language (%)",
                                 "its share": "its share (%)", "own passage first": "own passage first (%)"})


def generator_summary(cfg: Profile, logs: Mapping[str, Sequence[Mapping[str, float]]]) -> pd.DataFrame:
    """One row per trained generator: steps run, whether it stopped at the plateau, train losses,
    the best dev-article loss, the dev loss's relative fall over the last 20% of the steps, the
    passes over its training pairs and, where it trains to convergence, the criterion's verdict."""
    from xqglib.method.convergence import verdict_of_log
    from xqglib.method.generator_training import PLATEAU_GAIN, PLATEAU_WINDOW, at_plateau, recent_gain

    gain = PLATEAU_GAIN if cfg.generator.plateau is None else cfg.generator.plateau
    rows = {}
    for name, log in logs.items():
        dev = [r["dev_loss"] for r in log if "dev_loss" in r]
        fall = recent_gain(log)
        most = f"{cfg.generator.max_passes:g} passes" if cfg.generator.converge else cfg.generator.steps
        rows[name] = {"steps": len(log), "of at most": most,
                      "at plateau": "yes" if at_plateau(log, gain) else "no",
                      "first train loss": round(log[0]["train_loss"], 3),
                      "last train loss": round(log[-1]["train_loss"], 3),
                      "best dev-article loss": round(min(dev), 3) if dev else None,
                      f"dev-loss fall over the last {PLATEAU_WINDOW:.0%}+ of steps (%)":
                          None if fall is None else round(100 * fall, 2)}
        if "passes" in log[-1]:
            rows[name]["passes over the training pairs"] = round(log[-1]["passes"], 2)
        g = cfg.generator
        if g.converge:
            c = Convergence.of(g)
            found = verdict_of_log(c, log)
            rows[name]["converged"] = f"{'yes' if found.converged else 'no'}: {found.reason}"
    return pd.DataFrame(rows).T


def seed_sweep_table(seed: int, rows: Sequence[Mapping[str, Any]],
                     sweep: Mapping[int, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Per sampling seed (the run's first): generated queries, distinct ones, and the share equal
    to the run seed's query at the same passage, language and slot (1.0 would mean the seed
    changed nothing)."""
    def flat(rs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, int], str]:
        return {(r["docid"], lang, i): q for r in rs for lang, qs in r["generated_queries"].items() for i, q in enumerate(qs)}

    first = flat(rows)
    table = {}
    for s, other in {seed: rows, **sweep}.items():
        queries = flat(other)
        table[s] = {"queries": len(queries), "distinct": len(set(queries.values())),
                    f"same as seed {seed} (%)": round(100 * sum(queries.get(k) == q for k, q in first.items())
                                                      / max(1, len(first)), 1)}
    return pd.DataFrame(table).T.rename_axis("sampling seed")


def training_summary(logs: Mapping[str, Sequence[Mapping[str, float]]], criterion: Convergence | None,
                     batch_size: int, loss: str = "loss") -> pd.DataFrame:
    """One row per trained model: steps, passes over its training rows and examples seen, first
    and last training loss, the best dev loss (and dev MRR@10, where logged), the checkpoint kept
    (the best of the ``criterion``'s measure, else of the dev loss) with its dev measures and,
    where it trained to ``criterion``, the verdict."""
    from xqglib.method.convergence import Convergence, verdict_of_log

    rows = {}
    for name, log in logs.items():
        evaluated = [r for r in log if "dev_loss" in r]
        row: dict[str, Any] = {"steps": len(log), "examples seen": len(log) * batch_size,
                               "first train loss": round(log[0][loss], 3), "last train loss": round(log[-1][loss], 3)}
        if "passes" in log[-1]:
            row["passes"] = round(log[-1]["passes"], 2)
        trained_to = criterion is not None and "passes" in log[-1]
        found = verdict_of_log(criterion, log) if trained_to else verdict_of_log(Convergence(), log, 1)
        if evaluated:
            kept = next((r for r in evaluated if int(r["step"]) == found.best_step), {})
            row |= {"best dev loss": round(min(r["dev_loss"] for r in evaluated), 4), "kept: step": found.best_step}
            if kept:
                row["kept: dev loss"] = round(kept["dev_loss"], 4)
            if "dev_mrr" in kept:
                row |= {"best dev MRR@10": round(max(r["dev_mrr"] for r in evaluated), 4),
                        "kept: dev MRR@10": round(kept["dev_mrr"], 4)}
        if trained_to:
            row["converged"] = f"{'yes' if found.converged else 'no'}: {found.reason}"
        rows[name] = row
    return pd.DataFrame(rows).T


def cost_table_readable(costs: pd.DataFrame) -> pd.DataFrame:
    """:func:`xqglib.study.cost.run_costs` for reading: GFLOP, seconds and shares rounded."""
    table = costs.set_index(["stage", "what"]).copy()
    table.insert(0, "GFLOP", (1000 * table.pop("TFLOP")).round(1))
    for column in ("wall s", "roof s"):
        table[column] = table[column].round(0).astype("Int64")
    table["share of roof (%)"] = table["share of roof (%)"].astype(float).round(0).astype("Int64")
    return table


def timings_table(timings: Sequence[Timing]) -> pd.DataFrame:
    """Stage parts, one row each, with a total of the work done: where a rerun reused a trained
    model, a generated file or a reading, the time that work took counts instead of the reuse's."""
    rows = {t.label: {"seconds": t.seconds, "work": t.work, "work seconds": t.work_seconds,
                      "reused": "yes" if t.reused else "", "peak_rss_gib": t.peak_rss_gib, **t.details}
            for t in timings}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.loc["total", "seconds"] = sum(t.counted_seconds for t in timings)
    return df


def readable_timings(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`timings_table` for a reader: named columns, whole seconds, counts as integers and
    blanks (not NaN) where a detail does not apply to a stage."""
    names = {"seconds": "wall time (s)", "work": "work", "work seconds": "work time (s)", "reused": "reused",
             "peak_rss_gib": "peak memory (GiB)"}
    out = pd.DataFrame(index=table.index)
    for column in list(names) + [c for c in table.columns if c not in names]:
        if column not in table:
            continue
        values = table[column]
        if column == "peak_rss_gib":
            shown = values.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        elif column in ("seconds", "work seconds"):
            shown = values.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
        else:
            shown = values.map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v))
                               else f"{v:,.0f}" if isinstance(v, (int, float)) and float(v).is_integer() else str(v))
        out[names.get(column, column)] = shown
    out.index.name = "stage"
    return out


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
    from xqglib.data.sources import KNOWN_FILES, files_used

    return pd.DataFrame([{"file": rel, "SHA-256 (checked at load)": KNOWN_FILES[rel][1][:16] + "…",
                          "published at": KNOWN_FILES[rel][0]} for rel in files_used(cfg)]).set_index("file")


def model_provenance(cfg: Profile) -> pd.DataFrame:
    """Every model of the profile: its role, where it comes from, and its weights' SHA-256."""
    from xqglib.models.builds import BUILDERS, model_source
    from xqglib.models.registry import resolve

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
    where the tests of :func:`xqglib.study.analysis.rq2_significance` (per language, Bonferroni, and
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
    """:func:`xqglib.study.analysis.rq2_significance` for reading: differences in points with their
    bootstrap interval, p, the difference the test detects, and the languages won, lost and
    significant."""
    out = pd.DataFrame({
        "comparison": significance["comparison"], "A": significance["A"], "B": significance["B"],
        "measure": significance["measure"], "questions": significance["questions"],
        "B - A (points)": (100 * significance["diff"]).map(points),
        "95% interval": [f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" for lo, hi in zip(significance["ci_low"], significance["ci_high"])],
        "p t-test": significance["p_ttest"].map(p_value),
        "detectable at 80% power (points)": (100 * significance["detectable"]).map(magnitude),
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
