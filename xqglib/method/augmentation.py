"""xQG passage augmentation, exactly as the official ``fuse_embeds.py``:

``p' = (1 - alpha) * p + alpha * sum_{q in Q_p} q``

a SUM over the passage's generated-query embeddings (not a mean: with 35 queries and alpha 0.01
this is 0.99 p + 0.35 mean(q)). The official script asserts that every query file lists the same
docids in the same order as the passages; here the queries are matched to passages by docid and the
same guarantee is checked: each passage has queries, and every query belongs to a known passage.
Queries at search time are untouched, so search costs exactly what it did.

The third research question's other conditions augment the passage's text instead (doc2query
expansion, :func:`condition_texts`) or fuse the scores of two indexes (:func:`fuse_scores`: two
inner products per query and passage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xqglib.core.errors import UserError
from xqglib.method.encoding import passage_text


def sum_by_passage(passage_ids: Sequence[str], query_emb: np.ndarray,
                   query_docids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per passage, the sum of its queries' embeddings and how many there were."""
    index = {d: i for i, d in enumerate(passage_ids)}
    if len(index) != len(passage_ids):
        raise UserError("passage ids are not unique; cannot align generated queries to passages")
    if len(query_docids) != len(query_emb):
        raise UserError(f"{len(query_emb)} query embeddings but {len(query_docids)} docids")
    unknown = sorted({d for d in query_docids if d not in index})
    if unknown:
        raise UserError(f"{len(unknown)} generated queries belong to passages not in the corpus "
                        f"(first: {unknown[:3]}); they were generated for another corpus")
    rows = np.fromiter((index[d] for d in query_docids), dtype=np.int64, count=len(query_docids))
    sums = np.zeros((len(passage_ids), query_emb.shape[1]), dtype=np.float64)
    np.add.at(sums, rows, query_emb.astype(np.float64))
    counts = np.bincount(rows, minlength=len(passage_ids))
    return sums.astype(np.float32), counts


def combine(passage_emb: np.ndarray, sums: np.ndarray, alpha: float, renorm: bool = False) -> np.ndarray:
    """``(1 - alpha) p + alpha * sum``, row by row; with ``renorm`` each fused row is rescaled to
    its passage vector's norm, so the generated queries turn the vector without lengthening it
    (for cosine-trained encoders such as e5, whose scores a longer vector would inflate)."""
    fused = (1.0 - alpha) * passage_emb.astype(np.float64) + alpha * sums.astype(np.float64)
    if renorm:
        fused *= (np.linalg.norm(passage_emb, axis=1, keepdims=True)
                  / np.maximum(np.linalg.norm(fused, axis=1, keepdims=True), 1e-12))
    return fused.astype(np.float32)


def fuse(passage_emb: np.ndarray, passage_ids: Sequence[str], query_emb: np.ndarray,
         query_docids: Sequence[str], alpha: float, renorm: bool = False) -> np.ndarray:
    """Augmented passage embeddings, rows in ``passage_ids`` order (:func:`combine`)."""
    if passage_emb.shape[0] != len(passage_ids):
        raise UserError(f"{passage_emb.shape[0]} passage embeddings but {len(passage_ids)} ids")
    sums, counts = sum_by_passage(passage_ids, query_emb, query_docids)
    missing = int((counts == 0).sum())
    if missing:
        raise UserError(f"{missing} passages have no generated queries; generate for the whole "
                        "corpus before augmenting (the official code requires it too)")
    if not renorm:  # the official arithmetic, in float32 as fuse_embeds.py does it
        return ((1.0 - alpha) * passage_emb + alpha * sums).astype(np.float32)
    return combine(passage_emb, sums, alpha, renorm=True)


def passage_vectors(emb: Mapping[str, Any], passage_ids: Sequence[str], alpha: float | None,
                    languages: set[str] | None = None, n: int | None = None, renorm: bool = False) -> np.ndarray:
    """A retriever's passage vectors as a condition uses them: as they are (``alpha`` None), or
    xQG-augmented from the generated queries of some ``languages`` (None: all) and the first ``n``
    per language (None: all), rescaled to the passage norms with ``renorm``. ``emb`` holds
    "passages", "generated" and "generated_meta" (one ``{"docid", "lang", "slot"}`` per generated
    vector), as the encoding stage writes them."""
    if alpha is None:
        return emb["passages"]
    meta = emb["generated_meta"]
    keep = [i for i, m in enumerate(meta)
            if (languages is None or m["lang"] in languages) and (n is None or m["slot"] < n)]
    return fuse(emb["passages"], passage_ids, emb["generated"][keep], [meta[i]["docid"] for i in keep], alpha,
                renorm)


# --------------------------------------------------------------------------------------------
# Text-level passage augmentation, the comparison conditions of the third research question

def expanded_text(title: str, text: str, queries: Sequence[str]) -> str:
    """doc2query-style expansion: the passage as the encoder reads it (``title text``), then its
    generated queries, in order, separated by single spaces. The encoder's passage length limit
    must leave room for them (the condition raises it and says so)."""
    return " ".join([passage_text(title, text), *queries])


def queries_document(queries: Sequence[str]) -> str:
    """The second index of dual-index fusion: a passage's generated queries as one text."""
    return " ".join(queries)


def fuse_scores(text_scores: np.ndarray, query_scores: np.ndarray, weight: float) -> np.ndarray:
    """Dual-index score fusion (Doc2Query++, arXiv 2510.09557, as we read it: the passage text and
    its generated queries encoded separately, their scores fused at search time with a tunable
    weight): ``(1 - weight) * s(q, text) + weight * s(q, queries)``, for matrices of the same
    (queries x passages) shape."""
    if text_scores.shape != query_scores.shape:
        raise ValueError(f"score matrices differ in shape: {text_scores.shape} vs {query_scores.shape}")
    if not 0 <= weight <= 1:
        raise ValueError(f"the fusion weight must lie in [0, 1], not {weight}")
    return (1 - weight) * text_scores + weight * query_scores


def clip_to_tokens(tokenizer: Any, text: str, max_tokens: int, prefix: str = "") -> str:
    """The longest start of ``text`` that the encoder keeps within ``max_tokens`` tokens (special
    tokens and ``prefix`` included): what the encoder sees of a passage, as text."""
    enc = tokenizer(prefix + text, truncation=True, max_length=max_tokens, return_offsets_mapping=True)
    ends = [end for start, end in enc["offset_mapping"] if end > start]
    cut = max(ends) - len(prefix) if ends else 0
    return text[: max(cut, 0)]


def condition_texts(encoder: Any, corpus: Sequence[dict[str, Any]],
                    generated: dict[str, list[str]]) -> dict[str, list[str]]:
    """The passage-side texts each passage condition encodes, one per corpus passage: the passage
    (``passages``), the passage as the encoder keeps it followed by its generated queries (``text``)
    and the queries alone, as one text (``querydocs``)."""
    texts = [passage_text(p["title"], p["text"]) for p in corpus]
    kept = [clip_to_tokens(encoder.tok, t, encoder.passage_max_len, encoder.spec.passage_prefix) for t in texts]
    return {"passages": texts,
            "text": [expanded_text("", k, generated[p["docid"]]).strip() for k, p in zip(kept, corpus)],
            "querydocs": [queries_document(generated[p["docid"]]) for p in corpus]}


def generated_by_passage(rows: Sequence[dict[str, Any]], languages: Sequence[str]) -> dict[str, list[str]]:
    """Every passage's generated queries, language by language in ``languages`` order."""
    return {r["docid"]: [q for lang in languages for q in r["generated_queries"][lang]] for r in rows}
