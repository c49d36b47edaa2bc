"""Evaluation: every condition of a run -> per-question outcomes in one tidy results table.

One row per (benchmark, condition, language, query id, measure) with its value, written as
``eval/results.parquet``. The measures, per question:

- ``R@2kt``, ``R@5kt``: 1 if an answer string occurs in the first 2,000 / 5,000 word tokens of the
  ranked passages' texts (the official XOR-Retrieve semantics, :mod:`xqglib.evaluation.metrics`); questions the
  official scorer does not count (yes/no answers) have no row;
- ``R@2kt (fallback tokens)``, ``R@5kt (fallback tokens)``: the same with the fallback tokenisation,
  for the Table 1 systems (where NLTK's exact tokeniser is installed, to measure what it changes);
- the standard measures of ir-measures (``R@k``, ``RR@10``, ``nDCG@10``) against the qrels;
- ``gold rank``: the gold passage's rank (search depth + 1 when it was not retrieved).

Outcomes are computed once per run and condition; :mod:`xqglib.study.analysis` aggregates them.
Table 1 systems are scored from the TREC runs stage 5 wrote; the sweeps' conditions are searched
here from the same embeddings, as stage 5 searches (:class:`xqglib.method.search.RetrieverSearch`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir, safe_name
from xqglib.core.formats import (
    Run,
    ranked_docids,
    read_json,
    read_jsonl,
    read_qrels,
    read_trec_run,
    write_json,
    write_jsonl,
)
from xqglib.evaluation.metrics import (
    STANDARD_MEASURES,
    Tokenizer,
    exact_tokenizer_available,
    fallback_word_tokenize,
    standard_measures,
    xor_recall_at_kt,
    xor_word_tokenize,
)
from xqglib.method.search import RetrieverSearch
from xqglib.study.experiments import Condition, all_conditions, main_conditions, seed_system, xqg

#: Columns of the results table.
COLUMNS = ["benchmark", "condition", "retriever", "augmentation", "alpha", "n", "language", "query_id",
           "measure", "value"]

XOR_MEASURES = ("R@2kt", "R@5kt")
FALLBACK = " (fallback tokens)"
GOLD_RANK = "gold rank"


class Evaluator:
    """Scores runs of one run directory's test queries (each passage tokenised once, however many
    conditions rank it)."""

    def __init__(self, rd: RunDir, depth: int, tokenize: Tokenizer = xor_word_tokenize) -> None:
        self.queries = read_jsonl(rd.require(rd.test_queries, "data"))
        self.lang = {q["query_id"]: q["lang"] for q in self.queries}
        self.answers = read_json(rd.answers)
        self.qrels = read_qrels(rd.qrels)
        self.texts = {p["docid"]: p["text"] for p in read_jsonl(rd.corpus)}  # text only, no title
        self.depth = depth
        self.tokenize = functools.lru_cache(maxsize=None)(tokenize)
        self.fallback = functools.lru_cache(maxsize=None)(fallback_word_tokenize)

    def outcomes(self, run: Run, *, with_fallback: bool = False) -> list[tuple[str, str, float]]:
        """``(query_id, measure, value)`` for every measure and question."""
        rows: list[tuple[str, str, float]] = []
        tokenizers: list[tuple[str, Callable[[str], list[str]]]] = [("", self.tokenize)]
        if with_fallback and exact_tokenizer_available():
            tokenizers.append((FALLBACK, self.fallback))
        for suffix, tokenize in tokenizers:
            for n in (2, 5):
                outcome = xor_recall_at_kt(run, self.texts, self.answers, self.lang, n, tokenize)
                rows += [(q, f"R@{n}kt{suffix}", float(hit)) for q, hit in outcome.hits.items() if hit is not None]
        for measure, values in standard_measures(run, self.qrels, STANDARD_MEASURES).items():
            rows += [(q, measure, v) for q, v in values.items()]
        for qid, rel in self.qrels.items():
            ranked = ranked_docids(run.get(qid, {}))
            gold = next(iter(rel))
            rows.append((qid, GOLD_RANK, float(ranked.index(gold) + 1 if gold in ranked else self.depth + 1)))
        return rows

    def frame(self, condition: Condition, run: Run, *, with_fallback: bool = False) -> pd.DataFrame:
        """The condition's rows of the results table."""
        df = pd.DataFrame(self.outcomes(run, with_fallback=with_fallback), columns=["query_id", "measure", "value"])
        return df.assign(benchmark=condition.benchmark, condition=condition.name, retriever=condition.retriever,
                         augmentation=condition.augmentation, alpha=condition.alpha, n=condition.n,
                         language=df["query_id"].map(self.lang))[COLUMNS]


def write_official_predictions(rd: RunDir, evaluator: Evaluator, system: str, run: Run) -> None:
    """The run in the official XOR-Retrieve prediction format, ``[{"id", "lang", "ctxs": [text]}]``
    (passage texts in rank order), beside the answers as the official ``--data_file`` jsonl, so
    that ``eval_xor_retrieve.py --data_file answers.jsonl --pred_file <system>.json`` scores it."""
    predictions = [{"id": qid, "lang": evaluator.lang[qid],
                    "ctxs": [evaluator.texts[d] for d in ranked_docids(docs)]} for qid, docs in run.items()]
    write_json(rd.path("eval", "xor_predictions", f"{safe_name(system)}.json"), predictions)
    answers = rd.path("eval", "xor_predictions", "answers.jsonl")
    if not answers.exists():
        write_jsonl(answers, ({"id": q["query_id"], "lang": q["lang"], "answers": evaluator.answers[q["query_id"]]}
                              for q in evaluator.queries))


