"""The XOR-Retrieve R@Nkt scorer against hand-computed cases and the official loop; ir-measures."""

from __future__ import annotations

import random
from statistics import mean

import pytest

from xqglib.evaluation.metrics import standard_measures, xor_hit, xor_recall_at_kt


def split_tokens(text):
    return text.split()


def test_hit_within_budget_and_cut():
    passages = [["a", "b", "c"], ["d", "e", "f"], ["gold", "x"]]
    # 6 tokens: the third passage starts after the budget
    assert xor_hit(passages, ["gold"], max_tokens=6) is False
    assert xor_hit(passages, ["gold"], max_tokens=7) is True
    # the list is cut to exactly max_tokens: "f" is token 6
    assert xor_hit(passages, ["f"], max_tokens=5) is False
    assert xor_hit(passages, ["f"], max_tokens=6) is True


def test_substring_across_tokens_and_join():
    passages = [["New", "York", "City"]]
    assert xor_hit(passages, ["York City"], 10) is True      # spans two tokens joined by a space
    assert xor_hit(passages, ["ork Ci"], 10) is True          # substring, not token match
    assert xor_hit(passages, ["NewYork"], 10) is False
    assert xor_hit(passages, ["new york"], 10) is False       # case-sensitive, as the official


def test_yes_no_answers_not_counted():
    assert xor_hit([["yes"]], ["yes", "no"], 10) is None
    assert xor_hit([["maybe"]], ["yes", "maybe"], 10) is True


def test_per_language_and_macro_average_by_hand():
    texts = {"d1": "alpha beta", "d2": "gamma delta", "d3": "epsilon"}
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d2": 3.0, "d1": 1.0},
           "q3": {"d3": 1.0}, "q4": {"d1": 1.0}}
    answers = {"q1": ["beta"], "q2": ["beta"], "q3": ["epsilon"], "q4": ["no"]}
    langs = {"q1": "ar", "q2": "ar", "q3": "th", "q4": "th"}
    # budget 1000 tokens holds everything: q1 hit, q2 hit (beta in d1 at rank 2), q3 hit, q4 skipped
    out = xor_recall_at_kt(run, texts, answers, langs, 1, tokenize=split_tokens)
    assert out.hits == {"q1": True, "q2": True, "q3": True, "q4": None}
    assert out.counted == {"ar": 2, "th": 1}
    assert out.per_language == {"ar": 100.0, "th": 100.0}
    # answer absent: ar 1/2 = 50, th 1/1 = 100, macro = 75
    answers["q2"] = ["zeta"]
    out = xor_recall_at_kt(run, texts, answers, langs, 1, tokenize=split_tokens)
    assert out.per_language == {"ar": 50.0, "th": 100.0}
    assert out.macro_average == 75.0


def test_rank_order_matters_for_the_budget():
    long_text = " ".join(["w"] * 1500)
    texts = {"long": long_text, "gold": "answer here"}
    answers = {"q": ["answer"]}
    langs = {"q": "de"}
    first = xor_recall_at_kt({"q": {"gold": 2.0, "long": 1.0}}, texts, answers, langs, 1, split_tokens)
    second = xor_recall_at_kt({"q": {"long": 2.0, "gold": 1.0}}, texts, answers, langs, 1, split_tokens)
    assert first.hits["q"] is True and second.hits["q"] is False
    # with the 2k budget the gold passage fits after the long one
    assert xor_recall_at_kt({"q": {"long": 2.0, "gold": 1.0}}, texts, answers, langs, 2, split_tokens).hits["q"]


def official_loop(ranked_texts, gt_answers, langs, max_token_num, tokenize):
    """The official evaluate_top_k_hit's semantics, written the way its source reads."""
    per_lang = {}
    for q_id, ctxs in ranked_texts.items():
        lang = langs[q_id]
        per_lang.setdefault(lang, {"count": 0, "hit": 0})
        if q_id not in gt_answers:
            continue
        span_answers = [a for a in gt_answers[q_id] if a not in ["yes", "no"]]
        if len(span_answers) == 0:
            continue
        per_lang[lang]["count"] += 1
        concat = []
        for ctx_text in ctxs:
            concat += tokenize(ctx_text)
            if len(concat) >= max_token_num:
                break
        concat_string = " ".join(concat[:max_token_num])
        if any(a in concat_string for a in span_answers):
            per_lang[lang]["hit"] += 1
    return {l: r["hit"] / r["count"] * 100 for l, r in per_lang.items() if r["count"] > 0}


def test_matches_official_semantics_on_random_rankings():
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(60)]
    texts = {f"d{i}": " ".join(rng.choice(vocab) for _ in range(rng.randint(50, 900))) for i in range(40)}
    run, answers, langs, ranked = {}, {}, {}, {}
    for q in range(200):
        qid = f"q{q}"
        docs = rng.sample(sorted(texts), 10)
        run[qid] = {d: float(10 - r) for r, d in enumerate(docs)}
        ranked[qid] = [texts[d] for d in docs]
        answers[qid] = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 2)))
                        for _ in range(rng.randint(1, 3))] + (["yes"] if q % 13 == 0 else [])
        langs[qid] = rng.choice(["ar", "th", "zh"])
    for n in (1, 2, 5):
        ours = xor_recall_at_kt(run, texts, answers, langs, n, tokenize=split_tokens)
        reference = official_loop(ranked, answers, langs, n * 1000, split_tokens)
        assert ours.per_language == pytest.approx(reference)
        assert ours.macro_average == pytest.approx(mean(reference.values()))


