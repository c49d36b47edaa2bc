"""A smoke run published end to end: the export is the same bytes twice and holds no model; the book
builds from it alone (the run moved away: nothing of it, and no model, is needed); tier 1 is exact;
a changed byte refuses the book, naming the file; an edited stage record is named stale."""

from __future__ import annotations

import json
import shutil

import pytest

from xqglib.core.errors import UserError
from xqglib.pipeline import publish as PB
from xqglib.pipeline.runner import run_pipeline

#: runs the pipeline and the book end to end: `make test-e2e`
pytestmark = pytest.mark.e2e

#: What a published folder never holds: the run's models, vectors, generated queries and TREC runs.
LARGE = ("generators", "retrievers", "reader", "embeddings", "xquadr", "rq3", "generated", "trec", "data")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, real_data):
    return run_pipeline("smoke", run_dir=tmp_path_factory.mktemp("publish") / "run")


def contents(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_published_smoke_run_is_deterministic_and_builds_its_book_alone(smoke_run, tmp_path):
    first = PB.export("smoke", smoke_run.root, tmp_path / "first" / "smoke")
    second = PB.export("smoke", smoke_run.root, tmp_path / "second" / "smoke")
    assert contents(first) == contents(second)  # the same run, the same bytes
    files = contents(first)
    assert not [f for f in files if f.split("/")[0] in LARGE or f.startswith("eval/xor_predictions")]
    for name in ("results", "rq2_results", "rq3_retrieval", "rq3_reading"):  # byte for byte
        assert files[f"eval/{name}.parquet"] == (smoke_run.root / "eval" / f"{name}.parquet").read_bytes()
    assert {"MANIFEST.json", "headlines.csv", "published.json", "profile.json", "timings.json",
            "stages/12_rq3-evaluate.json", "notebooks/06_evaluate.ipynb", "notebooks/book/worked_example.ipynb",
            "notebooks/book/study_cost.ipynb", "notebooks/book/paper_cost.ipynb"} <= set(files)
    assert [f for f in files if f.startswith("figures/06_evaluate-") and f.endswith(".png")]
    manifest = json.loads(files["MANIFEST.json"])
    assert set(manifest["files"]) == set(files) - {"MANIFEST.json"}
    assert PB.stale_message(first) is None

    compared = PB.tier1(first)
    assert set(compared["verdict"]) == {"exact"} and len(compared) > 100
    assert (first / "reproduction" / "tier1.csv").exists()
    PB.verify(first)  # the tier's record lies outside the manifest

    # the book from the export alone: the run (models, vectors, runs) moved out of reach
    hidden = smoke_run.root.with_name("hidden")
    smoke_run.root.rename(hidden)
    try:
        index = PB.build_published_book(first, tmp_path / "book")
    finally:
        hidden.rename(smoke_run.root)
    page = (index.parent / "book" / "intro.html").read_text(encoding="utf-8")  # index.html only redirects
    assert "Published run of the <code>smoke</code> profile" in page and "commit <code>" in page
    reproduction = (index.parent / "book" / "_executed" / "reproduction.html").read_text(encoding="utf-8")
    assert "Every number is exact" in reproduction
    results = (index.parent / "book" / "results.html").read_text(encoding="utf-8")
    assert "Published run of the" in results  # the glued pages built, with the banner

    # a changed byte refuses the book and names the file
    data = bytearray((second / "eval" / "results.parquet").read_bytes())
    data[len(data) // 2] ^= 1
    (second / "eval" / "results.parquet").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"eval/results\.parquet differs from MANIFEST\.json"):
        PB.build_published_book(second, tmp_path / "book2")

    # an export whose stage record no longer matches the code names the stage to rerun from
    stale = tmp_path / "stale" / "smoke"
    shutil.copytree(first, stale)
    record = json.loads((stale / "stages" / "08_encode-rq2.json").read_text())
    record["fingerprint"] = "edited"
    (stale / "stages" / "08_encode-rq2.json").write_text(json.dumps(record))
    assert "--from 8" in PB.stale_message(stale)
