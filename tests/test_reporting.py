"""Timing records and reuse: the seconds a run counts, from records written by the real code; the training summary."""

from __future__ import annotations

import pytest

from xqglib.core.artifacts import RunDir
from xqglib.core.reuse import earlier, remember
from xqglib.core.timing import Timing, read_timings, work_seconds
from xqglib.pipeline import stages as S
from xqglib.study.tables import timings_table


def test_timings_total_counts_the_training_time_of_a_reused_model():
    timings = [Timing(1, "data", seconds=2.0),
               # a rerun reused this model: the part took 0.5 s, the training it stands for 100 s
               Timing(2, "train-generator", "g", seconds=0.5, work="training", work_seconds=100.0, reused=True),
               Timing(4, "train-retriever", "r", seconds=51.0, work="training", work_seconds=50.0),
               Timing(5, "encode-search", "encode r", seconds=10.0)]
    table = timings_table(timings)
    # the reuse's own 0.5 s and the training it stands for; a part's own training is in its wall time
    assert table.loc["total", "seconds"] == pytest.approx(2.0 + 0.5 + 100.0 + 51.0 + 10.0)
    assert table.loc["2 train-generator: g", "seconds"] == 0.5  # the rows stay as recorded
    assert table.loc["2 train-generator: g", "reused"] == "yes"
    assert work_seconds(timings, 2, "g") == 100.0 and work_seconds(timings, 5, "encode r") == 10.0
    assert work_seconds(timings, 3, "g") is None


def test_a_reused_work_counts_the_seconds_it_took(tmp_path):
    """A part that reuses work records the seconds kept in the work's record; a changed
    fingerprint or a missing output is not reused; records carry stage and part as fields."""
    rd = RunDir(tmp_path)
    record, output = tmp_path / "generated.fingerprint.json", tmp_path / "generated.jsonl"
    made_from = {"generator": "abc", "settings": {"n": 5}}
    output.write_text("{}\n")
    remember(record, made_from, 720.5)
    with S.timed(rd, "generate", "g") as timing:
        found = earlier(record, made_from, [output])
        timing.did("generation", found["seconds"], reused=True)
    with S.timed(rd, "evaluate"):
        assert earlier(record, {**made_from, "settings": {"n": 4}}, [output]) is None
        assert earlier(record, made_from, [tmp_path / "missing.jsonl"]) is None
    timings = read_timings(rd.timings)
    assert [(t.stage, t.stage_name, t.part) for t in timings] == [(3, "generate", "g"), (6, "evaluate", None)]
    generate, evaluate = timings
    assert generate.work_seconds == 720.5 and generate.reused and generate.seconds < 5
    assert evaluate.work_seconds is None
    assert timings_table(timings).loc["total", "seconds"] == pytest.approx(
        generate.seconds + 720.5 + evaluate.seconds)


def test_timings_of_an_earlier_format_are_dropped_not_fatal(tmp_path, capsys):
    from xqglib.core.formats import write_json

    rd = RunDir(tmp_path)
    write_json(rd.timings, {"2 train-generator: g": {"seconds": 3.0, "training seconds": 2.0}})
    assert read_timings(rd.timings) == []
    S.forget_timings(rd, S.select(1))  # what a rerun does first
    assert "earlier version" in capsys.readouterr().out and read_timings(rd.timings) == []


def test_timing_a_part_again_replaces_its_record(tmp_path):
    rd = RunDir(tmp_path)
    for _ in range(2):
        with S.timed(rd, "generate", "g", n=2):
            pass
    with S.timed(rd, "generate", "h"):
        pass
    assert [(t.part, t.details) for t in read_timings(rd.timings)] == [("g", {"n": 2}), ("h", {})]


def test_the_training_summary_keeps_the_criterions_checkpoint():
    from xqglib.method.convergence import Convergence
    from xqglib.study.tables import training_summary

    # the dev loss keeps falling while the dev MRR@10 peaks at step 2
    log = [{"step": s, "loss": 2.0 - s / 10, "passes": s / 2, "dev_loss": 1.0 - s / 10, "dev_mrr": mrr}
           for s, mrr in ((1, 0.40), (2, 0.55), (3, 0.50), (4, 0.52))]
    c = Convergence(min_passes=1.0, eval_share=0.5, patience=2, max_passes=2.0, measure="dev_mrr")
    row = training_summary({"xdr": log}, c, batch_size=4).loc["xdr"]
    assert row["kept: step"] == 2 and row["kept: dev MRR@10"] == 0.55 and row["kept: dev loss"] == 0.8
    assert row["best dev loss"] == 0.6 and row["best dev MRR@10"] == 0.55 and row["examples seen"] == 16
    assert row["converged"].startswith("yes: no new best dev MRR@10 in the last 2 evaluations")
    by_loss = training_summary({"xdr": log}, None, batch_size=4).loc["xdr"]
    assert by_loss["kept: step"] == 4 and "converged" not in by_loss
