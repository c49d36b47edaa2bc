"""Outcomes of the third research question: per question, cell and condition, the gold passage's
rank and the reader's EM and F1 (the conditions are declared in :mod:`xqglib.study.experiments`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json
from xqglib.evaluation.qa_metrics import best_over_golds, exact_match, f1
from xqglib.evaluation.rq1 import GOLD_RANK
from xqglib.method.augmentation import combine, fuse, fuse_scores
from xqglib.method.reading import best_over_passages
from xqglib.study.experiments import CONDITIONS, GOLD, SEED_CONDITIONS, seed_variant

# --------------------------------------------------------------------------------------------
# Retrieval in every cell and condition, reading, scoring
# --------------------------------------------------------------------------------------------

class Vectors:
    """One retriever's stage-11 vectors, indexed for the matrix; with ``seed`` (one of
    ``generation.seeds``), those that depend on the generated queries are that seed's."""

    def __init__(self, cfg: Profile, rd: RunDir, name: str, corpus: Sequence[dict[str, Any]],
                 seed: int | None = None) -> None:
        def load(what: str, seeded: bool = False) -> tuple[np.ndarray, list[Any]]:
            stored = seed_variant(what, seed) if seeded and seed is not None else what
            return (np.load(rd.require(rd.rq3(name, stored), "rq3-encode")),
                    read_json(rd.require(rd.rq3_meta(name, stored), "rq3-encode")))

        self.cfg = cfg
        questions, self.question_meta = load("questions")
        self.question_row = {(m["lang"], m["qid"]): i for i, m in enumerate(self.question_meta)}
        self.questions = questions
        passages, ids = load("passages")
        if ids != [p["docid"] for p in corpus]:
            raise UserError(f"the vectors of {name} were encoded for other passages: rerun from stage 11")
        self.corpus = corpus
        self.rows = {lang: [i for i, p in enumerate(corpus) if p["lang"] == lang] for lang in cfg.rq3.passage_languages}
        self.passages = passages
        self.generated, generated_meta = load("generated", True)
        self.generated_docids = [m["docid"] for m in generated_meta]
        self.text = load("text", True)[0]
        self.querydocs = load("querydocs", True)[0]
        self._matrices: dict[tuple[str, str], np.ndarray] = {}

    def passage_matrix(self, condition: str, lang: str) -> np.ndarray:
        """The passage vectors of one passage language as a condition uses them (rows in
        paragraph order; fused once, then kept for every query language and weight)."""
        if (condition, lang) not in self._matrices:
            self._matrices[(condition, lang)] = self._passage_matrix(condition, lang)
        return self._matrices[(condition, lang)]

    def _passage_matrix(self, condition: str, lang: str) -> np.ndarray:
        rows = self.rows[lang]
        own = self.passages[rows]
        if condition in ("none", "query-translated", "dual"):
            return own
        if condition == "text":
            return self.text[rows]
        alpha = self.cfg.rq3_alpha
        if condition == "xqg":
            ids = [self.corpus[i]["docid"] for i in rows]
            keep = np.isin(self.generated_docids, ids)
            return fuse(own, ids, self.generated[keep], [d for d, k in zip(self.generated_docids, keep) if k], alpha)
        if condition == "translations":
            others = [self.passages[self.rows[o]] for o in self.cfg.rq3.passage_languages if o != lang]
            if not others:
                return own
            # the translations get the total weight xQG gives its queries
            scale = self.cfg.rq3_queries_per_passage / len(others)
            return combine(own, scale * np.sum(others, axis=0), alpha)
        raise ValueError(f"unknown condition {condition!r}")

    def scores(self, condition: str, query_lang: str, passage_lang: str, qids: Sequence[str],
               dual_weight: float) -> np.ndarray:
        """Questions x passages scores of one cell under one condition."""
        asked = passage_lang if condition == "query-translated" else query_lang
        q = self.questions[[self.question_row[(asked, qid)] for qid in qids]]
        s = q @ self.passage_matrix(condition, passage_lang).T
        if condition == "dual":
            s = fuse_scores(s, q @ self.querydocs[self.rows[passage_lang]].T, dual_weight)
        return s


