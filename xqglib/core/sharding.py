"""Work split across processes: each rank takes a contiguous slice of a corpus, streams
it (never the whole collection in memory), writes its own shard of vectors with their ids, and a
merge step checks that every document is there exactly once, in corpus order.

Shards are named ``<stem>.shard-<rank>-of-<world>.npy`` with the ids beside them in
``.ids.json``; a rank that finished leaves both, so a rerun skips finished shards (resumable per
shard).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, read_jsonl, write_json, write_jsonl


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous slice [start, stop) of ``n`` items that rank ``rank`` of ``world`` takes:
    sizes differ by at most one, earlier ranks take the extra items."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not one of {world} processes")
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def take_shard(items: Iterable[Any], n: int, rank: int, world: int) -> Iterator[Any]:
    """Rank ``rank``'s slice of a stream of ``n`` items, read lazily (the stream is consumed only
    up to the slice's end)."""
    start, stop = shard_range(n, rank, world)
    return itertools.islice(items, start, stop)


def shard_paths(stem: Path, rank: int, world: int) -> tuple[Path, Path]:
    base = f"{stem.name}.shard-{rank}-of-{world}"
    return stem.with_name(base + ".npy"), stem.with_name(base + ".ids.json")


def write_shard(stem: Path, rank: int, world: int, vectors: np.ndarray, ids: Sequence[str]) -> None:
    """One rank's vectors and ids; the ids file is written last, so its presence marks a shard
    as finished."""
    if len(ids) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(ids)} ids")
    vectors_path, ids_path = shard_paths(stem, rank, world)
    vectors_path.parent.mkdir(parents=True, exist_ok=True)
    partial = vectors_path.with_name(vectors_path.name + ".partial.npy")
    np.save(partial, np.asarray(vectors, dtype=np.float32))
    partial.replace(vectors_path)
    write_json(ids_path, list(ids))


def shard_done(stem: Path, rank: int, world: int) -> bool:
    return all(p.exists() for p in shard_paths(stem, rank, world))


def merge_shards(stem: Path, world: int, expected_ids: Sequence[str] | None = None,
                 dest: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """The shards of ``world`` ranks joined in rank order; every id must occur once (and, where
    ``expected_ids`` is given, the ids must be exactly those, in that order). With ``dest`` the
    rows are copied shard by shard into that ``.npy`` file (written beside it, then renamed; one
    shard in memory at a time) and the result is that file, memory-mapped; otherwise they are
    concatenated in memory."""
    missing = [rank for rank in range(world) if not shard_done(stem, rank, world)]
    if missing:
        raise UserError(f"shards {missing} of {world} for {stem.name} are missing or unfinished; rerun those ranks")
    shards, ids = [], []
    for rank in range(world):
        vectors_path, ids_path = shard_paths(stem, rank, world)
        vectors, shard_ids = np.load(vectors_path, mmap_mode="r"), read_json(ids_path)
        if len(vectors) != len(shard_ids):
            raise UserError(f"{vectors_path} is out of step with its ids ({len(vectors)} rows, {len(shard_ids)} ids)")
        shards.append(vectors)
        ids.extend(shard_ids)
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]
    if repeated:
        raise UserError(f"{len(repeated)} ids occur in more than one shard (first: {repeated[:3]})")
    if expected_ids is not None and ids != list(expected_ids):
        absent = len(set(expected_ids) - seen)
        raise UserError(f"the shards of {stem.name} do not hold the corpus in order: {absent} ids missing, "
                        f"{len(seen - set(expected_ids))} unknown")
    if dest is None:
        return np.concatenate(shards) if shards else np.zeros((0, 0), np.float32), ids
    dim = next((v.shape[1] for v in shards if v.ndim == 2), 0)
    partial = dest.with_name(dest.name + ".partial.npy")
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(len(ids), dim))
    row = 0
    for vectors in shards:
        out[row:row + len(vectors)] = vectors
        row += len(vectors)
    out.flush()
    del out
    partial.replace(dest)
    return np.load(dest, mmap_mode="r"), ids


def rows_shard_path(stem: Path, rank: int, world: int) -> Path:
    return stem.with_name(f"{stem.name}.shard-{rank}-of-{world}.jsonl")


def write_rows_shard(stem: Path, rank: int, world: int, rows: Sequence[dict[str, Any]]) -> None:
    """One rank's rows (e.g. generated queries, released xQG format), written whole or not at all:
    the file's presence marks the shard as finished."""
    write_jsonl(rows_shard_path(stem, rank, world), rows)


def merge_rows_shards(stem: Path, world: int, key: str, expected: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of ``world`` shards, in the order of ``expected`` (values of ``key``): every one
    must occur exactly once across the shards."""
    missing = [rank for rank in range(world) if not rows_shard_path(stem, rank, world).exists()]
    if missing:
        raise UserError(f"shards {missing} of {world} for {stem.name} are missing or unfinished; rerun those ranks")
    by_key: dict[str, dict[str, Any]] = {}
    repeated = []
    for rank in range(world):
        for row in read_jsonl(rows_shard_path(stem, rank, world)):
            if row[key] in by_key:
                repeated.append(row[key])
            by_key[row[key]] = row
    absent = [k for k in expected if k not in by_key]
    if repeated or absent or len(by_key) != len(expected):
        raise UserError(f"the shards of {stem.name} do not hold every {key} once: {len(repeated)} repeated, "
                        f"{len(absent)} missing, {len(set(by_key) - set(expected))} unknown")
    return [by_key[k] for k in expected]


def encoding_record(rd: Any, name: str) -> Path:
    """Where ``python -m xqglib encode`` records a retriever's sharded encoding (processes, seconds,
    the fingerprint of its inputs, each process's bounds)."""
    return rd.path("embeddings", name, "sharded.json")


def sharded_encoding(rd: Any, name: str) -> dict[str, Any] | None:
    """The record of a retriever's encoding on several processes, or None (one process, or none)."""
    record = encoding_record(rd, name)
    if not record.exists():
        return None
    earlier = read_json(record)
    return earlier if earlier.get("processes", 1) > 1 and "bounds" in earlier else None

