"""The loaders on the real files, and benchmark B1's construction."""

from __future__ import annotations

import urllib.error
from collections import Counter

import pytest

from xqglib.config.languages import XQUAD_LANGUAGES
from xqglib.config.profiles import load_profile
from xqglib.core.errors import UserError
from xqglib.data import b1 as D
from xqglib.data import sources as DS


def _counts(articles):
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    return len(articles), len(paragraphs), sum(len(p["qas"]) for p in paragraphs)


@pytest.mark.parametrize("lang", list(XQUAD_LANGUAGES) + ["en", "ro"])
def test_xquad_counts_and_parallel_ids(real_data, lang):
    articles = DS.load_xquad(lang, real_data)
    assert _counts(articles) == (48, 240, 1190)
    english = DS.load_xquad("en", real_data)
    ids = [qa["id"] for a in articles for p in a["paragraphs"] for qa in p["qas"]]
    en_ids = [qa["id"] for a in english for p in a["paragraphs"] for qa in p["qas"]]
    assert ids == en_ids
    # titles stay the untranslated English SQuAD titles
    assert [a["title"] for a in articles] == [a["title"] for a in english]


def test_xquad_r_has_sentences(real_data):
    articles = DS.load_xquad_r("th", real_data)
    assert _counts(articles) == (48, 240, 1190)
    n_sentences = sum(len(p["sentences"]) for a in articles for p in a["paragraphs"])
    assert n_sentences == 852  # th has the fewest candidate sentences (data README)


def test_squad_dev_counts(real_data):
    assert _counts(DS.load_squad_dev(real_data)) == (48, 2067, 10570)


def test_xor_retrieve_counts_and_lang_strip(real_data):
    dev = DS.load_xor_retrieve("dev", real_data)
    assert Counter(r["lang"] for r in dev) == {"ar": 350, "bn": 312, "fi": 360, "ja": 296,
                                               "ko": 299, "ru": 255, "te": 238}
    train = DS.load_xor_retrieve("train", real_data)
    assert len(train) == 15250
    assert Counter(r["lang"] for r in train)["ar"] == 2574  # " ar" in the file


def test_missing_file_offline_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(DS.urllib.request, "urlopen", offline)
    with pytest.raises(UserError, match="could not download .*xquad.de.json.*put the file at"):
        DS.load_xquad("de", tmp_path)
    assert not list(tmp_path.rglob("*.json")), "a failed download must leave nothing behind"


def test_download_checks_checksum(tmp_path, monkeypatch):
    import io

    class FakeResponse(io.BytesIO):
        headers: dict = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(DS.urllib.request, "urlopen", lambda *a, **k: FakeResponse(b'{"data": []}'))
    with pytest.raises(UserError, match="SHA-256"):
        DS.load_squad_dev(tmp_path)
    assert not (tmp_path / "squad" / "dev-v1.1.json").exists()


def test_malformed_file_is_a_clear_error(tmp_path):
    (tmp_path / "xquad").mkdir()
    (tmp_path / "xquad" / "xquad.de.json").write_text('{"data": [', encoding="utf-8")
    # a known file is first checked against its published digest
    with pytest.raises(UserError, match="xquad.de.json is not the published xquad/xquad.de.json"):
        DS.load_xquad("de", tmp_path)
    # the parser's own errors, on a file without a published digest
    with pytest.raises(UserError, match="not valid JSON"):
        DS.squad_articles(tmp_path / "xquad" / "xquad.de.json")
    (tmp_path / "xquad" / "xquad.de.json").write_text('[1, 2]', encoding="utf-8")
    with pytest.raises(UserError, match="not in SQuAD v1.1 format"):
        DS.squad_articles(tmp_path / "xquad" / "xquad.de.json")


def test_unknown_language_is_a_clear_error(real_data):
    with pytest.raises(UserError, match="XQuAD has no language 'bn'"):
        DS.load_xquad("bn", real_data)


