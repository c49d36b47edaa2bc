"""The roofline benchmark (``make bench``): every stage's throughput, its FLOPs, the share of the
machine's fp32 matrix-product roof it reaches (the roof measured in the same run), and its ratio
to the naive baseline, on the profile's real models and real data. Medians of repeated trials.

    make bench                                            # the cpu profile's models
    .venv/bin/python benchmarks/throughput.py --profile smoke   # tiny models, seconds

Measure on AVX2 (the study's budget machine): ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``
(``make bench`` sets both). FLOPs are counted by :mod:`xqglib.study.cost` from the work each path did
(its own outputs' token counts), so a share is useful work over the roof.

- **generator training step** (batch of the profile's size): ours takes the LM head only at the
  question tokens, with the tied embedding frozen; baseline: transformers' own loss
  (``model(labels=...)``, the head over every position).
- **generation**: n questions per passage and language by top-k sampling. Baseline:
  ``model.generate(do_sample=True, num_return_sequences=n)`` on every full prompt (it reads each
  passage n times per language). Ours (:func:`xqglib.method.sampling.sample_shared_prefix`): each
  passage read once for all languages, decoding stops at the first line break, with the LM head
  over the whole vocabulary (exact) and over the data's vocabulary (the profile's choice), one
  language at a time (the reference path) and every language's rows decoded together over the
  shared prefixes (the pipeline's path where it is exact).
- **retriever training step**: Tevatron's loss on a batch of the profile's size; no baseline.
- **encoding**, of passages and of test queries in every query language: baseline the plain
  Hugging Face loop (batches in input order); ours :meth:`xqglib.method.encoding.DenseEncoder.encode`
  (batches of nearly equal token count).
- **reader training step** (a batch of the profile's size): one padded batch, as Hugging Face's
  recipe, against the windows by length in groups (:meth:`xqglib.method.reading.Reader.loss`).
- **reading** (the third question's reader, its span head untrained: the speed is the same):
  question-passage pairs of the reader's languages cut into windows, spans decoded; baseline
  Hugging Face's recipe (a batch of pairs, their windows padded together, in input order), ours
  :meth:`xqglib.method.reading.Reader.read` (windows of all pairs batched by length, spans decoded).
- **search**: exact inner-product search of the test queries; baseline numpy (product and a full
  sort), ours FAISS ``IndexFlatIP``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import pandas as pd
import torch

from xqglib.config.profiles import load_profile
from xqglib.data import b1 as D
from xqglib.method.encoding import DenseEncoder, passage_text
from xqglib.method.generator import QueryGenerator, data_vocabulary
from xqglib.method.reading import TRAINING_GROUP, Reader, ReaderExample, best_over_passages, best_span
from xqglib.method.retriever_training import contrastive_loss
from xqglib.method.search import search
from xqglib.models.registry import (
    encoder_spec,
    generator_kind,
    load_encoder,
    load_generator,
    load_reader,
    load_tokenizer,
)
from xqglib.pipeline.rq1 import vocabulary_texts
from xqglib.study import cost as C


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def row(stage: str, path: str, amount: float, unit: str, seconds: float, flops: float | None, roof: float,
        baseline_seconds: float | None = None) -> dict:
    return {"stage": stage, "path": path, "throughput": amount / seconds, "unit": unit,
            "GFLOP": None if flops is None else flops / 1e9,
            "GFLOP/s": None if flops is None else flops / seconds / 1e9,
            "share of roof (%)": None if flops is None else 100 * flops / seconds / roof,
            "ratio to baseline": None if baseline_seconds is None else baseline_seconds / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--prompts", type=int, default=8, help="passages per generation trial")
    parser.add_argument("--languages", type=int, default=2, help="generation languages (the profile's first ones)")
    parser.add_argument("--passages", type=int, default=64, help="passages per encoding trial")
    parser.add_argument("--queries", type=int, default=512, help="test queries per encoding trial")
    parser.add_argument("--pairs", type=int, default=128, help="question-passage pairs per reading trial")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_profile(args.profile)
    torch.manual_seed(cfg.seed)
    b1 = D.build_b1(cfg)
    roof = C.measure_roof()
    print(f"profile {cfg.name}; torch threads {torch.get_num_threads()}; bf16 {cfg.use_bf16}; medians of "
          f"{args.repeats}; fp32 matrix-product roof {roof / 1e9:.1f} GFLOP/s")
    rows = []

    # ---- the generator: a training step, then generation ---------------------------------------
    name = cfg.primary_generator
    kind = generator_kind(name)
    g = cfg.generator
    gen = QueryGenerator(load_generator(name, kind), load_tokenizer(name), kind, g.max_input_len, g.max_target_len)
    shape = C.TransformerShape.from_config(gen.model.config) if kind == "decoder" else None
    pairs = random.Random(cfg.seed).sample(D.generator_pairs(b1, "train", cfg.generation.languages), g.batch_size)
    batch = gen.collate(pairs)
    if g.freeze_embeddings:
        gen.model.get_input_embeddings().weight.requires_grad_(False)
    gen.model.train()

    def step(ours: bool):
        def run():
            loss = gen.loss(batch) if ours else gen.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                                          labels=batch.labels).loss
            loss.backward()
            gen.model.zero_grad(set_to_none=True)
        return run

    log_row = {"positions": batch.input_ids.numel(), "head_positions": int((batch.labels != -100).sum())}
    flops = C.generator_training_flops(shape, [log_row], g.batch_size, 0, g.freeze_embeddings) if shape else None
    base = median_time(step(False), args.repeats)
    ours = median_time(step(True), args.repeats)
    rows.append(row("generator training step", "HF loss (head everywhere)", g.batch_size, "pairs/s", base, None, roof))
    rows.append(row("generator training step", "ours (head at the question)", g.batch_size, "pairs/s", ours, flops,
                    roof, base))
    gen.model.eval()

    passages = b1.corpus[: max(args.prompts, args.passages)]
    chunk = [(p.title, p.text) for p in passages[: args.prompts]]
    languages = cfg.generation.languages[: args.languages]
    s = cfg.generation
    vocabulary = data_vocabulary(gen.tok, vocabulary_texts(cfg, [p.as_tevatron() for p in b1.corpus]), gen.stop_ids)
    passage_tokens = [len(gen.passage_ids(t, x)) for t, x in chunk]
    instruction_tokens = [len(gen.instruction_ids(lang)) for lang in languages] if kind == "decoder" else []

    def generate(shared: bool, restricted: bool, joint: bool | None):
        out = {}

        def run():
            gen.vocabulary = vocabulary if restricted else None
            out["q"] = gen.sample(chunk, languages, s.n_per_language, s.top_k, s.max_new_tokens, seed=0,
                                  bf16=cfg.use_bf16, shared_prefill=shared, joint=joint)
        return run, out

    def generation_row(path: str, shared: bool, restricted: bool, baseline: float | None,
                       joint: bool | None = False) -> float:
        run, out = generate(shared, restricted, joint)
        seconds = median_time(run, args.repeats)
        texts = [q for lang in languages for qs in out["q"][lang] for q in qs]
        tokens = [min(len(gen.tok(q, add_special_tokens=False)["input_ids"]), s.max_new_tokens - 1) for q in texts]
        flops = None
        if shape is not None:
            flops = C.generation_flops(shape, passage_tokens, instruction_tokens, tokens,
                                       len(vocabulary) if restricted else shape.vocab, len(chunk))
            if not shared:  # generate reads every prompt n times per language
                flops += C.generation_flops(shape, passage_tokens, instruction_tokens, [], 0, len(chunk)) * (
                    s.n_per_language * len(languages) - 1)
        rows.append(row("generation", path, len(texts), "queries/s", seconds, flops, roof, baseline))
        rows.append(row("generation", path, sum(t + 1 for t in tokens), "tokens/s", seconds, None, roof, baseline))
        return seconds

    base = generation_row("HF generate", False, False, None)
    generation_row("ours, shared prefix", True, False, base)
    generation_row(f"ours, + {len(vocabulary):,}-token head", True, True, base)
    generation_row(f"ours, + {len(vocabulary):,}-token head, languages jointly where exact", True, True, base,
                   joint=None)

    # ---- the retriever: a training step, encoding, search ---------------------------------------
    r = cfg.retriever
    model, tok = load_encoder(r.encoder), load_tokenizer(r.encoder)
    spec = encoder_spec(r.encoder)
    encoder = DenseEncoder(model, tok, spec, r.query_max_len, r.passage_max_len, cfg.use_bf16)
    eshape = C.TransformerShape.from_config(model.config)
    training_rows = random.Random(cfg.seed).sample(
        D.retriever_training_rows(b1, "crosslingual", cfg.data.query_languages, r.negatives, cfg.seed), r.batch_size)
    if r.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    queries = [x["query"] for x in training_rows]
    texts = [passage_text(p["title"], p["text"]) for x in training_rows
             for p in x["positive_passages"][:1] + x["negative_passages"][: r.negatives]]

    def retriever_step():
        loss = contrastive_loss(encoder.forward(queries, True), encoder.forward(texts, False))
        loss.backward()
        model.zero_grad(set_to_none=True)

    before = encoder.positions_run
    retriever_step()
    positions = encoder.positions_run - before
    seconds = median_time(retriever_step, args.repeats)
    rows.append(row("retriever training step", "ours (Tevatron loss)", len(queries), "queries/s", seconds,
                    3 * eshape.forward(positions), roof))
    model.eval()

    corpus = [passage_text(p.title, p.text) for p in passages[: args.passages]]
    # test queries in every query language, in the order stage 5 encodes them (language by language)
    tests = D.test_queries(b1, cfg.data.query_languages)
    picked = sorted(random.Random(cfg.seed).sample(range(len(tests)), min(args.queries, len(tests))))
    questions = [tests[i]["query"] for i in picked]
    bs = r.encode_batch_size

    for texts, is_query, what, unit in ((corpus, False, "", "passages/s"), (questions, True, " (queries)", "queries/s")):
        prefix = spec.query_prefix if is_query else spec.passage_prefix
        max_len = r.query_max_len if is_query else r.passage_max_len

        @torch.no_grad()
        def plain_loop(texts=texts, prefix=prefix, max_len=max_len):  # batches in input order
            for start in range(0, len(texts), bs):
                model(**tok([prefix + t for t in texts[start:start + bs]], padding=True, truncation=True,
                            max_length=max_len, return_tensors="pt"))

        flops = eshape.forward(sum(encoder.token_counts(texts, is_query)))
        base = median_time(plain_loop, args.repeats)
        ours = median_time(lambda: encoder.encode(texts, is_query, bs), args.repeats)
        rows.append(row("encoding", f"HF loop{what}", len(texts), unit, base, flops, roof))
        rows.append(row("encoding", f"DenseEncoder{what}", len(texts), unit, ours, flops, roof, base))

    # ---- the reader: a training step, then question-passage pairs of the third question's languages
    r3 = cfg.rq3
    train_examples = D.reader_examples(b1, "train", r3.passage_languages)
    train_examples = [ReaderExample(e["question"], e["context"], e["answer"], e["answer_start"])
                      for e in random.Random(cfg.seed).sample(train_examples, r3.reader_batch_size)]
    trainee = Reader(load_reader(r.encoder), tok, r3.reader_max_len, r3.reader_stride)
    if r.freeze_embeddings:
        trainee.model.get_input_embeddings().weight.requires_grad_(False)
    trainee.model.train()
    step_windows = tok([e.question for e in train_examples], [e.context for e in train_examples],
                       truncation="only_second", max_length=r3.reader_max_len, stride=r3.reader_stride,
                       return_overflowing_tokens=True)["input_ids"]
    base = None
    for group, path in ((None, "one padded batch (HF recipe)"), (TRAINING_GROUP, f"windows by length, groups of {TRAINING_GROUP}")):
        trainee.group = group

        def reader_step():
            trainee.loss(train_examples).backward()
            trainee.model.zero_grad(set_to_none=True)

        before = trainee.positions_run
        reader_step()
        positions = trainee.positions_run - before  # padding included: the work each path does
        seconds = median_time(reader_step, args.repeats)
        useful = 3 * eshape.forward(sum(map(len, step_windows)), attended=sum(len(w) ** 2 for w in step_windows))
        rows.append(row("reader training step", f"{path} ({positions:,} positions)", len(train_examples),
                        "questions/s", seconds, useful, roof, base))
        base = base or seconds

    # ---- reading
    examples = D.reader_examples(b1, "test", r3.passage_languages, with_squad=False)
    examples = [examples[i] for i in sorted(random.Random(cfg.seed).sample(range(len(examples)),
                                                                          min(args.pairs, len(examples))))]
    reader = Reader(load_reader(r.encoder), tok, r3.reader_max_len, r3.reader_stride)
    pair_questions, contexts = [e["question"] for e in examples], [e["context"] for e in examples]
    windows = tok(pair_questions, contexts, truncation="only_second", max_length=r3.reader_max_len,
                  stride=r3.reader_stride, return_overflowing_tokens=True)["input_ids"]
    flops = eshape.forward(sum(len(w) for w in windows), attended=sum(len(w) ** 2 for w in windows))

    @torch.no_grad()
    def plain_reading():  # Hugging Face's recipe: 32 pairs a batch, their windows padded together
        best = [None] * len(examples)
        for start in range(0, len(examples), 32):
            f = reader.windows(pair_questions[start:start + 32], contexts[start:start + 32])
            out = reader.model(input_ids=f["input_ids"], attention_mask=f["attention_mask"])
            for w, sample in enumerate(f["overflow_to_sample_mapping"].tolist()):
                span = best_span(out.start_logits[w].numpy(), out.end_logits[w].numpy(),
                                 reader.context_offsets(f, w), contexts[start + sample])
                best[start + sample] = best_over_passages([best[start + sample], span])

    base = median_time(plain_reading, args.repeats)
    ours = median_time(lambda: reader.read(pair_questions, contexts, 32), args.repeats)
    rows.append(row("reading", "HF recipe (pairs in order)", len(examples), "pairs/s", base, flops, roof))
    rows.append(row("reading", "Reader.read (windows by length)", len(examples), "pairs/s", ours, flops, roof, base))

    rng = np.random.default_rng(0)
    n_passages, n_queries, dim = len(b1.corpus), len(D.test_queries(b1, cfg.data.query_languages)), eshape.hidden
    p_emb = rng.standard_normal((n_passages, dim), dtype=np.float32)
    q_emb = rng.standard_normal((n_queries, dim), dtype=np.float32)
    ids = [str(i) for i in range(n_passages)]
    depth = cfg.evaluation.search_depth

    def numpy_search():
        scores = q_emb @ p_emb.T
        np.argsort(-scores, axis=1)[:, :depth]

    flops = 2 * n_queries * n_passages * dim
    base = median_time(numpy_search, args.repeats)
    ours = median_time(lambda: search(p_emb, ids, q_emb, [str(i) for i in range(n_queries)], depth), args.repeats)
    rows.append(row("search", "numpy (product, full sort)", n_queries, "queries/s", base, flops, roof))
    rows.append(row("search", "FAISS IndexFlatIP", n_queries, "queries/s", ours, flops, roof, base))

    table = pd.DataFrame(rows).set_index(["stage", "path", "unit"])
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.2f}".format):
        print(table)


if __name__ == "__main__":
    main()
