"""Atomic writes and file formats."""

from __future__ import annotations

import pytest

from xqglib.core.errors import UserError
from xqglib.core.formats import atomic_open, read_jsonl, read_qrels, write_jsonl, write_qrels


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"a": 1}])
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("partial")
            raise RuntimeError("interrupted")
    assert read_jsonl(path) == [{"a": 1}]  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(UserError, match="bad.jsonl, line 2"):
        read_jsonl(path)


def test_qrels_roundtrip(tmp_path):
    qrels = {"q1-ar": {"Super_Bowl_50#3": 1}, "q2-th": {"Warsaw#0": 1}}
    write_qrels(tmp_path / "q.txt", qrels)
    assert read_qrels(tmp_path / "q.txt") == qrels
