"""The smoke profile end to end: notebooks run in order, each reading what the previous wrote;
twice with identical metrics; the book builds from the executed notebooks; user errors are clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xqglib.config import repo_root
from xqglib.errors import UserError
from xqglib.runner import NOTEBOOKS, build_book, run_pipeline


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory, real_data):
    root = tmp_path_factory.mktemp("runs")
    first = run_pipeline("smoke", run_dir=root / "first")
    second = run_pipeline("smoke", run_dir=root / "second")
    return first, second


def test_every_stage_writes_what_the_next_reads(smoke_runs):
    rd, _ = smoke_runs
    for name in NOTEBOOKS:
        assert (rd.root / "notebooks" / f"{name}.ipynb").exists()
    corpus = [json.loads(l) for l in rd.corpus.read_text().splitlines()]
    generated = [json.loads(l) for l in rd.generated("tiny-gemma3").read_text().splitlines()]
    # the released xQG format: one line per corpus passage, n questions per language
    assert [g["docid"] for g in generated] == [c["docid"] for c in corpus]
    assert all(set(g["generated_queries"]) == {"ar", "de", "th"} for g in generated)
    assert all(len(qs) == 2 for g in generated for qs in g["generated_queries"].values())
    assert rd.generated("tiny-mt5").exists()
    assert (rd.retriever_model("xdr") / "config.json").exists()
    for system in ("base", "base+xQG", "xdr", "xdr+xQG"):
        lines = rd.trec_run(system).read_text().splitlines()
        assert len(lines) == 3 * 12 * 20  # 3 languages x 12 questions x depth 20
    metrics = json.loads(rd.eval_file("metrics.json").read_text())
    assert set(metrics) == {"base", "base+xQG", "xdr", "xdr+xQG"}
    assert set(metrics["xdr"]["per_language"]["R@2kt"]) == {"ar", "de", "th"}
    timings = json.loads(rd.timings.read_text())
    assert "1 data" in timings and "6 evaluate" in timings


def test_same_profile_and_seed_give_the_same_numbers(smoke_runs):
    first, second = smoke_runs
    for name in ("metrics.json", "per_question.json"):
        assert first.eval_file(name).read_text() == second.eval_file(name).read_text()
    assert first.generated("tiny-gemma3").read_text() == second.generated("tiny-gemma3").read_text()


def test_augmentation_changes_the_ranking(smoke_runs):
    rd, _ = smoke_runs
    assert rd.trec_run("xdr").read_text() != rd.trec_run("xdr+xQG").read_text()


def test_a_stage_without_its_inputs_says_which_to_run(tmp_path, real_data):
    with pytest.raises(UserError, match="notebook 02_train_generator failed.*run the 'data' stage"):
        run_pipeline("smoke", run_dir=tmp_path / "empty", start=2, stop=2)
    assert (tmp_path / "empty" / "notebooks" / "02_train_generator.failed.ipynb").exists()
    assert not (tmp_path / "empty" / "notebooks" / "02_train_generator.ipynb").exists()


def test_book_builds_from_the_executed_notebooks(smoke_runs, monkeypatch, tmp_path):
    rd, _ = smoke_runs
    published = repo_root() / "_build" / "html" / "book" / "results.html"
    before = published.stat().st_mtime_ns if published.exists() else None
    monkeypatch.setenv("XQG_RUNS_DIR", str(rd.root.parent))
    # the run directory for the profile is runs/<profile>: point it at the first run
    target = rd.root.parent / "smoke"
    if not target.exists():
        target.symlink_to(rd.root)
    index = build_book("smoke", root=tmp_path / "book-build")
    results = (index.parent / "book" / "results.html").read_text(encoding="utf-8")
    metrics = json.loads(rd.eval_file("metrics.json").read_text())
    assert "cross-lingual xDR + xQG" in results
    assert f"{metrics['xdr+xQG']['R@2kt']:.2f}" in results  # the number of this run, pasted
    # the repository's own book is left as it was
    assert (published.stat().st_mtime_ns if published.exists() else None) == before


def test_cli_user_errors_have_no_traceback():
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "xqglib", "run", "--profile", "nope"],
                            capture_output=True, text=True, cwd=repo_root(), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown profile 'nope'")
    assert "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "xqglib", "run", "--profile", "smoke", "--overrides",
                             '{"bogus": 1}'], capture_output=True, text=True, cwd=repo_root(), env=env)
    assert result.returncode == 2 and "unknown profile field(s): ['bogus']" in result.stderr


def test_official_prediction_files_score_the_same(smoke_runs):
    """The official scorer's loop, fed our prediction files, gives the numbers of metrics.json."""
    from test_metrics import official_loop

    from xqglib.metrics import xor_word_tokenize

    rd, _ = smoke_runs
    folder = rd.root / "eval" / "xor_predictions"
    answers = {r["id"]: r["answers"] for r in map(json.loads, (folder / "answers.jsonl").read_text().splitlines())}
    metrics = json.loads(rd.eval_file("metrics.json").read_text())
    for system in ("base", "xdr+xQG"):
        predictions = json.loads((folder / f"{system}.json").read_text())
        ranked = {p["id"]: p["ctxs"] for p in predictions}
        langs = {p["id"]: p["lang"] for p in predictions}
        for n in (2, 5):
            reference = official_loop(ranked, answers, langs, n * 1000, xor_word_tokenize)
            assert reference == pytest.approx(metrics[system]["per_language"][f"R@{n}kt"])
    significance = json.loads(rd.eval_file("significance.json").read_text())
    assert set(significance) == {"base|R@2kt", "base|R@5kt", "xdr|R@2kt", "xdr|R@5kt"}
    assert set(significance["xdr|R@2kt"]) == {"ar", "de", "th", "all", "bonferroni"}


