"""Exact inner-product search with FAISS (IndexFlatIP), as the paper."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import faiss
import numpy as np

from xqglib.core.formats import Run, read_json
from xqglib.core.sharding import shard_paths, sharded_encoding
from xqglib.method.augmentation import passage_vectors


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
    e.g. memory-mapped ``.npy`` files of :mod:`xqglib.core.sharding`; an iterator keeps one shard in
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


class RetrieverSearch:
    """The runs of one retriever's conditions (stage 5's Table 1 systems, stage 6's sweeps): passage
    vectors fused as each condition says and searched exactly. After a sharded encoding
    (``python -m xqglib encode``) this happens shard by shard, memory-mapped, one shard's vectors in
    memory at a time (:func:`xqglib.method.search.search_shards`); otherwise on the whole matrices."""

    def __init__(self, cfg: Any, rd: Any, name: str, corpus_ids: list[str], query_ids: list[str]) -> None:
        self.rd, self.name, self.corpus_ids, self.query_ids = rd, name, corpus_ids, query_ids
        self.depth = cfg.evaluation.search_depth
        self.sharded = sharded_encoding(rd, name)
        if self.sharded is None:
            self.emb = rd.load_embeddings(name, corpus_ids, query_ids)
        else:
            self.queries = np.load(rd.embeddings(name, "queries"))
            self.meta = read_json(rd.embeddings_meta(name, "generated"))

    def run(self, condition: Any) -> dict[str, dict[str, float]]:
        if self.sharded is None:
            vectors = passage_vectors(self.emb, self.corpus_ids, condition.alpha, n=condition.n)
            return search(vectors, self.corpus_ids, self.emb["queries"], self.query_ids, self.depth)
        return search_shards(self._fused_shards(condition), self.queries, self.query_ids, self.depth)

    def _fused_shards(self, condition: Any) -> Iterator[tuple[np.ndarray, list[str]]]:
        world = self.sharded["processes"]
        bounds = zip(self.sharded["bounds"]["passages"], self.sharded["bounds"]["generated"])
        stem = self.rd.path("embeddings", self.name, "shards")
        for rank, ((a, b), (ga, gb)) in enumerate(bounds):
            shard = {"passages": np.load(shard_paths(stem / "passages", rank, world)[0], mmap_mode="r"),
                     "generated": np.load(shard_paths(stem / "generated", rank, world)[0], mmap_mode="r"),
                     "generated_meta": self.meta[ga:gb]}
            yield passage_vectors(shard, self.corpus_ids[a:b], condition.alpha, n=condition.n), self.corpus_ids[a:b]
