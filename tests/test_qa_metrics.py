"""EM / F1 with MLQA's language-aware normalisation, against hand-computed cases in five scripts
(Latin, Arabic, Devanagari, Chinese, Thai)."""

from __future__ import annotations

import pytest

from xqglib.evaluation.qa_metrics import best_over_golds, exact_match, f1, normalize_answer


@pytest.mark.parametrize("prediction,gold,lang,em,f", [
    ("The Eiffel Tower!", "eiffel tower", "en", 1.0, 1.0),             # case, punctuation, article
    ("the big red dog", "red dog", "en", 0.0, 0.8),                     # P 2/3, R 1
    ("Der Hauptbahnhof", "Hauptbahnhof", "de", 1.0, 1.0),               # German article
    ("la Ciudad de México", "Ciudad de México", "es", 1.0, 1.0),        # "de" is no article
    ("القاهرة", "قاهرة", "ar", 1.0, 1.0),                                # the prefix ال
    ("भारत की राजधानी", "राजधानी", "hi", 0.0, 0.5),                      # whitespace tokens, P 1/3
    ("北京市", "北京", "zh", 0.0, 0.8),                                  # one token per character
    ("กรุงเทพมหานคร", "กรุงเทพ", "th", 0.0, 0.7),                        # 7 of 13 characters: 14/20
    ("Москва.", "москва", "ru", 1.0, 1.0),
])
def test_em_and_f1_by_hand(prediction, gold, lang, em, f):
    assert exact_match(prediction, gold, lang) == em
    assert f1(prediction, gold, lang) == pytest.approx(f)


def test_normalisation_details():
    assert normalize_answer("  A  cat,  an owl ", "en") == "cat owl"
    assert normalize_answer("在1990年。", "zh") == "在 1990 年"  # digits stay one whitespace token
    assert normalize_answer("«Hola»", "es") == "hola"  # Unicode punctuation (category P) goes
    with pytest.raises(ValueError, match="no answer normalisation"):
        normalize_answer("x", "xx")


def test_best_over_golds():
    assert best_over_golds(f1, "red dog", ["a cat", "the red dog"], "en") == 1.0
    assert best_over_golds(exact_match, "cat", ["dog", "bird"], "en") == 0.0