def gold_ranks(scores: np.ndarray, gold: Sequence[int]) -> np.ndarray:
    """1-based rank of each question's gold column: one plus the passages scoring strictly higher
    (a tie is resolved in the gold's favour)."""
    gold = np.asarray(gold)
    own = scores[np.arange(len(gold)), gold]
    return 1 + (scores > own[:, None]).sum(axis=1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first (stable: lower index on ties)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def question_index(questions: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(q["lang"], q["qid"]): q for q in questions}


def retrieval_rows(cfg: Profile, vec: Vectors, questions: Sequence[dict[str, Any]], retriever: str,
                   split: str, dual_weight: float, depth: int = 10,
                   conditions: Sequence[str] = tuple(CONDITIONS)) -> tuple[pd.DataFrame, dict[tuple, np.ndarray]]:
    """Per question, cell and condition: the gold passage's rank (one row each, before
    :func:`with_measures`); and each cell's top ``depth`` paragraphs (as paragraph positions
    within the passage language)."""
    frames, tops = [], {}
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for q in questions:
        if q["split"] == split:
            by_lang.setdefault(q["lang"], []).append(q)
    for query_lang in cfg.rq3.query_languages:
        qs = by_lang.get(query_lang, [])
        if not qs:
            continue
        qids = [q["qid"] for q in qs]
        for passage_lang in cfg.rq3.passage_languages:
            positions = {vec.corpus[i]["index"]: k for k, i in enumerate(vec.rows[passage_lang])}
            gold = [positions[q["index"]] for q in qs]
            for condition in conditions:
                s = vec.scores(condition, query_lang, passage_lang, qids, dual_weight)
                tops[(condition, query_lang, passage_lang)] = top_k(s, depth)
                frames.append(pd.DataFrame({"condition": condition, "retriever": retriever, "language": query_lang,
                                            "passage_language": passage_lang, "query_id": qids, "split": split,
                                            "rank": gold_ranks(s, gold)}))
    return pd.concat(frames, ignore_index=True), tops


def rank_measures(rank: np.ndarray) -> dict[str, np.ndarray]:
    """The gold rank, and Recall@1, Recall@5 and MRR@10 (x 100) of it."""
    rank = np.asarray(rank)
    return {GOLD_RANK: rank.astype(float), "recall@1": 100.0 * (rank <= 1), "recall@5": 100.0 * (rank <= 5),
            "mrr@10": 100.0 * np.where(rank <= 10, 1.0 / rank, 0.0)}


def tidy(frame: pd.DataFrame, values: dict[str, Any]) -> pd.DataFrame:
    """One row per row of ``frame`` and measure in ``values``, in the columns of the results
    table (:data:`xqglib.evaluation.rq1.COLUMNS`: benchmark ... language, query_id, measure, value)."""
    out = pd.concat([frame.assign(measure=m, value=np.asarray(v, dtype=float)) for m, v in values.items()],
                    ignore_index=True)
    out.insert(0, "benchmark", MATRIX)
    return out


def with_measures(frame: pd.DataFrame) -> pd.DataFrame:
    """Gold ranks (:func:`retrieval_rows`) as tidy rows: one per question and measure."""
    return tidy(frame.drop(columns="rank"), rank_measures(frame["rank"].to_numpy()))


def choose_dual_weight(cfg: Profile, vec: Vectors, questions: Sequence[dict[str, Any]], retriever: str) -> dict[str, float]:
    """MRR@10 of dual-index fusion on dev-article questions (every cell) for each weight of
    ``rq3.dual_weights``; the best weight is the one the test questions get."""
    found = {}
    for w in cfg.rq3.dual_weights:
        frame = retrieval_rows(cfg, vec, questions, retriever, "dev", w, conditions=["dual"])[0]
        found[w] = float(rank_measures(frame["rank"].to_numpy())["mrr@10"].mean())
    return found


def seed_retrieval(cfg: Profile, rd: RunDir, corpus: Sequence[dict[str, Any]], questions: Sequence[dict[str, Any]],
                   columns: Sequence[str]) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """The seed sweep: every retriever's retrieval in every cell under the conditions that depend
    on the generated queries (:data:`SEED_CONDITIONS`) with the vectors of every further sampling
    seed (``generation.seeds``), the dual weight chosen again on dev-article questions for each
    seed as for the first: the retrieval table's rows (``columns``) with a ``seed`` column (none
    without ``generation.seeds``), and the chosen weight per retriever and seed."""
    frames = [pd.DataFrame(columns=[*columns, "seed"])]
    weights: dict[str, dict[str, float]] = {}
    for seed in cfg.generation.seeds:
        for name in cfg.rq3_retrievers:
            vec = Vectors(cfg, rd, name, corpus, seed)
            sweep = choose_dual_weight(cfg, vec, questions, name)
            weight = max(sweep, key=lambda w: (sweep[w], -w))
            weights.setdefault(name, {})[str(seed)] = weight
            frame = retrieval_rows(cfg, vec, questions, name, "test", weight, conditions=SEED_CONDITIONS)[0]
            frames.append(with_measures(frame).assign(seed=seed)[[*columns, "seed"]])
    found = pd.concat(frames[1:], ignore_index=True) if len(frames) > 1 else frames[0]
    return found.astype({"value": "float64", "seed": "int64"}), weights


def reader_sample(cfg: Profile, questions: Sequence[dict[str, Any]]) -> list[str]:
    """The test questions the reader answers in every cell (seeded; the same in every cell)."""
    qids = sorted({q["qid"] for q in questions if q["split"] == "test"})
    if cfg.rq3.reader_questions is not None and cfg.rq3.reader_questions < len(qids):
        qids = sorted(random.Random(cfg.seed).sample(qids, cfg.rq3.reader_questions))
    return qids


#: The benchmark RQ3's tables name: XQuAD's query-language x passage-language matrix.
MATRIX = "xquad-matrix"

#: What the reader's rows measure: EM, F1 (x 100) and whether the gold passage was among those read.
READING_MEASURES = ("em", "f1", "answer_in_top_k")

#: A reading: the reader's best span (or None) for each (key, question, passage) it is given.
Read = Callable[[list[tuple[str, str, str, int]], list[str], list[str]], list[Any]]


def read_cells(cfg: Profile, tops: dict[tuple, np.ndarray], questions: Sequence[dict[str, Any]],
               corpus: Sequence[dict[str, Any]], answers: dict[tuple[str, str], list[str]],
               read: Read) -> pd.DataFrame:
    """EM and F1 of the reader on the top-k passages of every condition and cell (k in
    ``rq3.reader_k``) and on the gold passage, for the sampled test questions. Every distinct
    (question, passage) is read once, by ``read``."""
    sample = reader_sample(cfg, questions)
    test = [q for q in questions if q["split"] == "test"]
    by_q = question_index(questions)
    paragraphs = {lang: [corpus[i] for i in range(len(corpus)) if corpus[i]["lang"] == lang]
                  for lang in cfg.rq3.passage_languages}
    k_max = max(cfg.rq3.reader_k)
    plan: list[tuple[str, str, str, str, list[int], int]] = []  # condition, Q, P, qid, positions read, gold's
    for query_lang in cfg.rq3.query_languages:
        test_q = [q["qid"] for q in test if q["lang"] == query_lang]
        row = {qid: i for i, qid in enumerate(test_q)}
        for passage_lang in cfg.rq3.passage_languages:
            positions = {p["index"]: k for k, p in enumerate(paragraphs[passage_lang])}
            for qid in sample:
                gold = positions[by_q[(query_lang, qid)]["index"]]
                plan.append((GOLD, query_lang, passage_lang, qid, [gold], gold))
                for condition in CONDITIONS:
                    plan.append((condition, query_lang, passage_lang, qid,
                                 tops[(condition, query_lang, passage_lang)][row[qid]][:k_max].tolist(), gold))
    reads: dict[tuple[str, str, str, int], int] = {}
    for condition, query_lang, passage_lang, qid, found, _ in plan:
        asked = passage_lang if condition == "query-translated" else query_lang
        for k in found:
            reads.setdefault((asked, qid, passage_lang, k), len(reads))
    keys = list(reads)
    spans = read(keys, [by_q[(a, qid)]["question"] for a, qid, _, _ in keys],
                 [paragraphs[p][k]["text"] for _, _, p, k in keys])
    rows = []
    for condition, query_lang, passage_lang, qid, found, gold_position in plan:
        asked = passage_lang if condition == "query-translated" else query_lang
        for k in ([1] if condition == GOLD else cfg.rq3.reader_k):
            best = best_over_passages([spans[reads[(asked, qid, passage_lang, pos)]] for pos in found[:k]])
            prediction = "" if best is None else best.text
            golds = answers[(passage_lang, qid)]
            rows.append({"condition": condition, "language": query_lang, "passage_language": passage_lang,
                         "query_id": qid, "k": k,
                         "em": 100 * best_over_golds(exact_match, prediction, golds, passage_lang),
                         "f1": 100 * best_over_golds(f1, prediction, golds, passage_lang),
                         "answer_in_top_k": 100.0 * (gold_position in found[:k])})
    wide = pd.DataFrame(rows)
    return tidy(wide.drop(columns=list(READING_MEASURES)), {m: wide[m] for m in READING_MEASURES})


def load_rq3_seeds(rd: RunDir) -> pd.DataFrame:
    """Stage 12's seed sweep: :func:`seed_retrieval`'s rows."""
    return pd.read_parquet(rd.require(rd.eval_file("rq3_seed_results.parquet"), "rq3-evaluate"))


def load_rq3(rd: RunDir) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 12's tables: retrieval per question, reading per question, and the settings used."""
    return (pd.read_parquet(rd.require(rd.eval_file("rq3_retrieval.parquet"), "rq3-evaluate")),
            pd.read_parquet(rd.require(rd.eval_file("rq3_reading.parquet"), "rq3-evaluate")),
            read_json(rd.require(rd.eval_file("rq3_conditions.json"), "rq3-evaluate")))
