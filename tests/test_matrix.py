"""The query-language x passage-language matrix builder on a hand-made parallel set, and on the
real XQuAD."""

from __future__ import annotations

import pytest

from xqglib.core.errors import UserError
from xqglib.data import sources as D
from xqglib.data.matrix import build_cell


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


def test_a_cell_by_hand():
    cell = build_cell(PARALLEL, "en", "de", titles=["Oxygen"])
    assert [d["text"] for d in cell.corpus] == ["Paris liegt in Frankreich.", "Sauerstoff ist O.", "Er brennt."]
    assert [q["query"] for q in cell.queries] == ["Symbol of oxygen?", "What does it do?"]  # Oxygen only
    docs = [d["docid"] for d in cell.corpus]
    assert cell.qrels == {"q2-en-de": {docs[1]: 1}, "q3-en-de": {docs[2]: 1}}
    assert cell.answers == {"q2-en-de": ["O"], "q3-en-de": ["brennt"]}  # the answer in the passage language
    same = build_cell(PARALLEL, "de", "de")
    assert len(same.queries) == 3 and same.answers["q1-de-de"] == ["Frankreich"]


def test_unaligned_or_missing_languages_are_refused():
    broken = {"en": PARALLEL["en"], "de": PARALLEL["de"][:1]}
    with pytest.raises(UserError, match="not aligned"):
        build_cell(broken, "en", "de")
    with pytest.raises(UserError, match="no XQuAD data loaded for language 'th'"):
        build_cell(PARALLEL, "th", "en")


def test_real_xquad_is_parallel(real_data):
    parallel = {lang: D.load_xquad(lang, real_data) for lang in ("en", "th")}
    cell = build_cell(parallel, "th", "en")
    assert len(cell.corpus) == 240 and len(cell.queries) == 1190
    assert all(len(v) == 1 for v in cell.qrels.values())
