"""Report tables: numbers computed by hand."""

from __future__ import annotations

import pytest

from xqglib.reporting import timings_table


def test_timings_total_counts_the_training_time_of_a_reused_model():
    timings = {
        "1 data": {"seconds": 2.0},
        # a rerun reused this model: the stage took 0.5 s, the training it stands for 100 s
        "2 train generator g": {"seconds": 0.5, "training seconds": 100.0},
        "4 train retriever r": {"seconds": 51.0, "training seconds": 50.0},
        "5 encode r": {"seconds": 10.0},
    }
    table = timings_table(timings)
    assert table.loc["total", "seconds"] == pytest.approx(2.0 + 100.0 + 51.0 + 10.0)
    assert table.loc["2 train generator g", "seconds"] == 0.5  # the rows stay as recorded
