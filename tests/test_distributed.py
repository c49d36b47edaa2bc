"""Several processes through accelerate and torch.distributed (gloo on CPU): the two-process run of
``python -m xqglib.pipeline.distributed check`` (launched by torchrun, as a GPU run would be) against the
one-process run of the same code. Stated tolerances: losses to 1e-5 relative; the first global
batch's gradient to 1e-3 relative in norm (float32: the processes pad and sum in other orders, and at
initialisation the contrastive gradient is a small sum of nearly cancelling terms: splitting the same
batch in two within one process moves it by ~4e-4 too); sharded vectors to 1e-5."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xqglib.core.paths import repo_root
from xqglib.pipeline import rq1 as P

#: runs the pipeline, torchrun or the book end to end: `make test-e2e`
pytestmark = pytest.mark.e2e


def launch(out: Path, processes: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if processes == 1:
        command = [sys.executable, "-m", "xqglib.pipeline.distributed", "check", "--out", str(out)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_port", "29517", "-m", "xqglib.pipeline.distributed", "check", "--out", str(out)]
    done = subprocess.run(command, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "check.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    return {n: (launch(root / str(n), n), root / str(n)) for n in (1, 2)}


def test_two_processes_train_as_one(runs):
    (one, one_dir), (two, two_dir) = runs[1], runs[2]
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["first_loss"] == pytest.approx(one["first_loss"], rel=1e-6)
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-5)
    g1, g2 = np.load(one_dir / "gradient.npy"), np.load(two_dir / "gradient.npy")
    assert g1.shape == g2.shape and np.linalg.norm(g1) > 0
    assert np.linalg.norm(g2 - g1) / np.linalg.norm(g1) < 1e-3


def test_sharded_encoding_equals_one_process_and_resumes(runs):
    (one, one_dir), (two, two_dir) = runs[1], runs[2]
    assert one["ids"] == two["ids"] == [f"d{i}" for i in range(11)]
    assert np.allclose(np.load(two_dir / "vectors.npy"), np.load(one_dir / "vectors.npy"), atol=1e-5)
    shards = sorted(p.name for p in (two_dir / "shards").iterdir())
    assert shards == ["passages.shard-0-of-2.ids.json", "passages.shard-0-of-2.npy",
                      "passages.shard-1-of-2.ids.json", "passages.shard-1-of-2.npy"]
    assert json.loads((two_dir / "shards" / "passages.shard-1-of-2.ids.json").read_text()) == [f"d{i}" for i in range(6, 11)]


def test_a_retriever_trained_on_two_processes_is_what_stage_4_reuses(tmp_path, real_data, capsys):
    from xqglib.config.profiles import load_profile
    from xqglib.core.artifacts import RunDir
    from xqglib.pipeline.runner import run_pipeline

    rd = run_pipeline("smoke", run_dir=tmp_path / "run", stop=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29518", "-m", "xqglib", "train-retriever", "xdr", "--profile", "smoke", "--run-dir",
                           str(rd.root)], cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "xdr: 4 steps, saved to " in done.stdout and "on 2 process(es)" in done.stdout
    log = P.train_dense_retriever(load_profile("smoke"), RunDir(rd.root), "xdr")
    assert "reusing" in capsys.readouterr().out and len(log) == 4
