"""The published run's machinery on hand-made folders and rows (no model, no run): the verdict rules,
the manifest check, the stale-published-run check and the export's deterministic files; and, where
``published/cpu`` exists, that it is in step with the code and that tier 1 reproduces it exactly."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from xqglib.config.profiles import load_profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.pipeline import publish as PB
from xqglib.pipeline import stages as S
from xqglib.pipeline.common import record_profile
from xqglib.study import headlines as H


def rows(*values: tuple[str, str, float, int]) -> pd.DataFrame:
    """Headline rows (measure, kind, value, precision), named by their position."""
    return pd.DataFrame([H.row("RQ1", "Table 1", f"system {i}", "Avg", m, k, v, p)
                         for i, (m, k, v, p) in enumerate(values)], columns=H.COLUMNS)


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------

def test_verdicts_exact_within_and_different():
    # exact: the same at the printed precision, though not the same float
    assert H.verdict(12.344, 12.3449, 2, 0.5) == "exact"
    assert H.verdict(0.0312, 0.0314, 3, 0.05) == "exact"
    # within the tolerance, not at the precision
    assert H.verdict(12.30, 12.70, 2, 0.5) == "within"
    assert H.verdict(12.30, 11.80, 2, 0.5) == "within"  # the bound itself counts
    # beyond it
    assert H.verdict(12.30, 12.81, 2, 0.5) == "different"
    # missing: both is exact (a number undefined in both runs), one is different
    assert H.verdict(math.nan, math.nan, 2, 0.5) == "exact"
    assert H.verdict(12.3, math.nan, 2, 0.5) == "different"


def test_each_measure_has_its_tolerance():
    assert H.tolerance("R@2kt", "score") == H.tolerance("R@2kt", "gain") == 0.5
    assert H.tolerance("f1", "score") == H.tolerance("em", "gain") == 1.0
    assert H.tolerance("R@2kt", "p") == 0.05
    assert H.tolerance("mrr@10", "count") == 1.0


def test_comparing_headline_tables_gives_a_verdict_per_number():
    published = rows(("R@2kt", "score", 30.123, 2), ("R@2kt", "gain", 1.20, 2), ("R@2kt", "p", 0.04, 3),
                     ("f1", "score", 20.0, 1), ("R@5kt", "score", 40.0, 2))
    rerun = rows(("R@2kt", "score", 30.1249, 2), ("R@2kt", "gain", 1.60, 2), ("R@2kt", "p", 0.20, 3),
                 ("f1", "score", 20.9, 1))
    compared = H.compare_headlines(published, rerun)
    assert list(compared["verdict"]) == ["exact", "within", "different", "within", "different"]
    assert compared["diff"].iloc[1] == pytest.approx(0.40)
    assert list(compared["tolerance"]) == [0.5, 0.5, 0.05, 1.0, 0.5]
    assert H.verdict_counts(compared) == {"exact": 1, "within": 2, "different": 2}
    # a number only the rerun has is different too, and keeps the rerun's precision
    extra = pd.concat([rerun, rows(*[("R@2kt", "score", 1.0, 2)] * 6).iloc[[5]]], ignore_index=True)
    both = H.compare_headlines(published, extra)
    assert both.iloc[-1]["verdict"] == "different" and both.iloc[-1]["precision"] == 2


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------

def published_folder(tmp_path):
    folder = tmp_path / "published" / "smoke"
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "results.parquet").write_bytes(bytes(range(200)))
    (folder / "headlines.csv").write_text("rq,table\nRQ1,Table 1\n", encoding="utf-8")
    PB.write_manifest(folder)
    return folder


def test_the_manifest_names_a_changed_missing_or_extra_file(tmp_path):
    folder = published_folder(tmp_path)
    manifest = PB.verify(folder)
    assert set(manifest["files"]) == {"eval/results.parquet", "headlines.csv"}
    assert manifest["total bytes"] == 200 + len("rq,table\nRQ1,Table 1\n")
    # the tiers write beside it, outside the manifest: that is no change of the published run
    (folder / PB.REPRODUCTION).mkdir()
    (folder / PB.REPRODUCTION / "tier1.csv").write_text("x\n")
    PB.verify(folder)
    data = bytearray((folder / "eval" / "results.parquet").read_bytes())
    data[100] ^= 1  # one changed byte, the same size
    (folder / "eval" / "results.parquet").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"eval/results\.parquet differs from MANIFEST\.json"):
        PB.verify(folder)
    data[100] ^= 1
    (folder / "eval" / "results.parquet").write_bytes(bytes(data))
    PB.verify(folder)
    (folder / "eval" / "new.csv").write_text("a\n")
    with pytest.raises(UserError, match=r"eval/new\.csv is not in MANIFEST\.json"):
        PB.verify(folder)
    (folder / "eval" / "new.csv").unlink()
    (folder / "headlines.csv").unlink()
    with pytest.raises(UserError, match=r"headlines\.csv is listed in MANIFEST\.json but missing"):
        PB.verify(folder)
    with pytest.raises(UserError, match="no MANIFEST.json"):
        PB.verify(tmp_path)


# --------------------------------------------------------------------------------------------
# In step with the code
# --------------------------------------------------------------------------------------------

def in_step_folder(tmp_path):
    """A published folder of the smoke profile whose stage records carry today's fingerprints."""
    cfg = load_profile("smoke")
    folder = tmp_path / "published" / "smoke"
    record_profile(RunDir(folder), cfg, {})
    for s in S.for_benchmark(cfg):
        path = folder / "stages" / S.record_path(RunDir(folder), s).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stage": s.name, "fingerprint": S.fingerprint(cfg, s),
                                    "settings": S.covered_settings(cfg, s)}), encoding="utf-8")
    return folder


