"""Stage functions of the first research question (stages 1-5): data, generator training,
generation, retriever training, encoding and search. Each reads only what earlier stages wrote
into the run directory, so a stage can be rerun on its own.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
import time
from pathlib import Path
from typing import Any

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir, safe_name
from xqglib.core.errors import UserError
from xqglib.core.formats import (
    generated_query_table,
    read_jsonl,
    write_json,
    write_jsonl,
    write_qrels,
    write_trec_run,
)
from xqglib.core.reuse import earlier, file_digests, fingerprint, remember, weights_digest
from xqglib.core.sharding import encoding_record, sharded_encoding
from xqglib.core.timing import Timing
from xqglib.data import b1 as D
from xqglib.evaluation.rq1 import with_seed_queries
from xqglib.method.augmentation import passage_vectors
from xqglib.method.convergence import Convergence
from xqglib.method.encoding import passage_text
from xqglib.method.generator import generate_xqg, generation_batches, head_agreement
from xqglib.method.generator_training import train_generator
from xqglib.method.retriever_training import dev_batches, train_retriever
from xqglib.method.sampling import SAMPLER_VERSION
from xqglib.method.search import RetrieverSearch, search
from xqglib.models.registry import resolve
from xqglib.pipeline import stages as S
from xqglib.pipeline.common import (
    encoder_for,
    generator_for,
    make_once,
    retriever_source,
    seed_everything,
    seeded_subset,
    stage_timer,
    train_once,
    training_fingerprint,
)
from xqglib.study.experiments import main_conditions, seed_system, seed_variant, xqg

# --------------------------------------------------------------------------------------------
# Stage 1: data
# --------------------------------------------------------------------------------------------

def prepare_data(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Build the benchmark (B1; B3 in :mod:`xqglib.data.b3`) and write the corpus, test queries, qrels,
    answers and all training data."""
    if cfg.data.benchmark != "b1":
        from xqglib.data.b3 import prepare_b3

        return prepare_b3(cfg, rd)
    b1 = D.build_b1(cfg)
    queries = D.test_queries(b1, cfg.data.query_languages)
    write_jsonl(rd.corpus, (p.as_tevatron() for p in b1.corpus))
    write_jsonl(rd.test_queries, queries)
    write_qrels(rd.qrels, D.qrels_for(b1, queries))
    write_json(rd.answers, {q["query_id"]: b1.answers[q["qid"]] for q in queries})
    write_json(rd.split, b1.split)
    sizes: dict[str, Any] = {"articles": {s: len(b1.articles(s)) for s in ("train", "dev", "test")},
                             "corpus passages": len(b1.corpus), "test questions": len(b1.test_qids),
                             "test queries": len(queries)}
    for split in ("train", "dev"):
        pairs = D.generator_pairs(b1, split, cfg.generation.languages)
        write_jsonl(rd.generator_pairs(split), pairs)
        sizes[f"generator {split} pairs"] = len(pairs)
    for training in sorted({r.training for r in cfg.retrievers} - {"none"}):
        rows = D.retriever_training_rows(b1, training, cfg.data.query_languages, cfg.retriever.negatives,
                                         cfg.seed, cfg.retriever.negative_pool)
        write_jsonl(rd.retriever_rows(training), rows)
        sizes[f"retriever training rows ({training})"] = len(rows)
    return sizes


