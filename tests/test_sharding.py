"""Sharded work: contiguous slices, lazy streaming, shards merged with every id once."""

from __future__ import annotations

import numpy as np
import pytest

from xqglib.core.errors import UserError
from xqglib.core.sharding import merge_shards, shard_done, shard_range, take_shard, write_shard


def test_shard_ranges_cover_everything_once():
    assert [shard_range(10, r, 3) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    assert [shard_range(2, r, 4) for r in range(4)] == [(0, 1), (1, 2), (2, 2), (2, 2)]
    for n in range(0, 30):
        for world in range(1, 6):
            covered = [i for r in range(world) for i in range(*shard_range(n, r, world))]
            assert covered == list(range(n))
    with pytest.raises(ValueError):
        shard_range(5, 2, 2)


def test_a_shard_is_read_lazily():
    consumed = []

    def stream():
        for i in range(1000):
            consumed.append(i)
            yield i

    assert list(take_shard(stream(), 1000, 0, 4)) == list(range(250))
    assert len(consumed) == 250  # nothing after the slice was read


def test_merge_checks_every_id_once(tmp_path):
    stem = tmp_path / "passages"
    ids = [f"d{i}" for i in range(7)]
    vectors = np.arange(14, dtype=np.float32).reshape(7, 2)
    for rank in range(3):
        start, stop = shard_range(7, rank, 3)
        assert not shard_done(stem, rank, 3)
        write_shard(stem, rank, 3, vectors[start:stop], ids[start:stop])
    merged, merged_ids = merge_shards(stem, 3, ids)
    assert merged_ids == ids and np.array_equal(merged, vectors)
    on_disk, disk_ids = merge_shards(stem, 3, ids, dest=tmp_path / "out" / "passages.npy")  # shard by shard
    assert disk_ids == ids and np.array_equal(np.load(tmp_path / "out" / "passages.npy"), vectors)
    assert np.array_equal(on_disk, vectors) and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["passages.npy"]
    with pytest.raises(UserError, match="do not hold the corpus in order"):
        merge_shards(stem, 3, ids[::-1])
    write_shard(stem, 2, 3, vectors[:1], ["d0"])  # a rank that wrote the wrong slice
    with pytest.raises(UserError, match="more than one shard"):
        merge_shards(stem, 3)
    with pytest.raises(UserError, match=r"shards \[0, 1, 2, 3\] of 4"):
        merge_shards(stem, 4)  # shards of another world size are not these


def test_ranks_stream_their_slices_of_an_xor_format_corpus(tmp_path):
    from xqglib.data.sources import iter_xor_corpus

    path = tmp_path / "psgs.tsv"
    path.write_text("id\ttext\ttitle\n" + "".join(f"{i}\tpassage {i}\tTitle {i}\n" for i in range(11)),
                    encoding="utf-8")
    shards = [[p.docid for p in take_shard(iter_xor_corpus(path), 11, rank, 3)] for rank in range(3)]
    assert shards == [[str(i) for i in range(0, 4)], [str(i) for i in range(4, 8)], [str(i) for i in range(8, 11)]]
