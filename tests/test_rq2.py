"""The second research question's parts on hand-made cases and tiny real slices: the contrastive
arms' batches and training data, the renormalised fusion, XQuAD-R's per-question views and test
pool, the bootstrap interval, and the settings that guard them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from test_alignment import items
from test_xquadr import DE, EN

from xqglib.config.profiles import load_profile
from xqglib.core.errors import UserError
from xqglib.data import b1 as D
from xqglib.data import sources as DS
from xqglib.data import xquadr as L
from xqglib.evaluation.significance import bootstrap_interval
from xqglib.method.augmentation import combine, fuse
from xqglib.method.retriever_training import first_of_each, hybrid_training_batches, row_batches, train_on_batches
from xqglib.study import experiments as E


def rows(n: int) -> list[dict]:
    return [{"query_id": f"q{i % 5}-{'ar' if i < 5 else 'de'}", "query": f"question {i}",
             "positive_passages": [{"title": "T", "text": f"gold {i}"}],
             "negative_passages": [{"title": "T", "text": f"neg {i}.{j}"} for j in range(3)],
             "translations": {"en": f"english {i % 5}", "th": f"thai {i % 5}"}} for i in range(n)]


def test_alignment_leaves_the_tevatron_stream_as_it_was():
    """The same queries, passages and negatives with and without alignment, epoch after epoch; each
    translation is the row's own question in another language."""
    plain = row_batches(rows(10), 4, 1, seed=7)
    aligned = row_batches(rows(10), 4, 1, seed=7, align=True)
    rng_a, rng_b = random.Random(7), random.Random(7)
    for epoch in range(3):
        for a, b in zip(plain(epoch, rng_a), aligned(epoch, rng_b)):
            assert (a.queries, a.passages) == (b.queries, b.passages)
            assert a.translations is None and len(b.translations) == len(b.queries)
            for query, translation, qid in zip(b.queries, b.translations, b.question_ids):
                i = int(query.split()[-1])
                assert qid == f"q{i % 5}" and translation in (f"english {i % 5}", f"thai {i % 5}")
            assert len(b.passages) == 2 * len(b.queries)  # positive + one hard negative each


def test_a_question_twice_in_a_batch_is_aligned_once():
    assert first_of_each(["q1", "q2", "q1", "q3", "q2"]) == [0, 1, 3]


def test_hybrid_training_batches_take_negatives_from_the_passage_language():
    parallel = items(12)
    for item in parallel:
        item["negatives"] = {l: [{"title": "T", "text": f"{l} other {item['id']}"}] for l in ("en", "de", "th")}
    batches = list(hybrid_training_batches(parallel, ["en", "de", "th"], 4, 0.5, 1, seed=3)(0, random.Random(0)))
    assert sum(len(b.queries) for b in batches) == 12
    for b in batches:
        for q, (positive, negative) in zip(b.queries, zip(b.passages[::2], b.passages[1::2])):
            lang = positive.split()[1]  # "T <lang> passage <i>"
            assert negative.startswith(f"T {lang} other q{q.split()[-1]}")


def test_training_with_alignment_logs_both_losses(tmp_path):
    from xqglib.method.encoding import DenseEncoder
    from xqglib.models.registry import encoder_spec, load_encoder, load_tokenizer

    encoder = DenseEncoder(load_encoder("tiny-bert"), load_tokenizer("tiny-bert"), encoder_spec("tiny-bert"), 16, 24, False)
    log = train_on_batches(encoder, row_batches(rows(8), 4, 1, seed=1, align=True), 2, epochs=1, max_steps=2,
                           lr=1e-3, warmup_ratio=0.0, seed=1, freeze_embeddings=False, align_weight=0.5)
    assert len(log) == 2
    for entry in log:
        assert entry["loss"] == pytest.approx(entry["ranking_loss"] + 0.5 * entry["alignment_loss"], rel=1e-5)


def test_alignment_rows_and_parallel_items_are_parallel(real_data):
    cfg = load_profile("smoke")
    b1 = D.build_b1(cfg, real_data)
    aligned = D.alignment_rows(b1, ["ar", "de"], 1, cfg.seed)
    assert [{k: v for k, v in r.items() if k != "translations"} for r in aligned] == \
        D.retriever_training_rows(b1, "crosslingual", ["ar", "de"], 1, cfg.seed)  # the xDR's own rows
    row = aligned[0]
    qid, lang = row["query_id"].rsplit("-", 1)
    assert set(row["translations"]) == {"ar", "de", "en"} - {lang}
    assert row["translations"]["en"] == b1.english_questions[qid]
    parallel = D.parallel_items(b1, "train", ["de", "en"], real_data)
    assert {item["id"] for item in parallel} == set(b1.qids_of("train", b1.xquad_questions["en"]))
    item = parallel[0]
    gold = b1.passages[b1.qid_to_docid[item["id"]]]
    assert item["passages"]["en"]["text"] == gold.text and item["questions"]["de"] == b1.xquad_questions["de"][item["id"]]
    assert all(n["text"] != item["passages"]["de"]["text"] for n in item["negatives"]["de"])