def evaluate(cfg: Profile, rd: RunDir, conditions: list[Condition] | None = None) -> pd.DataFrame:
    """Score every condition (default: all of the profile's experiments) and write the results
    table (``eval/results.parquet``) and the conditions (``eval/conditions.json``)."""
    conditions = conditions if conditions is not None else all_conditions(cfg)
    evaluator = Evaluator(rd, cfg.evaluation.search_depth)
    main = {c.key for c in main_conditions(cfg)}
    corpus_ids = list(evaluator.texts)  # corpus order
    query_ids = [q["query_id"] for q in evaluator.queries]
    searchers: dict[str, RetrieverSearch] = {}
    frames = []
    for condition in conditions:
        if condition.key in main:
            run = read_trec_run(rd.require(rd.trec_run(condition.name), "encode-search"))
            write_official_predictions(rd, evaluator, condition.name, run)
        else:  # the sweeps: searched here, as stage 5 searches Table 1 (shard by shard after a sharded encoding)
            if condition.retriever not in searchers:
                searchers[condition.retriever] = RetrieverSearch(cfg, rd, condition.retriever, corpus_ids, query_ids)
            run = searchers[condition.retriever].run(condition)
        frames.append(evaluator.frame(condition, run, with_fallback=condition.key in main))
    results = pd.concat(frames, ignore_index=True)
    results["alpha"] = results["alpha"].astype("float64")
    results["n"] = results["n"].astype("Int64")
    write_results(rd, results)
    write_json(rd.eval_file("conditions.json"), [c.to_dict() for c in conditions])
    return results


def with_seed_queries(rd: RunDir, name: str, emb: dict[str, Any], seed: int,
                      stage: str = "encode-search") -> dict[str, Any]:
    """A retriever's loaded encodings with sampling seed ``seed``'s generated queries in place of
    the run seed's (the seed sweep's encodings, ``embeddings/<retriever>/generated.seed-<s>.npy``,
    written by ``stage``: 5, or 8 for the RQ2 arms)."""
    what = f"generated.seed-{seed}"
    return {**emb, "generated": np.load(rd.require(rd.embeddings(name, what), stage)),
            "generated_meta": read_json(rd.embeddings_meta(name, what))}


def evaluate_seed_sweep(cfg: Profile, rd: RunDir) -> pd.DataFrame:
    """The Table 1 xQG systems with the queries of every further sampling seed (stage 5's runs
    ``trec/<system>.seed-<s>.trec``): the results table's rows with a ``seed`` column, written as
    ``eval/seed_results.parquet`` (no rows without ``generation.seeds``)."""
    evaluator = Evaluator(rd, cfg.evaluation.search_depth)
    frames = [pd.DataFrame(columns=[*COLUMNS, "seed"])]
    for seed in cfg.generation.seeds:
        for spec in cfg.retrievers:
            condition = xqg(cfg, spec.name, cfg.augmentation.alpha)
            run = read_trec_run(rd.require(rd.trec_run(seed_system(condition.name, seed)), "encode-search"))
            frames.append(evaluator.frame(condition, run).assign(seed=seed))
    results = pd.concat(frames, ignore_index=True)
    results = results.astype({"alpha": "float64", "n": "Int64", "value": "float64", "seed": "int64"})
    write_results(rd, results, "seed_results.parquet")
    return results


def write_results(rd: RunDir, results: pd.DataFrame, name: str = "results.parquet") -> None:
    from xqglib.core.formats import atomic_open

    with atomic_open(rd.eval_file(name), "wb", encoding=None) as handle:
        results.to_parquet(handle, index=False)


def load_results(rd: RunDir) -> pd.DataFrame:
    """The results table of a run (stage 6 writes it)."""
    return pd.read_parquet(rd.require(rd.eval_file("results.parquet"), "evaluate"))


def generated_query_quality(cfg: Profile, rd: RunDir) -> pd.DataFrame:
    """Per generation language, the primary generator's queries: the share in the requested
    language and the round trip through the untrained retriever (:mod:`xqglib.evaluation.query_quality`);
    written to ``eval/query_quality.csv``. Without an untrained retriever in the profile the
    round-trip column is left out."""
    from xqglib.core.formats import atomic_open
    from xqglib.evaluation import query_quality as Q

    rows = read_jsonl(rd.require(rd.generated(cfg.primary_generator), "generate"))
    table = Q.language_shares(rows)
    untrained = [r.name for r in cfg.retriever.retrievers if r.training == "none"]
    if untrained:
        corpus_ids = [p["docid"] for p in read_jsonl(rd.require(rd.corpus, "data"))]
        emb = rd.load_embeddings(untrained[0], corpus_ids)
        trip = Q.round_trip(emb["generated_meta"], emb["generated"], corpus_ids, emb["passages"])
        table = table.merge(trip.drop(columns="queries"), on="language", how="left")
    with atomic_open(rd.eval_file("query_quality.csv"), "w") as handle:
        table.to_csv(handle, index=False)
    return table
