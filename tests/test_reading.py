"""The reader's span decoding on a hand-made example."""

from __future__ import annotations

from xqglib.method.reading import Span, best_over_passages, best_span

CONTEXT = "Warsaw is the capital of Poland."
#          0      7  10  14      22 25
# tokens: [CLS] where ? [SEP] Warsaw is the capital of Poland . [SEP]
OFFSETS = [None, None, None, None, (0, 6), (7, 9), (10, 13), (14, 21), (22, 24), (25, 31), (31, 32), None]


def test_the_best_valid_span_by_hand():
    start = [9.0, 0, 0, 0, 3.0, 0, 0, 1.0, 0, 0.5, 0, 0]   # [CLS] is best but not in the context
    end = [9.0, 0, 0, 0, 2.5, 0, 0, 0.2, 0, 4.0, 0, 0]
    span = best_span(start, end, OFFSETS, CONTEXT)
    # candidates: (4, 4) 3 + 2.5 = 5.5; (4, 9) 3 + 4 = 7.0; (9, 9) 4.5; (7, 9) 5.0
    assert span == Span("Warsaw is the capital of Poland", 7.0, 0, 0, 31)
    # with at most 3 tokens, (4, 9) is too long: the best is (4, 4), 5.5
    assert best_span(start, end, OFFSETS, CONTEXT, max_answer_tokens=3).text == "Warsaw"
    # an end before its start is never taken
    assert best_span([0, 0, 0, 0, 0, 0, 0, 0, 0, 5.0, 0, 0], [0, 0, 0, 0, 5.0, 0, 0, 0, 0, 0, 0, 0],
                     OFFSETS, CONTEXT, n_best=1) is None


def test_the_best_span_over_passages():
    a, b = Span("x", 1.0, 0, 0, 1), Span("y", 2.5, 1, 0, 1)
    assert best_over_passages([a, None, b]) == b
    assert best_over_passages([None]) is None