def train_query_generator(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    """Stage 2: fine-tune one generator on the train-article pairs (reused where trained before)."""
    inputs = [rd.require(rd.generator_pairs("train"), "data"), rd.generator_pairs("dev")]

    def train() -> tuple[Any, Any, list[dict[str, Any]]]:
        seed_everything(cfg.seed)
        gen = generator_for(cfg, name, name)
        g = cfg.generator
        pairs = seeded_subset(read_jsonl(inputs[0]), g.max_train_pairs, cfg.seed)
        log = train_generator(gen, pairs, read_jsonl(inputs[1]), steps=g.steps, batch_size=g.batch_size, lr=g.lr,
                              seed=cfg.seed, eval_every=g.eval_every, bf16=cfg.use_bf16,
                              freeze_embeddings=g.freeze_embeddings, max_dev_pairs=g.max_dev_pairs,
                              plateau=g.plateau, convergence=generator_convergence(cfg))
        return gen.model, gen.tok, log

    return train_once(rd, "train-generator", name, rd.generator_model(name), rd.generator_log(name),
                      training_fingerprint(cfg, name, ["generator"], inputs), train,
                      of_at_most=f"{cfg.generator.max_passes:g} passes" if cfg.generator.converge else cfg.generator.steps)


def generator_convergence(cfg: Profile) -> Convergence | None:
    """The criterion the generator trains until, where ``generator.converge`` asks for one."""
    g = cfg.generator
    return Convergence.of(g) if g.converge else None


def generation_fingerprint(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """What a generated-query file depends on: the generator's weights, the generation and run
    settings, and the corpus and dev pairs (the vocabulary report)."""
    model = rd.require(rd.generator_model(name), "train-generator")
    inputs = [rd.require(rd.corpus, "data"), rd.require(rd.generator_pairs("dev"), "data")]
    settings = {k: v for k, v in cfg.select(["generation", "run"]).items() if k != "generation.seeds"}  # not this file's
    return fingerprint(generator=weights_digest(model), settings=settings, sampler=SAMPLER_VERSION,
                       inputs=file_digests(inputs))


def with_seed(cfg: Profile, seed: int) -> Profile:
    """``cfg`` with another ``run.seed`` (the seed sweep's sampling)."""
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, seed=seed))


def generate_queries(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None = None,
                     seed: int | None = None) -> list[dict[str, Any]]:
    """Generate queries for every corpus passage (released xQG format). A file generated earlier
    by the same generator weights from the same corpus and settings is reused. With ``seed`` (one
    of ``generation.seeds``) they are sampled with that seed into ``generated/<name>.seed-<seed>.jsonl``.

    With ``accelerator`` (``python -m xqglib generate NAME`` under ``torchrun`` / ``accelerate
    launch``) every process generates a contiguous share of the sampling batches into its own
    shard, and the first one merges them (every passage once, in corpus order): the file equals the
    one-process file, since every batch is seeded by its position. Stage 3 then reuses it."""
    g = cfg.generation
    out = name if seed is None else seed_variant(name, seed)
    with stage_timer(rd, "generate", out, accelerator, languages=len(g.languages), n=g.n_per_language) as timing:
        rows = _generate(cfg if seed is None else with_seed(cfg, seed), rd, name, accelerator, timing, out)
        timing.details.update(passages=len(rows), queries=sum(len(q) for r in rows for q in r["generated_queries"].values()))
    return rows


def _generate(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None, timing: Timing,
              out: str) -> list[dict[str, Any]]:
    made_from = generation_fingerprint(cfg, rd, name)
    done = rd.generation_fingerprint(out)
    found = earlier(done, made_from, [rd.generated(out), rd.generation_report(out)])
    if found is not None:
        print(f"reusing {rd.generated(out)}: generated earlier by the same generator from the same corpus and settings")
        timing.did("generation", found["seconds"], reused=True)
        return read_jsonl(rd.generated(out))
    started = time.perf_counter()
    main = accelerator is None or accelerator.is_main_process
    if main:
        done.unlink(missing_ok=True)
    seed_everything(cfg.seed)
    gen = generator_for(cfg, name, str(rd.require(rd.generator_model(name), "train-generator")))
    corpus = read_jsonl(rd.require(rd.corpus, "data"))
    report: dict[str, Any] = {"vocabulary": "full", "vocabulary_size": len(gen.tok)}
    g = cfg.generation
    if g.vocabulary == "data" and gen.kind == "decoder":
        gen.restrict_vocabulary(vocabulary_texts(cfg, corpus))
        if main:
            dev = read_jsonl(rd.require(rd.generator_pairs("dev"), "data"))
            random.Random(cfg.seed).shuffle(dev)
            report = {"vocabulary": "data", "vocabulary_size": len(gen.vocabulary),
                      "full_vocabulary_size": len(gen.tok),
                      "agreement_on_dev_questions": head_agreement(gen, dev[: cfg.generator.max_dev_pairs],
                                                                   gen.vocabulary, g.top_k)}
    settings = dict(n=g.n_per_language, top_k=g.top_k, max_new_tokens=g.max_new_tokens,
                    batch_passages=g.batch_passages, seed=cfg.seed, bf16=cfg.use_bf16)
    if accelerator is None:
        rows = generate_xqg(gen, corpus, g.languages, **settings)
    else:
        from xqglib.core.sharding import merge_rows_shards, rows_shard_path, shard_range, write_rows_shard

        stem = rd.path("generated", "shards", safe_name(out))
        rank, world = accelerator.process_index, accelerator.num_processes
        if not rows_shard_path(stem, rank, world).exists():
            start, stop = shard_range(len(generation_batches(corpus, g.batch_passages)), rank, world)
            write_rows_shard(stem, rank, world, generate_xqg(gen, corpus, g.languages, batches=range(start, stop),
                                                             **settings))
        accelerator.wait_for_everyone()
        if not main:
            return []
        rows = merge_rows_shards(stem, world, "docid", [p["docid"] for p in corpus])
    write_json(rd.generation_report(out), report)
    write_jsonl(rd.generated(out), rows)
    seconds = time.perf_counter() - started
    remember(done, made_from, seconds)
    timing.did("generation", seconds)
    return rows


