"""Tiny models of the real architectures: builds, the generator's loss masking and sampling,
and the retriever's contrastive loss and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xqglib.method.encoding import DenseEncoder, passage_text
from xqglib.method.generator import QueryGenerator, generate_xqg, xqg_prompt
from xqglib.method.generator_training import at_plateau, train_generator
from xqglib.method.retriever_training import contrastive_loss, train_retriever
from xqglib.models.builds import build_model
from xqglib.models.registry import encoder_spec, load_encoder, load_generator, load_tokenizer

PAIRS = [
    {"lang": "th", "title": "Super Bowl 50", "text": "The Broncos defeated the Panthers 24–10.",
     "question": "ใครชนะซูเปอร์โบวล์ 50"},
    {"lang": "de", "title": "Warsaw", "text": "Warsaw is the capital of Poland.",
     "question": "Was ist die Hauptstadt von Polen?"},
    {"lang": "ar", "title": "Oxygen", "text": "Oxygen is a chemical element with symbol O.",
     "question": "ما هو رمز الأكسجين؟"},
]


def generator(name: str, kind: str) -> QueryGenerator:
    return QueryGenerator(load_generator(name, kind), load_tokenizer(name), kind, 64, 24)


def test_build_is_idempotent(tmp_path):
    first = build_model("tiny-bert", root=tmp_path)
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert build_model("tiny-bert", root=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp folder left"


def test_real_multilingual_tokenizer():
    tok = load_tokenizer("tiny-bert")
    assert len(tok) == 250002
    ids = tok("ใครชนะ Super Bowl")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.unk_token_id not in ids


def test_prompt_is_the_papers():
    assert xqg_prompt("th", "Super Bowl 50", "The Broncos won.") == \
        "Generate a Thai question for this passage: Super Bowl 50 The Broncos won."


def test_decoder_loss_is_on_question_tokens_only():
    gen = generator("tiny-gemma3", "decoder")
    batch = gen.collate(PAIRS)
    for row, pair in zip(batch.labels, PAIRS):
        target = gen.target_ids(pair["question"])
        kept = row[row != -100].tolist()
        assert kept == target  # exactly the question and its eos
    # the selective LM head gives the model's own loss with the same labels
    with torch.no_grad():
        reference = gen.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              labels=batch.labels).loss
        assert float(gen.loss(batch)) == pytest.approx(float(reference), rel=1e-5)


def test_seq2seq_loss_and_labels():
    gen = generator("tiny-mt5", "seq2seq")
    batch = gen.collate(PAIRS)
    assert batch.labels[0][batch.labels[0] != -100].tolist() == gen.target_ids(PAIRS[0]["question"])
    with torch.no_grad():
        logits = gen.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           labels=batch.labels).logits
        manual = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1), ignore_index=-100)
        assert float(gen.loss(batch)) == pytest.approx(float(manual), rel=1e-5)


@pytest.mark.parametrize("name,kind", [("tiny-gemma3", "decoder"), ("tiny-mt5", "seq2seq")])
def test_training_lowers_loss_and_sampling_is_seeded(name, kind):
    gen = generator(name, kind)
    pairs = PAIRS * 4
    log = train_generator(gen, pairs, PAIRS, steps=12, batch_size=4, lr=3e-3, seed=0, eval_every=4,
                          bf16=False, freeze_embeddings=False, max_dev_pairs=8)
    dev = [r["dev_loss"] for r in log if "dev_loss" in r]
    assert len(dev) == 3 and dev[-1] < dev[0]
    passages = [{"docid": f"d{i}", "title": p["title"], "text": p["text"]} for i, p in enumerate(PAIRS)]
    rows = generate_xqg(gen, passages, ["ar", "th"], n=3, top_k=10, max_new_tokens=6,
                        batch_passages=2, seed=5, bf16=False)
    assert [r["docid"] for r in rows] == ["d0", "d1", "d2"]
    assert all(len(r["generated_queries"][lang]) == 3 for r in rows for lang in ("ar", "th"))
    again = generate_xqg(gen, passages, ["ar", "th"], n=3, top_k=10, max_new_tokens=6,
                         batch_passages=2, seed=5, bf16=False)
    assert again == rows


def test_plateau_rule_by_hand():
    """The last 20% of the steps so far improved the dev loss by less than the threshold."""
    log = lambda *losses: [{"step": 10 * (i + 1), "dev_loss": v} for i, v in enumerate(losses)]  # noqa: E731
    assert not at_plateau(log(4.0), 0.02)  # nothing 20% back yet
    # at step 50 the comparison is step 40: 3.00 -> 2.95 is 1.7% < 2%
    assert at_plateau(log(4.0, 3.5, 3.2, 3.0, 2.95), 0.02)
    assert not at_plateau(log(4.0, 3.5, 3.2, 3.0, 2.90), 0.02)  # 3.3%
    # at step 60 the comparison is step 40 (48 lies between): 3.0 -> 2.95
    assert at_plateau(log(4.0, 3.5, 3.2, 3.0, 2.90, 2.95), 0.02)
    assert at_plateau(log(4.0, 3.0, 3.1), 0.02)  # a rise is no gain


def test_training_stops_at_a_plateau():
    gen = generator("tiny-gemma3", "decoder")
    log = train_generator(gen, PAIRS * 4, PAIRS, steps=40, batch_size=4, lr=1e-9, seed=0, eval_every=2,
                          bf16=False, freeze_embeddings=False, max_dev_pairs=8, plateau=0.02)
    # a learning rate of 1e-9 changes nothing: the first evaluation with one 20% back (step 4,
    # comparing step 2) is the plateau
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert at_plateau(log, 0.02)


def test_contrastive_loss_matches_manual():
    torch.manual_seed(0)
    q = torch.randn(2, 4)
    p = torch.randn(6, 4)  # groups of 3: positive first
    scores = q @ p.T
    manual = -(torch.log_softmax(scores, 1)[0, 0] + torch.log_softmax(scores, 1)[1, 3]) / 2
    assert float(contrastive_loss(q, p)) == pytest.approx(float(manual), rel=1e-6)


def _encoder() -> DenseEncoder:
    return DenseEncoder(load_encoder("tiny-bert"), load_tokenizer("tiny-bert"), encoder_spec("tiny-bert"),
                        24, 48, bf16=False)


def test_pooling_and_encode_order():
    enc = _encoder()
    texts = ["a much longer text than the others, with many words in it", "short", "mid length text"]
    matrix = enc.encode(texts, is_query=False, batch_size=2)
    for i, text in enumerate(texts):  # batching by length must not reorder the output
        np.testing.assert_allclose(matrix[i], enc.encode([text], False, 1)[0], atol=1e-5)
    batch = enc.tokenize(["x y"], False)
    hidden = enc.model(**batch).last_hidden_state
    np.testing.assert_allclose(enc.encode(["x y"], False)[0], hidden[0, 0].detach().numpy(), atol=1e-5)


def test_length_batches_are_tokenize_of_their_texts_in_token_order():
    enc = _encoder()
    # character length misleads across scripts: few characters, many tokens, and the reverse
    texts = ["東京都庁舎の展望室", "a b c d e f g h", "word " * 30, "x", "über Straße", "ok then",
             "北京是中国的首都", "a considerably longer passage made of plain words"]
    seen, lengths = [], []
    for idx, batch in enc.length_batches(texts, False, batch_size=2, chunk_batches=2):
        reference = enc.tokenize([texts[i] for i in idx], False)
        assert batch.keys() == reference.keys()
        for key in batch:  # the same ids, mask (and segment ids) as tokenising the batch's texts
            assert torch.equal(batch[key], reference[key])
        lengths.append([int(m.sum()) for m in batch["attention_mask"]])
        seen += idx
    assert sorted(seen) == list(range(len(texts)))  # every text once
    for first in range(0, len(lengths), 2):  # within a chunk (2 batches), in order of token count
        flat = [n for part in lengths[first:first + 2] for n in part]
        assert flat == sorted(flat)
    vectors = enc.encode(texts, False, batch_size=2)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(vectors[i], enc.encode([text], False, 1)[0], atol=1e-5)


def test_mean_pooling_ignores_padding():
    from xqglib.models.registry import EncoderSpec

    enc = _encoder()
    enc.spec = EncoderSpec("mean", "query: ", "passage: ")
    alone = enc.encode(["short"], True)[0]
    padded = enc.encode(["short", "a far longer query with many more tokens"], True, batch_size=2)[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_training_chunks_by_length_give_the_padded_batchs_loss_and_gradients(pooling):
    from xqglib.models.registry import EncoderSpec

    enc = _encoder()
    enc.spec = EncoderSpec(pooling)
    queries = ["who wrote it", "a much longer question with many more words than the others", "when"]
    passages = [passage_text(p["title"], p["text"]) for p in PAIRS[:3]] + ["x", "a b c d e f g", "東京都庁舎の展望室"]

    def loss_and_grads(group):
        enc.group, enc.positions_run = group, 0
        enc.model.zero_grad()
        q, p = enc.forward_many([(queries, True), (passages, False)])
        loss = contrastive_loss(q, p)
        loss.backward()
        return loss.item(), [x.grad.clone() for x in enc.model.parameters() if x.grad is not None], enc.positions_run

    padded_loss, padded_grads, padded_positions = loss_and_grads(None)
    chunked_loss, chunked_grads, chunked_positions = loss_and_grads(2)
    assert chunked_loss == pytest.approx(padded_loss, rel=1e-5)
    for a, b in zip(padded_grads, chunked_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert chunked_positions < padded_positions  # the point: fewer positions run
    assert enc.forward_many([([], True)])[0].shape == (0, enc.model.config.hidden_size)


def test_retriever_training_lowers_loss():
    from xqglib.models.registry import EncoderSpec

    enc = _encoder()
    # At random initialisation every input's <s> vector is nearly the same (attention is close to
    # uniform), so CLS scores tie and gradients vanish; mean pooling differs per input from step 0.
    enc.spec = EncoderSpec("mean")
    rows = [{"query": p["question"], "positive_passages": [{"title": p["title"], "text": p["text"]}],
             "negative_passages": [{"title": q["title"], "text": q["text"]} for q in PAIRS if q is not p][:1]}
            for p in PAIRS]

    def full_batch_loss() -> float:
        enc.model.eval()
        with torch.no_grad():
            q = enc.forward([r["query"] for r in rows], True)
            p = enc.forward([passage_text(x["title"], x["text"]) for r in rows
                             for x in r["positive_passages"] + r["negative_passages"]], False)
        return float(contrastive_loss(q, p))

    before = full_batch_loss()
    log = train_retriever(enc, rows * 4, epochs=2, max_steps=None, batch_size=3, n_negatives=1, lr=1e-3,
                          warmup_ratio=0.1, seed=0, freeze_embeddings=False)
    assert len(log) == 8  # 12 rows / batch 3, two epochs
    assert full_batch_loss() < before


def test_shared_prefix_sampler_matches_generate():
    """With top-k = 1 sampling is deterministic: reading each passage once for every language and
    copying its cache n times (dropping rows as they stop) must give exactly what transformers'
    generate gives on the full prompts, left padding included."""
    from xqglib.method.sampling import sample_shared_prefix

    gen = generator("tiny-gemma3", "decoder")
    passages = [("Warsaw", "Warsaw is the capital of Poland and its largest city."), ("X", "short")]
    ids, mask = gen._pad([gen.passage_ids(t, x) for t, x in passages])
    stops = [gen.tok.eos_token_id, 5, 9]  # extra stop tokens, so rows stop at different steps
    ours = sample_shared_prefix(gen.model, ids, mask, [gen.instruction_ids("th"), gen.instruction_ids("de")],
                                3, 1, 10, stops, gen.pad_id, torch.Generator().manual_seed(0))
    for lang, tokens in zip(["th", "de"], ours):
        full, full_mask = gen._pad([gen.prompt_ids(lang, t, x) for t, x in passages])
        reference = gen.model.generate(input_ids=full, attention_mask=full_mask, do_sample=True, top_k=1,
                                       num_return_sequences=3, max_new_tokens=10, pad_token_id=gen.pad_id,
                                       eos_token_id=stops)[:, full.shape[1]:]
        width = reference.shape[1]
        assert torch.equal(tokens[:, :width], reference)
        assert bool((tokens[:, width:] == gen.pad_id).all())


def test_restricted_vocabulary_sampling_and_its_agreement():
    from xqglib.method.generator import data_vocabulary, head_agreement
    from xqglib.method.sampling import sample_shared_prefix

    gen = generator("tiny-gemma3", "decoder")
    pairs = [{"lang": "de", "title": "Warsaw", "text": "Warsaw is the capital of Poland.",
              "question": "Was ist die Hauptstadt Polens?"}] * 2
    everything = torch.arange(len(gen.tok))
    exact = head_agreement(gen, pairs, everything, 5)
    assert exact["same_top_k"] == 1.0 and exact["total_variation"] < 1e-6 and exact["p_outside"] == 0.0
    vocabulary = data_vocabulary(gen.tok, ["Was ist die Hauptstadt Polens?"], gen.stop_ids)
    small = head_agreement(gen, pairs, vocabulary, 5)
    # a random model spreads its top-5 over the whole vocabulary: the restricted head disagrees
    assert small["positions"] == exact["positions"] and small["p_outside"] > 0.5
    assert 0.0 < small["total_variation"] <= 1.0
    ids, mask = gen._pad([gen.passage_ids("Warsaw", "Warsaw is the capital of Poland.")])
    [tokens] = sample_shared_prefix(gen.model, ids, mask, [gen.instruction_ids("de")], 8, 5, 6,
                                    gen.stop_ids, gen.pad_id, torch.Generator().manual_seed(0), vocabulary)
    assert set(tokens.flatten().tolist()) <= set(vocabulary.tolist()) | {gen.pad_id}


def test_top_k_sampling_stays_in_the_top_k():
    from xqglib.method.sampling import sample_top_k

    logits = torch.tensor([[0.0, 5.0, 1.0, 4.0, -2.0]]).repeat(2000, 1)
    tokens = sample_top_k(logits, 2, torch.Generator().manual_seed(0))
    assert set(tokens.tolist()) == {1, 3}
    # softmax over the kept logits: p(1) = e^5 / (e^5 + e^4) = 0.731
    assert abs((tokens == 1).float().mean().item() - 0.731) < 0.03


@pytest.mark.parametrize("name,kind", [("tiny-gemma3", "decoder"), ("tiny-mt5", "seq2seq")])
def test_the_seed_decides_the_generated_queries(name, kind):
    """A seed is a setting: the same seed gives the same generated file, another seed another."""
    import json

    from xqglib.method.generator import generate_xqg

    gen = generator(name, kind)
    passages = [{"docid": f"d{i}", "title": "Warsaw", "text": f"Warsaw is the capital of Poland, part {i}."}
                for i in range(3)]

    def queries(seed: int) -> str:
        rows = generate_xqg(gen, passages, ["de", "ar"], n=2, top_k=50, max_new_tokens=6, batch_passages=2,
                            seed=seed, bf16=False)
        return json.dumps(rows, ensure_ascii=False)

    first = queries(1)
    assert queries(1) == first
    assert queries(2) != first


def test_the_convergence_criterion_by_hand():
    """At least one pass, then no new best dev loss over the last `patience` evaluations."""
    from xqglib.method.convergence import Convergence, verdict

    c = Convergence(min_passes=1.0, eval_share=0.25, patience=2, max_passes=3.0)
    assert c.steps_per_eval(40) == 10 and c.max_steps(40) == 120
    falling = [(10, 3.0), (20, 2.5), (30, 2.2), (40, 2.0), (50, 1.9)]
    assert not verdict(c, falling, 40).converged  # still falling
    flat_early = [(10, 3.0), (20, 2.0), (30, 2.1), (40, 2.2)]
    assert verdict(c, flat_early[:3], 40).reason.startswith("0.75 of at least 1 passes")
    done = verdict(c, flat_early, 40)
    assert done.converged and done.best_step == 20 and done.best == 2.0 and done.passes == 1.0
    # a tie is no new best: the earlier checkpoint stays the best
    assert verdict(c, [(10, 2.0), (20, 2.5), (30, 2.0), (40, 2.0)], 40).best_step == 10
    # a measure where higher is better (a retriever's dev MRR@10): the same rule, the other way
    mrr = Convergence(min_passes=1.0, eval_share=0.25, patience=2, max_passes=3.0, measure="dev_mrr")
    rising = verdict(mrr, [(10, 0.3), (20, 0.5), (30, 0.4), (40, 0.45)], 40)
    assert rising.converged and rising.best_step == 20 and rising.best == 0.5
    assert "no new best dev MRR@10" in rising.reason
    assert not verdict(mrr, [(10, 0.3), (20, 0.4), (30, 0.5), (40, 0.6)], 40).converged
    with pytest.raises(ValueError):
        Convergence(min_passes=2.0, max_passes=1.0)
    with pytest.raises(ValueError):
        Convergence(measure="dev_accuracy")


def test_the_generator_trains_until_the_criterion_holds():
    from xqglib.method.convergence import Convergence, verdict_of_log
    from xqglib.method.generator_training import train_generator

    gen = generator("tiny-gemma3", "decoder")
    c = Convergence(min_passes=1.0, eval_share=0.5, patience=1, max_passes=3.0)
    pairs = PAIRS * 2
    log = train_generator(gen, pairs, PAIRS, steps=1000, batch_size=2, lr=1e-3, seed=0, eval_every=1000,
                          bf16=False, freeze_embeddings=False, max_dev_pairs=8, convergence=c)
    steps_per_pass = -(-len(pairs) // 2)
    found = verdict_of_log(c, log, steps_per_pass)
    assert len(log) <= c.max_steps(steps_per_pass)  # the criterion's budget, not `steps`
    every = c.steps_per_eval(steps_per_pass)
    assert [r["step"] for r in log if "dev_loss" in r][:2] == [every, 2 * every]
    assert found.converged or len(log) == c.max_steps(steps_per_pass)
    assert log[-1]["passes"] == pytest.approx(len(log) / steps_per_pass)


def test_the_generator_trains_with_its_embeddings_frozen():
    """freeze_embeddings=True (the cpu profile's setting): the tied embedding matrix stays as it was."""
    from xqglib.method.generator_training import train_generator

    gen = generator("tiny-gemma3", "decoder")
    embeddings = gen.model.get_input_embeddings().weight.detach().clone()
    log = train_generator(gen, PAIRS, PAIRS, steps=3, batch_size=2, lr=1e-2, seed=0, eval_every=3, bf16=False,
                          freeze_embeddings=True, max_dev_pairs=4)
    assert len(log) == 3
    assert torch.equal(gen.model.get_input_embeddings().weight, embeddings)


@pytest.mark.parametrize("measure", ["dev_loss", "dev_mrr"])
def test_the_retriever_trains_until_the_criterion_holds_and_keeps_its_best_checkpoint(measure):
    from xqglib.method.convergence import Convergence, verdict_of_log
    from xqglib.method.retriever_training import dev_batches, dev_scores
    from xqglib.models.registry import EncoderSpec

    enc = _encoder()
    enc.spec = EncoderSpec("mean")  # see test_retriever_training_lowers_loss
    rows = [{"query": p["question"], "positive_passages": [{"title": p["title"], "text": p["text"]}],
             "negative_passages": [{"title": q["title"], "text": q["text"]} for q in PAIRS if q is not p]}
            for p in PAIRS]
    dev = dev_batches(rows[:3], batch_size=3, n_negatives=1, seed=0)
    assert dev == dev_batches(rows[:3], batch_size=3, n_negatives=1, seed=0)  # fixed: the same every time
    c = Convergence(min_passes=1.0, eval_share=0.5, patience=2, max_passes=4.0, measure=measure)
    train = rows * 2
    log = train_retriever(enc, train, epochs=1, max_steps=1, batch_size=2, n_negatives=1, lr=3e-3, warmup_ratio=0.0,
                          seed=0, freeze_embeddings=False, dev=dev, convergence=c)
    per_pass = -(-len(train) // 2)
    assert len(log) > 1  # epochs and max_steps give way to the criterion
    assert [r["step"] for r in log if "dev_loss" in r][:2] == [c.steps_per_eval(per_pass), 2 * c.steps_per_eval(per_pass)]
    found = verdict_of_log(c, log)
    assert found.converged or len(log) == c.max_steps(per_pass)
    assert log[-1]["passes"] == pytest.approx(len(log) / per_pass)
    # the weights kept are those of the measure's best, wherever training stopped
    kept = dev_scores(enc, dev)
    assert kept[measure] == pytest.approx(found.best, rel=1e-5)
    assert kept["dev_loss"] == pytest.approx(next(r["dev_loss"] for r in log if r["step"] == found.best_step), rel=1e-5)
    assert all(0 <= r["dev_mrr"] <= 1 for r in log if "dev_loss" in r)
    with pytest.raises(ValueError, match="dev batches"):
        train_retriever(enc, train, epochs=1, max_steps=None, batch_size=2, n_negatives=1, lr=1e-3,
                        warmup_ratio=0.0, seed=0, freeze_embeddings=False, convergence=c)


def test_hybrid_epochs_of_a_given_length_are_drawn_anew():
    from xqglib.method.retriever_training import hybrid_training_batches

    items = [{"id": f"q{i}", "questions": {"en": f"question {i}", "de": f"Frage {i}"},
              "passages": {lang: {"title": "t", "text": f"{lang} paragraph {i}"} for lang in ("en", "de")},
              "negatives": {lang: [{"title": "t", "text": f"{lang} other {i}"}] for lang in ("en", "de")}}
             for i in range(5)]
    epochs = hybrid_training_batches(items, ("en", "de"), 2, 0.5, 1, seed=3, per_epoch=7)
    first, second = list(epochs(0, None)), list(epochs(1, None))
    assert len(first) == len(second) == 7  # three passes over five items and a part of a fourth
    assert [b.queries for b in first] != [b.queries for b in second]
    assert [b.queries for b in first] == [b.queries for b in epochs(0, None)]
    one_pass = list(hybrid_training_batches(items, ("en", "de"), 2, 0.5, 1, seed=3)(0, None))
    assert len(one_pass) == 3


class _FixedVectors:
    """An encoder double: each text's vector is given (to check the dev measures by hand)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.model, self.vectors = torch.nn.Identity(), vectors

    def forward_many(self, groups):
        return [torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32) for texts, _ in groups]


def test_dev_scores_by_hand():
    from xqglib.method.retriever_training import Batch, dev_scores

    vectors = {"a": [1, 0], "b": [0, 1], "c": [-1, 0], "A": [1, 0], "X": [0.5, 0], "B": [0, 1], "Y": [2, 0], "Z": [0, 0]}
    first, second = Batch(["a", "b"], ["A", "X", "B", "Y"]), Batch(["c"], ["A", "Z"])
    found = dev_scores(_FixedVectors(vectors), [first, second])
    # the pool is A X B Y Z (A once): a's positive A ranks 2nd (behind Y), b's B 1st, c's A 4th (behind X, B, Z)
    assert found["dev_mrr"] == pytest.approx((1 / 2 + 1 + 1 / 4) / 3)
    losses = [contrastive_loss(*_FixedVectors(vectors).forward_many([(b.queries, True), (b.passages, False)]))
              for b in (first, second)]
    assert found["dev_loss"] == pytest.approx((2 * float(losses[0]) + float(losses[1])) / 3)  # a mean over queries
    # a tie ranks the positive behind: collapsed vectors do not score as a perfect ranking
    tied = _FixedVectors({"q": [1.0], "p": [1.0], "n": [1.0]})
    assert dev_scores(tied, [Batch(["q"], ["p", "n"])])["dev_mrr"] == pytest.approx(1 / 2)
    # MRR@10: a positive 10th counts 1/10, 11th nothing
    for ahead, expected in ((9, 1 / 10), (10, 0.0)):
        others = {f"n{k}": [k + 2.0] for k in range(ahead)}
        batch = Batch(["q"], ["p", *others])
        assert dev_scores(_FixedVectors({"q": [1.0], "p": [1.0], **others}), [batch])["dev_mrr"] == pytest.approx(expected)