def test_pairwise_comparisons_cover_every_pair_and_match_the_per_question_hits(smoke_runs):
    rd, _ = smoke_runs
    hits = json.loads(rd.eval_file("per_question.json").read_text())
    pairwise = json.loads(rd.eval_file("pairwise_significance.json").read_text())
    assert set(pairwise) == {f"base{s} vs xdr{s}|{m}" for s in ("", "+xQG") for m in ("R@2kt", "R@5kt")}
    for key, tests in pairwise.items():
        (a, b), measure = key.split("|")[0].split(" vs "), key.split("|")[1]
        counted = [q for q, h in hits[a][measure].items() if h is not None]
        assert tests["all"]["n"] == len(counted)
        assert tests["all"]["mean_a"] == pytest.approx(sum(hits[a][measure][q] for q in counted) / len(counted))
        assert tests["all"]["mean_b"] == pytest.approx(sum(hits[b][measure][q] for q in counted) / len(counted))


def test_fallback_tokenisation_difference_is_what_the_official_loop_gives(smoke_runs):
    from test_metrics import official_loop

    from xqglib.metrics import fallback_word_tokenize

    rd, _ = smoke_runs
    folder = rd.root / "eval" / "xor_predictions"
    answers = {r["id"]: r["answers"] for r in map(json.loads, (folder / "answers.jsonl").read_text().splitlines())}
    metrics = json.loads(rd.eval_file("metrics.json").read_text())
    rows = json.loads(rd.eval_file("tokenizer_difference.json").read_text())
    assert {(r["system"], r["measure"]) for r in rows} == {(s, m) for s in metrics for m in ("R@2kt", "R@5kt")}
    for row in rows:
        predictions = json.loads((folder / f"{row['system']}.json").read_text())
        ranked = {p["id"]: p["ctxs"] for p in predictions}
        langs = {p["id"]: p["lang"] for p in predictions}
        n = int(row["measure"][2])
        fallback = official_loop(ranked, answers, langs, n * 1000, fallback_word_tokenize)
        assert row["fallback"] == pytest.approx(sum(fallback.values()) / len(fallback))
        assert row["exact"] == pytest.approx(metrics[row["system"]][row["measure"]])
        if row["questions changed"] == 0:
            assert row["fallback"] == pytest.approx(row["exact"])


def test_n_sweep_and_rank_changes_agree_with_the_main_run(smoke_runs):
    rd, _ = smoke_runs
    metrics = json.loads(rd.eval_file("metrics.json").read_text())
    sweep = json.loads(rd.eval_file("n_sweep_xdr.json").read_text())
    assert [r["n"] for r in sweep] == [1, 2]
    # fusing all n queries per language is exactly the xdr+xQG system of the main table
    assert sweep[-1]["R@2kt"] == pytest.approx(metrics["xdr+xQG"]["R@2kt"])
    assert sweep[-1]["R@5kt"] == pytest.approx(metrics["xdr+xQG"]["R@5kt"])
    ranks = json.loads(rd.eval_file("gold_rank_changes_xdr.json").read_text())
    assert [r["lang"] for r in ranks] == ["ar", "de", "th"]
    for r in ranks:
        assert r["improved %"] + r["worsened %"] + r["unchanged %"] == pytest.approx(100.0)


def test_a_rerun_reuses_a_model_trained_from_the_same_inputs_only(smoke_runs, tmp_path, capsys):
    import shutil

    from xqglib.artifacts import RunDir
    from xqglib.config import load_profile
    from xqglib.pipeline import train_dense_retriever

    # a copy of the run's training data and retriever, so the shared smoke run stays as it was
    source, _ = smoke_runs
    for part in ("data", "retrievers"):
        shutil.copytree(source.root / part, tmp_path / part)
    rd = RunDir(tmp_path)
    weights = rd.retriever_model("xdr") / "model.safetensors"
    before = weights.stat().st_mtime_ns
    cfg = load_profile("smoke")
    log = train_dense_retriever(cfg, rd, "xdr")
    assert "reusing" in capsys.readouterr().out
    assert weights.stat().st_mtime_ns == before
    assert log == json.loads(rd.retriever_log("xdr").read_text())
    # one stage field changed: trained again, and the fingerprint now records the new value
    changed = load_profile("smoke", {"ret_max_steps": 2})
    assert len(train_dense_retriever(changed, rd, "xdr")) == 2
    assert "reusing" not in capsys.readouterr().out
    assert weights.stat().st_mtime_ns != before
    assert json.loads((rd.retriever_model("xdr").parent / "fingerprint.json").read_text())["fields"]["ret_max_steps"] == 2