def vocabulary_texts(cfg: Profile, corpus: list[dict[str, str]]) -> list[str]:
    """The texts whose tokens a generator may write: XQuAD paragraphs and questions of the train
    and dev articles in the generation languages, and the corpus (English names and terms).
    Test-article questions are not looked at."""
    b1 = D.build_b1(cfg)
    texts = D.xquad_texts(b1, ("train", "dev"), cfg.generation.languages)
    return texts + [f"{p['title']} {p['text']}" for p in corpus]


def train_dense_retriever(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None = None) -> list[dict[str, float]]:
    """Stage 4: train one retriever row (on the processes of ``accelerator`` where given: see
    :mod:`xqglib.pipeline.distributed`; the first process saves it). A model trained earlier from
    the same inputs is reused, so stage 4 picks up one trained by ``python -m xqglib train-retriever``."""
    spec = cfg.retriever_spec(name)
    inputs = [rd.require(rd.retriever_rows(spec.training), "data")]
    r = cfg.retriever

    def train() -> tuple[Any, Any, list[dict[str, Any]]]:
        seed_everything(cfg.seed)
        encoder = encoder_for(cfg, r.encoder)
        log = train_retriever(encoder, seeded_subset(read_jsonl(inputs[0]), r.max_train_rows, cfg.seed),
                              epochs=r.epochs, max_steps=r.max_steps, batch_size=r.batch_size, n_negatives=r.negatives,
                              lr=r.lr, warmup_ratio=r.warmup_ratio, seed=cfg.seed, freeze_embeddings=r.freeze_embeddings,
                              max_grad_norm=r.max_grad_norm, accelerator=accelerator,
                              **retriever_convergence(cfg, spec.training))
        return encoder.model, encoder.tok, log

    return train_once(rd, "train-retriever", name, rd.retriever_model(name), rd.retriever_log(name),
                      training_fingerprint(cfg, r.encoder, ["retriever"], inputs), train, accelerator,
                      training=spec.training)


def retriever_criterion(cfg: Profile) -> Convergence | None:
    """The criterion the retrievers train until, where ``retriever.converge`` asks for one."""
    return Convergence.of(cfg.retriever) if cfg.retriever.converge else None


def reader_criterion(cfg: Profile) -> Convergence | None:
    """The retrievers' criterion on the reader's dev loss (the only measure it has)."""
    criterion = retriever_criterion(cfg)
    return None if criterion is None else dataclasses.replace(criterion, measure="dev_loss")


def retriever_convergence(cfg: Profile, training: str) -> dict[str, Any]:
    """Where ``retriever.converge`` asks for it, what training to convergence needs: the criterion
    and the dev batches (at most ``max_dev_rows`` dev-article rows of this kind of training, a
    seeded sample, as fixed batches); otherwise nothing."""
    r = cfg.retriever
    if not r.converge:
        return {}
    rows = D.retriever_training_rows(D.build_b1(cfg), training, cfg.data.query_languages, r.negatives, cfg.seed,
                                     r.negative_pool, split="dev")
    return {"dev": dev_batches(seeded_subset(rows, r.max_dev_rows, cfg.seed), r.batch_size, r.negatives, cfg.seed),
            "convergence": retriever_criterion(cfg)}


#: What stage 5 encodes per retriever, in order.
ENCODED = ("passages", "queries", "generated")


