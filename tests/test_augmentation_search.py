"""The fuse formula against a direct computation; alignment checks; exact search."""

from __future__ import annotations

import numpy as np
import pytest

from xqglib.core.errors import UserError
from xqglib.core.formats import ranked_docids, read_trec_run, write_trec_run
from xqglib.method.augmentation import fuse
from xqglib.method.search import search


def test_fuse_is_the_official_sum_formula():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(3, 4)).astype(np.float32)
    ids = ["a", "b", "c"]
    # queries listed in an arbitrary order, 2 for a, 3 for b, 1 for c
    q_docids = ["b", "a", "c", "b", "a", "b"]
    q = rng.normal(size=(6, 4)).astype(np.float32)
    alpha = 0.01
    out = fuse(p, ids, q, q_docids, alpha)
    expected = np.stack([
        (1 - alpha) * p[0] + alpha * (q[1] + q[4]),
        (1 - alpha) * p[1] + alpha * (q[0] + q[3] + q[5]),
        (1 - alpha) * p[2] + alpha * q[2],
    ])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # a sum, not a mean: doubling every query doubles the added term
    out2 = fuse(p, ids, np.concatenate([q, q]), q_docids * 2, alpha)
    np.testing.assert_allclose(out2 - (1 - alpha) * p, 2 * (out - (1 - alpha) * p), atol=1e-6)


def test_fuse_alpha_zero_is_identity():
    p = np.eye(3, dtype=np.float32)
    np.testing.assert_array_equal(fuse(p, ["a", "b", "c"], np.ones((3, 3), np.float32), ["a", "b", "c"], 0.0), p)


def test_fuse_checks_alignment():
    p = np.zeros((2, 2), np.float32)
    with pytest.raises(UserError, match="not in the corpus"):
        fuse(p, ["a", "b"], np.zeros((2, 2), np.float32), ["a", "z"], 0.01)
    with pytest.raises(UserError, match="1 passages have no generated queries"):
        fuse(p, ["a", "b"], np.zeros((2, 2), np.float32), ["a", "a"], 0.01)
    with pytest.raises(UserError, match="not unique"):
        fuse(p, ["a", "a"], np.zeros((2, 2), np.float32), ["a", "a"], 0.01)


def test_search_is_exact_inner_product(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.normal(size=(50, 8)).astype(np.float32)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    ids = [f"d{i}" for i in range(50)]
    run = search(p, ids, q, [f"q{i}" for i in range(5)], depth=10)
    scores = q @ p.T
    for i in range(5):
        top = [ids[j] for j in np.argsort(-scores[i])[:10]]
        assert list(run[f"q{i}"]) == top
        assert run[f"q{i}"][top[0]] == pytest.approx(scores[i].max(), rel=1e-5)
    path = tmp_path / "x.trec"
    write_trec_run(path, run, "sys")
    back = read_trec_run(path)
    assert set(back) == set(run)
    for qid, docs in run.items():
        assert ranked_docids(back[qid]) == list(docs)  # same order
        assert back[qid] == pytest.approx(docs, abs=1e-6)  # scores written with 6 decimals


def test_text_augmentation_encodes_exactly_the_documented_text():
    from xqglib.method.augmentation import expanded_text, queries_document

    assert expanded_text("Warsaw", "Warsaw is the capital.", ["Wo liegt Warschau?", "ما هي العاصمة؟"]) == \
        "Warsaw Warsaw is the capital. Wo liegt Warschau? ما هي العاصمة؟"
    assert expanded_text("T", "x", []) == "T x"
    assert queries_document(["a?", "b?"]) == "a? b?"


def test_dual_index_score_fusion_by_hand():
    import numpy as np
    import pytest

    from xqglib.method.augmentation import fuse_scores

    text, queries = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert np.allclose(fuse_scores(text, queries, 0.25), [[0.75, 0.25]])
    assert np.allclose(fuse_scores(text, queries, 0.0), text)
    with pytest.raises(ValueError):
        fuse_scores(text, queries[:, :1], 0.5)
    with pytest.raises(ValueError):
        fuse_scores(text, queries, 1.5)
