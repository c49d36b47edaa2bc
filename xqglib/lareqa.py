"""Benchmark B2: XQuAD-R (LAReQA, part of XTREME-R), with the protocol of XTREME-R's own
evaluation code (google-research/xtreme, ``third_party/utils_lareqa.py`` and
``third_party/evaluate_retrieval.py``):

- every question of every language is a query (its uid: ``{xling_id}_{lang}``); a question whose
  answer starts in no sentence is skipped, as the official code does;
- one pool of answer candidates: every sentence of every paragraph in every language, de-duplicated
  by (language, paragraph, sentence position) (uid ``{lang}_{paragraph number}_{position}``,
  paragraphs numbered from 1 in file order per language);
- a candidate is encoded as its sentence followed directly by its paragraph, line breaks removed:
  ``(sentence + context).replace("\\n", "")``;
- the relevant candidates of a question are, in every language, the sentences equal to the
  sentence holding that language's answer (the answer sentence in each of the 11 languages);
- AP@k = the sum of the precision at each hit in the top k, over min(relevant, k); the score is its
  mean over all questions (mAP@20).

Beside the official full pool, the views of the hybrid-batch paper (arXiv 2408.10536) restrict the
pool to the candidates of one language: the query's own (``mono``), or another one (``cross``,
averaged over the ordered language pairs); in a restricted pool only that language's answer is
relevant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import data as D


@dataclass
class XQuADR:
    """Questions and candidates of XQuAD-R in some languages, as the official loader builds them."""

    questions: list[dict[str, Any]] = field(default_factory=list)   # uid, xling_id, lang, question, title
    candidates: list[dict[str, Any]] = field(default_factory=list)  # uid, lang, sentence, context, title
    #: xling_id -> candidate positions relevant to the questions with that id
    relevant: dict[str, list[int]] = field(default_factory=dict)

    def candidate_texts(self) -> list[str]:
        """What the official code encodes for each candidate: its sentence, then its paragraph."""
        return [(c["sentence"] + c["context"]).replace("\n", "") for c in self.candidates]

    def restrict(self, titles: set[str]) -> XQuADR:
        """The benchmark on some articles only (questions and candidates of those articles)."""
        keep = [i for i, c in enumerate(self.candidates) if c["title"] in titles]
        new_pos = {old: new for new, old in enumerate(keep)}
        return XQuADR([q for q in self.questions if q["title"] in titles],
                      [self.candidates[i] for i in keep],
                      {x: [new_pos[i] for i in pos if i in new_pos] for x, pos in self.relevant.items()})


def build(articles_per_language: dict[str, list[dict[str, Any]]]) -> XQuADR:
    """The official ``load_data`` over SQuAD-format articles with ``sentence_breaks``."""
    bench = XQuADR()
    index: dict[str, int] = {}
    for lang, articles in articles_per_language.items():
        paragraph_number = 0
        for article in articles:
            for paragraph in article["paragraphs"]:
                paragraph_number += 1
                context = paragraph["context"]
                breaks = paragraph["sentence_breaks"]
                sentences = [context[start:end] for start, end in breaks]
                positions = []
                for position, sentence in enumerate(sentences):
                    uid = f"{lang}_{paragraph_number}_{position}"
                    if uid not in index:
                        index[uid] = len(bench.candidates)
                        bench.candidates.append({"uid": uid, "lang": lang, "sentence": sentence, "context": context,
                                                 "title": article["title"]})
                    positions.append(index[uid])
                for qa in paragraph["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    answer = next((context[s:e] for s, e in breaks if s <= start < e), None)
                    if answer is None:
                        continue  # the official code skips it (a sentence-breaking error)
                    bench.questions.append({"uid": f"{qa['id']}_{lang}", "xling_id": qa["id"], "lang": lang,
                                            "question": qa["question"], "title": article["title"]})
                    relevant = bench.relevant.setdefault(qa["id"], [])
                    relevant += [pos for pos, sentence in zip(positions, sentences)
                                 if sentence == answer and pos not in relevant]
    return bench


def load(languages: Sequence[str] | None = None, root: Path | None = None) -> XQuADR:
    """XQuAD-R in ``languages`` (default: all 11) from the data directory."""
    languages = list(languages or D.XQUADR_LANGUAGES)
    return build({lang: D.load_xquad_r(lang, root) for lang in languages})


def average_precision_at_k(targets: set[int], ranked: Sequence[int], k: int | None = None) -> float:
    """The official ``average_precision_at_k``: precision at each hit in the top k, summed, over
    min(len(targets), k)."""
    ranked = list(ranked[:k] if k else ranked)
    score, hits, seen = 0.0, 0.0, set()
    for i, prediction in enumerate(ranked):
        if prediction in targets and prediction not in seen:
            hits += 1.0
            score += hits / (i + 1.0)
        seen.add(prediction)
    divisor = min(len(targets), k) if k else len(targets)
    return score / divisor


def average_precisions(bench: XQuADR, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
                       k: int = 20, pool_language: str | None = None,
                       query_language: str | None = None) -> np.ndarray:
    """AP@k of every question (of ``query_language`` only, if given) against the candidates (of
    ``pool_language`` only, if given; then only that language's answers are relevant). Ranking is
    by inner product, highest first; ties fall as the official ``argsort()[::-1]`` leaves them."""
    questions = [i for i, q in enumerate(bench.questions) if query_language in (None, q["lang"])]
    pool = np.array([i for i, c in enumerate(bench.candidates) if pool_language in (None, c["lang"])])
    scores = question_vectors[questions] @ candidate_vectors[pool].T
    out = np.empty(len(questions))
    for row, question in enumerate(questions):
        targets = set(np.nonzero(np.isin(pool, bench.relevant[bench.questions[question]["xling_id"]]))[0])
        ranked = np.argsort(scores[row])[::-1][:k]
        out[row] = average_precision_at_k(targets, list(ranked), k) if targets else 0.0
    return out


def views(bench: XQuADR, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
          k: int = 20) -> dict[str, float]:
    """mAP@k in the official full pool (``pooled``), with the pool restricted to the query's own
    language (``mono``, averaged over languages) and to one other language (``cross``, averaged
    over the ordered language pairs)."""
    languages = sorted({q["lang"] for q in bench.questions})
    mono = [average_precisions(bench, question_vectors, candidate_vectors, k, lang, lang).mean() for lang in languages]
    cross = [average_precisions(bench, question_vectors, candidate_vectors, k, y, x).mean()
             for x in languages for y in languages if x != y]
    return {"pooled": float(average_precisions(bench, question_vectors, candidate_vectors, k).mean()),
            "mono": float(np.mean(mono)), "cross": float(np.mean(cross)) if cross else float("nan")}
