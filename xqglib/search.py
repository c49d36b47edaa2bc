"""Exact inner-product search with FAISS (IndexFlatIP), as the paper."""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from .formats import Run


def search(passage_emb: np.ndarray, passage_ids: Sequence[str], query_emb: np.ndarray,
           query_ids: Sequence[str], depth: int) -> Run:
    """Top-``depth`` passages per query by exact dot product."""
    index = faiss.IndexFlatIP(passage_emb.shape[1])
    index.add(np.ascontiguousarray(passage_emb, dtype=np.float32))
    scores, rows = index.search(np.ascontiguousarray(query_emb, dtype=np.float32),
                                min(depth, len(passage_ids)))
    return {qid: {passage_ids[r]: float(s) for s, r in zip(srow, rrow) if r >= 0}
            for qid, srow, rrow in zip(query_ids, scores, rows)}