def test_default_tokenizer_splits_punctuation():
    from xqglib.evaluation.metrics import xor_word_tokenize

    assert xor_word_tokenize('He said "no," didn\'t he?') == ["He", "said", "``", "no", ",", "''", "did", "n't", "he", "?"]


def test_standard_measures_by_hand():
    qrels = {"q1": {"g1": 1}, "q2": {"g2": 1}, "q3": {"g3": 1}}
    run = {"q1": {"g1": 3.0, "x": 2.0, "y": 1.0},     # rank 1
           "q2": {"x": 3.0, "y": 2.0, "g2": 1.0},     # rank 3
           "q3": {"x": 1.0}}                          # not retrieved
    values = standard_measures(run, qrels, ["R@1", "R@5", "RR@10", "nDCG@10"])
    assert values["R@1"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert values["R@5"] == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    assert values["RR@10"] == pytest.approx({"q1": 1.0, "q2": 1 / 3, "q3": 0.0})
    assert values["nDCG@10"]["q2"] == pytest.approx(0.5)  # 1/log2(3+1)
    # a query of the qrels the run does not answer at all scores 0
    assert standard_measures({"q1": run["q1"]}, qrels, ["R@5"])["R@5"]["q3"] == 0.0


def test_word_tokenize_is_nltks_with_punkt_sentence_splitting():
    from xqglib.evaluation.metrics import tokenizer_description, xor_word_tokenize

    text = "Mr. Smith went to Washington on Jan. 5. He arrived at 5 p.m. and left."
    # Punkt keeps abbreviations whole and splits the sentence-final periods off
    assert xor_word_tokenize(text) == ["Mr.", "Smith", "went", "to", "Washington", "on", "Jan.", "5", ".",
                                       "He", "arrived", "at", "5", "p.m.", "and", "left", "."]
    assert tokenizer_description().startswith("nltk.word_tokenize with NLTK's English punkt_tab")


def test_fallback_differs_only_at_inner_sentence_ends():
    from xqglib.evaluation.metrics import fallback_word_tokenize, xor_hit, xor_word_tokenize

    text = "It opened in 1905. He arrived at 5 p.m. and left."
    # without sentence splitting, the period of an inner sentence stays on its word
    assert fallback_word_tokenize(text) == ["It", "opened", "in", "1905.", "He", "arrived", "at", "5",
                                            "p.m.", "and", "left", "."]
    assert xor_word_tokenize(text)[:5] == ["It", "opened", "in", "1905", "."]
    # so an answer ending a sentence may be a hit under one and not the other
    assert xor_hit([xor_word_tokenize(text)], ["in 1905 ."], 100)
    assert not xor_hit([fallback_word_tokenize(text)], ["in 1905 ."], 100)


def test_punkt_tab_files_load_with_nltks_own_loader(tmp_path, monkeypatch):
    import nltk
    from nltk.tokenize.punkt import load_punkt_params
    from punkt.data import english

    from xqglib.evaluation.metrics import install_punkt_tab

    root = install_punkt_tab(tmp_path)
    # found and read the way NLTK finds and reads its own downloaded data (NLTK only opens files
    # under nltk.data.path, where the library puts its own copy too)
    monkeypatch.setattr(nltk.data, "path", [str(root)] + list(nltk.data.path))
    params = load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/", paths=[str(root)]))
    assert params.abbrev_types == set(english.ABBREV_TYPES)
    assert params.sent_starters == set(english.SENT_STARTERS)
    assert params.collocations == set(english.COLLOCATIONS)
    assert dict(params.ortho_context) == dict(english.ORTHO_CONTEXT)
    mtimes = [p.stat().st_mtime_ns for p in sorted(root.rglob("*.t*"))]
    install_punkt_tab(tmp_path)  # idempotent: unchanged files are not rewritten
    assert [p.stat().st_mtime_ns for p in sorted(root.rglob("*.t*"))] == mtimes


def test_token_window_lays_out_what_xor_hit_decides():
    from xqglib.evaluation.metrics import token_window

    ranking = [["a", "b", "c"], ["d", "answer", "x"], ["y", "z"]]
    rows = token_window(ranking, ["answer x"], 5)
    # 3 tokens of passage 1, then 2 of passage 2 fit; "answer x" needs the 6th token: no hit
    assert [(r["inside window"], r["tokens so far"], r["hit so far"]) for r in rows] == [(3, 3, False), (2, 5, False)]
    assert rows[-1]["hit so far"] == xor_hit(ranking, ["answer x"], 5)
    rows = token_window(ranking, ["answer x"], 6)
    assert rows[-1]["hit so far"] is True and xor_hit(ranking, ["answer x"], 6) is True
    assert token_window(ranking, ["yes"], 6)[-1]["hit so far"] is False  # yes/no answers never count
