"""The smoke profile end to end: the stages of the stage table run in order, each writing what it
declares and what the next reads; twice with identical results; every table of the book from the
tidy results table; the book builds; a run never mixes outputs of different settings."""

from __future__ import annotations

import json
import re
import shutil
import statistics

import pandas as pd
import pytest

from xqglib.config.profiles import load_profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.paths import repo_root
from xqglib.evaluation import rq3 as V3
from xqglib.evaluation.rq1 import COLUMNS, load_results
from xqglib.pipeline import stages as S
from xqglib.pipeline.runner import book_toc, build_book, run_pipeline
from xqglib.study import analysis as A
from xqglib.study import experiments as E
from xqglib.study import rq3 as A3
from xqglib.study import tables as R

#: runs the pipeline, torchrun or the book end to end: `make test-e2e`
pytestmark = pytest.mark.e2e

SMOKE = load_profile("smoke")


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory, real_data):
    root = tmp_path_factory.mktemp("runs")
    first = run_pipeline("smoke", run_dir=root / "first")
    second = run_pipeline("smoke", run_dir=root / "second")
    return first, second


def test_every_stage_writes_what_the_stage_table_declares(smoke_runs):
    rd, _ = smoke_runs
    for stage in S.STAGES:
        assert (rd.root / "notebooks" / f"{stage.notebook}.ipynb").exists()
        declared = S.outputs(stage, SMOKE)
        assert declared and all((rd.root / p).exists() for p in declared), stage.name
        # what a stage reads, an earlier stage declares it writes
        for path in S.inputs(stage, SMOKE):
            assert S.producer(path, SMOKE).number < stage.number
        assert S.stale_reason(SMOKE, rd, stage) is None
    assert S.is_complete(SMOKE, rd)
    # the released xQG format: one line per corpus passage, n questions per language
    corpus = [json.loads(line) for line in rd.corpus.read_text().splitlines()]
    generated = [json.loads(line) for line in rd.generated("tiny-gemma3").read_text().splitlines()]
    assert [g["docid"] for g in generated] == [c["docid"] for c in corpus]
    assert all(set(g["generated_queries"]) == {"ar", "de", "th"} for g in generated)
    assert all(len(qs) == 2 for g in generated for qs in g["generated_queries"].values())
    for system in ("base", "base+xQG", "xdr", "xdr+xQG"):
        lines = rd.trec_run(system).read_text().splitlines()
        assert len(lines) == 3 * 12 * 20  # 3 languages x 12 questions x depth 20
    from xqglib.core.timing import read_timings

    timings = read_timings(rd.timings)
    assert {(t.stage, t.stage_name) for t in timings} == {(s.number, s.name) for s in S.STAGES}
    # the library times the work it may reuse: every training, generation and reading says so
    works = {(t.stage, t.part): t.work for t in timings if t.work}
    assert works[(2, "tiny-gemma3")] == works[(4, "xdr")] == works[(10, "reader")] == "training"
    assert works[(3, "tiny-gemma3")] == works[(11, "generate")] == "generation"
    assert works[(12, "score and read")] == "reading"


def test_the_results_table_is_tidy_and_covers_every_condition(smoke_runs):
    rd, _ = smoke_runs
    results = load_results(rd)
    assert list(results.columns) == COLUMNS
    conditions = E.all_conditions(SMOKE)
    assert list(dict.fromkeys(results["condition"])) == [c.name for c in conditions]
    assert not results.duplicated(["condition", "query_id", "measure"]).any()
    queries = 3 * 12
    for c in conditions:
        rows = results[results["condition"] == c.name]
        assert rows["query_id"].nunique() == queries
        assert (rows["retriever"] == c.retriever).all() and (rows["augmentation"] == c.augmentation).all()
        assert rows.groupby("measure").size()["RR@10"] == queries
    hits = results[results["measure"].isin(["R@2kt", "R@5kt"])]["value"]
    assert set(hits.unique()) <= {0.0, 1.0}
    recorded = json.loads(rd.eval_file("conditions.json").read_text())
    assert [r["name"] for r in recorded] == [c.name for c in conditions]


