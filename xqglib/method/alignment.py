"""Multilingual contrastive learning, the second research question's other arm:

- :func:`translation_ranking_loss`: an added loss that pulls each question towards its parallel
  translation (in-batch translation ranking, symmetric InfoNCE, as in LaBSE-style alignment):
  row i of one language must pick row i of the other among the batch, in both directions.
- :func:`hybrid_batches`: the hybrid-batch recipe of arXiv 2408.10536 as we read it: each
  training batch is, with probability ``alpha`` (0.5 in the paper), *monolingual* (every
  question in language L with its passage in L) and otherwise *cross-lingual* (question in L,
  passage in another language L'), L and L' drawn per example from XQuAD's parallel
  train-article data.
- :func:`agnosticism_probe`: what alignment did to the space, retrieval aside (the Tatoeba/BUCC
  idea of XTREME-R on our data): per language, how often a question's nearest English question
  is its own translation, and the mean gap between the similarity to that translation and to
  the nearest other English question.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F


def translation_ranking_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of parallel pairs: row i of ``a`` and row i of ``b`` are
    translations. Cosine similarities over ``temperature``; the mean of the a->b and b->a
    cross-entropies with the diagonal as targets."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def hybrid_batches(items: Sequence[dict[str, Any]], languages: Sequence[str], batch_size: int,
                   alpha: float, seed: int) -> list[list[dict[str, str]]]:
    """One epoch of hybrid batches. ``items`` hold one parallel question with its paragraph:
    ``{"id", "questions": {lang: text}, "passages": {lang: {"title", "text"}}}``. Returns batches
    of ``{"id", "query", "query_lang", "passage_lang", "title", "text", "kind"}``; ``kind`` is
    "mono" or "cross" for the whole batch."""
    if len(languages) < 2:
        raise ValueError("hybrid batches need at least two languages")
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size):
        kind = "mono" if rng.random() < alpha else "cross"
        batch = []
        for index in order[start:start + batch_size]:
            item = items[index]
            query_lang = rng.choice(list(languages))
            passage_lang = query_lang if kind == "mono" else rng.choice([l for l in languages if l != query_lang])
            passage = item["passages"][passage_lang]
            batch.append({"id": item["id"], "query": item["questions"][query_lang], "query_lang": query_lang,
                          "passage_lang": passage_lang, "title": passage["title"], "text": passage["text"],
                          "kind": kind})
        batches.append(batch)
    return batches


def agnosticism_probe(vectors: dict[str, np.ndarray], pivot: str = "en") -> pd.DataFrame:
    """Per language: the accuracy of retrieving each question's ``pivot`` translation among all
    ``pivot`` questions (row i of every matrix is the same question), and the mean gap between
    the cosine similarity to the translation and to the most similar other ``pivot`` question."""
    def unit(m: np.ndarray) -> np.ndarray:
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    target = unit(np.asarray(vectors[pivot], dtype=np.float64))
    rows = []
    for lang, matrix in vectors.items():
        if lang == pivot:
            continue
        sims = unit(np.asarray(matrix, dtype=np.float64)) @ target.T
        own = np.diag(sims).copy()
        others = sims.copy()
        np.fill_diagonal(others, -np.inf)
        nearest_other = others.max(axis=1)
        rows.append({"language": lang, "questions": len(own),
                     "translation retrieved (%)": 100 * float(np.mean(own > nearest_other)),
                     "similarity gap": float(np.mean(own - nearest_other))})
    return pd.DataFrame(rows)
