"""File formats people already use, written atomically (temp file, then rename).

- Tevatron-style jsonl: corpus ``{"docid", "title", "text"}``, queries ``{"query_id", "query"}``,
  training ``{"query_id", "query", "positive_passages": [...], "negative_passages": [...]}``.
- TREC run files ``qid Q0 docid rank score tag`` and qrels ``qid 0 docid rel``.
- The released xQG jsonl: ``{"docid", "title", "text", "generated_queries": {lang: [str, ...]}}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from xqglib.core.errors import UserError


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as any other file
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npy(path: str | Path, array: Any) -> None:
    """``numpy.save`` through a temp file, so that an interrupted write leaves the old file."""

    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=1)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; run the stage that writes it first")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); replace it, or rerun "
                        "the stage that writes it") from None


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; run the stage that writes it first")
    try:
        return _read_jsonl_lines(path)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None


def _read_jsonl_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}, line {lineno}: not valid JSON ({exc.msg})") from None
    return rows


def _decode_error(path: Path, exc: UnicodeDecodeError) -> UserError:
    return UserError(f"{path} is not UTF-8 text (byte {exc.start}); the file is damaged: replace it, "
                     "or rerun the stage that writes it")


Run = dict[str, dict[str, float]]
"""A ranking: query id -> {docid: score}."""


def write_trec_run(path: str | Path, run: Run, tag: str) -> None:
    """TREC run file, ranks from 1 in descending score order. Scores are written at full
    precision (the shortest text that reads back as the same float) and ties keep the run's own
    order (FAISS's, as the official pipeline keeps it), so the file ranks exactly as the run."""
    with atomic_open(path) as handle:
        for qid, docs in run.items():
            for rank, docid in enumerate(ranked_docids(docs), 1):
                handle.write(f"{qid} Q0 {docid} {rank} {docs[docid]!r} {tag}\n")


def read_trec_run(path: str | Path) -> Run:
    run: Run = {}  # in file order: rank order, ties as written
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) != 6:
                raise UserError(f"{path}: not a TREC run line: {line.strip()!r}")
            qid, _, docid, _, score, _ = parts
            run.setdefault(qid, {})[docid] = float(score)
    return run


def ranked_docids(docs: dict[str, float]) -> list[str]:
    """Docids of one query's ranking, best first; ties keep the run's own order (a stable sort:
    FAISS's order for a search, file order for a TREC run)."""
    return [d for d, _ in sorted(docs.items(), key=lambda item: -item[1])]


def write_qrels(path: str | Path, qrels: dict[str, dict[str, int]]) -> None:
    with atomic_open(path) as handle:
        for qid, docs in qrels.items():
            for docid, rel in docs.items():
                handle.write(f"{qid} 0 {docid} {rel}\n")


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) != 4:
                raise UserError(f"{path}: not a qrels line: {line.strip()!r}")
            qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Generated queries, one record each
# --------------------------------------------------------------------------------------------

def generated_query_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten xQG rows into one record per generated query: docid, lang, slot (0..n-1), query."""
    return [{"docid": r["docid"], "lang": lang, "slot": slot, "query": q}
            for r in rows for lang, qs in r["generated_queries"].items() for slot, q in enumerate(qs)]
