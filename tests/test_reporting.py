"""Report tables: numbers computed by hand."""

from __future__ import annotations

import pytest

from xqglib.study.tables import timings_table


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


def test_a_reused_generation_counts_the_seconds_it_took(tmp_path):
    """A stage part that reuses a generated file records the generation's own seconds (kept in
    the file's fingerprint record), and the run's total counts them."""
    from xqglib.pipeline import stages as S
    from xqglib.core.artifacts import RunDir
    from xqglib.core.formats import read_json, write_json
    from xqglib.core.reuse import same_generation

    rd = RunDir(tmp_path)
    done = tmp_path / "generated.fingerprint.json"
    fingerprint = {"generator": "abc", "settings": {"n": 5}}
    write_json(done, {**fingerprint, "seconds": 720.5})
    with S.timed(rd, "generate", "g"):
        assert same_generation(done, fingerprint)
    with S.timed(rd, "evaluate"):  # a later block does not inherit it
        assert not same_generation(done, {**fingerprint, "settings": {"n": 4}})
    timings = read_json(rd.timings)
    record = timings["3 generate: g"]
    assert record["generation seconds"] == 720.5 and record["seconds"] < 5
    assert "generation seconds" not in timings["6 evaluate"]
    assert timings_table(timings).loc["total", "seconds"] == pytest.approx(720.5 + timings["6 evaluate"]["seconds"])
    # a record written before the seconds were kept still matches
    write_json(done, fingerprint)
    assert same_generation(done, fingerprint)