def test_renormalised_fusion_keeps_the_passage_norm_and_turns_it():
    p = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    sums = np.array([[0.0, 10.0], [0.0, 0.0]], dtype=np.float32)
    fused = combine(p, sums, 0.5, renorm=True)
    assert np.allclose(np.linalg.norm(fused, axis=1), [5.0, 1.0])
    assert np.allclose(fused[0], np.array([1.5, 7.0]) / np.linalg.norm([1.5, 7.0]) * 5)
    assert np.allclose(fused[1], [1.0, 0.0])  # no queries: only the (1 - alpha) scale, undone
    # without renormalisation combine is fuse's official sum; renormalised, the same directions
    assert np.allclose(combine(p, sums, 0.1), fuse(p, ["a", "b"], sums, ["a", "b"], 0.1))
    assert np.allclose(combine(p, sums, 0.5, renorm=True), fuse(p, ["a", "b"], sums, ["a", "b"], 0.5, renorm=True))


def test_per_question_views_average_to_the_official_views():
    bench = L.build({"en": EN, "de": DE})
    meaning = np.eye(4)
    candidates = np.vstack([meaning, meaning])
    questions = np.array([[1, 0, 0, 0], [0, 0.5, 0, 0.6], [0, 0, 0, 1],
                          [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)
    frame = L.per_question(bench, questions, candidates)
    views = L.views(bench, questions, candidates)
    assert frame["pooled"].mean() == pytest.approx(views["pooled"])
    assert frame.groupby("lang")["mono"].mean().mean() == pytest.approx(views["mono"])
    assert frame.loc[1, "mono"] == pytest.approx(0.5) and frame.loc[1, "cross"] == pytest.approx(0.5)
    # a language without the answer sentence: no score (NaN) in that restricted pool, not a zero
    one_sided = L.build({"en": EN, "de": [{"title": "T", "paragraphs": [DE[0]["paragraphs"][0]]}]})
    frame = L.per_question(one_sided, np.vstack([questions[:3], questions[3:5]]), np.vstack([meaning, meaning[:2]]))
    assert np.isnan(frame.loc[frame["uid"] == "q3_en", "cross"]).all()


def test_the_test_pool_keeps_test_articles_and_corpus_paragraphs(real_data):
    bench = L.load(["de", "en"], real_data)
    en = DS.load_xquad("en", real_data)
    titles = [a["title"] for a in en]
    split = {t: ("test" if i < 2 else "train") for i, t in enumerate(titles)}
    corpus = [{"docid": f"d{k}", "title": "", "text": p["context"]} for k, p in enumerate(en[0]["paragraphs"])]
    pool = L.test_pool(bench, split, corpus)
    assert {c["paragraph"] for c in pool.candidates} == {f"{titles[0]}#{k}" for k in range(len(en[0]["paragraphs"]))}
    assert {q["lang"] for q in pool.questions} == {"de", "en"} and all(q["title"] == titles[0] for q in pool.questions)
    assert all(len(pool.relevant[q["xling_id"]]) == 2 for q in pool.questions)  # the answer in both languages
    assert L.paragraph_docids(corpus, real_data)[f"{titles[0]}#0"] == "d0"


def test_bootstrap_interval_holds_the_mean_difference():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 300).astype(float)
    b = np.where(rng.random(300) < 0.2, 1.0, a)
    low, high = bootstrap_interval(a, b, seed=1)
    assert low <= (b - a).mean() <= high and low > 0  # b only ever gains
    assert bootstrap_interval([0, 1, 1], [1, 2, 2]) == (1.0, 1.0)
    assert bootstrap_interval(a, b, seed=1) == (low, high)  # seeded


def test_rq2_conditions():
    cfg = load_profile("smoke")
    table = E.experiment(cfg, "rq2_table")
    assert [(c.benchmark, c.name) for c in table[:2]] == [("b1", "base"), ("b1", "base+xQG")]
    assert {c.benchmark for c in table} == {"b1", E.B2} and len(table) == 2 * 2 * 4
    fusion = E.experiment(cfg, "rq2_fusion")
    assert {c.augmentation for c in fusion} == {"none", "xqg", "xqg-renorm"}
    assert E.xqg(cfg, "xdr", 0.1, renorm=True).name == "xdr+xQG(renormalised, alpha=0.1)"
    assert E.experiment(cfg, "rq2_full_pool") == []  # smoke scores no full pool
    assert [c.benchmark for c in E.experiment(load_profile("cpu"), "rq2_full_pool")] == [E.B2_FULL]


@pytest.mark.parametrize("overrides, message", [
    ({"contrastive.arms": [{"name": "x", "training": "crosslingual"}]}, "contrastive.arms"),
    ({"contrastive.arms": [{"name": "xdr", "training": "align"}]}, "repeated name(s) xdr"),
    ({"contrastive.compare": ["nobody"]}, "contrastive.compare"),
    ({"xquadr.languages": ["de", "th"]}, "has no English"),
    ({"xquadr.languages": ["de", "en", "ro"]}, "not allowed"),
    ({"contrastive.hybrid_alpha": 1.5}, "out of range"),
])
def test_bad_rq2_settings_are_refused(overrides, message):
    with pytest.raises(UserError) as error:
        load_profile("smoke", overrides)
    assert message in str(error.value)

