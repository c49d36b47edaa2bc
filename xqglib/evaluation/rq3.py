"""The third research question: query-augmented (xQG) against passage-augmented retrieval on
XQuAD's query-language x passage-language matrix, measured by retrieval and by the EM/F1 of an
extractive reader (stages 10-12).

A cell (Q, P) of the matrix (:mod:`xqglib.data.matrix`): XQuAD's 240 paragraphs in P are the
corpus, the test-article questions in Q the queries, the paragraph that holds a question its gold
passage, the answer of the parallel question in P its gold answer. The paragraphs carry no title
(XQuAD's titles are English only), so every passage language sees the same kind of text.

The conditions, all from one retriever, one corpus and the same generated queries per passage
(``rq3.generation_languages`` x ``rq3.n_per_language``):

- ``none``: the passage vector as it is;
- ``xqg``: the passage vector fused with its generated queries' vectors (RQ1's rule: the paper's
  alpha scaled by 35 over the queries fused);
- ``text``: the queries appended to the passage's text before encoding (doc2query): the passage
  keeps ``retriever.passage_max_len`` tokens, the queries follow, ``rq3.text_max_len`` in all;
- ``dual``: passage and queries (as one text) in two indexes, scores fused at search time with
  the weight of ``rq3.dual_weights`` best on dev-article questions (two vectors per passage);
- ``translations``: the passage vector fused with its human translations into the other passage
  languages (an oracle: XQuAD's translations), with the total weight xQG gives its queries;
- ``query-translated``: the question asked in the passage language (XQuAD's human translation),
  the translate-the-query control.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xqglib.core.artifacts import RunDir
from xqglib.method.augmentation import combine, fuse
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, read_jsonl, sha256_text, write_json
from xqglib.evaluation.qa_metrics import best_over_golds, exact_match, f1
from xqglib.method.reading import best_over_passages
from xqglib.config.settings import Profile
from xqglib.method.reading import reader_of
from xqglib.study.experiments import CONDITIONS, GOLD, fusion_alpha, queries_per_passage


# --------------------------------------------------------------------------------------------
# Stage 12: retrieval in every cell and condition, reading, scoring
# --------------------------------------------------------------------------------------------

class Vectors:
    """One retriever's stage-11 vectors, indexed for the matrix."""

    def __init__(self, cfg: Profile, rd: RunDir, name: str, corpus: Sequence[dict[str, Any]]) -> None:
        def load(what: str) -> tuple[np.ndarray, list[Any]]:
            return (np.load(rd.require(rd.rq3(name, what), "rq3-encode")),
                    read_json(rd.require(rd.rq3_meta(name, what), "rq3-encode")))

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
        self.generated, generated_meta = load("generated")
        self.generated_docids = [m["docid"] for m in generated_meta]
        self.text = load("text")[0]
        self.querydocs = load("querydocs")[0]
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
        alpha = fusion_alpha(self.cfg)
        if condition == "xqg":
            ids = [self.corpus[i]["docid"] for i in rows]
            keep = np.isin(self.generated_docids, ids)
            return fuse(own, ids, self.generated[keep], [d for d, k in zip(self.generated_docids, keep) if k], alpha)
        if condition == "translations":
            others = [self.passages[self.rows[o]] for o in self.cfg.rq3.passage_languages if o != lang]
            if not others:
                return own
            # the translations get the total weight xQG gives its queries
            scale = queries_per_passage(self.cfg) / len(others)
            return combine(own, scale * np.sum(others, axis=0), alpha)
        raise ValueError(f"unknown condition {condition!r}")

    def scores(self, condition: str, query_lang: str, passage_lang: str, qids: Sequence[str],
               dual_weight: float) -> np.ndarray:
        """Questions x passages scores of one cell under one condition."""
        asked = passage_lang if condition == "query-translated" else query_lang
        q = self.questions[[self.question_row[(asked, qid)] for qid in qids]]
        s = q @ self.passage_matrix(condition, passage_lang).T
        if condition == "dual":
            s = (1 - dual_weight) * s + dual_weight * (q @ self.querydocs[self.rows[passage_lang]].T)
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
    """Per question, cell and condition: the gold passage's rank; and each cell's top ``depth``
    paragraphs (as paragraph positions within the passage language)."""
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
                frames.append(pd.DataFrame({"retriever": retriever, "condition": condition, "query_lang": query_lang,
                                            "passage_lang": passage_lang, "qid": qids, "split": split,
                                            "rank": gold_ranks(s, gold)}))
    return pd.concat(frames, ignore_index=True), tops


