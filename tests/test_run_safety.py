"""A run that never lies: each defect found by trying ends in a clear error or the
right result. Fast: tiny models, hand-made files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import ranked_docids, read_trec_run, write_json, write_trec_run
from xqglib.data import sources as D


def test_word_tokenize_keeps_dashed_ranges_as_the_paper_era_nltk():
    """NLTK 3.10 splits en/em dashes, so an answer "60–100 bpm" could never match a passage;
    3.9.2 (pinned) tokenises as 3.8.1 did."""
    from xqglib.evaluation.metrics import exact_tokenizer_available, xor_hit, xor_word_tokenize

    assert exact_tokenizer_available()
    tokens = xor_word_tokenize("A resting heart rate of 60–100 bpm is normal.")
    assert "60–100" in tokens
    assert xor_hit([tokens], ["60–100 bpm"], 2000) is True


def test_trec_runs_keep_full_precision_and_the_search_order(tmp_path):
    # two distinct scores that 6 decimals would make equal, and a true tie in FAISS's order
    run = {"q": {"b": 0.8000004, "a": 0.8000001, "z": 0.5, "c": 0.5}}
    write_trec_run(tmp_path / "r.trec", run, "t")
    back = read_trec_run(tmp_path / "r.trec")
    assert back == run
    assert ranked_docids(back["q"]) == ["b", "a", "z", "c"]  # ties keep the run's order, not docid order
    assert [line.split()[2] for line in (tmp_path / "r.trec").read_text().splitlines()] == ["b", "a", "z", "c"]


def test_result_files_are_written_with_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644


def test_embeddings_out_of_step_with_their_ids_are_refused(tmp_path):
    rd = RunDir(tmp_path)
    vectors = np.eye(3, dtype=np.float32)
    rd.save_embeddings("r", "passages", vectors, ["p1", "p2", "p3"])
    rd.save_embeddings("r", "queries", vectors[:2], ["q1", "q2"])
    rd.save_embeddings("r", "generated", vectors, [{"docid": "p1", "lang": "de", "slot": 0}] * 3)
    assert rd.load_embeddings("r", ["p1", "p2", "p3"], ["q1", "q2"])["passages_ids"] == ["p1", "p2", "p3"]
    with pytest.raises(UserError, match=r"passages.npy is out of step .*rerun from stage 5"):
        rd.load_embeddings("r", ["p2", "p1", "p3"], ["q1", "q2"])  # the corpus order changed
    np.save(rd.embeddings("r", "queries"), vectors)  # a matrix replaced behind its ids' back
    with pytest.raises(UserError, match=r"queries.npy is out of step .*3 rows, 2 stored ids"):
        rd.load_embeddings("r")


def _trained_copy(tmp_path: Path):
    """A tiny retriever 'trained' and saved as the pipeline saves it, with its fingerprint."""
    from xqglib.core.reuse import save_model
    from xqglib.models.builds import build_model
    from xqglib.models.registry import load_encoder, load_tokenizer

    folder = tmp_path / "retrievers" / "x" / "model"
    tiny = build_model("tiny-bert")
    fingerprint = {"model": "tiny-bert", "settings": {}, "inputs": {}}
    save_model(load_encoder(str(tiny)), load_tokenizer(str(tiny)), folder, folder.with_name("log.json"),
               [{"step": 1}], fingerprint, 12.5)
    return folder, fingerprint


def test_a_corrupt_model_folder_is_trained_again_not_reused(tmp_path, capsys):
    from xqglib.core.reuse import earlier_model

    folder, fingerprint = _trained_copy(tmp_path)
    assert earlier_model(folder, folder.with_name("log.json"), fingerprint) == ([{"step": 1}], 12.5)
    assert earlier_model(folder, folder.with_name("log.json"), {**fingerprint, "settings": {"lr": 1}}) is None
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10:] = b"\0" * 10
    weights.write_bytes(bytes(data))
    assert earlier_model(folder, folder.with_name("log.json"), fingerprint) is None
    assert "its weights differ from the ones saved" in capsys.readouterr().out


def test_a_failed_model_save_leaves_no_partial_folder(tmp_path, monkeypatch):
    from xqglib.core.reuse import save_model
    from xqglib.models.builds import build_model
    from xqglib.models.registry import load_encoder, load_tokenizer

    model = load_encoder(str(build_model("tiny-bert")))

    def disk_full(*args, **kwargs):
        Path(args[0]).mkdir(parents=True, exist_ok=True)
        (Path(args[0]) / "model.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save_pretrained", disk_full)
    folder = tmp_path / "retrievers" / "x" / "model"
    with pytest.raises(UserError, match="No space left on device.*free some disk space"):
        save_model(model, load_tokenizer(str(build_model("tiny-bert"))), folder, folder.with_name("log.json"),
                   [], {}, 1.0)
    assert sorted(p.name for p in folder.parent.iterdir()) == []  # no model.partial, no fingerprint


def test_hard_negatives_are_drawn_anew_each_epoch_as_tevatron():
    from xqglib.method.retriever_training import epoch_negatives

    pool = list(range(10))
    epochs = [epoch_negatives(pool, 3, e, seed=7) for e in range(4)]
    assert all(len(e) == 3 and set(e) <= set(pool) for e in epochs)
    # consecutive windows of one shuffled pool: the first three epochs never repeat a negative
    assert len(set(epochs[0] + epochs[1] + epochs[2])) == 9
    assert epochs[0] != epochs[1]
    assert epoch_negatives(pool, 3, 0, seed=7) == epochs[0]  # seeded per query
    assert len(epoch_negatives([1], 3, 0, seed=1)) == 3  # a small pool: with replacement


def test_retriever_training_clips_gradients_to_norm_one(monkeypatch):
    from xqglib.method.encoding import DenseEncoder
    from xqglib.method.retriever_training import train_retriever
    from xqglib.models.builds import build_model
    from xqglib.models.registry import encoder_spec, load_encoder, load_tokenizer

    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        before = real(params, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        seen.append((max_norm, float(before), float(after)))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    path = str(build_model("tiny-bert"))
    rows = [{"query": f"question {i}", "positive_passages": [{"title": "t", "text": f"passage {i}"}],
             "negative_passages": [{"title": "t", "text": f"other {i} {j}"} for j in range(3)]} for i in range(4)]
    enc = DenseEncoder(load_encoder(path), load_tokenizer(path), encoder_spec("tiny-bert"), 16, 16, False)
    log = train_retriever(enc, rows, epochs=1, max_steps=1, batch_size=4, n_negatives=1, lr=1e-3,
                          warmup_ratio=0.0, seed=0, freeze_embeddings=False)
    assert [s[0] for s in seen] == [1.0]  # the Trainer's default, every step
    assert log[0]["grad_norm"] == seen[0][1]
    assert seen[0][2] <= 1.0 + 1e-5


def _data_copy(tmp_path: Path, real_data: Path) -> Path:
    root = tmp_path / "data"
    for rel in ("squad/dev-v1.1.json", "xquad/xquad.ar.json", "xquad/xquad.de.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes((real_data / rel).read_bytes())
    return root


def test_a_data_file_that_is_not_the_published_one_is_refused(tmp_path, real_data, monkeypatch):

    monkeypatch.setenv("XQG_CACHE_DIR", str(tmp_path / "cache"))
    root = _data_copy(tmp_path, real_data)
    assert D.load_xquad("ar", root)  # the published file: accepted (and its digest cached)
    assert (tmp_path / "cache" / "data-digests.json").exists()
    # a German file saved as the Arabic one
    (root / "xquad/xquad.ar.json").write_bytes((root / "xquad/xquad.de.json").read_bytes())
    with pytest.raises(UserError, match=r"xquad.ar.json is not the published xquad/xquad.ar.json"):
        D.load_xquad("ar", root)


def test_damaged_files_name_themselves(tmp_path):
    from xqglib.core.formats import read_json, read_jsonl

    (tmp_path / "latin1.jsonl").write_bytes('{"q": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.jsonl is not UTF-8 text"):
        read_jsonl(tmp_path / "latin1.jsonl")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(UserError, match=r"bad.json is not UTF-8 text"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "cut.json").write_text('{"a": ', encoding="utf-8")
    with pytest.raises(UserError, match=r"cut.json is not valid JSON"):
        read_json(tmp_path / "cut.json")
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"id": "1", "answers": []}]}]}]}
    (tmp_path / "noq.json").write_text(json.dumps(squad), encoding="utf-8")
    with pytest.raises(UserError, match=r"noq.json: question 1 has no question"):
        D.squad_articles(tmp_path / "noq.json")


def test_an_unusable_run_directory_is_one_clear_line(tmp_path, real_data):
    from xqglib.pipeline.runner import run_pipeline

    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UserError, match=r"run directory .*file is a file; choose another --run-dir"):
        run_pipeline("smoke", run_dir=tmp_path / "file")
    # a run directory that cannot be made (its parent is a file; as root, permissions never stop us)
    with pytest.raises(UserError, match=r"cannot create the run directory .*file/run \(Not a directory\)"):
        run_pipeline("smoke", run_dir=tmp_path / "file" / "run")


def test_progress_prints_a_line_at_least_every_interval_even_in_a_slow_step(capfd, monkeypatch):
    import time

    import xqglib.core.progress as P

    monkeypatch.setattr(P, "LINE_EVERY", 0.5)
    for _ in P.progress(range(1), desc="slow steps", unit="steps"):
        time.sleep(2.6)  # one step much longer than the interval
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("slow steps")]
    during = [line for line in lines if "0/1" in line]
    assert len(during) >= 3  # 00:00, 00:01, 00:02: the heartbeat fills the silence of the step
    assert "1/1" in lines[-1]
    assert len(set(lines)) == len(lines)  # no line repeated


def test_a_book_is_never_built_from_a_run_that_did_not_finish(tmp_path, monkeypatch, real_data):
    """After a failed or killed rerun, the previous executed notebooks must not be published."""
    import xqglib.pipeline.runner as runner

    monkeypatch.setattr(runner, "run_pipeline", lambda *args, **kwargs: None)  # a rerun that did nothing
    (tmp_path / "run" / "notebooks").mkdir(parents=True)
    for stage in ("01_data", "06_evaluate"):  # old executed copies lying around
        (tmp_path / "run" / "notebooks" / f"{stage}.ipynb").write_text("{}")
    with pytest.raises(UserError, match=r"stage 1 \(data\) has not finished under these settings.*no book is built"):
        runner.build_book("smoke", root=tmp_path / "book", run_dir=tmp_path / "run")
    assert not (tmp_path / "book" / "_build").exists()


def test_a_bare_jupyter_book_build_without_the_executed_notebooks_fails(tmp_path):
    import shutil
    import subprocess
    import sys

    from xqglib.core.paths import repo_root
    from xqglib.pipeline.runner import BOOK_SOURCES

    for name in BOOK_SOURCES:
        source = repo_root() / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("_executed"))
        else:
            shutil.copy2(source, tmp_path / name)
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(tmp_path), "--quiet"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "the executed notebooks are missing" in result.stdout + result.stderr


def test_overrides_never_silently_replace_the_profiles_own_run(tmp_path, monkeypatch, real_data):
    from xqglib.config.profiles import load_profile
    from xqglib.pipeline import stages as S
    from xqglib.pipeline.runner import run_pipeline

    monkeypatch.setenv("XQG_RUNS_DIR", str(tmp_path))
    rd = RunDir(tmp_path / "smoke")
    cfg = load_profile("smoke")
    for stage in S.STAGES[:1]:  # a finished data stage in the default run directory
        for path in S.outputs(stage, cfg):
            (rd.root / path).parent.mkdir(parents=True, exist_ok=True)
            (rd.root / path).write_text("{}")
        S.finish(cfg, rd, stage)
    with pytest.raises(UserError, match=r"differ from the run in .*smoke from stage 1 \(data\) on.*own --run-dir"):
        run_pipeline("smoke", {"data.max_corpus": 30})
    assert S.stale_reason(cfg, rd, S.STAGES[0]) is None  # the default run is untouched


def test_ctrl_c_outside_a_notebook_is_one_line(tmp_path, monkeypatch, capsys):
    from xqglib import cli
    from xqglib.pipeline import runner

    monkeypatch.setattr(runner, "run_pipeline", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert cli.main(["run", "--profile", "smoke", "--run-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted; finished stages are kept, and `run --from N` resumes"


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_exits_cleanly_and_can_resume(tmp_path, real_data, signal_name):
    """Ctrl-C (SIGINT) or a kill (SIGTERM) during a stage: one line, exit 130, no half-executed
    notebook, the finished stage kept."""
    import signal
    import subprocess
    import sys
    import time

    from xqglib.config.profiles import load_profile
    from xqglib.core.paths import repo_root
    from xqglib.pipeline import stages as S

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "xqglib", "run", "--profile", "smoke", "--run-dir", str(run),
                             "--to", "2"], cwd=repo_root(), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (run / "notebooks" / "02_train_generator.running.ipynb").exists():
        assert proc.poll() is None and time.time() < deadline, "stage 2 never started"
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(getattr(signal, signal_name))
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130
    assert "interrupted; finished stages are kept, and `run --from N` resumes" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (run / "notebooks").iterdir()) == ["01_data.ipynb"]
    assert S.stale_reason(load_profile("smoke"), RunDir(run), S.stage(1)) is None


def test_the_paper_profile_offline_is_refused_before_any_work(tmp_path, real_data):
    from xqglib.pipeline.runner import run_pipeline

    with pytest.raises(UserError, match=r"the paper profile needs what this machine does not have:\n"
                                        r"  - model\(s\) google/mt5-base, bert-base-multilingual-cased: .*\n"
                                        r"  - XOR-Retrieve's passage collection at .*enwiki_20190201_w100.tsv.*\n"
                                        r"  - the retriever training data Tevatron/xor-tydi .*\n"
                                        r"  \(the same code path runs offline on tiny models: --set data.benchmark=b3-tiny"):
        run_pipeline("paper", run_dir=tmp_path / "paper")
    assert [p for p in (tmp_path / "paper").rglob("*") if p.is_file()] == []  # nothing ran, nothing written
    from xqglib.models.registry import missing_models

    assert missing_models(["tiny-mt5", "tiny-bert", str(tmp_path)]) == []  # local builders and folders are at hand


def test_book_pages_show_the_settings_the_run_used(tmp_path):
    """The pages executed when the book is built read the run's resolved profile (overrides
    included), not the profile's defaults."""
    import json

    from xqglib.config.profiles import load_profile
    from xqglib.core.paths import repo_root
    from xqglib.pipeline import runner
    from xqglib.pipeline.common import record_profile, resolved_run

    given = {"augmentation.alpha": 0.05}
    assert load_profile("smoke").augmentation.alpha != 0.05
    rd = RunDir(tmp_path / "run")
    record_profile(rd, load_profile("smoke", given), given)
    cfg, back = resolved_run("smoke", str(rd.root))
    assert cfg.augmentation.alpha == 0.05 and back.root == rd.root
    with pytest.raises(UserError, match="no profile.json"):
        resolved_run("smoke", str(tmp_path / "empty"))
    for name in ("worked_example", "study_cost"):
        assert name in runner.BOOK_NOTEBOOKS
        cells = json.loads((repo_root() / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        assert "resolved_run(profile, run_dir)" in "".join("".join(c["source"]) for c in cells), name


def _finished(cfg, rd: RunDir, number: int) -> None:
    """Stage ``number`` finished under ``cfg``: its declared outputs (empty files) and its record."""
    from xqglib.pipeline import stages as S

    for path in S.outputs(S.stage(number), cfg):
        (rd.root / path).parent.mkdir(parents=True, exist_ok=True)
        (rd.root / path).touch()
    S.finish(cfg, rd, S.stage(number))


def test_a_stage_that_reads_only_the_data_may_run_before_the_generator(tmp_path):
    """Stage 4 (and 7) read only stage 1's files: they may start before stages 2-3, but not over an
    earlier stage that finished under other settings; stage 5 still needs every stage it reads from."""
    from xqglib.config.profiles import load_profile
    from xqglib.pipeline import stages as S

    smoke = load_profile("smoke")
    assert [s.number for s in S.ancestors(S.stage(4), smoke)] == [1]
    assert [s.number for s in S.ancestors(S.stage(5), smoke)] == [1, 2, 3, 4]
    assert {4, 7, 10, 11} <= {s.number for s in S.ancestors(S.stage(12), smoke)}
    rd = RunDir(tmp_path / "run")
    _finished(smoke, rd, 1)
    S.check_ready(smoke, rd, S.stage(4))
    S.check_ready(smoke, rd, S.stage(7))
    with pytest.raises(UserError, match=r"cannot start stage 5 \(encode-search\): stage 2 \(train-generator\) "
                                        r"has not finished .*Run from stage 2"):
        S.check_ready(smoke, rd, S.stage(5))
    # a range is checked whole before its first stage starts
    from xqglib.pipeline.runner import run_pipeline

    with pytest.raises(UserError, match=r"cannot start stage 5 \(encode-search\): stage 2 \(train-generator\)"):
        run_pipeline("smoke", run_dir=rd.root, start=4, stop=5)
    assert not (rd.root / "notebooks").exists()
    _finished(load_profile("smoke", {"generator.steps": 3}), rd, 2)
    with pytest.raises(UserError, match=r"cannot start stage 4 \(train-retriever\): stage 2 \(train-generator\) "
                                        r"ran with other settings \(generator.steps: 3 -> 6\)"):
        S.check_ready(smoke, rd, S.stage(4))
