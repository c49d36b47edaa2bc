"""The contrastive-alignment arm of RQ2 on hand-made cases: the translation-ranking loss against
a hand computation, hybrid batches hold the mix they should, the agnosticism probe on a
hand-made space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xqglib.method.alignment import agnosticism_probe, hybrid_batches, translation_ranking_loss


def test_translation_ranking_loss_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # cosines: a0.b0 = 1, a0.b1 = 1/sqrt2, a1.b0 = 0, a1.b1 = 1/sqrt2
    t = 0.5
    c = 1 / math.sqrt(2)
    a_to_b = (-math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(c / t)))
              - math.log(math.exp(c / t) / (math.exp(0) + math.exp(c / t)))) / 2
    b_to_a = (-math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0)))
              - math.log(math.exp(c / t) / (math.exp(c / t) + math.exp(c / t)))) / 2
    assert float(translation_ranking_loss(a, b, t)) == pytest.approx((a_to_b + b_to_a) / 2, rel=1e-6)
    # aligned translations give a lower loss than shuffled ones
    x = torch.randn(8, 16)
    assert translation_ranking_loss(x, x + 0.01 * torch.randn(8, 16)) < translation_ranking_loss(x, x[torch.randperm(8)])


def items(n: int) -> list[dict]:
    langs = ("en", "de", "th")
    return [{"id": f"q{i}", "questions": {l: f"{l} question {i}" for l in langs},
             "passages": {l: {"title": "T", "text": f"{l} passage {i}"} for l in langs}} for i in range(n)]


def test_hybrid_batches_hold_the_mix_they_should():
    batches = hybrid_batches(items(400), ["en", "de", "th"], batch_size=8, alpha=0.5, seed=3)
    assert sum(len(b) for b in batches) == 400
    assert sorted(r["id"] for b in batches for r in b) == sorted(f"q{i}" for i in range(400))  # each once
    kinds = [b[0]["kind"] for b in batches]
    assert all(r["kind"] == b[0]["kind"] for b in batches for r in b)  # one kind per batch
    assert 0.3 < kinds.count("mono") / len(kinds) < 0.7  # alpha = 0.5 over 50 batches
    for b in batches:
        for r in b:
            assert (r["query_lang"] == r["passage_lang"]) == (r["kind"] == "mono")
            assert r["query"].startswith(r["query_lang"]) and r["text"].startswith(r["passage_lang"])
            assert r["query"].split()[-1] == r["text"].split()[-1]  # the question's own paragraph
    assert all(b[0]["kind"] == "mono" for b in hybrid_batches(items(40), ["en", "de"], 8, 1.0, 0))
    assert all(b[0]["kind"] == "cross" for b in hybrid_batches(items(40), ["en", "de"], 8, 0.0, 0))
    assert hybrid_batches(items(40), ["en", "de"], 8, 0.5, 1) == hybrid_batches(items(40), ["en", "de"], 8, 0.5, 1)
    with pytest.raises(ValueError):
        hybrid_batches(items(4), ["en"], 2, 0.5, 0)


def test_agnosticism_probe_by_hand():
    en = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    de = np.array([[1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])  # the third is nearer the first English one
    table = agnosticism_probe({"en": en, "de": de}).set_index("language")
    assert table.loc["de", "questions"] == 3
    assert table.loc["de", "translation retrieved (%)"] == pytest.approx(100 * 2 / 3)
    cos = lambda u, v: float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    gaps = [cos(de[0], en[0]) - max(cos(de[0], en[1]), cos(de[0], en[2])),
            cos(de[1], en[1]) - max(cos(de[1], en[0]), cos(de[1], en[2])),
            cos(de[2], en[2]) - max(cos(de[2], en[0]), cos(de[2], en[1]))]
    assert table.loc["de", "similarity gap"] == pytest.approx(np.mean(gaps))
