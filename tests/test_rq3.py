"""The third research question: the matrix on a hand-made parallel set (and against the cell
definition of :mod:`xqglib.data.matrix`), no test-article question in any training file, the
text-level condition's exact text, the conditions' fusion by hand, ranks, tests and groups by
hand, and the reader's labels, training and reading on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from test_matrix import PARALLEL

from xqglib.config.profiles import load_profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.data import b1 as D
from xqglib.data import matrix as MX
from xqglib.evaluation import rq3 as V3
from xqglib.method import augmentation as AUG
from xqglib.method.encoding import DenseEncoder
from xqglib.method.reading import Reader, ReaderExample, best_over_passages, best_span, train_reader
from xqglib.models.registry import encoder_spec, load_reader, load_tokenizer
from xqglib.pipeline import rq1 as P1
from xqglib.pipeline import rq2 as P2
from xqglib.pipeline import rq3 as P3
from xqglib.study import rq3 as A3

SMOKE = load_profile("smoke")


def test_the_matrix_by_hand():
    split = {"Paris": "test", "Oxygen": "train"}
    rows = MX.matrix_rows(PARALLEL, split, ["en", "de"], ["en", "de"], ["de"])
    assert [(p["lang"], p["index"], p["text"]) for p in rows["passages"]] == [
        ("en", 0, "Paris is in France."), ("de", 0, "Paris liegt in Frankreich."),
        ("en", 1, "Oxygen is O."), ("de", 1, "Sauerstoff ist O."), ("en", 2, "It burns."), ("de", 2, "Er brennt.")]
    assert all(p["title"] == "" for p in rows["passages"])
    # only test- (and dev-) article questions are queries, in every query language
    assert [(q["lang"], q["qid"], q["index"]) for q in rows["questions"]] == [("en", "q1", 0), ("de", "q1", 0)]
    assert {(a["lang"], a["qid"]): a["answers"] for a in rows["answers"]} == {("en", "q1"): ["France"],
                                                                            ("de", "q1"): ["Frankreich"]}
    # generator pairs: train-article paragraphs in every passage language, questions in German
    assert [(g["docid"], g["question"]) for g in rows["generator_train"]] == [
        ("xquad-en-1-0", "Symbol von Sauerstoff?"), ("xquad-de-1-0", "Symbol von Sauerstoff?"),
        ("xquad-en-1-1", "Was tut er?"), ("xquad-de-1-1", "Was tut er?")]
    assert rows["generator_dev"] == []
    # the gold passage of a question is its paragraph, at the same index in every passage language
    de = {p["index"]: p for p in rows["passages"] if p["lang"] == "de"}
    assert [de[q["index"]]["text"] for q in rows["questions"]] == ["Paris liegt in Frankreich."] * 2
    # a test-question cap keeps only those questions
    capped = MX.matrix_rows(PARALLEL, {"Paris": "test", "Oxygen": "test"}, ["en"], ["en"], ["en"], ["q3"])
    assert [q["qid"] for q in capped["questions"]] == ["q3"]


def test_no_test_article_question_in_any_training_file(real_data, tmp_path):
    cfg = SMOKE
    rd = RunDir(tmp_path)
    P1.prepare_data(cfg, rd)
    P2.prepare_contrastive_data(cfg, rd)
    P3.prepare_rq3_data(cfg, rd)
    b1 = D.build_b1(cfg)
    test = set(b1.qids_of("test", b1.english_questions))
    assert test
    files = sorted((tmp_path / "data").glob("*train*.jsonl")) + sorted((tmp_path / "data").glob("*_dev.jsonl"))
    assert {f.name for f in files} >= {"rq3_generator_train.jsonl", "rq3_generator_dev.jsonl", "rq3_reader_train.jsonl",
                                       "generator_train.jsonl", "retriever_train_crosslingual.jsonl"}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            qid = row.get("qid") or row.get("id") or row["query_id"].rsplit("-", 1)[0]
            assert qid not in test, (path.name, qid)
    # the test questions are the queries, and every passage of every passage language is there
    questions = [json.loads(x) for x in (tmp_path / "data" / "rq3_questions.jsonl").read_text().splitlines()]
    assert {q["qid"] for q in questions if q["split"] == "test"} <= test
    passages = (tmp_path / "data" / "rq3_passages.jsonl").read_text().splitlines()
    assert len(passages) == 240 * len(cfg.rq3.passage_languages)


def test_the_text_condition_encodes_exactly_the_documented_text():
    tok = load_tokenizer("tiny-bert")
    encoder = DenseEncoder(None, tok, encoder_spec("me5-small"), 8, 16, False)
    passage = "Oxygen is a chemical element with symbol O and atomic number 8 in the periodic table of elements."
    corpus = [{"docid": "d0", "title": "", "text": passage}]
    texts = AUG.condition_texts(encoder, corpus, {"d0": ["What is O?", "Welches Element?"]})
    kept = AUG.clip_to_tokens(tok, " " + passage, 16, "passage: ")
    # the passage as the encoder keeps it (16 tokens, prefix and special tokens included), then the queries
    assert texts["text"] == [f"{kept.strip()} What is O? Welches Element?"]
    assert texts["querydocs"] == ["What is O? Welches Element?"]
    assert texts["passages"] == [" " + passage]
    assert len(tok("passage: " + kept)["input_ids"]) <= 16
    assert len(tok("passage: " + kept + passage[len(kept) - 1:][:12])["input_ids"]) > 16
    assert passage.startswith(kept.strip()) and len(kept.strip()) < len(passage)


def _vectors(cfg, passages, generated, generated_docids, querydocs, questions, question_meta):
    vec = V3.Vectors.__new__(V3.Vectors)
    vec.cfg = cfg
    vec.corpus = [{"docid": f"xquad-{lang}-0-{i}", "lang": lang, "index": i} for lang in ("en", "th") for i in range(2)]
    vec.rows = {"en": [0, 1], "th": [2, 3]}
    vec.passages, vec.text, vec.querydocs = passages, passages * 2, querydocs
    vec.generated, vec.generated_docids = generated, generated_docids
    vec.questions, vec.question_meta = questions, question_meta
    vec._matrices = {}
    vec.question_row = {(m["lang"], m["qid"]): i for i, m in enumerate(question_meta)}
    return vec


def test_the_conditions_fuse_and_score_as_documented():
    cfg = SMOKE
    rng = np.random.default_rng(0)
    passages = rng.normal(size=(4, 3)).astype(np.float32)
    generated = rng.normal(size=(8, 3)).astype(np.float32)
    docids = [d for d in ("xquad-en-0-0", "xquad-en-0-1", "xquad-th-0-0", "xquad-th-0-1") for _ in range(2)]
    querydocs = rng.normal(size=(4, 3)).astype(np.float32)
    questions = rng.normal(size=(2, 3)).astype(np.float32)
    meta = [{"qid": "q", "lang": "en", "split": "test"}, {"qid": "q", "lang": "th", "split": "test"}]
    vec = _vectors(cfg, passages, generated, docids, querydocs, questions, meta)
    alpha = cfg.rq3_alpha
    n = cfg.rq3_queries_per_passage
    assert alpha == pytest.approx(cfg.augmentation.alpha * 35 / n)
    # one rule for both questions: Table 1's alpha is the same function of its own query count
    per_passage = len(cfg.generation.languages) * cfg.generation.n_per_language
    assert cfg.scaled_alpha == pytest.approx(cfg.augmentation.alpha * 35 / per_passage)
    expected = (1 - alpha) * passages[2:] + alpha * (generated[[4, 6]] + generated[[5, 7]])
    np.testing.assert_allclose(vec.passage_matrix("xqg", "th"), expected, rtol=1e-6)
    # one other passage language (en): it gets the total weight of the queries
    np.testing.assert_allclose(vec.passage_matrix("translations", "th"),
                               (1 - alpha) * passages[2:] + alpha * n * passages[:2], rtol=1e-5)
    np.testing.assert_allclose(vec.passage_matrix("text", "en"), 2 * passages[:2])  # the expanded texts' vectors
    s = vec.scores("dual", "en", "th", ["q"], 0.3)
    np.testing.assert_allclose(s, 0.7 * questions[:1] @ passages[2:].T + 0.3 * questions[:1] @ querydocs[2:].T, rtol=1e-6)
    # the translated question is the question in the passage language
    np.testing.assert_allclose(vec.scores("query-translated", "en", "th", ["q"], 0), questions[1:] @ passages[2:].T)


def test_ranks_tests_and_groups_by_hand():
    scores = np.array([[0.1, 0.9, 0.5], [0.7, 0.7, 0.2]])
    assert V3.gold_ranks(scores, [2, 0]).tolist() == [2, 1]  # a tie is not counted against the gold
    assert V3.top_k(scores, 2).tolist() == [[1, 2], [0, 1]]
    measures = V3.rank_measures(np.array([1, 2, 11]))
    assert measures["recall@1"].tolist() == [100, 0, 0] and measures["mrr@10"].tolist() == [100, 50, 0]
    # tidy: one row per question and measure, in the results table's columns
    frame = V3.with_measures(pd.DataFrame({"condition": "none", "language": "ar", "query_id": ["a", "b", "c"],
                                           "rank": [1, 2, 11]}))
    assert {"benchmark", "condition", "language", "query_id", "measure", "value"} <= set(frame.columns)
    assert frame[frame["measure"] == "gold rank"]["value"].tolist() == [1, 2, 11]
    assert frame[frame["measure"] == "mrr@10"]["value"].tolist() == [100, 50, 0]
    rows = []
    values = {"none": [0, 0, 1, 1], "xqg": [1, 1, 1, 0]}
    for condition, vs in values.items():
        for cell in (("ar", "en"), ("en", "en")):
            rows += [{"retriever": "r", "condition": condition, "language": cell[0], "passage_language": cell[1],
                      "query_id": f"q{i}", "measure": "m", "value": v + (cell[0] == "en")} for i, v in enumerate(vs)]
    table = pd.DataFrame(rows)
    tests = A3.cell_tests(table, "m")
    p = stats.ttest_rel([1, 1, 1, 0], [0, 0, 1, 1]).pvalue
    assert tests["p"].tolist() == pytest.approx([p, p])
    assert tests["p_corrected"].tolist() == pytest.approx([min(1, 2 * p)] * 2)  # Bonferroni over 2 cells
    assert tests["diff"].tolist() == pytest.approx([0.25, 0.25])
    groups = A3.group_table(table, "m")
    # ar is low-resource (CC-100 28 GiB), en high; (en, en) is the same-language pair
    assert groups.at["none", "low-resource query"] == pytest.approx(0.5)
    assert groups.at["none", "high-resource query"] == pytest.approx(1.5)
    assert groups.at["xqg", "same-language"] == pytest.approx(1.75)
    assert groups.at["xqg", "cross-language"] == pytest.approx(0.75)
    assert np.isnan(groups.at["none", "low-resource passage"])
    assert A3.resource_group("hi") == "low" and A3.resource_group("th") == "high"
    counts = A3.significance_counts(tests)
    assert counts.loc[("r", "xqg"), "cells"] == 2


def test_rq3_generation_per_sampling_seed(tmp_path, capsys):
    """Stage 11's seed sweep: each further seed's file differs from the run seed's and from the
    other seed's, is the same file when generated again with its seed, is reused by its
    fingerprint (which leaves the list of further seeds out), and the run seed's fingerprint is
    the one it always had."""
    import shutil

    from xqglib.core.formats import sha256_file, write_jsonl
    from xqglib.core.reuse import fingerprint, weights_digest
    from xqglib.method.sampling import SAMPLER_VERSION
    from xqglib.models.registry import resolve
    from xqglib.study.experiments import RQ3_GENERATOR, seed_variant

    cfg = load_profile("smoke", {"generation.seeds": [314, 315]})
    rd = RunDir(tmp_path)
    shutil.copytree(resolve(cfg.primary_generator), rd.generator_model(RQ3_GENERATOR))
    rows = MX.matrix_rows(PARALLEL, {"Paris": "test", "Oxygen": "train"}, ["en", "de"], ["en", "de"], ["de"])
    for what in ("passages", "generator_train", "generator_dev"):
        write_jsonl(rd.rq3_data(what), rows[what])
    first = P3.generate_rq3(cfg, rd)
    sweep = {seed: P3.generate_rq3(cfg, rd, seed=seed) for seed in cfg.generation.seeds}
    files = {seed: rd.generated(seed_variant(RQ3_GENERATOR, seed)) for seed in cfg.generation.seeds}
    texts = {seed: path.read_bytes() for seed, path in files.items()}
    assert len({rd.generated(RQ3_GENERATOR).read_bytes(), *texts.values()}) == 3  # three seeds, three files
    assert [r["docid"] for r in sweep[314]] == [r["docid"] for r in first]
    # the run seed's record: the fingerprint stage 11 always wrote (generation.seeds included)
    made_from = fingerprint(generator=weights_digest(rd.generator_model(RQ3_GENERATOR)),
                            passages=sha256_file(rd.rq3_data("passages")), sampler=SAMPLER_VERSION,
                            settings=cfg.select(["generation", "rq3.generation_languages", "rq3.n_per_language", "run"]))
    assert json.loads(rd.generation_fingerprint(RQ3_GENERATOR).read_text())["fingerprint"] == made_from
    capsys.readouterr()
    # another list of further seeds: seed 314's file is reused, not sampled again
    assert P3.generate_rq3(load_profile("smoke", {"generation.seeds": [314]}), rd, seed=314) == sweep[314]
    assert "reusing" in capsys.readouterr().out
    # generated again with its seed: the same file
    files[314].unlink()
    P3.generate_rq3(cfg, rd, seed=314)
    assert "reusing" not in capsys.readouterr().out
    assert files[314].read_bytes() == texts[314]


def test_rq3_seed_encodings_and_retrieval(tmp_path, capsys):
    """Stages 11-12 of the seed sweep on tiny-bert: a further seed re-encodes only what depends on
    the generated queries (reused by fingerprint when encoded again), and its retrieval rows are the
    first seed's exactly where its queries are the first seed's."""
    from xqglib.core.formats import write_jsonl
    from xqglib.study.experiments import RQ3_GENERATOR, SEED_CONDITIONS, seed_variant

    cfg = load_profile("smoke", {"rq3.retrievers": ["base"], "rq3.query_languages": ["en", "de"],
                                 "rq3.passage_languages": ["en", "de"], "rq3.generation_languages": ["de"],
                                 "generation.seeds": [314, 315]})
    rd = RunDir(tmp_path)
    rows = MX.matrix_rows(PARALLEL, {"Paris": "test", "Oxygen": "dev"}, ["en", "de"], ["en", "de"], ["de"])
    for what in ("passages", "questions"):
        write_jsonl(rd.rq3_data(what), rows[what])

    def generated(words: str) -> list[dict]:
        return [{"docid": p["docid"], "title": "", "text": p["text"],
                 "generated_queries": {"de": [f"{words} {p['index']}?", f"{words} {p['lang']}?"]}} for p in rows["passages"]]

    write_jsonl(rd.generated(RQ3_GENERATOR), generated("Wo liegt"))
    write_jsonl(rd.generated(seed_variant(RQ3_GENERATOR, 314)), generated("Was brennt"))
    write_jsonl(rd.generated(seed_variant(RQ3_GENERATOR, 315)), generated("Wo liegt"))  # the first seed's queries
    P3.encode_rq3(cfg, rd, "base")
    assert P3.encode_rq3_seeds(cfg, rd, "base") == {314: 12, 315: 12}
    for what in P3.SEED_ENCODED:
        assert not np.allclose(np.load(rd.rq3("base", f"{what}.seed-314")), np.load(rd.rq3("base", what)))
        np.testing.assert_allclose(np.load(rd.rq3("base", f"{what}.seed-315")), np.load(rd.rq3("base", what)), rtol=1e-5)
    capsys.readouterr()
    P3.encode_rq3_seeds(cfg, rd, "base")
    assert capsys.readouterr().out.count("reusing base's encodings") == 2
    corpus, questions = rows["passages"], rows["questions"]
    vec = V3.Vectors(cfg, rd, "base", corpus)
    weight = max(V3.choose_dual_weight(cfg, vec, questions, "base").items(), key=lambda kv: (kv[1], -kv[0]))[0]
    first = V3.with_measures(V3.retrieval_rows(cfg, vec, questions, "base", "test", weight)[0])
    seeds, weights = V3.seed_retrieval(cfg, rd, corpus, questions, list(first.columns))
    assert list(seeds.columns) == [*first.columns, "seed"] and set(weights["base"]) == {"314", "315"}
    assert set(seeds["condition"]) == set(SEED_CONDITIONS) and set(seeds["seed"]) == {314, 315}
    same = seeds[seeds["seed"] == 315].drop(columns="seed").reset_index(drop=True)
    ours = first[first["condition"].isin(SEED_CONDITIONS)].reset_index(drop=True)
    np.testing.assert_allclose(same["value"], ours["value"])
    assert same.drop(columns="value").equals(ours.drop(columns="value"))
    none, _ = V3.seed_retrieval(load_profile("smoke", {"generation.seeds": []}), rd, corpus, questions, list(first.columns))
    assert none.empty and list(none.columns) == [*first.columns, "seed"]


def test_rq3_seed_gains_by_hand():
    """RQ3's seed sweep: each generated-query condition's gain over none (every cell) per seed, the
    mean and 95% t interval over seeds, beside the first seed's cell tests; its prose and headlines."""
    from xqglib.study import findings as F
    from xqglib.study import headlines as H

    cells = (("de", "en"), ("en", "en"))

    def table(values: dict[str, list[float]], **extra) -> pd.DataFrame:
        return pd.DataFrame([{"retriever": "r", "condition": c, "language": q, "passage_language": p,
                              "query_id": f"q{i}", "measure": "mrr@10", "value": vs[2 * k + i], **extra}
                             for c, vs in values.items() for k, (q, p) in enumerate(cells) for i in range(2)])

    # seed 313 (the run's): none 50; xqg 75 (+25), text 50 (0), dual 37.5 (-12.5)
    retrieval = table({"none": [50, 50, 50, 50], "xqg": [100, 50, 50, 100], "text": [50, 50, 50, 50],
                       "dual": [0, 50, 50, 50]})
    # seed 7: xqg 100 (+50), text 62.5 (+12.5), dual 50 (0); none does not change with the seed
    seeds = table({"xqg": [100, 100, 100, 100], "text": [100, 50, 50, 50], "dual": [50, 50, 50, 50]}, seed=7)
    gains = A3.seed_gains(SMOKE, retrieval, seeds).set_index("condition")
    assert list(gains.index) == ["xqg", "text", "dual"] and set(gains["seeds"]) == {2}
    assert gains["gain, seed 313"].tolist() == [25.0, 0.0, -12.5]
    assert gains["gain, seed 7"].tolist() == [50.0, 12.5, 0.0]
    t = 12.706204736  # Student's t, 97.5th percentile, 1 degree of freedom
    # two seeds: half-width t * sd / sqrt(2), sd = |a - b| / sqrt(2): t * |a - b| / 2
    for condition, (a, b) in {"xqg": (25, 50), "text": (0, 12.5), "dual": (-12.5, 0)}.items():
        row = gains.loc[condition]
        assert row["mean gain"] == pytest.approx((a + b) / 2)
        assert row["95% low"] == pytest.approx((a + b) / 2 - t * abs(a - b) / 2)
        assert row["95% high"] == pytest.approx((a + b) / 2 + t * abs(a - b) / 2)
    # the first seed's cell tests, as RQ3's tests give them
    counts = A3.significance_counts(A3.tests_for(retrieval, ["mrr@10"])).loc["mrr@10"]
    assert gains.loc["xqg", "cells"] == 2
    assert gains.loc["xqg", "cells better (seed 313)"] == counts.loc[("r", "xqg"), "better"]
    assert gains.loc["dual", "median detectable (seed 313)"] == pytest.approx(
        counts.loc[("r", "dual"), "median detectable difference"])
    # without further seeds: the first seed's gain, no interval, and the prose says the sweep was not run
    alone = A3.seed_gains(SMOKE, retrieval, seeds.iloc[:0])
    assert alone["mean gain"].tolist() == [25.0, 0.0, -12.5] and alone["95% low"].isna().all()
    tests = A3.tests_for(retrieval, ["mrr@10"])
    assert F.rq3_seed_findings(SMOKE, retrieval, None, tests)["rq3_seed_verdict"] == "the seed sweep was not run"
    facts = F.rq3_seed_findings(SMOKE, retrieval, seeds, tests)
    assert facts["rq3_seed_count"] == "2" and "xqg +37.50 [" in facts["rq3_seed_gains"]
    rows = pd.DataFrame(H.rq3_seed_rows(SMOKE, retrieval, seeds))
    assert len(rows) == 9 and rows.set_index("column").at["text: mean gain", "value"] == pytest.approx(6.25)