def with_measures(frame: pd.DataFrame) -> pd.DataFrame:
    """Recall@1, Recall@5 and MRR@10 (x 100) of each row's gold rank."""
    out = frame.copy()
    out["recall@1"] = 100.0 * (out["rank"] <= 1)
    out["recall@5"] = 100.0 * (out["rank"] <= 5)
    out["mrr@10"] = 100.0 * np.where(out["rank"] <= 10, 1.0 / out["rank"], 0.0)
    return out


def choose_dual_weight(cfg: Profile, vec: Vectors, questions: Sequence[dict[str, Any]], retriever: str) -> dict[str, float]:
    """MRR@10 of dual-index fusion on dev-article questions (every cell) for each weight of
    ``rq3.dual_weights``; the best weight is the one the test questions get."""
    found = {}
    for w in cfg.rq3.dual_weights:
        frame = retrieval_rows(cfg, vec, questions, retriever, "dev", w, conditions=["dual"])[0]
        found[w] = float(with_measures(frame)["mrr@10"].mean())
    return found


def reader_sample(cfg: Profile, questions: Sequence[dict[str, Any]]) -> list[str]:
    """The test questions the reader answers in every cell (seeded; the same in every cell)."""
    qids = sorted({q["qid"] for q in questions if q["split"] == "test"})
    if cfg.rq3.reader_questions is not None and cfg.rq3.reader_questions < len(qids):
        qids = sorted(random.Random(cfg.seed).sample(qids, cfg.rq3.reader_questions))
    return qids


