"""Evaluation measures.

- **R@Nkt**, the XOR-Retrieve measure, with the semantics of the official scorer
  (``evals/eval_xor_retrieve.py`` of AkariAsai/XORQA): for each question with at least one answer
  other than "yes"/"no", the ranked passages' texts (text only, no title) are word-tokenised in
  rank order and their tokens concatenated, passage by passage, until there are at least N*1000;
  the list is cut to N*1000 tokens and joined with single spaces; the question is a hit if any
  answer string is a substring of that. Per language: hits / counted * 100; the reported figure is
  the macro average over languages.
- **Recall@k, MRR@10, nDCG@10** through ir-measures (pytrec_eval underneath), on TREC-style
  run and qrels dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import mean

from .formats import Run, ranked_docids

Tokenizer = Callable[[str], list[str]]


def xor_word_tokenize(text: str) -> list[str]:
    """NLTK's ``word_tokenize`` without its sentence splitter.

    The official scorer calls ``nltk.word_tokenize(text)``, which first splits sentences with the
    Punkt model (data that must be downloaded) and then applies NLTK's Treebank word tokenizer to
    each sentence. Here the Treebank tokenizer sees the whole passage (``preserve_line=True``), which
    needs no downloaded data; the two differ only where a sentence-final period inside a passage is
    split off as its own token by the official path.
    """
    from nltk.tokenize import word_tokenize

    return word_tokenize(text, preserve_line=True)


@dataclass
class XorOutcome:
    """Per-question hits (``None``: not counted, e.g. yes/no answers) and per-language scores."""

    hits: dict[str, bool | None]
    per_language: dict[str, float]
    counted: dict[str, int]

    @property
    def macro_average(self) -> float:
        return mean(self.per_language.values()) if self.per_language else float("nan")


def xor_hit(passage_tokens: Iterable[Sequence[str]], answers: Sequence[str], max_tokens: int) -> bool | None:
    """One question: hit within the first ``max_tokens`` tokens; ``None`` if it is not counted."""
    span_answers = [a for a in answers if a not in ("yes", "no")]
    if not span_answers:
        return None
    tokens: list[str] = []
    for passage in passage_tokens:
        tokens += passage
        if len(tokens) >= max_tokens:
            break
    joined = " ".join(tokens[:max_tokens])
    return any(answer in joined for answer in span_answers)


def xor_recall_at_kt(run: Run, passage_texts: Mapping[str, str], answers: Mapping[str, Sequence[str]],
                     languages: Mapping[str, str], n_thousand: int,
                     tokenize: Tokenizer = xor_word_tokenize) -> XorOutcome:
    """R@{n_thousand}kt of a run; ``answers`` and ``languages`` are keyed by the run's query ids.

    Queries of the run without answers are skipped, as the official scorer does.
    """
    cache: dict[str, list[str]] = {}

    def tokens_of(docid: str) -> list[str]:
        if docid not in cache:
            cache[docid] = tokenize(passage_texts[docid])
        return cache[docid]

    max_tokens = n_thousand * 1000
    hits: dict[str, bool | None] = {}
    counted: dict[str, int] = {}
    hit_count: dict[str, int] = {}
    for qid, docs in run.items():
        if qid not in answers:
            continue

        # a generator, so that only the passages within the token budget are tokenised
        ranked_tokens = (tokens_of(docid) for docid in ranked_docids(docs))
        hit = xor_hit(ranked_tokens, answers[qid], max_tokens)
        hits[qid] = hit
        if hit is None:
            continue
        lang = languages[qid]
        counted[lang] = counted.get(lang, 0) + 1
        hit_count[lang] = hit_count.get(lang, 0) + int(hit)
    per_language = {lang: hit_count[lang] / counted[lang] * 100 for lang in counted}
    return XorOutcome(hits, per_language, counted)



#: The standard measures reported beside R@Nkt.
STANDARD_MEASURES = ("R@2", "R@5", "R@10", "R@20", "R@100", "RR@10", "nDCG@10")


def standard_measures(run: Run, qrels: Mapping[str, Mapping[str, int]],
                      measures: Sequence[str] = STANDARD_MEASURES) -> dict[str, dict[str, float]]:
    """Per-query values ``{measure: {qid: value}}`` through ir-measures.

    Queries of the qrels that the run does not answer score 0 (ir-measures leaves them out).
    """
    import ir_measures

    parsed = [ir_measures.parse_measure(m) for m in measures]
    out: dict[str, dict[str, float]] = {m: {q: 0.0 for q in qrels} for m in measures}
    names = {str(p): m for p, m in zip(parsed, measures)}
    for metric in ir_measures.iter_calc(parsed, dict(qrels), dict(run)):
        out[names[str(metric.measure)]][metric.query_id] = float(metric.value)
    return out
