"""Timing records: the wall time, peak memory and work of every part of a stage (``timings.json``).

A record names its stage (number and name) and part as fields. Where a part's work was reused
(a trained model, a generated file, a reading), the record keeps the seconds that work took when
it was done, so a run's total counts the work its results stand for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from xqglib.core.formats import read_json, write_json


@dataclasses.dataclass
class Timing:
    """One timed part of a stage."""

    stage: int
    stage_name: str
    part: str | None = None
    seconds: float = 0.0
    #: what the part's own work is ("training", "generation", "reading"), where it names one
    work: str | None = None
    #: the seconds of that work: measured now, or, where reused, when it was done
    work_seconds: float | None = None
    reused: bool = False
    peak_rss_gib: float | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.stage} {self.stage_name}" + (f": {self.part}" if self.part else "")

    @property
    def counted_seconds(self) -> float:
        """What the run's total counts: the wall time, and where the work was reused, the work's
        seconds too (the reuse took the wall time besides)."""
        return self.seconds + ((self.work_seconds or 0.0) if self.reused else 0.0)

    def did(self, work: str, seconds: float | None, reused: bool = False) -> None:
        """Record the part's own work and its seconds."""
        self.work, self.reused = work, reused
        self.work_seconds = None if seconds is None else round(float(seconds), 2)


def read_timings(path: Path) -> list[Timing]:
    """The records of ``timings.json``, in stage order (none if there is no file)."""
    if not path.exists():
        return []
    saved = read_json(path)
    if isinstance(saved, dict):  # written by a version before records had fields: its stages rerun
        print(f"{path}: timings of an earlier version's format; they are dropped")
        return []
    return sorted((Timing(**r) for r in saved), key=lambda t: t.stage)


def write_timings(path: Path, records: Iterable[Timing]) -> None:
    write_json(path, [dataclasses.asdict(t) for t in sorted(records, key=lambda t: t.stage)])


def find(records: Iterable[Timing], stage: int, part: str | None = None) -> Timing | None:
    """The record of one stage part, or None."""
    return next((t for t in records if t.stage == stage and t.part == part), None)


def work_seconds(records: Iterable[Timing], stage: int, part: str | None = None) -> float | None:
    """The seconds of one stage part's own work (its wall time where it names none); None if absent."""
    found = find(records, stage, part)
    if found is None:
        return None
    return found.work_seconds if found.work_seconds is not None else found.seconds


@contextlib.contextmanager
def timed(path: Path, stage: int, stage_name: str, part: str | None = None, **details: Any) -> Iterator[Timing]:
    """Time a block; its record (with ``details`` and what the block adds) replaces the earlier
    record of the same stage part in ``path``."""
    record = Timing(stage, stage_name, part, details=dict(details))
    started = time.perf_counter()
    yield record
    record.seconds = round(time.perf_counter() - started, 2)
    # ru_maxrss is in KiB on Linux: the peak of this process so far
    record.peak_rss_gib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    kept = [t for t in read_timings(path) if (t.stage, t.part) != (stage, part)]
    write_timings(path, [*kept, record])


def forget(path: Path, stages: Iterable[int]) -> None:
    """Drop the records of ``stages`` (they are about to be measured again)."""
    again = set(stages)
    if path.exists():
        write_timings(path, [t for t in read_timings(path) if t.stage not in again])
