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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.languages import XQUADR_LANGUAGES
from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.formats import read_json, read_jsonl
from xqglib.data import sources as D


@dataclass
class XQuADR:
    """Questions and candidates of XQuAD-R in some languages, as the official loader builds them."""

    questions: list[dict[str, Any]] = field(default_factory=list)   # uid, xling_id, lang, question, title
    #: uid, lang, sentence, context, title, paragraph (``title#k``: the article's k-th paragraph, the
    #: same in every language)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    #: xling_id -> candidate positions relevant to the questions with that id
    relevant: dict[str, list[int]] = field(default_factory=dict)

    def candidate_texts(self) -> list[str]:
        """What the official code encodes for each candidate: its sentence, then its paragraph."""
        return [(c["sentence"] + c["context"]).replace("\n", "") for c in self.candidates]

    def restrict(self, titles: set[str], paragraphs: set[str] | None = None) -> XQuADR:
        """The benchmark on some articles only (questions and candidates of those articles), and
        of those on some paragraphs only (keys ``title#k``; None: all)."""
        def kept(item: dict[str, Any]) -> bool:
            return item["title"] in titles and (paragraphs is None or item["paragraph"] in paragraphs)

        keep = [i for i, c in enumerate(self.candidates) if kept(c)]
        new_pos = {old: new for new, old in enumerate(keep)}
        return XQuADR([q for q in self.questions if kept(q)],
                      [self.candidates[i] for i in keep],
                      {x: [new_pos[i] for i in pos if i in new_pos] for x, pos in self.relevant.items()})


def build(articles_per_language: dict[str, list[dict[str, Any]]]) -> XQuADR:
    """The official ``load_data`` over SQuAD-format articles with ``sentence_breaks``."""
    bench = XQuADR()
    index: dict[str, int] = {}
    for lang, articles in articles_per_language.items():
        paragraph_number = 0
        for article in articles:
            for k, paragraph in enumerate(article["paragraphs"]):
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
                                                 "title": article["title"], "paragraph": f"{article['title']}#{k}"})
                    positions.append(index[uid])
                for qa in paragraph["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    answer = next((context[s:e] for s, e in breaks if s <= start < e), None)
                    if answer is None:
                        continue  # the official code skips it (a sentence-breaking error)
                    bench.questions.append({"uid": f"{qa['id']}_{lang}", "xling_id": qa["id"], "lang": lang,
                                            "question": qa["question"], "title": article["title"],
                                            "paragraph": f"{article['title']}#{k}"})
                    relevant = bench.relevant.setdefault(qa["id"], [])
                    relevant += [pos for pos, sentence in zip(positions, sentences)
                                 if sentence == answer and pos not in relevant]
    return bench


def load(languages: Sequence[str] | None = None, root: Path | None = None) -> XQuADR:
    """XQuAD-R in ``languages`` (default: all 11) from the data directory."""
    languages = list(languages or XQUADR_LANGUAGES)
    return build({lang: D.load_xquad_r(lang, root) for lang in languages})


def paragraph_docids(corpus: Sequence[dict[str, str]], root: Path | None = None) -> dict[str, str]:
    """Paragraph key (``title#k``) -> the B1 docid of its English original (matched by text:
    XQuAD's English paragraphs are SQuAD's), for the paragraphs a B1 corpus holds."""
    by_text = {p["text"]: p["docid"] for p in corpus}
    return {f"{article['title']}#{k}": by_text[paragraph["context"]]
            for article in D.load_xquad("en", root) for k, paragraph in enumerate(article["paragraphs"])
            if paragraph["context"] in by_text}


def test_pool(bench: XQuADR, split: dict[str, str], corpus: Sequence[dict[str, str]]) -> XQuADR:
    """The benchmark on B1's test articles, on the paragraphs the B1 corpus holds (all of them
    unless the corpus or the test questions are capped): xQG attaches a paragraph's generated
    queries, so each scored paragraph needs them."""
    titles = {title for title, part in split.items() if part == "test"}
    return bench.restrict(titles, set(paragraph_docids(corpus)))


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
        # a restricted pool may lack a question's answer (its sentence was not found in that
        # language): no score (NaN) rather than a zero; in the full pool every question has one
        out[row] = average_precision_at_k(targets, list(ranked), k) if targets else (
            0.0 if pool_language is None else np.nan)
    return out


def views(bench: XQuADR, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
          k: int = 20) -> dict[str, float]:
    """mAP@k in the official full pool (``pooled``), with the pool restricted to the query's own
    language (``mono``, averaged over languages) and to one other language (``cross``, averaged
    over the ordered language pairs)."""
    languages = sorted({q["lang"] for q in bench.questions})
    mono = [np.nanmean(average_precisions(bench, question_vectors, candidate_vectors, k, lang, lang))
            for lang in languages]
    cross = [np.nanmean(average_precisions(bench, question_vectors, candidate_vectors, k, y, x))
             for x in languages for y in languages if x != y]
    return {"pooled": float(average_precisions(bench, question_vectors, candidate_vectors, k).mean()),
            "mono": float(np.mean(mono)), "cross": float(np.mean(cross)) if cross else float("nan")}


def per_question(bench: XQuADR, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
                 k: int = 20) -> pd.DataFrame:
    """Per question (uid, lang): AP@k in the full pool (``pooled``), in its own language's pool
    (``mono``) and the mean over the other languages' pools (``cross``); NaN where a restricted
    pool lacks the question's answer. Averaged over questions these are :func:`views`' figures
    (up to the weighting of languages with skipped questions)."""
    languages = sorted({q["lang"] for q in bench.questions})
    frame = pd.DataFrame({"uid": [q["uid"] for q in bench.questions], "lang": [q["lang"] for q in bench.questions]})
    frame["pooled"] = average_precisions(bench, question_vectors, candidate_vectors, k)
    frame["mono"] = np.nan
    frame["cross"] = np.nan
    for x in languages:
        rows = (frame["lang"] == x).to_numpy()
        frame.loc[rows, "mono"] = average_precisions(bench, question_vectors, candidate_vectors, k, x, x)
        others = [average_precisions(bench, question_vectors, candidate_vectors, k, y, x) for y in languages if y != x]
        if others:
            with warnings.catch_warnings():  # a question without its answer in any other pool: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                frame.loc[rows, "cross"] = np.nanmean(np.vstack(others), axis=0)
    return frame


# --------------------------------------------------------------------------------------------
# The pool a retriever is scored on
# --------------------------------------------------------------------------------------------

def xquadr_pool(cfg: Profile, rd: RunDir, name: str, full: XQuADR | None = None) -> XQuADR:
    """The XQuAD-R pool a retriever is scored on: the full pool (all articles; ``full``, where it
    is loaded already) for the untrained encoder where ``xquadr.full_pool`` says so, else the test
    articles only (no trained retriever has seen a question of them; :func:`xqglib.data.xquadr.test_pool`)."""
    bench = full if full is not None else load(cfg.xquadr.languages)
    if cfg.retriever_spec(name).training == "none" and cfg.xquadr.full_pool:
        return bench
    return test_pool(bench, read_json(rd.require(rd.split, "data")), read_jsonl(rd.require(rd.corpus, "data")))
