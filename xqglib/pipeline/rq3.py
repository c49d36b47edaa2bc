"""Stage functions of the third research question (stages 10-12): query-augmented (xQG)
against passage-augmented retrieval on XQuAD's query-language x passage-language matrix,
measured by retrieval and by the EM/F1 of an extractive reader.

A cell (Q, P) of the matrix (:mod:`xqglib.data.matrix`): XQuAD's 240 paragraphs in P are the
corpus, the test-article questions in Q the queries, the paragraph that holds a question its gold
passage, the answer of the parallel question in P its gold answer. The paragraphs carry no title
(XQuAD's titles are English only), so every passage language sees the same kind of text.

The conditions, all from one retriever, one corpus and the same generated queries per passage
(``rq3.generation_languages`` x ``rq3.n_per_language``):

- ``none``: the passage vector as it is;
- ``xqg``: the passage vector fused with its generated queries' vectors (RQ1's rule: the paper's
  alpha scaled by 35 over the queries fused);
- ``text``: the queries appended to the passage's text before encoding (doc2query): the passage
  keeps ``retriever.passage_max_len`` tokens, the queries follow, ``rq3.text_max_len`` in all;
- ``dual``: passage and queries (as one text) in two indexes, scores fused at search time with
  the weight of ``rq3.dual_weights`` best on dev-article questions (two vectors per passage);
- ``translations``: the passage vector fused with its human translations into the other passage
  languages (an oracle: XQuAD's translations), with the total weight xQG gives its queries;
- ``query-translated``: the question asked in the passage language (XQuAD's human translation),
  the translate-the-query control.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.formats import (
    generated_query_table,
    read_jsonl,
    save_npy,
    sha256_file,
    sha256_text,
    write_json,
    write_jsonl,
)
from xqglib.core.reuse import file_digests, fingerprint, weights_digest
from xqglib.data import b1 as D
from xqglib.data import sources as DS
from xqglib.data.matrix import matrix_rows, matrix_vocabulary_texts
from xqglib.evaluation import rq3 as V3
from xqglib.method.augmentation import condition_texts, generated_by_passage
from xqglib.method.generator import generate_xqg
from xqglib.method.generator_training import train_generator
from xqglib.method.reading import READING_VERSION, ReaderExample, Span, reader_of, train_reader
from xqglib.method.sampling import SAMPLER_VERSION
from xqglib.models.registry import resolve
from xqglib.pipeline import stages as S
from xqglib.pipeline.common import (
    encoder_for,
    generator_for,
    make_once,
    retriever_source,
    seed_everything,
    seeded_subset,
    train_once,
    training_fingerprint,
)
from xqglib.pipeline.rq1 import generator_convergence, reader_criterion, with_seed
from xqglib.study.experiments import RQ3_GENERATOR, matrix_languages, seed_variant


def prepare_rq3_data(cfg: Profile, rd: RunDir) -> dict[str, int]:
    """Write the matrix (:func:`matrix_rows`, test questions capped by ``rq3.max_questions``) and
    the reader's examples (train articles only)."""
    b1 = D.build_b1(cfg)
    parallel = {lang: DS.load_xquad(lang) for lang in matrix_languages(cfg)}
    r = cfg.rq3
    test_qids = sorted(qa["id"] for a in parallel["en"] if b1.split[a["title"]] == "test"
                       for p in a["paragraphs"] for qa in p["qas"])
    if r.max_questions is not None:
        random.Random(cfg.seed).shuffle(test_qids)
        test_qids = sorted(test_qids[: r.max_questions])
    rows = matrix_rows(parallel, b1.split, r.query_languages, r.passage_languages, r.generation_languages, test_qids)
    rows["reader_train"] = D.reader_examples(b1, "train", sorted(parallel))
    rows["reader_dev"] = D.reader_examples(b1, "dev", sorted(parallel))
    for what, items in rows.items():
        write_jsonl(rd.rq3_data(what), items)
    questions = rows["questions"]
    return {"passages": len(rows["passages"]), "test questions": sum(q["split"] == "test" for q in questions),
            "dev questions": sum(q["split"] == "dev" for q in questions),
            "generator train pairs": len(rows["generator_train"]), "reader training examples": len(rows["reader_train"])}