@pytest.fixture(scope="module")
def b1_cpu(real_data):
    """B1 with the cpu profile's split and the whole corpus (the profile itself caps it)."""
    return D.build_b1(load_profile("cpu", {"data.max_corpus": None}), real_data)


def test_b1_split_is_article_level_and_seeded(b1_cpu, real_data):
    split = b1_cpu.split
    assert Counter(split.values()) == {"train": 30, "dev": 6, "test": 12}
    again = D.build_b1(load_profile("cpu"), real_data)
    assert again.split == split
    other_seed = D.build_b1(load_profile("cpu", {"run.seed": 1}), real_data)
    assert other_seed.split != split


def test_b1_corpus_and_gold(b1_cpu):
    assert len(b1_cpu.corpus) == 2067
    corpus_ids = {p.docid for p in b1_cpu.corpus}
    test_articles = set(b1_cpu.articles("test"))
    assert b1_cpu.test_qids
    for qid in b1_cpu.test_qids:
        gold = b1_cpu.qid_to_docid[qid]
        assert gold in corpus_ids
        assert b1_cpu.passages[gold].article in test_articles
        # the English XQuAD question is the SQuAD question with that id
        assert b1_cpu.xquad_questions["en"][qid] == b1_cpu.english_questions[qid]


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_b1_capped_corpus_keeps_every_gold(real_data, profile):
    cfg = load_profile(profile)
    b1 = D.build_b1(cfg, real_data)
    assert len(b1.corpus) == cfg.data.max_corpus
    if cfg.data.max_test_questions is not None:
        assert len(b1.test_qids) == cfg.data.max_test_questions
    assert {b1.qid_to_docid[q] for q in b1.test_qids} <= {p.docid for p in b1.corpus}


def test_training_data_never_touches_test_articles(b1_cpu):
    test_articles = set(b1_cpu.articles("test")) | set(b1_cpu.articles("dev"))
    pairs = D.generator_pairs(b1_cpu, "train", ["ar", "th"])
    assert pairs and all(b1_cpu.passages[p["docid"]].article not in test_articles for p in pairs)
    for training in ("english", "crosslingual"):
        rows = D.retriever_training_rows(b1_cpu, training, ["ar", "de"], n_negatives=7, seed=3)
        assert rows
        titles = {b1_cpu.passages[p["docid"]].article
                  for r in rows for p in r["positive_passages"] + r["negative_passages"]}
        assert not titles & test_articles
        for r in rows[:200]:
            negatives = {p["docid"] for p in r["negative_passages"]}
            assert len(negatives) == 7 and r["positive_passages"][0]["docid"] not in negatives


def test_english_rows_use_squad_questions(b1_cpu):
    rows = D.retriever_training_rows(b1_cpu, "english", [], n_negatives=1, seed=0)
    # all English SQuAD questions of the 30 train articles, far more than XQuAD's
    assert len(rows) > 5000
    assert all(r["query_id"].endswith("-en") for r in rows)


def test_xor_counted_questions_match_the_papers(real_data):
    dev = DS.load_xor_retrieve("dev", real_data)
    assert DS.xor_counted_questions(dev) == {"ar": 309, "bn": 304, "fi": 314, "ja": 241, "ko": 285,
                                            "ru": 237, "te": 238}


def test_xor_corpus_tsv_and_missing_message(tmp_path):
    with pytest.raises(UserError, match="XOR-Retrieve passage collection is missing.*2019-02-01"):
        DS.load_xor_corpus(tmp_path / "absent.tsv")
    path = tmp_path / "psgs.tsv"
    path.write_text('id\ttext\ttitle\n1\tAaron is a prophet.\tAaron\n2\t"Quoted" text\tB\n', encoding="utf-8")
    passages = DS.load_xor_corpus(path)
    assert [(p.docid, p.title, p.text) for p in passages] == [("1", "Aaron", "Aaron is a prophet."),
                                                               ("2", "B", "Quoted text")]
    path.write_text("docid\tbody\n", encoding="utf-8")
    with pytest.raises(UserError, match="expected a header line"):
        DS.load_xor_corpus(path)
