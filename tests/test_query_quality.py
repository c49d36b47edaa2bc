"""Generated-query quality on hand-made cases: the language-identification share and the round
trip through the encoder."""

from __future__ import annotations

import numpy as np
import pytest

from xqglib.evaluation.query_quality import identify_language, language_shares, round_trip

ROWS = [
    {"docid": "d0", "generated_queries": {"de": ["Wer hat den Preis gewonnen?", "When did it end?"],
                                          "th": ["เมืองหลวงของประเทศไทยคืออะไร", "ใครเป็นผู้ชนะ"]}},
    {"docid": "d1", "generated_queries": {"de": ["Wann wurde die Kirche gebaut?", "Who won the prize?"],
                                          "th": ["สงครามสิ้นสุดเมื่อใด", "What is the capital?"]}},
]


def test_language_identifier_on_clear_sentences():
    assert identify_language("Wann wurde die Kirche gebaut?") == "de"
    assert identify_language("เมืองหลวงของประเทศไทยคืออะไร") == "th"
    assert identify_language("Who won the prize in that year?") == "en"


def test_language_shares_by_hand():
    table = language_shares(ROWS).set_index("language")
    # de: 2 of 4 German, the other 2 English; th: 3 of 4 Thai, 1 English
    assert table.loc["de", "queries"] == 4 and table.loc["de", "in requested language"] == 0.5
    assert table.loc["de", "most common other"] == "en" and table.loc["de", "its share"] == 0.5
    assert table.loc["th", "in requested language"] == 0.75 and table.loc["th", "its share"] == 0.25


def test_language_shares_with_a_given_identifier():
    table = language_shares(ROWS, identify=lambda text: "de").set_index("language")
    assert table.loc["de", "in requested language"] == 1.0 and table.loc["de", "most common other"] == ""
    assert table.loc["th", "in requested language"] == 0.0 and table.loc["th", "its share"] == 1.0


def test_round_trip_by_hand():
    passages = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    generated = [{"docid": "a", "lang": "de"}, {"docid": "b", "lang": "de"},
                 {"docid": "c", "lang": "th"}, {"docid": "a", "lang": "th"}]
    vectors = np.array([[1.0, 0.1],    # a: 1.0 against b 0.1, c 0.77 -> first
                        [1.0, 0.1],    # b: 0.1 against a 1.0 -> not first
                        [1.0, 1.0],    # c: 1.4 against a 1.0, b 1.0 -> first
                        [1.0, 1.0]])   # a: 1.0 against c 1.4 -> not first
    table = round_trip(generated, vectors, ["a", "b", "c"], passages).set_index("language")
    assert table.loc["de", "queries"] == 2 and table.loc["de", "own passage first"] == 0.5
    assert table.loc["th", "own passage first"] == 0.5
    tie = round_trip([{"docid": "a", "lang": "de"}], np.array([[1.0, 1.0]]), ["a", "b"],
                     np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert tie.loc[0, "own passage first"] == 0.0  # a tie is not a first place
    with pytest.raises(ValueError, match="out of step"):
        round_trip(generated[:2], vectors, ["a", "b", "c"], passages)