def read_cells(cfg: Profile, rd: RunDir, tops: dict[tuple, np.ndarray], questions: Sequence[dict[str, Any]],
               corpus: Sequence[dict[str, Any]], answers: dict[tuple[str, str], list[str]]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """EM and F1 of the reader on the top-k passages of every condition and cell (k in
    ``rq3.reader_k``) and on the gold passage, for the sampled test questions. Every distinct
    (question, passage) is read once (:func:`read_pairs`); the reads table and the reading's record come
    back with the scores."""
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
    spans, record = read_pairs(cfg, rd, keys, [by_q[(a, qid)]["question"] for a, qid, _, _ in keys],
                  [paragraphs[p][k]["text"] for _, _, p, k in keys])
    read_rows = pd.DataFrame([{"asked_lang": a, "qid": qid, "passage_lang": p, "position": k,
                               "answer": "" if s is None else s.text, "score": np.nan if s is None else s.score}
                              for (a, qid, p, k), s in zip(keys, spans)])
    rows = []
    for condition, query_lang, passage_lang, qid, found, gold_position in plan:
        asked = passage_lang if condition == "query-translated" else query_lang
        for k in ([1] if condition == GOLD else cfg.rq3.reader_k):
            best = best_over_passages([spans[reads[(asked, qid, passage_lang, pos)]] for pos in found[:k]])
            prediction = "" if best is None else best.text
            golds = answers[(passage_lang, qid)]
            rows.append({"condition": condition, "query_lang": query_lang, "passage_lang": passage_lang, "qid": qid,
                         "k": k, "em": 100 * best_over_golds(exact_match, prediction, golds, passage_lang),
                         "f1": 100 * best_over_golds(f1, prediction, golds, passage_lang),
                         "answer_in_top_k": 100.0 * (gold_position in found[:k])})
    return pd.DataFrame(rows), read_rows, record


def read_pairs(cfg: Profile, rd: RunDir, keys: list[tuple[str, str, str, int]], questions: list[str],
          contexts: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """The reader's best span for every (question, passage) pair, and the record of that reading
    (its fingerprint and the seconds it took). Spans read earlier by the same reader weights, with
    the same windows, over the same questions and passages, are reused (the reads table and the
    record beside it, whose seconds are then the earlier reading's), so a rerun of stage 12 that
    changes only the analysis does not read again."""
    from xqglib.core.reuse import weights_digest
    from xqglib.method.reading import READING_VERSION, Span

    model = rd.require(rd.reader_model(), "rq3-train")
    fingerprint = {"reader": weights_digest(model), "reading version": READING_VERSION,
                   "settings": cfg.select(["rq3.reader_max_len", "rq3.reader_stride"]),
                   "pairs": sha256_text(json.dumps([questions, contexts], ensure_ascii=False))}
    table, done = rd.eval_file("rq3_reads.parquet"), rd.eval_file("rq3_reads.fingerprint.json")
    record = read_json(done) if done.exists() else {}
    if table.exists() and {k: v for k, v in record.items() if k != "seconds"} == fingerprint:
        rows = pd.read_parquet(table)
        if [tuple(r) for r in rows[["asked_lang", "qid", "passage_lang", "position"]].itertuples(index=False)] == keys:
            print(f"reusing {table}: read earlier by the same reader from the same questions and passages")
            return [None if np.isnan(score) else Span(answer, float(score), 0, 0, 0)
                    for answer, score in zip(rows["answer"], rows["score"])], record
    done.unlink(missing_ok=True)
    started = time.perf_counter()
    spans = reader_of(cfg, str(model)).read(questions, contexts, 32, f"read ({len(keys)} passages)")
    return spans, {**fingerprint, "seconds": round(time.perf_counter() - started, 2)}


def evaluate_rq3(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Stage 12: every retriever's retrieval in every cell and condition (test and dev questions),
    the reader on the reader retriever's passages, written as tidy tables."""
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    questions = read_jsonl(rd.rq3_data("questions"))
    answers = {(a["lang"], a["qid"]): a["answers"] for a in read_jsonl(rd.rq3_data("answers"))}
    frames, chosen, sweeps, reader_tops = [], {}, {}, None
    for name in cfg.rq3_retrievers:
        vec = Vectors(cfg, rd, name, corpus)
        sweeps[name] = choose_dual_weight(cfg, vec, questions, name)
        chosen[name] = max(sweeps[name], key=lambda w: (sweeps[name][w], -w))
        frame, tops = retrieval_rows(cfg, vec, questions, name, "test", chosen[name])
        frames.append(frame)
        if name == cfg.reader_retriever:
            reader_tops = tops
    retrieval = with_measures(pd.concat(frames, ignore_index=True))
    retrieval.to_parquet(rd.eval_file("rq3_retrieval.parquet"), index=False)
    reading, reads, reads_record = read_cells(cfg, rd, reader_tops, questions, corpus, answers)
    reading.insert(0, "retriever", cfg.reader_retriever)
    reading.to_parquet(rd.eval_file("rq3_reading.parquet"), index=False)
    reads.to_parquet(rd.eval_file("rq3_reads.parquet"), index=False)
    write_json(rd.eval_file("rq3_reads.fingerprint.json"), reads_record)  # after the table it describes
    summary = {"alpha": fusion_alpha(cfg), "queries per passage": queries_per_passage(cfg),
               "paragraphs per language": len(corpus) // len(cfg.rq3.passage_languages),
               "dual weight": chosen, "dual weight sweep (dev MRR@10)": {n: {str(w): v for w, v in s.items()}
                                                                       for n, s in sweeps.items()},
               "reads": len(reads), "reading seconds": reads_record["seconds"]}
    write_json(rd.eval_file("rq3_conditions.json"), summary)
    return summary


def load_rq3(rd: RunDir) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 12's tables: retrieval per question, reading per question, and the settings used."""
    return (pd.read_parquet(rd.require(rd.eval_file("rq3_retrieval.parquet"), "rq3-evaluate")),
            pd.read_parquet(rd.require(rd.eval_file("rq3_reading.parquet"), "rq3-evaluate")),
            read_json(rd.require(rd.eval_file("rq3_conditions.json"), "rq3-evaluate")))
