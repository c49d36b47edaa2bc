"""Exact inner-product search with FAISS (IndexFlatIP), as the paper."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def _index(dim: int) -> faiss.Index:
    """An exact inner-product index, on every GPU where FAISS has some (faiss-gpu), else on CPU."""
    index = faiss.IndexFlatIP(dim)
    if hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_all_gpus(index)
    return index


def search_shards(shards: Iterable[tuple[np.ndarray, Sequence[str]]], query_emb: np.ndarray,
                  query_ids: Sequence[str], depth: int) -> Run:
    """Top-``depth`` passages per query over a collection held in shards (each ``(vectors, ids)``,
    e.g. memory-mapped ``.npy`` files of :mod:`xqglib.sharding`; an iterator keeps one shard in
    memory at a time):
    each shard is searched exactly and FAISS's ``ResultHeap`` keeps the best ``depth`` across them,
    so the run equals :func:`search` over the concatenated collection (up to the order of tied
    scores)."""
    queries = np.ascontiguousarray(query_emb, dtype=np.float32)
    heap = faiss.ResultHeap(len(queries), depth, keep_max=True)
    all_ids: list[str] = []
    for vectors, ids in shards:
        if len(ids) == 0:
            continue
        index = _index(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        scores, rows = index.search(queries, min(depth, len(ids)))
        offset = len(all_ids)
        heap.add_result(scores, np.where(rows >= 0, rows + offset, -1).astype(np.int64))
        all_ids.extend(ids)
    heap.finalize()
    return {qid: {all_ids[r]: float(s) for s, r in zip(srow, rrow) if r >= 0}
            for qid, srow, rrow in zip(query_ids, heap.D, heap.I)}