def encoding_fingerprint(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """What a retriever's encodings depend on: the model's weights, the retriever and run settings,
    and the corpus, test queries and generated queries."""
    folder = Path(resolve(retriever_source(cfg, rd, name)))
    inputs = [rd.require(rd.corpus, "data"), rd.require(rd.test_queries, "data"),
              rd.require(rd.generated(cfg.primary_generator), "generate")]
    return fingerprint(model=weights_digest(folder) if folder.is_dir() else str(folder),
                       settings=cfg.select(["retriever", "run"]), inputs=file_digests(inputs))


def encode_retriever(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None = None,
                     stage: str = "encode-search") -> dict[str, Any]:
    """Encode corpus, test queries and the primary generator's queries with one retriever.

    With ``accelerator`` (``python -m xqglib encode NAME`` under ``torchrun`` / ``accelerate
    launch``, see :mod:`xqglib.pipeline.distributed`) every process encodes its slice of each into its own
    shard, the first one merges them and records what they were encoded from; stage 5 then reuses
    them. Without, ``stage`` (5, or 8 for the contrastive arms) encodes here, reusing a sharded
    encoding of the very same inputs."""
    with stage_timer(rd, stage, f"encode {name}", accelerator) as timing:
        return _encode(cfg, rd, name, accelerator, timing)


def _encode(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None, timing: Timing) -> dict[str, Any]:
    seed_everything(cfg.seed)
    record = encoding_record(rd, name)
    made_from = encoding_fingerprint(cfg, rd, name)
    found = earlier(record, made_from, [rd.embeddings(name, k) for k in ENCODED]) if accelerator is None else None
    if found is not None:
        print(f"reusing the encodings of {name}: encoded earlier on {found['processes']} process(es) "
              f"in {found['seconds']:.1f} s from the same model and inputs")
        timing.did("encoding", found["seconds"], reused=True)
        return {**found["counts"], "processes": found["processes"]}
    record.unlink(missing_ok=True)
    encoder = encoder_for(cfg, retriever_source(cfg, rd, name))
    corpus = read_jsonl(rd.corpus)
    queries = read_jsonl(rd.test_queries)
    generated = generated_query_table(read_jsonl(rd.generated(cfg.primary_generator)))
    # generated queries are encoded with the query encoder (the official encode.py does the same)
    work = {"passages": ([passage_text(p["title"], p["text"]) for p in corpus], False, [p["docid"] for p in corpus]),
            "queries": ([q["query"] for q in queries], True, [q["query_id"] for q in queries]),
            "generated": ([g["query"] for g in generated], True,
                          [{k: g[k] for k in ("docid", "lang", "slot")} for g in generated])}
    labels = {"passages": "passages", "queries": "test queries", "generated": "generated queries"}
    bs = cfg.retriever.encode_batch_size
    started = time.perf_counter()
    bounds: dict[str, list[tuple[int, int]] | None] = {kind: None for kind in ENCODED}
    if accelerator is not None:  # each process the passages of its slice and their generated queries
        from xqglib.core.sharding import shard_range

        bounds["passages"] = [shard_range(len(corpus), r, accelerator.num_processes)
                              for r in range(accelerator.num_processes)]
        bounds["generated"] = aligned_bounds([g["docid"] for g in generated], [p["docid"] for p in corpus],
                                             bounds["passages"])
    for kind in ENCODED:
        texts, is_query, ids = work[kind]
        if accelerator is None:
            rd.save_embeddings(name, kind, encoder.encode(texts, is_query, bs, f"{name}: {labels[kind]}"), ids)
            continue
        from xqglib.pipeline.distributed import encode_sharded

        # merged on disk shard by shard (never the whole matrix in memory), then its ids beside it
        merged = encode_sharded(encoder, texts, [str(i) for i in range(len(ids))],
                                rd.path("embeddings", name, "shards", kind), is_query, bs, accelerator,
                                bounds[kind], dest=rd.embeddings(name, kind))
        if merged is not None:
            write_json(rd.embeddings_meta(name, kind), ids)
    counts = {"passages": len(corpus), "test queries": len(queries), "generated queries": len(generated)}
    if accelerator is not None and accelerator.is_main_process:
        remember(record, made_from, time.perf_counter() - started, processes=accelerator.num_processes,
                 counts=counts, bounds={k: v for k, v in bounds.items() if v is not None})
    return counts


def aligned_bounds(owners: list[str], docids: list[str], passage_bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The [start, stop) of the rows (generated queries, in corpus order, ``owners`` their
    passages) that belong to each slice of passages."""
    position = {d: i for i, d in enumerate(docids)}
    order = [position[o] for o in owners]
    if order != sorted(order):
        raise ValueError("generated queries are not in corpus order")
    return [(bisect.bisect_left(order, start), bisect.bisect_left(order, stop)) for start, stop in passage_bounds]


def encode_seed_queries(cfg: Profile, rd: RunDir, name: str, stage: str = "encode-search") -> dict[int, int]:
    """The seed sweep's encodings: the queries of every further sampling seed (``generation.seeds``)
    encoded by one retriever (``embeddings/<retriever>/generated.seed-<s>.npy``, reused where encoded
    earlier by the same weights from the same file), timed under ``stage`` (5, or 8 for the RQ2
    arms). Returns the queries encoded per seed."""
    if not cfg.generation.seeds:
        return {}
    if sharded_encoding(rd, name) is not None:
        raise UserError(f"the seed sweep needs {name}'s encodings in one piece, not sharded; "
                        f"run it without generation.seeds or encode on one process")
    folder = Path(resolve(retriever_source(cfg, rd, name)))
    model = weights_digest(folder) if folder.is_dir() else str(folder)
    encoder = None
    counts = {}
    for seed in cfg.generation.seeds:
        source = rd.require(rd.generated(seed_variant(cfg.primary_generator, seed)), "generate")
        what = f"generated.seed-{seed}"
        table = generated_query_table(read_jsonl(source))

        def encode() -> None:
            nonlocal encoder
            encoder = encoder or encoder_for(cfg, retriever_source(cfg, rd, name))
            vectors = encoder.encode([g["query"] for g in table], True, cfg.retriever.encode_batch_size,
                                     f"{name}: generated queries, seed {seed}")
            rd.save_embeddings(name, what, vectors, [{k: g[k] for k in ("docid", "lang", "slot")} for g in table])

        made_from = fingerprint(model=model, settings=cfg.select(["retriever"]), inputs=file_digests([source]))
        with S.timed(rd, stage, f"seed {seed}: encode {name}", queries=len(table)) as timing:
            make_once(rd.path("embeddings", name, f"{what}.fingerprint.json"), made_from,
                      [rd.embeddings(name, what), rd.embeddings_meta(name, what)], encode, timing, "encoding")
        counts[seed] = len(table)
    return counts


def encode_search_seeds(cfg: Profile, rd: RunDir, name: str) -> dict[int, int]:
    """Stage 5, the seed sweep: the retriever's Table 1 xQG system again with the queries of every
    further sampling seed (:func:`encode_seed_queries`), the fused passages searched
    (``trec/<system>.seed-<s>.trec``). Returns the queries encoded per seed."""
    counts = encode_seed_queries(cfg, rd, name)
    if not counts:
        return counts
    system = xqg(cfg, name, cfg.augmentation.alpha)
    corpus_ids = [p["docid"] for p in read_jsonl(rd.corpus)]
    query_ids = [q["query_id"] for q in read_jsonl(rd.test_queries)]
    emb = rd.load_embeddings(name, corpus_ids, query_ids)
    for seed in counts:
        with S.timed(rd, "encode-search", f"seed {seed}: search {name}"):
            fused = with_seed_queries(rd, name, emb, seed)
            run = search(passage_vectors(fused, corpus_ids, system.alpha, n=system.n), corpus_ids, emb["queries"],
                         query_ids, cfg.evaluation.search_depth)
            write_trec_run(rd.trec_run(seed_system(system.name, seed)), run, system.name)
    return counts


def search_retriever(cfg: Profile, rd: RunDir, name: str) -> dict[str, str]:
    """Write the TREC runs of the retriever's Table 1 systems (without and with xQG)."""
    corpus_ids = [p["docid"] for p in read_jsonl(rd.corpus)]
    query_ids = [q["query_id"] for q in read_jsonl(rd.test_queries)]
    searcher = RetrieverSearch(cfg, rd, name, corpus_ids, query_ids)
    systems = [c for c in main_conditions(cfg) if c.retriever == name]
    for c in systems:
        write_trec_run(rd.trec_run(c.name), searcher.run(c), c.name)
    return {c.name: str(rd.trec_run(c.name)) for c in systems}
