"""The FLOP count of xqglib.study.cost against a hand count and against PyTorch's own FLOP counter on
tiny models of the real architectures (eager attention, so that the attention products are
matrix products the counter sees)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModel, AutoModelForCausalLM

from xqglib.method.generator import QueryGenerator
from xqglib.models.builds import build_model
from xqglib.models.registry import load_tokenizer
from xqglib.study.cost import TransformerShape, compaction_row_steps, cost_table, generator_training_flops, stage_row


def counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_shape_by_hand():
    """tiny-gemma3: 2 layers, hidden 32, 2 heads and 1 key/value head of 16, MLP 64 (gated):
    per layer q and o 2 x 32 x 32, k and v 2 x 32 x 16, MLP 3 x 32 x 64 = 9,216 weights."""
    model = AutoModelForCausalLM.from_pretrained(build_model("tiny-gemma3"))
    shape = TransformerShape.from_config(model.config)
    assert shape.body_weights == 2 * (2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64) == 18_432
    # 10 positions, the head (250,002 rows) at 4 of them, 55 attended pairs
    assert shape.forward(10, 4, attended=55) == 2 * 18_432 * 10 + 2 * 32 * 250_002 * 4 + 4 * 2 * 2 * 16 * 55


@pytest.mark.parametrize("name", ["tiny-gemma3", "tiny-bert"])
def test_forward_count_matches_torch(name):
    cls = AutoModelForCausalLM if name == "tiny-gemma3" else AutoModel
    model = cls.from_pretrained(build_model(name), attn_implementation="eager").eval()
    shape = TransformerShape.from_config(model.config)
    batch, width = 3, 20
    ids = torch.randint(5, 200, (batch, width))
    with torch.no_grad():
        if name == "tiny-gemma3":
            torch_count = counted(lambda: model(input_ids=ids))  # body and LM head at every position
            ours = shape.forward(batch * width, head_positions=batch * width, attended=batch * width * width)
        else:
            torch_count = counted(lambda: model(input_ids=ids))
            ours = shape.forward(batch * width, attended=batch * width * width)
    # what the count leaves out: rotary frequencies (Gemma), the unused pooler (BERT)
    assert ours == pytest.approx(torch_count, rel=0.01)


def test_generator_training_step_matches_torch():
    """One training step of the real loss (forward and backward, frozen tied embedding): the
    count from the step's logged positions equals torch's count of the same step."""
    model = AutoModelForCausalLM.from_pretrained(build_model("tiny-gemma3"), attn_implementation="eager")
    model.get_input_embeddings().weight.requires_grad_(False)
    gen = QueryGenerator(model, load_tokenizer("tiny-gemma3"), "decoder", 64, 24)
    pairs = [{"lang": "de", "title": "Warsaw", "text": "Warsaw is the capital of Poland.",
              "question": "Was ist die Hauptstadt von Polen?"},
             {"lang": "th", "title": "Super Bowl 50", "text": "The Broncos defeated the Panthers 24–10.",
              "question": "ใครชนะซูเปอร์โบวล์ 50"}]
    batch = gen.collate(pairs)
    torch_count = counted(lambda: gen.loss(batch).backward())
    row = {"positions": batch.input_ids.numel(), "head_positions": int((batch.labels != -100).sum())}
    ours = generator_training_flops(TransformerShape.from_config(model.config), [row], len(pairs), 0, True)
    assert ours == pytest.approx(torch_count, rel=0.02)
    assert generator_training_flops(TransformerShape.from_config(model.config), [{"step": 1}], 2, 0, True) is None


def test_the_roof_is_the_best_trial_of_2_n_cubed_flops(monkeypatch):
    """On a clock whose products take 0.5, 0.25, then 1.0 s, the roof counts 2 n^3 FLOPs a
    product and keeps the best trial (interference only ever slows one down)."""
    from xqglib.study import cost

    durations = iter([0.5, 0.25, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    now = [0.0]
    calls = []

    def clock() -> float:
        # readings: the deadline, then (loop test, start, end) per product; a product takes the
        # next duration, the other readings move time a microsecond
        calls.append(now[0])
        now[0] += next(durations) if len(calls) >= 4 and (len(calls) - 4) % 3 == 0 else 1e-6
        return now[0]

    monkeypatch.setattr(cost.time, "perf_counter", clock)
    assert cost.measure_roof(seconds=0.0, size=64) == pytest.approx(2 * 64**3 / 0.25, rel=1e-4)


def test_cost_table_and_roof():
    table = cost_table([stage_row("a", "x", 4e12, 10.0, 1e12), stage_row("b", "y", 2e12, None, 1e12)])
    assert list(table["stage"]) == ["a", "b", "total"]
    assert table.loc[0, "roof s"] == 4.0 and table.loc[0, "share of roof (%)"] == 40.0
    assert pd.isna(table.loc[1, "share of roof (%)"])
    assert table.loc[2, "TFLOP"] == 6.0 and table.loc[2, "wall s"] == 10.0 and table.loc[2, "roof s"] == 6.0
    assert table.loc[2, "share of roof (%)"] == 40.0  # over the stages with a wall time


def test_the_study_summary_sums_each_question_and_the_whole():
    from xqglib.study.cost import study_summary

    rq1 = cost_table([stage_row("2 a", "x", 4e12, 10.0, 1e12), stage_row("3 b", "y", 2e12, 5.0, 1e12)])
    rq2 = cost_table([stage_row("7 c", "z", 3e12, 12.0, 1e12), stage_row("8 d", "w", 9e12, None, 1e12)])
    summary = study_summary({"RQ1": rq1, "RQ2": rq2})
    assert list(summary.index) == ["RQ1", "RQ2", "whole study"]
    assert summary.loc["RQ1", "wall min"] * 60 == pytest.approx(15.0) and summary.loc["RQ1", "roof min"] * 60 == 6.0
    assert summary.loc["RQ1", "share of roof (%)"] == pytest.approx(40.0)
    # a stage without a wall time counts in neither sum
    assert summary.loc["RQ2", "roof min"] * 60 == pytest.approx(3.0) and summary.loc["RQ2", "stages"] == 1
    assert summary.loc["whole study", "wall min"] * 60 == pytest.approx(27.0)
    assert summary.loc["whole study", "wall / roof"] == pytest.approx(27.0 / 9.0)
    assert summary.loc["whole study", "stages"] == 3


def test_the_paper_cost_sheet_counts_by_hand():
    from xqglib.study import cost as C

    sheet = C.paper_cost_sheet(queries_per_passage=5, passages=2)
    # mBERT over 2 passages of 128 tokens: 2 x weights per position, plus 4 x layers x heads x
    # head_dim per attended (query, key) pair
    weights = 12 * (768 * 64 * 48 + 2 * 768 * 3072)
    by_hand = 2 * weights * 256 + 4 * 12 * 12 * 64 * 2 * 128 ** 2
    assert sheet.loc[("5 encode", "mBERT: 2 passages"), "PFLOP"] == pytest.approx(by_hand / 1e15)
    assert sheet.loc[("5 encode", "mBERT: 10 generated queries"), "disk GB"] == pytest.approx(10 * 768 * 4 / 1e9)
    assert sheet.loc[("total", ""), "PFLOP"] == pytest.approx(sheet["PFLOP"].iloc[:-1].sum())
    # at full scale: 630M generated queries, whose vectors are most of the disk
    full = C.paper_cost_sheet()
    assert full.loc[("5 encode", "mBERT: 630,000,000 generated queries"), "disk GB"] == pytest.approx(630e6 * 3072 / 1e9)
    assert C.gpu_hours(full, 1000.0).iloc[-1] == pytest.approx(full["PFLOP"].iloc[-1] * 1e3 / 1000 / 3600)


def test_decoder_row_steps_of_stopped_rows_by_hand():
    # four rows sampling 1, 3, 3 and 5 tokens (stop included), 5 at most: a row runs the body
    # after each token but its last, so compacting at every step costs 0 + 2 + 2 + 4 = 8 row-steps
    assert compaction_row_steps([1, 3, 3, 5], 5, None) == 8
    # in a batch this small the first stopped row is already an eighth: sampler 2 does the same
    assert compaction_row_steps([1, 3, 3, 5], 5) == 8
    # nine rows, one stopping at once: 1 of 9 is less than an eighth, so sampler 2 keeps running
    # it for all 4 steps (9 x 4 = 36); dropping it at once costs 8 x 4 = 32
    assert compaction_row_steps([1] + [5] * 8, 5) == 36
    assert compaction_row_steps([1] + [5] * 8, 5, None) == 32
    # rows longer than the cap stop at the cap; every row stopped ends the loop
    assert compaction_row_steps([9, 9], 3, None) == 4
    assert compaction_row_steps([1, 1], 5) == 0


def test_the_retriever_padding_lever_by_hand(tmp_path):
    from xqglib.config.profiles import load_profile
    from xqglib.core.artifacts import RunDir
    from xqglib.core.formats import write_jsonl
    from xqglib.method.encoding import TRAINING_GROUP
    from xqglib.study.cost import levers

    cfg = load_profile("smoke", {"retriever": {"batch_size": 6, "negatives": 0}})
    rd = RunDir(tmp_path)
    words = [1, 9, 2, 30, 3, 4]  # one batch of 6 queries, no negatives: 6 passages
    write_jsonl(rd.retriever_rows("crosslingual"),
                [{"query": "q " * n, "positive_passages": [{"title": "t", "text": "w " * (2 * n)}],
                  "negative_passages": [{"title": "t", "text": "x"}]} for n in words])
    table = levers(cfg, rd).set_index("lever")
    tok, r = load_tokenizer(cfg.retriever.encoder), cfg.retriever
    count = (lambda texts, cap: sorted(len(x) for x in tok(texts, truncation=True, max_length=cap)["input_ids"]))
    groups = [count(["q " * n for n in words], r.query_max_len), count(["t " + "w " * (2 * n) for n in words], r.passage_max_len)]
    before = table.loc["retriever training, one padded batch per group (before)"]
    now = table.loc[f"retriever training, texts by length in chunks of {TRAINING_GROUP} on a CPU (now)"]
    assert before["needed"] == now["needed"] == sum(map(sum, groups))
    assert before["as run"] == sum(6 * g[-1] for g in groups)
    chunks = [g[k:k + TRAINING_GROUP] for g in groups for k in range(0, 6, TRAINING_GROUP)]
    assert now["as run"] == sum(len(c) * c[-1] for c in chunks) < before["as run"]
