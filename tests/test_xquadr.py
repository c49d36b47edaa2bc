"""Benchmark B2 (XQuAD-R) with XTREME-R's protocol: the pool, the relevant answers and mAP@20 on a
hand-made two-language set with known answers, and the official counts on the real data."""

from __future__ import annotations

import numpy as np
import pytest

from xqglib.data import xquadr as L


def paragraph(context: str, breaks: list[list[int]], qas: list[tuple[str, str, int]]) -> dict:
    return {"context": context, "sentence_breaks": breaks,
            "qas": [{"id": i, "question": q, "answers": [{"answer_start": s, "text": "x"}]} for i, q, s in qas]}


EN = [{"title": "T", "paragraphs": [
    paragraph("Red is hot. Blue is cold.", [[0, 11], [12, 25]], [("q1", "hot?", 0), ("q2", "cold?", 13)]),
    paragraph("Cats purr.\nDogs bark.", [[0, 10], [11, 21]], [("q3", "bark?", 12), ("q4", "lost?", 30)])]}]
DE = [{"title": "T", "paragraphs": [
    paragraph("Rot ist heiss. Blau ist kalt.", [[0, 14], [15, 29]], [("q1", "heiss?", 0), ("q2", "kalt?", 16)]),
    paragraph("Katzen schnurren. Hunde bellen.", [[0, 17], [18, 31]], [("q3", "bellen?", 19)])]}]


def test_the_pool_and_the_relevant_answers():
    bench = L.build({"en": EN, "de": DE})
    # q4's answer starts in no sentence: skipped, as the official code does
    assert [q["uid"] for q in bench.questions] == ["q1_en", "q2_en", "q3_en", "q1_de", "q2_de", "q3_de"]
    assert [c["uid"] for c in bench.candidates] == ["en_1_0", "en_1_1", "en_2_0", "en_2_1",
                                                    "de_1_0", "de_1_1", "de_2_0", "de_2_1"]
    assert bench.relevant == {"q1": [0, 4], "q2": [1, 5], "q3": [3, 7]}
    # the sentence, then its paragraph, line breaks removed
    assert bench.candidate_texts()[2] == "Cats purr.Cats purr.Dogs bark."


def test_average_precision_by_hand():
    # hits at ranks 1 and 3: (1/1 + 2/3) / min(2, 20)
    assert L.average_precision_at_k({1, 3}, [3, 0, 1], 20) == pytest.approx((1 + 2 / 3) / 2)
    assert L.average_precision_at_k({1, 3}, [0, 2, 1], 2) == 0.0  # the hit lies beyond k
    assert L.average_precision_at_k({5}, [5, 5], 20) == 1.0  # a repeated prediction counts once


def test_map_views_by_hand():
    bench = L.build({"en": EN, "de": DE})
    # candidates: one dimension per sentence meaning (hot, cold, purr, bark), both languages alike
    meaning = np.eye(4)
    candidates = np.vstack([meaning, meaning])
    questions = np.array([[1, 0, 0, 0], [0, 0.5, 0, 0.6], [0, 0, 0, 1],    # en: q2 prefers "bark"
                          [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)  # de: all right
    ap = L.average_precisions(bench, questions, candidates, k=20)
    # q2_en ranks both "bark" sentences (0.6) above both "cold" ones (0.5): hits at 3 and 4
    assert ap[1] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert np.allclose(np.delete(ap, 1), 1.0)
    v = L.views(bench, questions, candidates)
    assert v["pooled"] == pytest.approx(ap.mean())
    # mono: en pool for en questions: q2_en's "cold" at rank 2 -> 1/2; de all 1
    assert v["mono"] == pytest.approx(((1 + 0.5 + 1) / 3 + 1) / 2)
    # cross: en->de the same 1/2 for q2; de->en all 1
    assert v["cross"] == pytest.approx(((1 + 0.5 + 1) / 3 + 1) / 2)


def test_restrict_keeps_the_relevant_answers_in_step():
    bench = L.build({"en": EN, "de": DE + [{"title": "U", "paragraphs": [
        paragraph("Neu.", [[0, 4]], [("q9", "neu?", 0)])]}]})
    small = bench.restrict({"T"})
    assert len(small.candidates) == 8 and all(q["title"] == "T" for q in small.questions)
    assert small.relevant["q1"] == [0, 4] and small.relevant["q9"] == []


def test_the_official_counts_on_the_real_data(real_data):
    bench = L.load(root=real_data)
    assert len(bench.questions) == 13_090 and len(bench.candidates) == 13_014
    assert {len(v) for v in bench.relevant.values()} == {11}  # the answer sentence in every language