def test_a_stale_published_record_names_the_stage_to_rerun_from(tmp_path):
    folder = in_step_folder(tmp_path)
    assert PB.stale_stages(folder) == [] and PB.stale_message(folder) is None
    path = folder / "stages" / "05_encode-search.json"
    record = json.loads(path.read_text())
    record["fingerprint"] = "0" * 16
    record["settings"]["augmentation.alpha"] = 0.5
    path.write_text(json.dumps(record))
    stale = PB.stale_stages(folder)
    assert [s.number for s, _ in stale] == [5]
    assert "augmentation.alpha" in stale[0][1]
    message = PB.stale_message(folder)
    assert "stage 5 (encode-search)" in message and "--from 5" in message and "publish --profile smoke" in message


def test_a_changed_notebook_makes_its_stage_and_every_later_one_stale(tmp_path, monkeypatch):
    folder = in_step_folder(tmp_path)
    digest = S.notebook_digest
    monkeypatch.setattr(S, "notebook_digest", lambda s: "edited" if s.notebook == "07_train_contrastive" else digest(s))
    stale = PB.stale_stages(folder)
    assert [s.number for s, _ in stale] == list(range(7, 13))
    assert "notebook 07_train_contrastive" in stale[0][1]
    assert "--from 7" in PB.stale_message(folder)


# --------------------------------------------------------------------------------------------
# Deterministic files
# --------------------------------------------------------------------------------------------

def test_the_headline_table_reads_back_every_float_and_writes_the_same_bytes(tmp_path):
    frame = rows(("R@2kt", "score", 0.1 + 0.2, 2), ("R@2kt", "p", 1 / 3, 3), ("f1", "score", math.nan, 1),
                 ("R@5kt", "gain", -1e-17, 2))
    PB.write_headlines(tmp_path / "a.csv", frame)
    PB.write_headlines(tmp_path / "b.csv", PB.read_headlines(tmp_path / "a.csv"))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    back = PB.read_headlines(tmp_path / "a.csv")
    assert back["value"].iloc[0] == 0.1 + 0.2 and back["value"].iloc[1] == 1 / 3 and math.isnan(back["value"].iloc[2])
    assert set(H.compare_headlines(frame, back)["verdict"]) == {"exact"}
    assert PB.stable_json({"b": 1, "a": [2]}) == PB.stable_json({"a": [2], "b": 1})


def test_notebooks_lose_their_clock_and_figures_come_out_in_order(tmp_path):
    import base64

    png = base64.b64encode(b"\x89PNG fake").decode()
    nb = {"metadata": {"papermill": {"start_time": "t0", "end_time": "t1", "duration": 3.0, "parameters": {}}},
          "nbformat": 4, "nbformat_minor": 5,
          "cells": [{"cell_type": "code", "metadata": {"papermill": {"start_time": "t", "duration": 1.0},
                                                        "execution": {"iopub.status.busy": "t"}},
                     "outputs": [{"output_type": "display_data", "data": {"image/png": png}},
                                 {"output_type": "display_data", "data": {"text/plain": "x", "image/png": png}}],
                     "source": "1"}]}
    (tmp_path / "06_evaluate.ipynb").write_text(json.dumps(nb))
    text = PB.normalised_notebook(tmp_path / "06_evaluate.ipynb")
    assert "t0" not in text and "duration" not in text and "iopub" not in text and '"parameters"' in text
    nb["metadata"]["papermill"]["start_time"] = "another day"
    (tmp_path / "again.ipynb").write_text(json.dumps(nb))
    assert PB.normalised_notebook(tmp_path / "again.ipynb") == text
    (tmp_path / "figures").mkdir()
    assert PB.extract_figures(tmp_path / "06_evaluate.ipynb", tmp_path / "figures") == ["06_evaluate-1.png",
                                                                                           "06_evaluate-2.png"]
    assert (tmp_path / "figures" / "06_evaluate-2.png").read_bytes() == b"\x89PNG fake"


def test_an_incomplete_run_is_refused_in_one_line(tmp_path):
    rd = RunDir(tmp_path / "run")
    with pytest.raises(UserError, match="holds no run"):
        PB.export("smoke", rd.root, tmp_path / "out")
    record_profile(rd, load_profile("smoke"), {})
    with pytest.raises(UserError, match=r"not a complete run: stage 1 \(data\) has not finished.*--from 1"):
        PB.export("smoke", rd.root, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# --------------------------------------------------------------------------------------------
# The repository's published run (skipped until there is one)
# --------------------------------------------------------------------------------------------

CPU = PB.published_dir("cpu")
needs_published = pytest.mark.skipif(not (CPU / PB.MANIFEST).exists(),
                                     reason=f"no published run of the cpu profile yet ({CPU}): "
                                            "python -m xqglib publish --profile cpu after a complete run")


@needs_published
def test_the_published_run_is_in_step_with_the_code():
    message = PB.stale_message(CPU)
    assert message is None, message


@needs_published
def test_tier1_reproduces_the_published_headlines_exactly():
    compared = PB.tier1(CPU, write=False)
    off = compared[compared["verdict"] != "exact"]
    assert off.empty, off.head(10).to_string()
