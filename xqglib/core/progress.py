"""Progress a person can see, wherever the work runs.

A long loop reports through :func:`progress`, an iterable wrapper (or a counter, with ``total``).
It writes to the terminal of the command that runs the pipeline, even from inside a notebook
kernel that papermill drives: ``sys.__stderr__`` of a kernel is the stream it inherited from the
command. On a terminal that is a live bar; elsewhere (a log file, CI) it is one line at least
every 30 s with what is being done, how far it is, the rate and an estimate of what remains.
When the loop ends, the notebook (``sys.stdout``) gets one summary line, so executed pages show
what ran without the bar's noise.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.std import tqdm

T = TypeVar("T")

#: Seconds between two progress lines when the terminal is not a terminal (a log file, CI).
LINE_EVERY = 30.0


class _Lines(io.TextIOBase):
    """Turns tqdm's carriage-return redraws into whole lines (for logs)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for part in text.replace("\r", "\n").split("\n"):
            part = part.rstrip()
            if part.strip() and part != self.last:
                self.stream.write(part + "\n")
                self.last = part
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _terminal() -> tuple[Any, bool]:
    stream = sys.__stderr__ or sys.stderr
    try:
        return stream, stream.isatty()
    except (AttributeError, ValueError):
        return stream, False


class progress(tqdm):  # noqa: N801 - used like tqdm
    """``tqdm`` to the pipeline's terminal (see the module docstring); a summary line at the end."""

    def __init__(self, iterable: Iterable[T] | None = None, desc: str = "", total: float | None = None,
                 unit: str = "it", quiet: bool = False, **kwargs: Any) -> None:
        stream, live = _terminal()
        self._quiet = quiet
        self._began = time.perf_counter()
        super().__init__(iterable, desc=desc, total=total, unit=unit, disable=quiet,
                         file=stream if live else _Lines(stream), mininterval=0.5 if live else LINE_EVERY,
                         maxinterval=LINE_EVERY, dynamic_ncols=live, ncols=None if live else 100,
                         ascii=not live, leave=True, **kwargs)
        # a line at least every LINE_EVERY seconds, even while one step takes longer than that
        self._stop = threading.Event()
        if not quiet:
            every = 1.0 if live else LINE_EVERY
            threading.Thread(target=self._heartbeat, args=(every,), daemon=True).start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.refresh()
            except Exception:  # the bar was closed under us: nothing more to say
                return

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self._stop.set()
        done, total = self.n, self.total
        super().close()
        if not self._quiet and sys.stdout is not sys.__stdout__:  # inside a notebook: one summary line
            seconds = time.perf_counter() - self._began
            shown = f"{done:,.0f}" + (f" of {total:,.0f}" if total and total != done else "")
            print(f"{self.desc}: {shown} {self.unit} in {duration(seconds)}")


def duration(seconds: float) -> str:
    """``1h02m03s`` / ``2m03s`` / ``4.2s``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"