def test_a_run_resumes_where_its_settings_allow(smoke_runs, tmp_path, capsys):
    source, _ = smoke_runs
    shutil.copytree(source.root, tmp_path / "run")
    before = (tmp_path / "run" / "stages" / "04_train-retriever.json").stat().st_mtime_ns
    run_pipeline("smoke", run_dir=tmp_path / "run")  # nothing changed: nothing runs
    assert "every stage finished under these settings" in capsys.readouterr().err
    # a new alpha: stages 1-4 are reused, 5 and 6 run again, under the new setting
    run_pipeline("smoke", {"augmentation.alpha": 0.05}, tmp_path / "run")
    err = capsys.readouterr().err
    assert "stages 1-4 finished under these settings: reusing them" in err and "[5/12]" in err and "[4/12]" not in err
    assert (tmp_path / "run" / "stages" / "04_train-retriever.json").stat().st_mtime_ns == before
    assert S.is_complete(load_profile("smoke", {"augmentation.alpha": 0.05}), RunDir(tmp_path / "run"))
    assert not S.is_complete(SMOKE, RunDir(tmp_path / "run"))


def test_same_profile_and_seed_give_the_same_numbers(smoke_runs):
    first, second = smoke_runs
    pd.testing.assert_frame_equal(load_results(first), load_results(second))
    assert first.generated("tiny-gemma3").read_text() == second.generated("tiny-gemma3").read_text()
    # the third research question's generation, retrieval and reading too
    assert first.generated("rq3-passages").read_text() == second.generated("rq3-passages").read_text()
    assert first.generated("rq3-passages.seed-314").read_text() == second.generated("rq3-passages.seed-314").read_text()
    for table in ("rq3_retrieval.parquet", "rq3_reading.parquet", "rq3_reads.parquet", "rq3_seed_results.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(first.eval_file(table)), pd.read_parquet(second.eval_file(table)))
    # a stored reading is reused only by the reading version that read it
    from xqglib.method.reading import READING_VERSION

    record = json.loads(first.eval_file("rq3_reads.fingerprint.json").read_text())
    assert record["fingerprint"]["reading_version"] == READING_VERSION


def test_the_runs_score_as_the_fusion_formula_says(smoke_runs):
    """Every score in the TREC runs is q . p (plain) or q . ((1 - alpha) p + alpha sum of the
    passage's generated queries) (+xQG), from stage 5's own vectors; and xQG moves some ranking."""
    from xqglib.core.formats import read_trec_run

    rd, _ = smoke_runs
    emb = rd.load_embeddings("xdr")
    alpha = SMOKE.augmentation.alpha
    owners = [g["docid"] for g in emb["generated_meta"]]
    sums = {d: emb["generated"][[i for i, o in enumerate(owners) if o == d]].sum(0) for d in emb["passages_ids"]}
    plain_vecs = dict(zip(emb["passages_ids"], emb["passages"]))
    fused = {d: (1 - alpha) * p + alpha * sums[d] for d, p in plain_vecs.items()}
    queries = dict(zip(emb["queries_ids"], emb["queries"]))
    for system, vecs in (("xdr", plain_vecs), ("xdr+xQG", fused)):
        run = read_trec_run(rd.trec_run(system))
        assert set(run) == set(queries)
        for qid, ranked in run.items():
            for docid, score in ranked.items():
                assert score == pytest.approx(float(queries[qid] @ vecs[docid]), abs=1e-4), (system, qid, docid)
    plain_run, xqg_run = read_trec_run(rd.trec_run("xdr")), read_trec_run(rd.trec_run("xdr+xQG"))
    assert any(list(plain_run[q]) != list(xqg_run[q]) for q in plain_run)


def test_official_prediction_files_score_what_the_results_table_holds(smoke_runs):
    """The official scorer's loop, fed our prediction files, gives the table's per-language R@Nkt."""
    from test_metrics import official_loop

    from xqglib.evaluation.metrics import fallback_word_tokenize, xor_word_tokenize

    rd, _ = smoke_runs
    results = load_results(rd)
    folder = rd.root / "eval" / "xor_predictions"
    answers = {r["id"]: r["answers"] for r in map(json.loads, (folder / "answers.jsonl").read_text().splitlines())}
    for system in ("base", "xdr+xQG"):
        predictions = json.loads((folder / f"{system}.json").read_text())
        ranked = {p["id"]: p["ctxs"] for p in predictions}
        langs = {p["id"]: p["lang"] for p in predictions}
        for n in (2, 5):
            for suffix, tokenize in (("", xor_word_tokenize), (" (fallback tokens)", fallback_word_tokenize)):
                reference = official_loop(ranked, answers, langs, n * 1000, tokenize)
                ours = A.per_language(results, f"R@{n}kt{suffix}").loc[system].dropna().to_dict()
                assert ours == pytest.approx(reference)


def test_significance_from_the_table_matches_the_per_question_hits(smoke_runs):
    rd, _ = smoke_runs
    results = load_results(rd)
    pairwise = A.pairwise_significance(SMOKE, results)
    assert set(zip(pairwise["A"], pairwise["B"])) == {("base", "xdr"), ("base+xQG", "xdr+xQG")}
    for (a, b, measure), group in pairwise.groupby(["A", "B", "measure"]):
        overall = group.set_index("language").loc["all"]
        hits_a, hits_b = A.outcomes(results, a, measure), A.outcomes(results, b, measure)
        assert overall["n"] == len(hits_a)
        assert overall["mean_a"] == pytest.approx(statistics.mean(hits_a.values()))
        assert overall["mean_b"] == pytest.approx(statistics.mean(hits_b.values()))
    xqg = A.xqg_significance(SMOKE, results)
    assert set(xqg["language"]) == {"ar", "de", "th", "all"}
    assert set(zip(xqg["A"], xqg["B"])) == {("base", "base+xQG"), ("xdr", "xdr+xQG")}


def test_sweeps_and_rank_changes_agree_with_table1(smoke_runs):
    rd, _ = smoke_runs
    results = load_results(rd)
    means = A.summary(results, ["R@2kt", "R@5kt"])
    sweep = A.n_sweep(SMOKE, results)
    assert list(sweep.index) == [1, 2]
    # fusing all n queries per language is exactly the xdr+xQG system of Table 1
    assert sweep.loc[2, "condition"] == "xdr+xQG"
    assert sweep.loc[2, "R@2kt"] == means.loc["xdr+xQG", "R@2kt"]
    alphas = A.alpha_sweep(SMOKE, results)
    assert alphas.loc[0.0, "R@2kt"] == means.loc["xdr", "R@2kt"]  # alpha 0 is the plain retriever
    assert alphas.loc[0.01, "R@5kt"] == means.loc["xdr+xQG", "R@5kt"]
    ranks = A.gold_rank_changes(SMOKE, results)
    assert list(ranks.index) == ["ar", "de", "th"]
    assert (ranks["improved %"] + ranks["worsened %"] + ranks["unchanged %"]).tolist() == pytest.approx([100.0] * 3)


def test_rq2_results_are_tidy_and_agree_with_table1(smoke_runs):
    """The RQ2 table covers its conditions; its B1 rows of the Table 1 retrievers are the very rows
    stage 6 computed (same embeddings, same search); XQuAD-R's rows are APs of the test pool."""
    from xqglib.evaluation.rq2 import benches, load_rq2

    first, second = smoke_runs
    results, probe = load_rq2(first)
    assert list(results.columns) == COLUMNS
    conditions = E.all_conditions(SMOKE, E.RQ2_EXPERIMENTS)
    assert set(zip(results["benchmark"], results["condition"])) == {(c.benchmark, c.name) for c in conditions}
    assert not results.duplicated(["benchmark", "condition", "query_id", "measure"]).any()
    rq1 = load_results(first)
    for name in ("base", "xdr+xQG"):
        ours = A.select(A.on(results, "b1"), [name], ["R@2kt", "RR@10"]).reset_index(drop=True)
        theirs = A.select(rq1, [name], ["R@2kt", "RR@10"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs)
    b2 = A.on(results, E.B2)
    pool = benches(SMOKE, first)[E.B2]
    assert set(b2.loc[b2["measure"] == "AP@20", "query_id"]) == {q["uid"] for q in pool.questions}
    assert b2["value"].between(0, 1).all() and set(b2["language"]) == set(SMOKE.xquadr.languages)
    # the fusion sweep holds both fusions
    assert {"xqg", "xqg-renorm", "none"} == set(A.on(results, "b1")["augmentation"])
    assert set(probe["retriever"]) == {s.name for s in SMOKE.rq2_retrievers}
    assert set(probe["language"]) == set(SMOKE.xquadr.languages) - {"en"}
    assert probe["translation retrieved (%)"].between(0, 100).all()
    pd.testing.assert_frame_equal(results, load_rq2(second)[0])  # the same seed, the same numbers
    pd.testing.assert_frame_equal(probe, load_rq2(second)[1])


def test_rq2_tables_and_findings_come_from_the_results(smoke_runs):
    from xqglib.evaluation.rq2 import load_rq2
    from xqglib.study import findings as F

    rd, _ = smoke_runs
    results, probe = load_rq2(rd)
    sig = A.rq2_significance(SMOKE, results, "b1", ["R@2kt"], n_resamples=200)
    xqg = sig[sig["comparison"] == "xQG"].set_index("A")
    means = A.average(A.on(results, "b1"), "R@2kt")
    for name in ("base", "xdr", "xdr-align", "hybrid"):
        hits = A.outcomes(A.on(results, "b1"), name, "R@2kt")
        assert xqg.loc[name, "questions"] == len(hits)
        assert xqg.loc[name, "ci_low"] <= xqg.loc[name, "diff"] <= xqg.loc[name, "ci_high"]
    table = R.rq2_table(SMOKE, results, "b1", "R@2kt", sig)
    assert float(table.loc["cross-lingual xDR", "Avg"].rstrip("†‡")) == pytest.approx(round(means["xdr"], 2))
    sig_b2 = A.rq2_significance(SMOKE, results, E.B2, ["AP@20"], n_resamples=200)
    facts = F.rq2_findings(SMOKE, results, probe, sig, sig_b2)
    assert facts["b1_best_score"] == f"{means.reindex(['base', 'xdr', 'xdr-align', 'hybrid']).max():.2f}"
    assert facts["has_full_pool"] == "no"


def test_rq3_tables_agree_with_each_other_and_with_the_chapter(smoke_runs):
    from xqglib.core.formats import read_json
    from xqglib.study import findings as F

    rd, _ = smoke_runs
    retrieval, reading, summary = V3.load_rq3(rd)
    r = SMOKE.rq3
    cells = len(r.query_languages) * len(r.passage_languages)
    # every retriever, condition and cell scores every test question once
    per = A3.values(retrieval, "gold rank").groupby(["retriever", "condition"]).size()
    assert set(per) == {cells * r.max_questions} and len(per) == len(SMOKE.rq3_retrievers) * len(E.CONDITIONS)
    # on the diagonal, asking in the passage language is asking as is
    ranks = A3.values(retrieval, "gold rank")
    diagonal = ranks[ranks["language"] == ranks["passage_language"]].pivot_table(
        index=["retriever", "language", "query_id"], columns="condition", values="value")
    assert (diagonal["query-translated"] == diagonal["none"]).all()
    # the reader read the top k of the same ranking the retrieval table scores
    reader = ranks[ranks["retriever"] == SMOKE.reader_retriever].rename(columns={"value": "rank"})
    found = A3.values(reading, "answer_in_top_k")
    merged = found[found["condition"] != E.GOLD].merge(reader, on=["condition", *A3.CELL, "query_id"])
    assert len(merged) == len(found[found["condition"] != E.GOLD])
    assert ((merged["value"] == 100) == (merged["rank"] <= merged["k"])).all()
    em, f1 = A3.values(reading, "em"), A3.values(reading, "f1")
    assert (em["value"].to_numpy() <= f1["value"].to_numpy() + 1e-9).all()
    assert set(reading["k"]) == set(r.reader_k) and reading["query_id"].nunique() == r.reader_questions
    # the shared columns of the results table
    assert {"benchmark", "condition", "retriever", "language", "query_id", "measure", "value"} <= set(reading.columns)
    # the chapter's numbers are the tables'
    tests = A3.tests_for(retrieval, ["recall@1", "mrr@10"])
    reading_tests = A3.tests_for(reading, ["em", "f1"])
    expansion = {name: read_json(rd.rq3_meta(name, "expansion")) for name in SMOKE.rq3_retrievers}
    # the seed sweep: every retriever, further seed and generated-query condition scores every test question once
    seeds = V3.load_rq3_seeds(rd)
    assert list(seeds.columns) == [*retrieval.columns, "seed"]
    per_seed = A3.values(seeds, "gold rank").groupby(["retriever", "seed", "condition"]).size()
    assert set(per_seed) == {cells * r.max_questions}
    assert len(per_seed) == len(SMOKE.rq3_retrievers) * len(SMOKE.generation.seeds) * len(E.SEED_CONDITIONS)
    facts = F.rq3_findings(SMOKE, retrieval, reading, summary, tests, reading_tests, expansion, seeds)
    assert facts["rq3_seed_count"] == str(1 + len(SMOKE.generation.seeds))
    none = A3.means(retrieval, "mrr@10", ["retriever", "condition"])[("xdr", "none")]
    assert f"{none:.1f} (cross-lingual xDR)" in facts["rq3_none_scores"]
    gold = reading[reading["condition"] == E.GOLD]
    assert facts["rq3_f1_gold"] == f"{A3.values(gold, 'f1')['value'].mean():.1f}"
    assert expansion["base"]["expanded passages cut"] == 0  # text-level expansion is never truncated away


def test_a_stage_without_its_inputs_is_refused_before_it_starts(tmp_path, real_data):
    with pytest.raises(UserError, match=r"cannot start stage 2 \(train-generator\): stage 1 \(data\) has not "
                                        r"finished in .*Run from stage 1"):
        run_pipeline("smoke", run_dir=tmp_path / "empty", start=2, stop=2)
    assert not (tmp_path / "empty" / "notebooks").exists()  # no notebook was started


def test_a_run_never_mixes_outputs_of_different_settings(smoke_runs, tmp_path):
    source, _ = smoke_runs
    shutil.copytree(source.root, tmp_path / "run")
    rd = RunDir(tmp_path / "run")
    # alpha only matters from stage 5 on: stages 1-4 stay valid, so --from 5 may run
    alpha = load_profile("smoke", {"augmentation.alpha": 0.05})
    S.check_ready(alpha, rd, S.stage(5))
    with pytest.raises(UserError, match=r"stage 5 \(encode-search\) ran with other settings "
                                        r"\(augmentation.alpha: 0.01 -> 0.05\)"):
        S.check_ready(alpha, rd, S.stage(6))
    # a generator setting invalidates stage 2 and everything after it
    steps = {"generator.steps": 3}
    with pytest.raises(UserError, match=r"stage 2 \(train-generator\) ran with other settings "
                                        r"\(generator.steps: 6 -> 3\)\. Run from stage 2"):
        run_pipeline("smoke", steps, rd.root, start=5)
    # a deleted output makes its stage unfinished
    rd.trec_run("xdr+xQG").unlink()
    assert "trec/xdr+xQG.trec is gone" in S.stale_reason(SMOKE, rd, S.stage(5))


def test_book_toc_lists_the_stage_table():
    assert (repo_root() / "_toc.yml").read_text(encoding="utf-8") == book_toc()
    pipeline_part = book_toc().split("The pipeline, as executed")[1]
    assert [line.split("/")[-1] for line in pipeline_part.splitlines() if "file:" in line] == \
           [s.notebook for s in S.STAGES]


def test_book_builds_from_the_executed_notebooks(smoke_runs, tmp_path):
    rd, _ = smoke_runs
    published = repo_root() / "_build" / "html" / "book" / "results.html"
    before = published.stat().st_mtime_ns if published.exists() else None
    index = build_book("smoke", root=tmp_path / "book-build", run_dir=rd.root)
    results = (index.parent / "book" / "results.html").read_text(encoding="utf-8")
    average = A.summary(load_results(rd), ["R@2kt"]).loc["xdr+xQG", "R@2kt"]
    assert "cross-lingual xDR + xQG" in results
    assert f"{average:.2f}" in results  # the number of this run, pasted
    repro = (index.parent / "book" / "reproducibility.html").read_text(encoding="utf-8")
    assert "train-generator" in repro  # the stage table
    assert "whole study" in repro and "roof time" in repro  # the whole study's cost, pasted
    # no number typed into the prose of the pages that report the run: all of them are pasted
    from xqglib.study.bookcheck import check_pages

    assert check_pages(index.parent) == {"book/results": [], "book/rq2": [], "book/rq3": [], "book/reproducibility": []}
    # the worked example was executed against this run; formulas render offline; no local paths
    example = (index.parent / "book" / "_executed" / "worked_example.html").read_text(encoding="utf-8")
    assert "contrastive_loss(q, p) =" in example and "The first 2,000 tokens end inside passage" in example
    assert (index.parent / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert 'src="../_static/mathjax/tex-chtml.js' in (index.parent / "book" / "method.html").read_text(encoding="utf-8")
    for page in (index.parent / "book" / "_executed").glob("*.html"):
        assert str(rd.root) not in page.read_text(encoding="utf-8"), page.name
    # the repository's own book is left as it was
    assert (published.stat().st_mtime_ns if published.exists() else None) == before


def test_a_book_built_with_overrides_shows_them_on_every_page(smoke_runs, tmp_path):
    """--set augmentation.alpha=0.05: every page executed for the book, stage pages and pages run
    when the book is built alike, states the changed setting, and the profile table shows it."""
    import shutil

    rd, _ = smoke_runs
    run = tmp_path / "alpha"
    shutil.copytree(rd.root, run)
    index = build_book("smoke", root=tmp_path / "book-alpha", overrides={"augmentation.alpha": 0.05}, run_dir=run)
    executed = {p.stem: p.read_text(encoding="utf-8") for p in (index.parent / "book" / "_executed").glob("*.html")}
    assert set(executed) == {s.notebook for s in S.STAGES} | {"worked_example", "study_cost", "paper_cost", "reproduction"}
    def text(html: str) -> str:
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())

    # the pages executed under the new alpha say so themselves (stages 1-4 were reused: alpha is not theirs)
    for name in [s.notebook for s in S.STAGES if s.number >= 5] + ["worked_example", "study_cost"]:
        assert "augmentation.alpha = 0.05" in text(executed[name]), name
    # and every page of the book carries the run's banner with the changed setting
    pages = list((index.parent / "book").rglob("*.html"))  # (index.html only redirects to the intro)
    assert len(pages) > len(S.STAGES)
    for page in pages:
        assert "settings changed from the profile: augmentation.alpha = 0.05" in text(page.read_text(encoding="utf-8")), page
    repro = (index.parent / "book" / "reproducibility.html").read_text(encoding="utf-8")
    assert "0.05" in repro


def test_a_rerun_reuses_a_model_trained_from_the_same_inputs_only(smoke_runs, tmp_path, capsys):
    from xqglib.pipeline.rq1 import train_dense_retriever

    # a copy of the run's training data and retriever, so the shared smoke run stays as it was
    source, _ = smoke_runs
    for part in ("data", "retrievers"):
        shutil.copytree(source.root / part, tmp_path / part)
    rd = RunDir(tmp_path)
    weights = rd.retriever_model("xdr") / "model.safetensors"
    before = weights.stat().st_mtime_ns
    log = train_dense_retriever(SMOKE, rd, "xdr")
    assert "reusing" in capsys.readouterr().out
    assert weights.stat().st_mtime_ns == before
    assert log == json.loads(rd.retriever_log("xdr").read_text())
    # a setting of another section leaves the trained model valid
    train_dense_retriever(load_profile("smoke", {"augmentation.alpha": 0.5}), rd, "xdr")
    assert "reusing" in capsys.readouterr().out
    # one retriever setting changed: trained again, and the fingerprint records the new value
    changed = load_profile("smoke", {"retriever.max_steps": 2})
    assert len(train_dense_retriever(changed, rd, "xdr")) == 2
    assert "reusing" not in capsys.readouterr().out
    assert weights.stat().st_mtime_ns != before
    record = json.loads((rd.retriever_model("xdr").parent / "fingerprint.json").read_text())
    assert record["fingerprint"]["settings"]["retriever.max_steps"] == 2
