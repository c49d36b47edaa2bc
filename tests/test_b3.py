"""Benchmark B3 (XOR-Retrieve) and the paper profile's code path on b3-tiny: the hand-made
collection in XOR-Retrieve's format, real XOR-TyDi questions, tiny models of the paper's
architectures (mT5, XLM-R)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from xqglib.config.languages import XOR_LANGUAGES
from xqglib.config.profiles import load_profile
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, read_jsonl, read_qrels
from xqglib.data import b3 as B
from xqglib.data import sources as D
from xqglib.pipeline import rq1 as P

#: runs the pipeline, torchrun or the book end to end: `make test-e2e`
pytestmark = pytest.mark.e2e

#: The paper profile shrunk to seconds: b3-tiny, tiny mT5 and XLM-R, a few steps.
TINY = {"data.benchmark": "b3-tiny", "data.max_test_questions": 4,
        "generator.models": ["tiny-mt5"], "generator.steps": 2, "generator.batch_size": 4,
        "generator.max_input_len": 48, "generator.max_target_len": 16, "generator.eval_every": 1,
        "generator.max_dev_pairs": 8, "generator.max_train_pairs": 32,
        "generation.n_per_language": 1, "generation.max_new_tokens": 4, "generation.batch_passages": 33,
        "retriever.encoder": "tiny-xlmr",
        "retriever.retrievers": [{"name": "base", "training": "none", "label": "encoder as is"},
                                 {"name": "xdr", "training": "crosslingual", "label": "cross-lingual xDR"}],
        "retriever.max_steps": 2, "retriever.batch_size": 4, "retriever.negatives": 1,
        "retriever.query_max_len": 24, "retriever.passage_max_len": 48, "retriever.encode_batch_size": 16,
        "augmentation.alpha_sweep": [0.0, 0.01, 0.1], "evaluation.search_depth": 10, "run.bf16": False}


def test_answer_matching_is_the_scorers_substring_test():
    match = B.AnswerMatcher({"q1": ["Portland"], "q2": ["1859", "Darwin"], "q3": ["portland"]})
    assert match("Portland is in Oregon.") == {"q1"}  # case-sensitive, as the official scorer
    assert match("Published in 1859 by Charles Darwin") == {"q2"}
    assert match("In 18590 BC") == {"q2"}  # a substring, not a word: the scorer's semantics
    assert match("nothing here") == set()
    assert B.AnswerMatcher({})("anything") == set()
    assert B.spans(["yes", " Portland ", "no", ""]) == ["Portland"]


def test_the_tiny_collection_is_in_xor_retrieves_format():
    passages = D.load_xor_corpus(B.TINY_CORPUS)
    assert len(passages) == 33 and len({p.docid for p in passages}) == 33
    assert passages[0].docid == "1" and passages[0].title == "Portland, Oregon"
    assert all(p.text and "\t" not in p.text for p in passages)


def test_benchmark_languages_and_training_are_checked():
    with pytest.raises(UserError, match="data.query_languages .* has de, which benchmark b3 has no questions in"):
        load_profile("paper", {"data.query_languages": ["ar", "de"]})
    with pytest.raises(UserError, match="generation.languages .* has bn, which benchmark b1"):
        load_profile("cpu", {"generation.languages": ["ar", "bn"]})
    with pytest.raises(UserError, match="b3-tiny has none of"):
        load_profile("paper", {"data.benchmark": "b3-tiny"})  # its English (zero-shot) row needs English NQ
    cfg = load_profile("paper", TINY)
    assert cfg.data.query_languages == XOR_LANGUAGES == cfg.generation.languages


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, real_data):
    from xqglib.pipeline.runner import run_pipeline

    return run_pipeline("paper", TINY, run_dir=tmp_path_factory.mktemp("b3") / "run")


def test_b3_data_labels_answer_matched_passages_only(tiny_run):
    corpus = {p["docid"]: p for p in read_jsonl(tiny_run.corpus)}
    assert len(corpus) == 33
    queries = read_jsonl(tiny_run.test_queries)
    answers, qrels = read_json(tiny_run.answers), read_qrels(tiny_run.qrels)
    dev = {q["id"]: q for q in D.load_xor_retrieve("dev")}
    assert {q["lang"] for q in queries} == set(XOR_LANGUAGES)
    assert all(sum(q["lang"] == lang for q in queries) <= 4 for lang in XOR_LANGUAGES)
    for q in queries:
        real = dev[q["qid"]]
        assert q["query"] == real["question"] and answers[q["query_id"]] == B.spans(real["answers"])
        # the gold passages are exactly those holding an answer string
        holding = {d for d, p in corpus.items() if any(a in p["text"] for a in answers[q["query_id"]])}
        assert set(qrels[q["query_id"]]) == holding and holding
    train = {q["id"] for q in D.load_xor_retrieve("train")}
    rows = read_jsonl(tiny_run.retriever_rows("crosslingual"))
    assert rows and all(r["qid"] in train and r["qid"] not in dev for r in rows)
    by_id = {q["id"]: q for q in D.load_xor_retrieve("train")}
    for r in rows:
        spans = B.spans(by_id[r["qid"]]["answers"])
        assert any(a in r["positive_passages"][0]["text"] for a in spans)
        assert not any(a in p["text"] for p in r["negative_passages"] for a in spans)
    # the generator's dev questions are held out of its training pairs
    held = set(read_json(tiny_run.split)["generator dev questions"])
    pairs = {split: read_jsonl(tiny_run.generator_pairs(split)) for split in ("train", "dev")}
    assert pairs["dev"] and pairs["train"]
    questions = {r["query"]: r["qid"] for r in rows}
    assert all(questions[p["question"]] in held for p in pairs["dev"])
    assert not any(questions[p["question"]] in held for p in pairs["train"])


def test_the_paper_code_path_runs_on_b3_tiny(tiny_run):
    from xqglib.pipeline import stages as S
    from xqglib.pipeline.runner import build_book, run_pipeline

    cfg = load_profile("paper", TINY)
    assert [s.number for s in S.for_benchmark(cfg)] == [1, 2, 3, 4, 5, 6]
    assert all(S.stale_reason(cfg, tiny_run, s) is None for s in S.for_benchmark(cfg))
    generated = read_jsonl(tiny_run.path("generated", "tiny-mt5.jsonl"))
    assert len(generated) == 33 and all(set(g["generated_queries"]) == set(XOR_LANGUAGES) for g in generated)
    results = pd.read_parquet(tiny_run.path("eval", "results.parquet"))
    assert set(results.benchmark) == {"b3-tiny"} and set(results.language) == set(XOR_LANGUAGES)
    assert {"R@2kt", "R@5kt"} <= set(results.measure)
    official = json.loads(tiny_run.path("eval", "xor_predictions", "xdr.json").read_text())
    assert {p["lang"] for p in official} == set(XOR_LANGUAGES)
    with pytest.raises(UserError, match="do not run on benchmark b3-tiny"):
        run_pipeline("paper", TINY, run_dir=tiny_run.root, start=7)
    with pytest.raises(UserError, match="the book is built on benchmark B1"):
        build_book("paper", overrides=TINY, run_dir=tiny_run.root)


def test_two_processes_encode_what_stage_5_encodes_and_stage_5_reuses_it(tiny_run, capsys):
    """``torchrun --nproc_per_node 2 -m xqglib encode xdr`` on gloo: every matrix equals stage 5's
    one-process encoding (to 1e-5) and in the same row order; stage 5 then reuses it."""
    import os
    import subprocess
    import sys

    import numpy as np

    from xqglib.core.formats import read_trec_run
    from xqglib.core.paths import repo_root

    one = {k: np.load(tiny_run.embeddings("xdr", k)) for k in P.ENCODED}
    ids = {k: read_json(tiny_run.embeddings_meta("xdr", k)) for k in P.ENCODED}
    systems = sorted(tiny_run.path("trec").glob("xdr*.trec"))
    runs = {path.name: read_trec_run(path) for path in systems}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29519", "-m", "xqglib", "encode", "xdr", "--profile", "paper", "--overrides",
                           json.dumps(TINY), "--run-dir", str(tiny_run.root)], cwd=repo_root(),
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "xdr: 33 passages, 28 test queries and 231 generated queries in " in done.stdout
    assert "on 2 process(es)" in done.stdout
    shards = sorted(p.name for p in tiny_run.path("embeddings", "xdr", "shards").iterdir())
    assert "passages.shard-1-of-2.npy" in shards and "generated.shard-0-of-2.ids.json" in shards
    for kind in P.ENCODED:
        assert read_json(tiny_run.embeddings_meta("xdr", kind)) == ids[kind]
        assert np.allclose(np.load(tiny_run.embeddings("xdr", kind)), one[kind], atol=1e-5)
    cfg = load_profile("paper", TINY)
    counts = P.encode_retriever(cfg, tiny_run, "xdr")
    assert "reusing the encodings of xdr: encoded earlier on 2 process(es)" in capsys.readouterr().out
    assert counts["processes"] == 2 and counts["passages"] == 33
    # stage 5 then fuses and searches shard by shard (FAISS over the shards): the runs are stage 5's own
    record = read_json(tiny_run.path("embeddings", "xdr", "sharded.json"))
    assert record["bounds"]["passages"] == [[0, 17], [17, 33]] and record["bounds"]["generated"] == [[0, 119], [119, 231]]
    P.search_retriever(cfg, tiny_run, "xdr")
    assert len(systems) == 2
    # stage 6's sweeps are searched the same way: per condition, the same R@2kt up to a tie or two
    from xqglib.evaluation import rq1 as V

    before = pd.read_parquet(tiny_run.path("eval", "results.parquet"))
    after = V.evaluate(cfg, tiny_run)
    assert set(after.condition) == set(before.condition) and len(after) == len(before)
    mean = lambda r: r[r.measure == "R@2kt"].groupby("condition").value.mean()  # noqa: E731
    assert (mean(after) - mean(before)).abs().max() <= 2 / 28 + 1e-9
    for path in systems:  # the same top scores; passages differ only among equal scores (this tiny
        again, before = read_trec_run(path), runs[path.name]  # random encoder scores some passages alike)
        assert set(again) == set(before)
        for q in before:
            assert list(again[q].values()) == pytest.approx(list(before[q].values()), abs=1e-5)
            assert all(s == pytest.approx(before[q][d], abs=1e-5) for d, s in again[q].items() if d in before[q])
            assert len(set(again[q]) & set(before[q])) >= len(before[q]) - 3


def test_search_over_shards_equals_one_index():
    import numpy as np

    from xqglib.method.search import search, search_shards

    rng = np.random.default_rng(0)
    passages, queries = rng.standard_normal((103, 16), dtype=np.float32), rng.standard_normal((7, 16), dtype=np.float32)
    ids, qids = [f"d{i}" for i in range(103)], [f"q{i}" for i in range(7)]
    whole = search(passages, ids, queries, qids, 10)
    cuts = [0, 40, 41, 41, 90, 103]  # shards of different sizes, one of a single passage, one empty
    sharded = search_shards([(passages[a:b], ids[a:b]) for a, b in zip(cuts, cuts[1:])], queries, qids, 10)
    assert all(list(sharded[q]) == list(whole[q]) for q in qids)
    assert all(sharded[q][d] == pytest.approx(whole[q][d], abs=1e-5) for q in qids for d in whole[q])
    assert len(search_shards([(passages[:3], ids[:3]), (passages[3:5], ids[3:5])], queries, qids, 10)["q0"]) == 5


def test_two_processes_generate_what_one_process_generates(tiny_run, tmp_path):
    """``torchrun --nproc_per_node 2 -m xqglib generate`` splits the seeded sampling batches between
    the processes: the merged file is the one-process file, and stage 3 reuses it."""
    import os
    import shutil
    import subprocess
    import sys

    from xqglib.core.artifacts import RunDir
    from xqglib.core.paths import repo_root

    settings = {**TINY, "generation.batch_passages": 17}  # two batches: one a process
    runs = {}
    for processes in (1, 2):
        root = tmp_path / str(processes)
        shutil.copytree(tiny_run.root, root)
        rd = RunDir(root)
        rd.generation_fingerprint("tiny-mt5").unlink()
        if processes == 1:
            P.generate_queries(load_profile("paper", settings), rd, "tiny-mt5")
        else:
            done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                                   "--master_port", "29521", "-m", "xqglib", "generate", "tiny-mt5", "--profile",
                                   "paper", "--overrides", json.dumps(settings), "--run-dir", str(root)],
                                  cwd=repo_root(), env={**os.environ, "OMP_NUM_THREADS": "1"},
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "tiny-mt5: queries for 33 passages in " in done.stdout and "on 2 process(es)" in done.stdout
            assert sorted(p.name for p in rd.path("generated", "shards").iterdir()) == [
                "tiny-mt5.shard-0-of-2.jsonl", "tiny-mt5.shard-1-of-2.jsonl"]
        runs[processes] = rd
    one, two = (read_jsonl(runs[n].generated("tiny-mt5")) for n in (1, 2))
    assert [r["docid"] for r in two] == [p["docid"] for p in read_jsonl(tiny_run.corpus)]
    assert two == one
    assert P.generate_queries(load_profile("paper", settings), runs[2], "tiny-mt5") == two  # reused


def test_merging_row_shards_checks_every_passage_once(tmp_path):
    from xqglib.core.sharding import merge_rows_shards, write_rows_shard

    stem = tmp_path / "gen"
    write_rows_shard(stem, 0, 2, [{"docid": "b", "q": 1}, {"docid": "a", "q": 2}])
    with pytest.raises(UserError, match=r"shards \[1\] of 2 .* are missing"):
        merge_rows_shards(stem, 2, "docid", ["a", "b", "c"])
    write_rows_shard(stem, 1, 2, [{"docid": "c", "q": 3}])
    assert [r["q"] for r in merge_rows_shards(stem, 2, "docid", ["a", "b", "c"])] == [2, 1, 3]
    write_rows_shard(stem, 1, 2, [{"docid": "a", "q": 3}])
    with pytest.raises(UserError, match="1 repeated, 1 missing"):
        merge_rows_shards(stem, 2, "docid", ["a", "b", "c"])