def train_rq3_generator(cfg: Profile, rd: RunDir) -> list[dict[str, float]]:
    """Stage 10: continue the Table 1 generator's training on passages in every passage language
    (reused where an identical one was trained before)."""
    source = rd.require(rd.generator_model(cfg.primary_generator), "train-generator")
    inputs = [rd.require(rd.rq3_data("generator_train"), "rq3-train"), rd.rq3_data("generator_dev")]

    def train() -> tuple[Any, Any, list[dict[str, Any]]]:
        seed_everything(cfg.seed)
        gen = generator_for(cfg, cfg.primary_generator, str(source))
        g, steps = cfg.generator, cfg.rq3.generator_steps
        pairs = seeded_subset(read_jsonl(inputs[0]), cfg.rq3.generator_max_pairs, cfg.seed)
        log = train_generator(gen, pairs, read_jsonl(inputs[1]), steps=steps,
                              batch_size=g.batch_size, lr=g.lr, seed=cfg.seed, eval_every=max(1, steps // 2),
                              bf16=cfg.use_bf16, freeze_embeddings=g.freeze_embeddings, max_dev_pairs=g.max_dev_pairs,
                              convergence=generator_convergence(cfg))
        return gen.model, gen.tok, log

    made_from = training_fingerprint(cfg, cfg.primary_generator,
                                     ["generator", "rq3.generator_steps", "rq3.generator_max_pairs",
                                      "rq3.generation_languages", "rq3.passage_languages"], inputs,
                                     **{"from": weights_digest(source)})
    return train_once(rd, "rq3-train", "generator", rd.generator_model(RQ3_GENERATOR), rd.generator_log(RQ3_GENERATOR),
                      made_from, train)


#: The settings the reader is trained with (its reuse fingerprint holds these).
READER_SETTINGS = ("rq3.reader_steps", "rq3.reader_max_examples", "rq3.reader_batch_size", "rq3.reader_lr",
                   "rq3.reader_max_len", "rq3.reader_stride", "retriever.warmup_ratio", "retriever.freeze_embeddings",
                   *S.CRITERION)


def train_rq3_reader(cfg: Profile, rd: RunDir) -> list[dict[str, float]]:
    """Stage 10: fine-tune the extractive reader from the retrievers' encoder on train-article examples."""
    inputs = [rd.require(rd.rq3_data("reader_train"), "rq3-train"), rd.require(rd.rq3_data("reader_dev"), "rq3-train")]

    def examples(path: Path, cap: int | None) -> list[ReaderExample]:
        return [ReaderExample(e["question"], e["context"], e["answer"], e["answer_start"])
                for e in seeded_subset(read_jsonl(path), cap, cfg.seed)]

    def train() -> tuple[Any, Any, list[dict[str, Any]]]:
        seed_everything(cfg.seed)
        reader = reader_of(cfg, cfg.retriever.encoder)
        r = cfg.rq3
        criterion = reader_criterion(cfg)
        dev = examples(inputs[1], cfg.retriever.max_dev_rows) if criterion else None
        log = train_reader(reader, examples(inputs[0], r.reader_max_examples), steps=r.reader_steps,
                           batch_size=r.reader_batch_size, lr=r.reader_lr, warmup_ratio=cfg.retriever.warmup_ratio,
                           seed=cfg.seed, freeze_embeddings=cfg.retriever.freeze_embeddings, dev=dev,
                           convergence=criterion)
        return reader.model, reader.tok, log

    return train_once(rd, "rq3-train", "reader", rd.reader_model(), rd.reader_log(),
                      training_fingerprint(cfg, cfg.retriever.encoder, READER_SETTINGS, inputs), train)


# --------------------------------------------------------------------------------------------
# Stage 11: generation for every passage, encoding every condition's texts
# --------------------------------------------------------------------------------------------

def generate_rq3(cfg: Profile, rd: RunDir, seed: int | None = None) -> list[dict[str, Any]]:
    """Stage 11: generated queries (released xQG jsonl) for every passage of every passage
    language; a file generated earlier by the same weights from the same passages and settings is
    reused. With ``seed`` (one of ``generation.seeds``, the seed sweep) they are sampled with that
    seed into ``generated/<RQ3_GENERATOR>.seed-<seed>.jsonl``; its fingerprint leaves the list of
    further seeds out, so adding a seed samples that seed only."""
    model = rd.require(rd.generator_model(RQ3_GENERATOR), "rq3-train")
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    names = ["generation", "rq3.generation_languages", "rq3.n_per_language", "run"]
    settings = cfg.select(names)  # run.seed's file: the fingerprint it always had (generation.seeds in it)
    if seed is not None:
        cfg = with_seed(cfg, seed)
        settings = {k: v for k, v in cfg.select(names).items() if k != "generation.seeds"}
    made_from = fingerprint(generator=weights_digest(model), passages=sha256_file(rd.rq3_data("passages")),
                            sampler=SAMPLER_VERSION, settings=settings)
    out = RQ3_GENERATOR if seed is None else seed_variant(RQ3_GENERATOR, seed)
    path = rd.generated(out)
    made: list[list[dict[str, Any]]] = []

    def generate() -> None:
        seed_everything(cfg.seed)
        gen = generator_for(cfg, str(model), str(model))
        g, r = cfg.generation, cfg.rq3
        if g.vocabulary == "data" and gen.kind == "decoder":
            gen.restrict_vocabulary(matrix_vocabulary_texts(rd, corpus))
        made.append(generate_xqg(gen, corpus, r.generation_languages, n=r.n_per_language, top_k=g.top_k,
                                 max_new_tokens=g.max_new_tokens, batch_passages=g.batch_passages, seed=cfg.seed,
                                 bf16=cfg.use_bf16))
        write_jsonl(path, made[0])

    with S.timed(rd, "rq3-encode", "generate" if seed is None else f"generate, seed {seed}") as timing:
        if make_once(rd.generation_fingerprint(out), made_from, [path], generate, timing, "generation"):
            print(f"reusing {path}: generated earlier by the same generator from the same passages")
        rows = made[0] if made else read_jsonl(path)
        timing.details["queries"] = sum(len(qs) for r in rows for qs in r["generated_queries"].values())
    return rows


def generated_jobs(cfg: Profile, encoder: Any, expander: Any, corpus: list[dict[str, Any]],
                   rows: list[dict[str, Any]]) -> tuple[dict[str, list[str]], list[tuple[str, list[Any], bool, Any, list[Any]]]]:
    """The condition texts (:func:`condition_texts`) of the generated queries ``rows``, and what
    of them stage 11 encodes that depends on those queries, as (what, texts, is_query, encoder,
    ids): the queries (query side), the expanded passages (``text``, with ``expander``) and the
    query documents (``querydocs``)."""
    texts = condition_texts(encoder, corpus, generated_by_passage(rows, cfg.rq3.generation_languages))
    flat = generated_query_table(rows)
    docids = [p["docid"] for p in corpus]
    return texts, [("generated", [g["query"] for g in flat], True, encoder,
                    [{k: g[k] for k in ("docid", "lang", "slot")} for g in flat]),
                   ("text", texts["text"], False, expander, docids),
                   ("querydocs", texts["querydocs"], False, encoder, docids)]


def encode_rq3(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """Encode, with one retriever, the matrix's questions, passages, generated queries, expanded
    passages (``text``: encoded with ``rq3.text_max_len``) and query documents (``querydocs``)."""

    seed_everything(cfg.seed)
    source = retriever_source(cfg, rd, name)
    encoder = encoder_for(cfg, source)
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    questions = read_jsonl(rd.rq3_data("questions"))
    rows = read_jsonl(rd.require(rd.generated(RQ3_GENERATOR), "rq3-encode"))
    expander = encoder_for(cfg, source, cfg.rq3.text_max_len)
    texts, generated = generated_jobs(cfg, encoder, expander, corpus, rows)
    counts = expander.token_counts(texts["text"], False)
    full = [len(ids) for ids in expander.tok([expander.spec.passage_prefix + t for t in texts["text"]])["input_ids"]]
    bs = cfg.retriever.encode_batch_size
    jobs = [("questions", [q["question"] for q in questions], True, encoder,
             [{k: q[k] for k in ("qid", "lang", "split")} for q in questions]),
            ("passages", texts["passages"], False, encoder, [p["docid"] for p in corpus]), *generated]
    for what, items, is_query, enc, ids in jobs:
        with S.timed(rd, "rq3-encode", f"{name}: {what}", texts=len(items)):
            save_npy(rd.rq3(name, what), enc.encode(items, is_query, bs, f"{name}: {what}"))
        write_json(rd.rq3_meta(name, what), ids)
    kept = encoder.token_counts(texts["passages"], False)
    stats = {"questions": len(questions), "passages": len(corpus), "generated queries": len(generated[0][1]),
             "passage tokens (mean)": float(np.mean(kept)),
             "expanded passage tokens (mean)": float(np.mean(counts)),
             "expanded passages cut": int(sum(f > c for f, c in zip(full, counts)))}
    write_json(rd.rq3_meta(name, "expansion"), stats)
    return stats


#: What stage 11 encodes again for every further sampling seed: what depends on the generated queries.
SEED_ENCODED = ("generated", "text", "querydocs")


def encode_rq3_seeds(cfg: Profile, rd: RunDir, name: str) -> dict[int, int]:
    """Stage 11, the seed sweep: with one retriever, what depends on the generated queries
    (:data:`SEED_ENCODED`) encoded again from the queries of every further sampling seed
    (``rq3/<retriever>/<what>.seed-<s>.npy``; reused where encoded earlier by the same weights from
    the same queries and passages). Returns the queries encoded per seed."""
    if not cfg.generation.seeds:
        return {}
    seed_everything(cfg.seed)
    source = retriever_source(cfg, rd, name)
    folder = Path(resolve(source))
    model = weights_digest(folder) if folder.is_dir() else str(folder)
    passages = rd.require(rd.rq3_data("passages"), "rq3-train")
    corpus = read_jsonl(passages)
    encoders: list[Any] = []
    counts = {}
    for seed in cfg.generation.seeds:
        generated = rd.require(rd.generated(seed_variant(RQ3_GENERATOR, seed)), "rq3-encode")
        rows = read_jsonl(generated)
        stored = [seed_variant(what, seed) for what in SEED_ENCODED]
        made_from = fingerprint(model=model, settings=cfg.select(["retriever", "rq3.generation_languages",
                                                                   "rq3.text_max_len"]),
                                inputs=file_digests([passages, generated]))

        def encode() -> None:
            if not encoders:
                encoders.extend([encoder_for(cfg, source), encoder_for(cfg, source, cfg.rq3.text_max_len)])
            for (what, items, is_query, enc, ids), out in zip(generated_jobs(cfg, *encoders, corpus, rows)[1], stored):
                save_npy(rd.rq3(name, out), enc.encode(items, is_query, cfg.retriever.encode_batch_size,
                                                       f"{name}: {what}, seed {seed}"))
                write_json(rd.rq3_meta(name, out), ids)

        with S.timed(rd, "rq3-encode", f"{name}: seed {seed}", passages=len(corpus)) as timing:
            if make_once(rd.path("rq3", name, f"seed-{seed}.fingerprint.json"), made_from,
                         [rd.rq3(name, s) for s in stored] + [rd.rq3_meta(name, s) for s in stored], encode, timing,
                         "encoding"):
                print(f"reusing {name}'s encodings of seed {seed}: encoded earlier by the same weights from the same "
                      "queries and passages")
        counts[seed] = sum(len(qs) for r in rows for qs in r["generated_queries"].values())
    return counts


# --------------------------------------------------------------------------------------------
# Stage 12: retrieval in every cell and condition, reading
# --------------------------------------------------------------------------------------------

def read_pairs(cfg: Profile, rd: RunDir, keys: list[tuple[str, str, str, int]], questions: list[str],
               contexts: list[str], timing: Any) -> list[Any]:
    """The reader's best span for every (question, passage) pair. Spans read earlier by the same
    reader weights, with the same windows, over the same pairs are reused (the reads table and its
    record), so a rerun of stage 12 that changes only the analysis does not read again."""
    model = rd.require(rd.reader_model(), "rq3-train")
    made_from = fingerprint(reader=weights_digest(model), reading_version=READING_VERSION,
                            settings=cfg.select(["rq3.reader_max_len", "rq3.reader_stride"]),
                            pairs=sha256_text(json.dumps([keys, questions, contexts], ensure_ascii=False)))
    table, done = rd.eval_file("rq3_reads.parquet"), rd.eval_file("rq3_reads.fingerprint.json")
    made: list[list[Any]] = []

    def read() -> None:
        made.append(reader_of(cfg, str(model)).read(questions, contexts, 32, f"read ({len(keys)} passages)"))
        pd.DataFrame([{"asked_lang": a, "qid": qid, "passage_lang": p, "position": k,
                       "answer": "" if s is None else s.text, "score": np.nan if s is None else s.score}
                      for (a, qid, p, k), s in zip(keys, made[0])]).to_parquet(table, index=False)

    if make_once(done, made_from, [table], read, timing, "reading"):  # its record after the table it describes
        print(f"reusing {table}: read earlier by the same reader from the same questions and passages")
    if made:
        return made[0]
    rows = pd.read_parquet(table)
    return [None if np.isnan(score) else Span(answer, float(score), 0, 0, 0)
            for answer, score in zip(rows["answer"], rows["score"])]


def evaluate_rq3(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Stage 12: every retriever's retrieval in every cell and condition (test and dev questions),
    the reader on the reader retriever's passages, written as tidy tables; and the seed sweep's
    retrieval (:func:`xqglib.evaluation.rq3.seed_retrieval`, ``eval/rq3_seed_results.parquet``)."""
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    questions = read_jsonl(rd.rq3_data("questions"))
    answers = {(a["lang"], a["qid"]): a["answers"] for a in read_jsonl(rd.rq3_data("answers"))}
    with S.timed(rd, "rq3-evaluate", "score and read") as timing:
        frames, chosen, sweeps, reader_tops = [], {}, {}, None
        for name in cfg.rq3_retrievers:
            vec = V3.Vectors(cfg, rd, name, corpus)
            sweeps[name] = V3.choose_dual_weight(cfg, vec, questions, name)
            chosen[name] = max(sweeps[name], key=lambda w: (sweeps[name][w], -w))
            frame, tops = V3.retrieval_rows(cfg, vec, questions, name, "test", chosen[name])
            frames.append(frame)
            if name == cfg.reader_retriever:
                reader_tops = tops
        retrieval = V3.with_measures(pd.concat(frames, ignore_index=True))
        retrieval.to_parquet(rd.eval_file("rq3_retrieval.parquet"), index=False)
        reads: list[tuple[str, str, str, int]] = []

        def read(keys: list[tuple[str, str, str, int]], qs: list[str], contexts: list[str]) -> list[Any]:
            reads.extend(keys)
            return read_pairs(cfg, rd, keys, qs, contexts, timing)

        reading = V3.read_cells(cfg, reader_tops, questions, corpus, answers, read)
        reading.insert(2, "retriever", cfg.reader_retriever)
        reading.to_parquet(rd.eval_file("rq3_reading.parquet"), index=False)
        timing.details["reads"] = len(reads)
    with S.timed(rd, "rq3-evaluate", "seed sweep", seeds=len(cfg.generation.seeds)):
        seed_retrieval, seed_weights = V3.seed_retrieval(cfg, rd, corpus, questions, list(retrieval.columns))
        seed_retrieval.to_parquet(rd.eval_file("rq3_seed_results.parquet"), index=False)
    summary = {"alpha": cfg.rq3_alpha, "queries per passage": cfg.rq3_queries_per_passage,
               "paragraphs per language": len(corpus) // len(cfg.rq3.passage_languages),
               "dual weight": chosen, "dual weight sweep (dev MRR@10)": {n: {str(w): v for w, v in s.items()}
                                                                       for n, s in sweeps.items()},
               "dual weight by seed": seed_weights, "reads": len(reads), "reading seconds": timing.work_seconds}
    write_json(rd.eval_file("rq3_conditions.json"), summary)
    return summary
