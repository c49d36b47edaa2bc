"""Every number and verdict the results page's prose states, computed from the run.

The results page (``book/results.md``) writes no number by hand: each figure in its prose, and
each claim that depends on one ("beats", "none is significant"), is a value of :func:`findings`,
glued into the page by the evaluation notebook. A rerun with other settings, another machine or
a better generator rewrites the prose with the tables. The paper's own numbers come from the
constants of :mod:`xqglib.study.tables`.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.languages import LANGUAGE_NAMES
from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.formats import read_json, read_jsonl
from xqglib.evaluation.metrics import xor_word_tokenize
from xqglib.evaluation.significance import ALPHA
from xqglib.method.convergence import Convergence, verdict_of_log
from xqglib.method.generator_training import PLATEAU_GAIN, PLATEAU_WINDOW, at_plateau, plateau_comparison
from xqglib.study import analysis as A
from xqglib.study import experiments as E
from xqglib.study import rq3 as A3
from xqglib.study.reference import PAPER_AVERAGES_R2KT, PAPER_COUNTERPART


def _f(value: float, places: int = 2) -> str:
    return f"{value:.{places}f}"


def _signed(value: float, places: int = 2) -> str:
    return f"{value:+.{places}f}"


def _range(values: list[float], places: int = 1, signed: bool = False) -> str:
    fmt = _signed if signed else _f
    lo, hi = min(values), max(values)
    return fmt(lo, places) if round(lo, places) == round(hi, places) else f"{fmt(lo, places)} to {fmt(hi, places)}"


def p_phrase(p: float) -> str:
    """A p-value as prose puts it after "p": ``< 0.001`` or ``= 0.123``."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def listing(items: list[str]) -> str:
    """Items as prose lists them: ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def findings(cfg: Profile, rd: RunDir, results: pd.DataFrame) -> dict[str, str]:
    """``{name: text}`` for every value the results page's prose quotes."""
    out: dict[str, str] = {"profile": cfg.name, "seed": str(cfg.seed), "encoder": cfg.retriever.encoder,
                           "generator": cfg.primary_generator}
    means = A.summary(results, ["R@2kt", "R@5kt", "RR@10"])
    table1 = E.experiment(cfg, "table1")
    plain = {c.retriever: c.name for c in table1 if c.augmentation == "none"}
    with_xqg = {c.retriever: c.name for c in table1 if c.augmentation == "xqg"}
    training = {r.name: r.training for r in cfg.retrievers}

    # --- the generator and the data -------------------------------------------------------------
    log = read_json(rd.generator_log(cfg.primary_generator))
    dev = [(int(r["step"]), r["dev_loss"]) for r in log if "dev_loss" in r]
    pairs = len(read_jsonl(rd.generator_pairs("train")))
    cap = cfg.generator.max_train_pairs
    g = cfg.generator
    criterion = Convergence.of(g) if g.converge else None
    steps_per_pass = -(-(pairs if cap is None else min(pairs, cap)) // g.batch_size)
    most = criterion.max_steps(steps_per_pass) if criterion else g.steps
    out["gen_steps"] = f"{len(log):,}" + (f" of at most {most:,}" if len(log) < most else "")
    out["gen_train_pairs"] = f"{pairs if cap is None else min(pairs, cap):,}"
    out["gen_dev_losses"] = (listing([_f(loss) for _, loss in dev]) + " at steps "
                             + listing([str(step) for step, _ in dev]))
    gain = PLATEAU_GAIN if cfg.generator.plateau is None else cfg.generator.plateau
    comparison = plateau_comparison(log)
    fall = "" if comparison is None else (
        f"it fell by {100 * (comparison[1] - comparison[3]) / comparison[1]:.1f}% from step {comparison[0]} "
        f"to step {comparison[2]}")
    if criterion is not None:
        found = verdict_of_log(criterion, log, steps_per_pass)
        out["gen_state"] = (f"the convergence criterion {'holds' if found.converged else 'does not hold'}: "
                            f"{found.reason}; the checkpoint kept is the one of step {found.best_step}")
        out["gen_discussion"] = (f"It has seen {found.passes:.2f} passes over its training pairs; the query-quality "
                                 "figures above say how often its questions miss their language or their passage")
        out["gen_next"] = ("the generator itself: a larger one, or more training pairs" if found.converged else
                           "the generator's budget: --set generator.max_passes=N with a larger N")
    elif at_plateau(log, gain):
        out["gen_state"] = (f"{fall}, under the {gain:.0%} the study's plateau rule allows over at least the "
                            f"last {PLATEAU_WINDOW:.0%} of the steps, so training stopped there. Still falling, "
                            "slowly: the rule's plateau means that training a quarter longer would gain little, "
                            "not that more training could not help")
        seen = len(log) * cfg.generator.batch_size
        out["gen_discussion"] = (
            f"Its dev loss falls only slowly by the end (above), but it has seen {seen:,} pairs, "
            f"{100 * seen / max(pairs, 1):.0f}% of one pass over its training pairs: a 270M-parameter "
            "decoder this lightly fine-tuned is not the paper's fully trained mT5-base, and the "
            "query-quality figures above say how often its questions miss their language or their passage")
        out["gen_next"] = ("the generator: training it for all its steps (--set generator.plateau=null, "
                           "with --run-dir to keep this run), a larger generator, or more training pairs")
    else:
        out["gen_state"] = ((f"{fall}, " if fall else "too few evaluations to tell a plateau; ")
                            + f"still falling by the study's rule ({gain:.0%} over the last "
                            f"{PLATEAU_WINDOW:.0%} of the steps): the generator is undertrained")
        out["gen_discussion"] = (
            "An undertrained generator writes noisy questions (its dev loss is above, still falling); "
            "fusing their embeddings pulls passages toward a generic question region rather than "
            "toward their own questions")
        out["gen_next"] = ("the generator's training length: --set generator.steps=N with a larger N "
                           "(and --run-dir, to keep this run)")
    quality = rd.eval_file("query_quality.csv")
    if quality.exists():
        q = pd.read_csv(quality, keep_default_na=False)
        worst = q.loc[q["in requested language"].idxmin()]
        out["lang_id_range"] = _range([100 * v for v in q["in requested language"]], 0)
        other = worst["most common other"] or "–"
        out["lang_id_worst"] = (f"{worst['language']} ({100 * worst['in requested language']:.0f}%; "
                                f"most often taken for {other}"
                                + (f", {LANGUAGE_NAMES[other]}" if other in LANGUAGE_NAMES else "") + ")")
        languages_short = q[q["in requested language"] < 0.9]["language"].tolist()
        out["lang_id_short"] = (f"below 90% for {listing(languages_short)}" if languages_short
                                else "at least 90% for every language")
        if "own passage first" in q:
            out["round_trip_range"] = _range([100 * v for v in q["own passage first"]], 0)
        else:
            out["round_trip_range"] = "not measured (no untrained retriever in this profile)"
    else:
        out.update({k: "not measured" for k in ("lang_id_range", "lang_id_worst", "lang_id_short", "round_trip_range")})
    corpus = read_jsonl(rd.corpus)
    out["corpus_size"] = f"{len(corpus):,}"
    out["query_languages"] = str(len(cfg.data.query_languages))
    out["gen_languages"] = ", ".join(cfg.generation.languages)
    out["gen_language_count"] = str(len(cfg.generation.languages))
    out["gen_n"] = str(cfg.generation.n_per_language)
    out["queries_per_passage"] = str(len(cfg.generation.languages) * cfg.generation.n_per_language)

    # --- absolute levels --------------------------------------------------------------------------
    ours = [means.loc[name, "R@2kt"] for name in list(plain.values()) + list(with_xqg.values())]
    out["ours_r2kt_range"] = _range(ours, 0)
    out["paper_r2kt_range"] = _range(list(PAPER_AVERAGES_R2KT.values()), 1)
    tokens = statistics.mean(len(xor_word_tokenize(p["text"])) for p in corpus)
    out["mean_passage_tokens"] = f"{tokens:.0f}"
    out["passages_in_2k"] = f"{2000 / tokens:.0f}"
    out["share_in_2k"] = f"{100 * 2000 / tokens / len(corpus):.1f}"

    # --- fine-tuning the retriever ------------------------------------------------------------------
    base = next((r for r, t in training.items() if t == "none"), None)
    trained = [r for r, t in training.items() if t != "none"]
    if base and trained:
        pairs = A.comparisons(results, [(plain[base], plain[r]) for r in trained], ["R@2kt"], cfg.seed)
        overall = pairs[pairs["language"] == "all"]
        diffs = [100 * d for d in overall["diff"]]
        worst_p = max(overall["p_ttest"])
        if worst_p < ALPHA:
            out["train_verb"] = "beat" if min(diffs) > 0 else "fall behind" if max(diffs) < 0 else "differ from"
            out["train_significance"] = f"every difference significant: paired t-test p {p_phrase(worst_p)} or lower"
        else:
            out["train_verb"] = ("score above" if min(diffs) > 0 else "score below" if max(diffs) < 0
                                 else "differ from")
            out["train_significance"] = f"not every difference is significant: the largest paired t-test p is {worst_p:.3f}"
        out["train_gain_range"] = _range([abs(d) for d in diffs], 1)
        langs = pairs[pairs["language"] != "all"]
        counts = [int(g["significant"].sum()) for _, g in langs.groupby("B")]
        out["train_langs_significant"] = _range([float(c) for c in counts], 0)
    else:
        out.update({"train_verb": "are not compared with", "train_gain_range": "–", "train_significance": "–",
                    "train_langs_significant": "–"})
    english = next((r for r, t in training.items() if t == "english"), None)
    xdr = next((r for r, t in training.items() if t == "crosslingual"), None)
    paper = PAPER_AVERAGES_R2KT
    out["paper_xdr_lead"] = _f(paper[PAPER_COUNTERPART["crosslingual"][0]] - paper[PAPER_COUNTERPART["english"][0]], 1)
    if not (english and xdr):
        out.update({k: "–" for k in ("xdr_minus_english_r2kt", "xdr_vs_english_p_r2kt", "xdr_vs_english_langs",
                                     "xdr_minus_english_r5kt", "xdr_vs_english_p_r5kt", "english_r2kt", "xdr_r2kt")})
        out["xdr_vs_english_verdict"] = ("this profile does not train both an English-only and a cross-lingual "
                                         "retriever, so they are not compared")
    else:
        for measure in ("R@2kt", "R@5kt"):
            test = A.compare(results, plain[english], plain[xdr], measure, cfg.seed)
            key = measure[2]  # "2" or "5"
            out[f"xdr_minus_english_r{key}kt"] = _signed(100 * test.loc["all", "diff"])
            out[f"xdr_vs_english_p_r{key}kt"] = p_phrase(test.loc["all", "p_ttest"])
            if measure == "R@2kt":
                out["xdr_vs_english_langs"] = str(int(test.drop(index="all")["significant"].sum()))
        lead = means.loc[plain[xdr], "R@2kt"] - means.loc[plain[english], "R@2kt"]
        out["xdr_vs_english_verdict"] = (
            "the cross-lingually trained retriever leads the English-only one, as in the paper" if lead > 0
            else "the English-only retriever leads the cross-lingually trained one, the reverse of the paper")
        out["english_r2kt"] = _f(means.loc[plain[english], "R@2kt"])
        out["xdr_r2kt"] = _f(means.loc[plain[xdr], "R@2kt"])

    # --- xQG ----------------------------------------------------------------------------------------
    sig = A.xqg_significance(cfg, results)
    overall = sig[sig["language"] == "all"]
    out["alpha"] = f"{cfg.augmentation.alpha:g}"
    out["xqg_diff_range"] = _range([100 * d for d in overall["diff"]], 2, signed=True)
    significant = sig[sig["significant"]]
    if significant.empty:
        out["xqg_significance_verdict"] = ("None of these differences is significant, overall or in any "
                                           "language after Bonferroni")
    else:
        shown = [f"{row.B} {row.measure} ({row.language}, {_signed(100 * row.diff)})" for row in significant.itertuples()]
        out["xqg_significance_verdict"] = (f"{len(shown)} of the {len(sig)} comparisons are significant: "
                                           + listing(shown))
    smallest = overall.loc[overall["p_ttest"].idxmin()]
    out["xqg_min_p"] = f"{smallest['p_ttest']:.3f}"
    out["xqg_min_p_what"] = f"{smallest['B']} {smallest['measure']} ({_signed(100 * smallest['diff'])} points)"
    out.update(seed_findings(cfg, rd, results))
    paper = PAPER_AVERAGES_R2KT
    gain = {k: paper[v[1]] - paper[v[0]] for k, v in PAPER_COUNTERPART.items()}
    out["paper_gain_zero_shot"] = _signed(gain["english"], 1)
    out["paper_gain_xdr"] = _signed(gain["crosslingual"], 1)
    out["paper_gain_xlmr"] = _signed(paper["XLM-R xDR + xQG"] - paper["XLM-R xDR"], 1)
    scaled = E.experiment(cfg, "scaled_alpha")
    scaled_diffs = [means.loc[scaled[i + 2].name, m] - means.loc[scaled[i].name, m]  # points already
                    for i in range(0, len(scaled), 3) for m in ("R@2kt", "R@5kt")]
    out["scaled_alpha"] = f"{cfg.scaled_alpha:.3g}"
    out["scaled_diff_range"] = _range(scaled_diffs, 2, signed=True)

    # --- the sweeps ---------------------------------------------------------------------------------
    sweep_retriever = cfg.sweep_retriever
    out["sweep_retriever"] = sweep_retriever
    nsweep = A.n_sweep(cfg, results)
    out["n_sweep_r2kt_range"] = _range(list(nsweep["R@2kt"]), 2)
    out["n_max"] = str(cfg.generation.n_per_language)
    plain_means = means.loc[plain[sweep_retriever]]
    notes = []
    for measure in ("R@2kt", "R@5kt"):
        hits = [(n, nsweep.loc[n, measure] - plain_means[measure]) for n in nsweep.index
                if nsweep.loc[n, f"{measure} p"] < ALPHA]
        if hits:
            kind = "gains" if all(d > 0 for _, d in hits) else "losses" if all(d < 0 for _, d in hits) else "changes"
            notes.append(f"significant {kind} at {measure} for n = {listing([str(n) for n, _ in hits])} "
                         f"({_range([d for _, d in hits], 2, signed=True)} points)")
    out["n_sweep_significance"] = "; ".join(notes) if notes else "no n differs significantly from the plain retriever"
    alphas = A.alpha_sweep(cfg, results)
    above = alphas[alphas.index > cfg.augmentation.alpha]
    falling = above["R@2kt"].is_monotonic_decreasing and len(above) > 1
    out["alpha_sweep_shape"] = (f"falls monotonically beyond {cfg.augmentation.alpha:g}" if falling
                                else f"is not monotonic beyond {cfg.augmentation.alpha:g}")
    out["alpha_sweep_points"] = listing([f"{_f(v)} at {a:g}" for a, v in above["R@2kt"].items()])
    out["alpha_sweep_mrr"] = f"{_f(alphas['RR@10'].iloc[0], 3)} to {_f(alphas['RR@10'].iloc[-1], 3)}"
    ranks = A.gold_rank_changes(cfg, results, sweep_retriever)
    down = ranks[ranks["worsened %"] > ranks["improved %"]]
    out["rank_down_languages"] = f"{len(down)} of {len(ranks)}"
    worst = ranks.loc[(ranks["worsened %"] - ranks["improved %"]).idxmax()]
    out["rank_worst_language"] = str(worst.name)
    out["rank_worst_down"] = _f(worst["worsened %"], 1)
    out["rank_worst_up"] = _f(worst["improved %"], 1)
    out["gold_mean_rank_range"] = _range(list(ranks["mean rank"]), 0)
    per_lang = A.per_language(results, "R@2kt")
    change = per_lang.loc[with_xqg[sweep_retriever]] - per_lang.loc[plain[sweep_retriever]]
    generated = [l for l in change.index if l in cfg.generation.languages]
    others = [l for l in change.index if l not in cfg.generation.languages]
    out["change_generated_langs"] = _signed(change[generated].mean()) if generated else "n/a"
    out["change_other_langs"] = _signed(change[others].mean()) if others else "n/a"

    # --- tokenisation -------------------------------------------------------------------------------
    tok = A.tokenizer_difference(cfg, results)
    if tok.empty:
        out.update({"tok_changed_range": "–", "tok_shift_range": "–",
                    "tok_all_gains": "not measured: the exact tokeniser is not installed"})
    else:
        out["tok_changed_range"] = _range([float(v) for v in tok["questions changed"]], 0)
        out["tok_shift_range"] = _range(list(tok["fallback"] - tok["exact"]), 1, signed=True)
        changed = int(tok["questions changed"].sum())
        gained = int(tok["gained by fallback"].sum())
        out["tok_all_gains"] = ("no question changes" if changed == 0 else "every one of them a gain" if gained == changed
                                else "every one of them a loss" if gained == 0 else "some gains, some losses")
    out["questions"] = f"{results['query_id'].nunique():,}"
    return out


def seed_findings(cfg: Profile, rd: RunDir, results: pd.DataFrame) -> dict[str, str]:
    """The seed sweep in words: each retriever's R@2kt gain from xQG as its mean and 95% interval
    over the sampling seeds, and what that interval and the first seed's test can rule out."""
    seed_results = pd.read_parquet(rd.eval_file("seed_results.parquet")) if rd.eval_file("seed_results.parquet").exists() \
        else pd.DataFrame(columns=["seed", "condition"])
    gains = A.seed_gains(cfg, results, seed_results, ["R@2kt"])
    seeds = int(gains["seeds"].max())
    if seeds < 2:
        return {"seed_count": "1", "seed_gains": "one sampling seed only (generation.seeds is empty), so no interval "
                                                  "over seeds is given",
                "seed_verdict": "the seed sweep was not run"}
    listed = [f"{row['retriever']} {_signed(row['mean gain'])} [{_signed(row['95% low'])}, {_signed(row['95% high'])}]"
              for _, row in gains.iterrows()]
    spans_zero = [row["retriever"] for _, row in gains.iterrows() if row["95% low"] <= 0 <= row["95% high"]]
    verdict = (f"the interval holds zero for {listing(spans_zero)}: over these seeds xQG's gain cannot be told "
               f"from none there" if spans_zero else "no interval holds zero: the gain's sign holds over the seeds")
    detect = _range(list(gains[f"detectable (seed {cfg.seed})"]), 1)
    return {"seed_count": str(seeds), "seed_gains": listing(listed),
            "seed_verdict": f"{verdict}; the first seed's paired t-test detects (80% power) differences of {detect} points"}


def glue_all(facts: dict[str, Any]) -> None:
    """Glue every finding (``{glue:text}`name``` in the book's pages)."""
    from myst_nb import glue

    for name, value in facts.items():
        glue(name, value, display=False)


# --------------------------------------------------------------------------------------------
# The second research question's chapter
# --------------------------------------------------------------------------------------------

def _listed_diffs(sig: pd.DataFrame, label: Any, scale: float, places: int) -> str:
    """"<label B> +1.23 (p = 0.045)" for every row of a significance frame, as one listing."""
    return listing([f"{label(r['B'])} {_signed(scale * r['diff'], places)} (p {p_phrase(r['p_ttest'])})"
                     for _, r in sig.iterrows()])


def _correlation(gains: pd.DataFrame) -> str:
    x, y = gains.iloc[:, 0], gains.iloc[:, 1]
    if len(gains) < 3 or x.std() == 0 or y.std() == 0:
        return "undefined (too few languages or no variation)"
    return f"r = {x.corr(y):.2f} over {len(gains)} languages"


def rq2_findings(cfg: Profile, results: pd.DataFrame, probe: pd.DataFrame, sig_b1: pd.DataFrame,
                 sig_b2: pd.DataFrame) -> dict[str, str]:
    """``{name: text}`` for every value the RQ2 chapter's prose quotes."""
    k = cfg.xquadr.k
    ap = f"AP@{k}"
    label = {s.name: s.label or s.name for s in cfg.rq2_retrievers}
    plain_names = [s.name for s in cfg.rq2_retrievers]
    b1 = cfg.data.benchmark
    out: dict[str, str] = {"profile": cfg.name, "seed": str(cfg.seed), "encoder": cfg.retriever.encoder,
                           "generator": cfg.primary_generator, "k": str(k), "alpha": f"{cfg.augmentation.alpha:g}",
                           "xquadr_languages": str(len(cfg.xquadr.languages))}
    b2 = A.on(results, E.B2)
    out["b2_test_questions"] = f"{b2.loc[b2['measure'] == ap, 'query_id'].nunique():,}"
    full = A.on(results, E.B2_FULL)
    out["has_full_pool"] = "yes" if len(full) else "no"
    out["full_questions"] = "0 (xquadr.full_pool is off in this profile)"
    for view in ("pooled", "mono", "cross"):
        out[f"full_{view}"] = "not scored"
    if len(full):
        means = full.groupby("measure")["value"].mean()
        out["full_questions"] = f"{full.loc[full['measure'] == ap, 'query_id'].nunique():,}"
        for view, suffix in (("pooled", ""), ("mono", " mono"), ("cross", " cross")):
            out[f"full_{view}"] = _f(means[ap + suffix], 3)
    b1_means = A.average(A.on(results, b1), "R@2kt").reindex(plain_names)
    b2_means = A.average(b2, ap).reindex(plain_names)
    out["b1_best"], out["b1_best_score"] = label[b1_means.idxmax()], _f(b1_means.max())
    out["b2_best"], out["b2_best_score"] = label[b2_means.idxmax()], _f(b2_means.max(), 3)
    out["b1_scores"] = listing([f"{label[n]} {_f(v)}" for n, v in b1_means.items()])
    out["b2_scores"] = listing([f"{label[n]} {_f(v, 3)}" for n, v in b2_means.items()])
    # B1 differences in points of R@2kt (hits are 0/1), XQuAD-R differences in mAP
    for name, sig, measure, scale, places in (("b1", sig_b1, "R@2kt", 100, 2), ("b2", sig_b2, ap, 1, 3)):
        rows = sig[sig["measure"] == measure]
        arms = rows[rows["comparison"] == "contrastive vs xDR"]
        out[f"{name}_arms_vs_xdr"] = _listed_diffs(arms, lambda b: label[b], scale, places) if len(arms) else "no arm"
        better = arms[(arms["diff"] > 0) & arms["significant"]]
        worse = arms[(arms["diff"] < 0) & arms["significant"]]
        verdicts = []
        if not better.empty:
            verdicts.append(f"{listing([label[b] for b in better['B']])} beat{'s' * (len(better) == 1)} the xDR significantly")
        if not worse.empty:
            verdicts.append(f"{listing([label[b] for b in worse['B']])} trail{'s' * (len(worse) == 1)} it significantly")
        out[f"{name}_arms_verdict"] = "; ".join(verdicts) or "no contrastive arm differs significantly from the xDR"
        xqg = rows[rows["comparison"] == "xQG"]
        out[f"{name}_xqg_range"] = _range(list(scale * xqg["diff"]), places, signed=True)
        n_sig = int(xqg["significant"].sum())
        out[f"{name}_xqg_verdict"] = (f"significant for none of the {len(xqg)} retrievers" if n_sig == 0 else
                                      f"significant for {n_sig} of the {len(xqg)} retrievers "
                                      f"({listing([label[a] for a in xqg.loc[xqg['significant'], 'A']])})")
    # the answer in one sentence: the best arm's gain over the xDR, and what xQG adds to that arm
    parts = []
    for name, sig, measure, scale, places, unit in (("B1", sig_b1, "R@2kt", 100, 2, "points of R@2kt"),
                                                    ("XQuAD-R", sig_b2, ap, 1, 3, "mAP")):
        rows = sig[sig["measure"] == measure]
        arms = rows[rows["comparison"] == "contrastive vs xDR"]
        if arms.empty:
            continue
        best = arms.loc[arms["diff"].idxmax()]
        on_best = rows[(rows["comparison"] == "xQG") & (rows["A"] == best["B"])].iloc[0]
        parts.append(f"on {name}, the best contrastive arm ({label[best['B']]}) moves the xDR by "
                     f"{_signed(scale * best['diff'], places)} {unit} ({'' if best['significant'] else 'not '}significant), "
                     f"and xQG on top of it by {_signed(scale * on_best['diff'], places)} "
                     f"({'' if on_best['significant'] else 'not '}significant)")
    out["rq2_answer"] = "; ".join(parts) if parts else "no contrastive arm was compared"
    # do xQG and contrastive alignment help the same languages?
    pairs = A.gain_pairs(cfg)
    (reference, _), (_, arm) = pairs
    out["gain_arm"], out["gain_reference"] = label[arm], label[reference]
    for name, bench, measure in (("b1", b1, "R@2kt"), ("b2", E.B2, ap)):
        gains = A.language_gains(results, bench, measure, pairs)
        out[f"{name}_gain_correlation"] = _correlation(gains)
    # the probe
    by = probe.groupby("retriever", sort=False)[["translation retrieved (%)", "similarity gap"]].mean()
    by = by.reindex(plain_names)
    out["probe_summary"] = listing([f"{label[n]} {_f(r['translation retrieved (%)'], 1)}% (gap {_f(r['similarity gap'], 3)})"
                                     for n, r in by.iterrows()])
    out["probe_best"] = label[by["translation retrieved (%)"].idxmax()]
    # fusion hygiene
    sweep = A.fusion_sweep(cfg, results)
    alpha = cfg.augmentation.alpha
    if alpha in sweep.index:
        diffs = [sweep.loc[alpha, (n, "renormalised")] - sweep.loc[alpha, (n, "sum")] for n in plain_names]
        out["renorm_minus_sum"] = _range(diffs, 2, signed=True)
    else:
        out["renorm_minus_sum"] = "not measured (the profile's alpha is not in the sweep)"
    best = []
    for n in plain_names:
        column = sweep[(n, "sum")]
        alpha_best = column.idxmax()
        best.append(f"{label[n]} {alpha_best:g}" + (" (no xQG)" if alpha_best == 0 else ""))
    out["best_alphas"] = listing(best)
    return out


def rq2_seed_findings(cfg: Profile, results: pd.DataFrame, seed_results: pd.DataFrame) -> dict[str, str]:
    """RQ2's seed sweep in words: per benchmark, xQG's gain on each retriever and each arm's gain
    over the xDR with xQG, as mean [95% interval] over the sampling seeds, and what they rule out."""
    label = {s.name: s.label or s.name for s in cfg.rq2_retrievers}
    ap = f"AP@{cfg.xquadr.k}"
    out = {"rq2_seed_count": "1"}
    spans_zero, detect = [], []
    for name, bench, measure, places in (("b1", cfg.data.benchmark, "R@2kt", 2), ("b2", E.B2, ap, 3)):
        gains = A.rq2_seed_gains(cfg, results, seed_results, bench, measure)
        if gains.empty or int(gains["seeds"].max()) < 2:
            out[f"{name}_seed_gains"] = "not measured (one sampling seed only: generation.seeds is empty)"
            continue
        out["rq2_seed_count"] = str(int(gains["seeds"].max()))
        listed = []
        for _, g in gains[gains["comparison"].isin(["xQG", "contrastive vs xDR (+xQG)"])].iterrows():
            what = (f"xQG on {label[g['A']]}" if g["comparison"] == "xQG"
                    else f"{label[g['B'].split('+')[0]]} over the xDR, both with xQG")
            listed.append(f"{what} {_signed(g['mean gain'], places)} [{_signed(g['95% low'], places)}, "
                          f"{_signed(g['95% high'], places)}]")
            if g["95% low"] <= 0 <= g["95% high"]:
                spans_zero.append(f"{what} ({'B1' if name == 'b1' else 'XQuAD-R'})")
        out[f"{name}_seed_gains"] = listing(listed)
        detect.append(f"{_range(list(gains[f'detectable (seed {cfg.seed})']), places)} "
                      f"{'points' if name == 'b1' else 'mAP'} on {'B1' if name == 'b1' else 'XQuAD-R'}")
    if out["rq2_seed_count"] == "1":
        out["rq2_seed_verdict"] = "the seed sweep was not run"
        return out
    verdict = (f"the interval holds zero for {listing(spans_zero)}: over these seeds that gain cannot be told "
               f"from none" if spans_zero else "no interval holds zero: every sign holds over the seeds")
    out["rq2_seed_verdict"] = (f"{verdict}; the first seed's paired t-tests detect (80% power) differences of "
                               f"{listing(detect)}")
    return out


# --------------------------------------------------------------------------------------------
# The third research question's chapter
# --------------------------------------------------------------------------------------------

def rq3_findings(cfg: Profile, retrieval: pd.DataFrame, reading: pd.DataFrame, summary: Mapping[str, Any],
                 tests: pd.DataFrame, reading_tests: pd.DataFrame, expansion: Mapping[str, Any],
                 seed_retrieval: pd.DataFrame | None = None) -> dict[str, str]:
    """Every number of the RQ3 chapter's prose, as text to glue (``seed_retrieval``: the seed
    sweep's rows, :func:`rq3_seed_findings`; none: it was not run)."""

    r = cfg.rq3
    facts: dict[str, str] = {
        "rq3_alpha": _f(summary["alpha"], 3), "rq3_queries": str(summary["queries per passage"]),
        "rq3_cells": str(len(r.query_languages) * len(r.passage_languages)),
        "rq3_query_languages": str(len(r.query_languages)),
        "rq3_passage_languages": listing(list(r.passage_languages)),
        "rq3_test_questions": str(A3.values(retrieval[retrieval["condition"] == "none"], "mrr@10")
                                  .groupby(A3.CELL)["query_id"].nunique().iloc[0]),
        "rq3_reader_questions": str(reading["query_id"].nunique()),
        "rq3_reads": str(summary["reads"]),
        "rq3_paragraphs": str(summary["paragraphs per language"]),
        "rq3_low": listing(sorted(lang for lang in A3.CC100_GIB if A3.resource_group(lang) == "low")),
        "rq3_low_gib": _f(A3.LOW_RESOURCE_GIB, 0),
        "rq3_dual_weights": listing([f"{w} ({name})" for name, w in summary["dual weight"].items()]),
        "rq3_text_tokens": _f(np.mean([e["expanded passage tokens (mean)"] for e in expansion.values()]), 0),
        "rq3_passage_tokens": _f(np.mean([e["passage tokens (mean)"] for e in expansion.values()]), 0),
        "rq3_text_cut": str(max(e["expanded passages cut"] for e in expansion.values())),
    }
    mrr = A3.means(retrieval, "mrr@10", ["retriever", "condition"])
    counts = A3.significance_counts(tests[tests["measure"] == "mrr@10"]).loc["mrr@10"]
    label = {name: cfg.retriever_spec(name).label or name for name in cfg.rq3_retrievers}
    facts["rq3_none_scores"] = listing([f"{_f(mrr[(n, 'none')], 1)} ({label[n]})" for n in cfg.rq3_retrievers])
    reader = retrieval[retrieval["retriever"] == cfg.reader_retriever]
    g = A3.group_table(reader, "mrr@10")
    facts["rq3_reader_label"] = label[cfg.reader_retriever]
    for column, key in (("low-resource passage", "lowp"), ("high-resource passage", "highp"),
                        ("low-resource query", "lowq"), ("high-resource query", "highq"),
                        ("cross-language", "cross"), ("same-language", "same")):
        gap = g.at["xqg", column] - g.at["text", column]
        facts[f"rq3_xqg_minus_text_{key}"] = "no cell (none in this profile)" if np.isnan(gap) else f"{_signed(gap, 2)} points"
    read = reading.pivot_table(index=["condition", "k"], columns="measure", values="value", aggfunc="mean")
    k_min, k_max = min(r.reader_k), max(r.reader_k)
    facts["rq3_top_k"], facts["rq3_top_k_min"] = str(k_max), str(k_min)
    for k, name in ((k_min, "kmin"), (k_max, "kmax")):
        for condition in E.CONDITIONS:
            key = condition.replace("-", "_")
            facts[f"rq3_em_{key}_{name}"] = _f(read.at[(condition, k), "em"], 1)
            facts[f"rq3_f1_{key}_{name}"] = _f(read.at[(condition, k), "f1"], 1)
            facts[f"rq3_hit_{key}_{name}"] = _f(read.at[(condition, k), "answer_in_top_k"], 1)
    facts["rq3_em_gold"] = _f(read.at[(E.GOLD, 1), "em"], 1)
    facts["rq3_f1_gold"] = _f(read.at[(E.GOLD, 1), "f1"], 1)
    ceiling, found = read.at[(E.GOLD, 1), "f1"], read.at[("none", k_max), "answer_in_top_k"]
    facts["rq3_more_passages"] = (
        "lowers F1 here: the answer is the best-scoring span of any passage read, and a reader trained "
        "this briefly scores spans that are not comparable from one passage to another"
        if read.at[("none", k_max), "f1"] < read.at[("none", k_min), "f1"] else "does not lower F1 here")
    facts["rq3_reading_loss"] = _f(100 - ceiling, 1)  # F1 the reader misses even with the gold passage
    facts["rq3_retrieval_loss"] = _f(ceiling * (1 - found / 100), 1)  # what missing gold passages cost at that rate
    f1_counts = A3.significance_counts(reading_tests[reading_tests["measure"] == "f1"]).loc["f1"]
    facts["rq3_f1_sig_cells"] = str(int((f1_counts["better"] + f1_counts["worse"]).sum()))
    facts["rq3_f1_tests"] = str(int(f1_counts["cells"].sum()))
    facts["rq3_best"] = "; ".join(
        f"{label[name]}: {max(E.CONDITIONS, key=lambda c: mrr[(name, c)])} "
        f"({_f(max(mrr[(name, c)] for c in E.CONDITIONS), 1)})" for name in cfg.rq3_retrievers)
    facts["rq3_answer"] = _rq3_answer(cfg, mrr, counts, retrieval)
    facts.update(rq3_seed_findings(cfg, retrieval, seed_retrieval, tests))
    return facts


def rq3_seed_findings(cfg: Profile, retrieval: pd.DataFrame, seed_retrieval: pd.DataFrame | None,
                      tests: pd.DataFrame) -> dict[str, str]:
    """The RQ3 seed sweep in words: each generated-query condition's MRR@10 gain over none (every
    cell) as its mean and 95% interval over the sampling seeds, per retriever, and what the
    intervals and the first seed's cell tests can rule out (:func:`xqglib.study.rq3.seed_gains`)."""
    if seed_retrieval is None:
        seed_retrieval = pd.DataFrame(columns=["seed", "retriever", "condition", "measure", "value"])
    gains = A3.seed_gains(cfg, retrieval, seed_retrieval, tests)
    seeds = int(gains["seeds"].max())
    if seeds < 2:
        return {"rq3_seed_count": "1",
                "rq3_seed_gains": "one sampling seed only (generation.seeds is empty), so no interval over seeds is given",
                "rq3_seed_verdict": "the seed sweep was not run"}
    label = {name: cfg.retriever_spec(name).label or name for name in cfg.rq3_retrievers}
    listed, spans_zero = [], []
    for name, part in gains.groupby("retriever", sort=False):
        listed.append(f"with the {label.get(name, name)}, " + ", ".join(
            f"{r['condition']} {_signed(r['mean gain'])} [{_signed(r['95% low'])}, {_signed(r['95% high'])}]"
            for _, r in part.iterrows()))
        spans_zero += [f"{r['condition']} ({label.get(name, name)})" for _, r in part.iterrows()
                       if r["95% low"] <= 0 <= r["95% high"]]
    verdict = (f"the interval holds zero for {listing(spans_zero)}: over these seeds that gain cannot be told from "
               "none" if spans_zero else "no interval holds zero: every gain's sign holds over the seeds")
    better, worse = gains[f"cells better (seed {cfg.seed})"].sum(), gains[f"cells worse (seed {cfg.seed})"].sum()
    detect = _range(list(gains[f"median detectable (seed {cfg.seed})"].dropna()), 1) \
        if gains[f"median detectable (seed {cfg.seed})"].notna().any() else "undefined (no spread)"
    return {"rq3_seed_count": str(seeds), "rq3_seed_gains": "; ".join(listed),
            "rq3_seed_verdict": f"{verdict}; in the first seed's cell tests these conditions are significantly better "
                                f"than none in {int(better)} and worse in {int(worse)} of {int(gains['cells'].sum())} "
                                f"cells, and a cell's test detects (80% power) differences of {detect} points (median "
                                "over cells)"}


def _rq3_answer(cfg: Profile, mrr: pd.Series, counts: pd.DataFrame, retrieval: pd.DataFrame) -> str:
    """RQ3's answer in words, per retriever: what embedding-level and text-level augmentation do
    to MRR@10 against no augmentation, in how many cells significantly, and which is ahead."""

    parts = []
    for name in cfg.rq3_retrievers:
        label = cfg.retriever_spec(name).label or name

        def moved(condition: str) -> str:
            c = counts.loc[(name, condition)]
            return (f"{_signed(mrr[(name, condition)] - mrr[(name, 'none')], 2)} points "
                    f"(significantly better in {int(c['better'])} and worse in {int(c['worse'])} of {int(c['cells'])} cells)")
        own = A3.values(retrieval[retrieval["retriever"] == name], "mrr@10")
        cells = own.pivot_table(index=A3.CELL, columns="condition", values="value")
        ahead = "xQG" if mrr[(name, "xqg")] > mrr[(name, "text")] else "text-level expansion"
        parts.append(f"with the {label}, xQG moves MRR@10 by {moved('xqg')}, text-level expansion by {moved('text')}, "
                     f"the dual index by {moved('dual')} and the oracle translations by {moved('translations')}; "
                     f"{ahead} is ahead of the other on average, and xQG beats text-level expansion in "
                     f"{int((cells['xqg'] > cells['text']).sum())} of {len(cells)} cells")
    return "; ".join(parts)
