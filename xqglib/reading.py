"""The extractive reader's span decoding (issue 13): from a question-answering head's start and end
logits to an answer string, as Hugging Face's question-answering post-processing does it.

A span (s, e) of context tokens scores start[s] + end[e]; it is valid when both tokens belong to
the context (their character offsets are known), s <= e, and it holds at most
``max_answer_tokens`` tokens. The best valid span among the ``n_best`` highest start and end
logits is the answer; over several passages (the top-k retrieved), the answer is the best
span of any passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    text: str
    score: float
    passage: int  # which of the passages read it came from
    start_char: int
    end_char: int


def best_span(start_logits: Sequence[float], end_logits: Sequence[float],
              offsets: Sequence[tuple[int, int] | None], context: str, passage: int = 0,
              max_answer_tokens: int = 30, n_best: int = 20) -> Span | None:
    """The best valid span of one passage; ``offsets[i]`` is token i's (start, end) character span
    in ``context``, None for tokens outside it (question, special tokens, padding)."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    starts = np.argsort(start_logits)[::-1][:n_best]
    ends = np.argsort(end_logits)[::-1][:n_best]
    best: Span | None = None
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_tokens:
                continue
            score = float(start_logits[s] + end_logits[e])
            if best is None or score > best.score:
                first, last = offsets[s][0], offsets[e][1]
                best = Span(context[first:last], score, passage, first, last)
    return best


def best_over_passages(spans: Sequence[Span | None]) -> Span | None:
    """The highest-scoring span over the passages read (None when no passage gave one)."""
    found = [s for s in spans if s is not None]
    return max(found, key=lambda s: s.score) if found else None
