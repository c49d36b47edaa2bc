"""The query-language x passage-language matrix refuses files that are not parallel, and the real
XQuAD is parallel (the rows themselves are checked by hand in test_rq3)."""

from __future__ import annotations

import pytest

from xqglib.core.errors import UserError
from xqglib.data import sources as D
from xqglib.data.matrix import matrix_rows


def article(title: str, paragraphs: list[tuple[str, list[tuple[str, str, str]]]]) -> dict:
    return {"title": title, "paragraphs": [
        {"context": context, "qas": [{"id": i, "question": q, "answers": [{"text": a, "answer_start": 0}]}
                                     for i, q, a in qas]} for context, qas in paragraphs]}


PARALLEL = {
    "en": [article("Paris", [("Paris is in France.", [("q1", "Where is Paris?", "France")])]),
           article("Oxygen", [("Oxygen is O.", [("q2", "Symbol of oxygen?", "O")]),
                              ("It burns.", [("q3", "What does it do?", "burns")])])],
    "de": [article("Paris", [("Paris liegt in Frankreich.", [("q1", "Wo liegt Paris?", "Frankreich")])]),
           article("Oxygen", [("Sauerstoff ist O.", [("q2", "Symbol von Sauerstoff?", "O")]),
                              ("Er brennt.", [("q3", "Was tut er?", "brennt")])])],
}
SPLIT = {"Paris": "test", "Oxygen": "test"}


def test_unaligned_files_are_refused():
    assert len(matrix_rows(PARALLEL, SPLIT, ["en", "de"], ["de"], [])["questions"]) == 6
    for broken in ({"en": PARALLEL["en"], "de": PARALLEL["de"][:1]},  # an article missing
                   {"en": PARALLEL["en"], "de": [PARALLEL["de"][0], article("Oxygen", [("Sauerstoff ist O.", [])])]}):
        with pytest.raises(UserError, match="not aligned"):
            matrix_rows(broken, SPLIT, ["en", "de"], ["de"], [])


def test_real_xquad_is_parallel(real_data):
    parallel = {lang: D.load_xquad(lang, real_data) for lang in ("en", "th")}
    split = dict.fromkeys((a["title"] for a in parallel["en"]), "test")
    rows = matrix_rows(parallel, split, ["th"], ["en", "th"], [])
    assert len(rows["passages"]) == 2 * 240 and len(rows["questions"]) == 1190
    assert len(rows["answers"]) == 2 * 1190 and all(r["answers"] for r in rows["answers"])