def test_the_reader_labels_trains_and_reads(tmp_path):
    tok = load_tokenizer("tiny-bert")
    context = ("The river flows north through the valley for many miles. " * 3
               + "Warsaw is the capital of Poland. " + "Fields and forests line its banks. " * 3)
    examples = [ReaderExample("What is the capital of Poland?", context, "Warsaw", context.index("Warsaw")),
                ReaderExample("Which way does the river flow?", context, "north", context.index("north"))]
    torch.manual_seed(0)  # the span head is initialised at random
    reader = Reader(load_reader("tiny-bert"), tok, max_len=48, stride=16)
    features = reader.windows([e.question for e in examples], [e.context for e in examples])
    assert len(features["input_ids"]) > 2  # the long context takes several windows
    starts, ends = reader.labels(features, examples)
    found = 0
    for w, sample in enumerate(features["overflow_to_sample_mapping"].tolist()):
        offsets = reader.context_offsets(features, w)
        if starts[w] > 0:
            # (the tokenizer counts the space before a word into its offsets)
            assert context[offsets[starts[w]][0]:offsets[ends[w]][1]].strip() == examples[sample].answer
            found += 1
        else:
            assert ends[w] == 0
    assert found >= 2
    log = train_reader(reader, examples, steps=40, batch_size=2, lr=3e-3, warmup_ratio=0.0, seed=1,
                       freeze_embeddings=False)
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
    spans = reader.read([e.question for e in examples], [e.context for e in examples])
    assert spans[1].text == "north"  # learned
    # reading takes the best span of any window: the same as decoding each window by hand, alone
    # (no padding: windows of different lengths share reading's batches)
    lengths = features["attention_mask"].sum(1).tolist()
    assert len(set(lengths)) > 1  # the last window of a context is shorter
    for i, example in enumerate(examples):
        windows = [w for w, sample in enumerate(features["overflow_to_sample_mapping"].tolist()) if sample == i]
        alone = []
        for w in windows:
            n = lengths[w]
            with torch.no_grad():
                out = reader.model(input_ids=features["input_ids"][w:w + 1, :n])
            alone.append(best_span(out.start_logits[0].numpy(), out.end_logits[0].numpy(),
                                   reader.context_offsets(features, w)[:n], context))
        by_hand = best_over_passages(alone)
        assert spans[i].text == by_hand.text and spans[i].score == pytest.approx(by_hand.score, abs=1e-5)
    for size in (1, 3):  # whatever the batch, the same answers
        again = reader.read([e.question for e in examples], [e.context for e in examples], batch_size=size)
        assert [s.text for s in again] == [s.text for s in spans]


def test_the_compared_retrievers_by_default_and_by_name():
    cpu = load_profile("cpu")
    assert cpu.rq3_retrievers == ("base", "xdr", "xdr-align") and cpu.reader_retriever == "xdr-align"
    assert SMOKE.rq3_retrievers == ("base", "xdr", "xdr-align")
    chosen = load_profile("cpu", {"rq3.retrievers": ["hybrid", "base"], "rq3.reader_retriever": "base"})
    assert chosen.rq3_retrievers == ("hybrid", "base") and chosen.reader_retriever == "base"


@pytest.mark.parametrize("overrides,message", [
    ({"rq3.retrievers": ["base", "nope"]}, "rq3.retrievers"),
    ({"rq3.reader_retriever": "english"}, "rq3.reader_retriever"),
    ({"rq3.passage_languages": ["th", "hi"]}, "has no English"),
    ({"rq3.reader_stride": 60}, "rq3.reader_stride"),
    ({"rq3.query_languages": ["xx"]}, "rq3.query_languages"),
])
def test_bad_rq3_settings_are_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        load_profile("smoke", overrides)
