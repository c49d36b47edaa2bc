"""Evaluation of the second research question: every RQ2 condition -> per-question outcomes.

One tidy table, ``eval/rq2_results.parquet``, with the columns of :data:`xqglib.evaluation.rq1.COLUMNS`:

- benchmark ``b1``: B1's measures (:class:`xqglib.evaluation.rq1.Evaluator`) for every retriever of
  the question, without and with xQG, and the fusion sweep (official sum and renormalised);
- benchmark ``b2``: XQuAD-R on the test articles; per question ``AP@k`` (the official full pool of
  those articles), ``AP@k mono`` (pool restricted to the question's language) and ``AP@k cross``
  (the mean over the pools of the other languages); mAP@k is their mean over questions;
- benchmark ``b2-full``: the untrained encoder on the full XQuAD-R pool, as XTREME-R scores it.

On XQuAD-R, xQG attaches to a candidate sentence the generated queries of its paragraph's English
original (B1's generated queries: the same paragraph, so the same queries for every sentence and
language of it). ``eval/rq2_probe.parquet`` holds the language-agnosticism probe
(:func:`xqglib.method.alignment.agnosticism_probe`) of every retriever on the test questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, read_jsonl, write_json
from xqglib.data import xquadr
from xqglib.evaluation.rq1 import COLUMNS, Evaluator
from xqglib.method.alignment import agnosticism_probe
from xqglib.method.augmentation import combine, passage_vectors, sum_by_passage
from xqglib.method.search import search
from xqglib.study import experiments as E
from xqglib.study.experiments import B2, B2_FULL, RQ2_EXPERIMENTS, Condition, all_conditions


def xquadr_vectors(rd: RunDir, retriever: str, bench: xquadr.XQuADR) -> tuple[np.ndarray, np.ndarray]:
    """A retriever's question and candidate vectors (stage 8), rows in ``bench``'s order."""
    out = []
    for what, uids in (("questions", [q["uid"] for q in bench.questions]),
                       ("candidates", [c["uid"] for c in bench.candidates])):
        path = rd.require(rd.xquadr(retriever, what), "encode-rq2")
        stored = {u: i for i, u in enumerate(read_json(rd.require(rd.xquadr_meta(retriever, what), "encode-rq2")))}
        missing = [u for u in uids if u not in stored]
        if missing:
            raise UserError(f"{path} lacks {len(missing)} of the {what} this evaluation needs (first: {missing[0]}): "
                            "rerun from stage 8 (python -m xqglib run --from 8 ...)")
        out.append(np.load(path)[[stored[u] for u in uids]])
    return out[0], out[1]


def candidate_sums(bench: xquadr.XQuADR, paragraphs: dict[str, str], corpus_ids: Sequence[str],
                   emb: dict[str, Any]) -> np.ndarray:
    """Per candidate, the sum of its paragraph's generated-query vectors (xQG's added term)."""
    missing = sorted({c["paragraph"] for c in bench.candidates if c["paragraph"] not in paragraphs})
    if missing:
        raise UserError(f"{len(missing)} XQuAD-R paragraphs have no B1 passage, hence no generated queries "
                        f"(first: {missing[0]}); xQG on XQuAD-R needs every scored paragraph in the corpus")
    sums, _ = sum_by_passage(corpus_ids, emb["generated"], [m["docid"] for m in emb["generated_meta"]])
    index = {d: i for i, d in enumerate(corpus_ids)}
    return sums[[index[paragraphs[c["paragraph"]]] for c in bench.candidates]]


def b2_frame(condition: Condition, bench: xquadr.XQuADR, question_vectors: np.ndarray,
             candidate_vectors: np.ndarray, k: int) -> pd.DataFrame:
    """A condition's rows of the results table on XQuAD-R."""
    views = xquadr.per_question(bench, question_vectors, candidate_vectors, k)
    names = {"pooled": f"AP@{k}", "mono": f"AP@{k} mono", "cross": f"AP@{k} cross"}
    long = views.melt(id_vars=["uid", "lang"], value_vars=list(names), var_name="view").dropna(subset=["value"])
    return pd.DataFrame({"benchmark": condition.benchmark, "condition": condition.name,
                         "retriever": condition.retriever, "augmentation": condition.augmentation,
                         "alpha": condition.alpha, "n": condition.n, "language": long["lang"].to_numpy(),
                         "query_id": long["uid"].to_numpy(), "measure": long["view"].map(names).to_numpy(),
                         "value": long["value"].astype(float).to_numpy()})[COLUMNS]


def benches(cfg: Profile, rd: RunDir) -> dict[str, xquadr.XQuADR]:
    """XQuAD-R's pools by benchmark name: the test articles, and all articles."""
    full = xquadr.load(cfg.xquadr.languages)
    pool = xquadr.test_pool(full, read_json(rd.require(rd.split, "data")), read_jsonl(rd.require(rd.corpus, "data")))
    return {B2: pool, B2_FULL: full}


class RQ2Scorer:
    """Scores RQ2 conditions on B1 (searched) and on XQuAD-R (ranked per question), each
    retriever's encodings loaded once."""

    def __init__(self, cfg: Profile, rd: RunDir) -> None:
        self.cfg, self.rd = cfg, rd
        self.evaluator = Evaluator(rd, cfg.evaluation.search_depth)
        corpus = read_jsonl(rd.corpus)
        self.corpus_ids = [p["docid"] for p in corpus]
        self.query_ids = [q["query_id"] for q in self.evaluator.queries]
        self.pools = benches(cfg, rd)
        self.paragraphs = xquadr.paragraph_docids(corpus)
        self.embeddings: dict[str, dict[str, Any]] = {}

    def encodings(self, retriever: str) -> dict[str, Any]:
        if retriever not in self.embeddings:
            self.embeddings[retriever] = self.rd.load_embeddings(retriever, self.corpus_ids, self.query_ids)
        return self.embeddings[retriever]

    def frame(self, c: Condition, emb: dict[str, Any] | None = None) -> pd.DataFrame:
        """Condition ``c``'s rows of the results table; ``emb``: the retriever's encodings
        (by default those of the run seed)."""
        emb = emb if emb is not None else self.encodings(c.retriever)
        renorm = c.augmentation == "xqg-renorm"
        if c.benchmark in self.pools:
            bench = self.pools[c.benchmark]
            questions, candidates = xquadr_vectors(self.rd, c.retriever, bench)
            if c.alpha is not None:
                candidates = combine(candidates, candidate_sums(bench, self.paragraphs, self.corpus_ids, emb), c.alpha,
                                     renorm)
            return b2_frame(c, bench, questions, candidates, self.cfg.xquadr.k)
        vectors = passage_vectors(emb, self.corpus_ids, c.alpha, n=c.n, renorm=renorm)
        run = search(vectors, self.corpus_ids, emb["queries"], self.query_ids, self.cfg.evaluation.search_depth)
        return self.evaluator.frame(c, run)


def _typed(results: pd.DataFrame) -> pd.DataFrame:
    return results.astype({"alpha": "float64", "n": "Int64", "value": "float64"})


def evaluate_rq2(cfg: Profile, rd: RunDir, conditions: list[Condition] | None = None) -> pd.DataFrame:
    """Score every RQ2 condition; write ``eval/rq2_results.parquet`` and its conditions."""
    from xqglib.evaluation.rq1 import write_results

    conditions = conditions if conditions is not None else all_conditions(cfg, RQ2_EXPERIMENTS)
    scorer = RQ2Scorer(cfg, rd)
    results = _typed(pd.concat([scorer.frame(c) for c in conditions], ignore_index=True))
    write_results(rd, results, "rq2_results.parquet")
    write_json(rd.eval_file("rq2_conditions.json"), [c.to_dict() for c in conditions])
    return results


def evaluate_rq2_seed_sweep(cfg: Profile, rd: RunDir) -> pd.DataFrame:
    """RQ2's xQG conditions (every retriever with xQG, on B1 and XQuAD-R) with the queries of every
    further sampling seed (``generation.seeds``): the results table's rows with a ``seed`` column,
    written as ``eval/rq2_seed_results.parquet`` (no rows without ``generation.seeds``)."""
    from xqglib.evaluation.rq1 import with_seed_queries, write_results

    scorer = RQ2Scorer(cfg, rd)
    arms = {a.name for a in cfg.contrastive.arms}
    frames = [pd.DataFrame(columns=[*COLUMNS, "seed"])]
    for seed in cfg.generation.seeds:
        for c in [c for c in E.rq2_table(cfg) if c.alpha is not None]:
            emb = with_seed_queries(rd, c.retriever, scorer.encodings(c.retriever), seed,
                                    "encode-rq2" if c.retriever in arms else "encode-search")
            frames.append(scorer.frame(c, emb).assign(seed=seed))
    results = _typed(pd.concat(frames, ignore_index=True)).astype({"seed": "int64"})
    write_results(rd, results, "rq2_seed_results.parquet")
    return results


def probe(cfg: Profile, rd: RunDir) -> pd.DataFrame:
    """The language-agnosticism probe of every RQ2 retriever on XQuAD-R's test questions (those
    asked in every language): per language, how often a question's English translation is its
    nearest English question, and the mean similarity gap. Written as ``eval/rq2_probe.parquet``."""
    from xqglib.evaluation.rq1 import write_results

    bench = benches(cfg, rd)[B2]
    ids_by_lang: dict[str, dict[str, int]] = {}
    for i, q in enumerate(bench.questions):
        ids_by_lang.setdefault(q["lang"], {})[q["xling_id"]] = i
    common = sorted(set.intersection(*(set(v) for v in ids_by_lang.values())))
    frames = []
    for spec in cfg.rq2_retrievers:
        questions, _ = xquadr_vectors(rd, spec.name, bench)
        vectors = {lang: questions[[rows[x] for x in common]] for lang, rows in ids_by_lang.items()}
        frames.append(agnosticism_probe(vectors).assign(retriever=spec.name))
    table = pd.concat(frames, ignore_index=True)[["retriever", "language", "questions", "translation retrieved (%)",
                                                   "similarity gap"]]
    write_results(rd, table, "rq2_probe.parquet")
    return table


def load_rq2(rd: RunDir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The RQ2 results table and probe of a run (stage 9 writes them)."""
    return (pd.read_parquet(rd.require(rd.eval_file("rq2_results.parquet"), "evaluate-rq2")),
            pd.read_parquet(rd.require(rd.eval_file("rq2_probe.parquet"), "evaluate-rq2")))
