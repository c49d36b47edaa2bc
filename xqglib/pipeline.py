"""The pipeline's stage functions, wiring the pure modules to the run directory.

Each notebook opens its stage (:func:`open_run`: settings checked, earlier stages' outputs
checked against the current settings), calls these functions, and closes it
(:func:`finish_stage`). Each reads only what earlier stages wrote into the run directory, so a
stage can be rerun on its own. What the stages are, and what each reads and writes, is declared
once in :mod:`xqglib.stages`; evaluation and analysis live in :mod:`xqglib.evaluation` and
:mod:`xqglib.analysis`.
"""

from __future__ import annotations

import bisect
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import data as D
from . import lareqa
from . import stages as S
from .artifacts import RunDir, safe_name
from .encoding import DenseEncoder, passage_text
from .experiments import main_conditions
from .errors import UserError
from .formats import (read_json, read_jsonl, save_npy, sha256_file, sha256_text, write_json, write_jsonl,
                      write_qrels, write_trec_run)
from .generation import (SAMPLER_VERSION, QueryGenerator, data_vocabulary, generate_xqg, generation_batches,
                         head_agreement, train_generator)
from .model_builds import BUILDERS, build_stamp
from .models import encoder_spec, generator_kind, load_encoder, load_generator, load_tokenizer, resolve
from .profiles import load_profile
from .retrieval_training import train_retriever
from .search import RetrieverSearch
from .sharding import encoding_record
from .settings import CONTRASTIVE_TRAININGS, Profile


def open_run(profile: str, run_dir: str | None, overrides: str | dict[str, Any] | None,
             stage: str | None = None) -> tuple[Profile, RunDir]:
    """What every notebook does first: the profile (with overrides, checked) and its run
    directory; with ``stage``, also check that every earlier stage finished under these settings
    (:func:`xqglib.stages.begin`)."""
    cfg = load_profile(profile, overrides)
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(cfg)
    if stage is not None:
        S.begin(cfg, rd, S.stage(stage))
    seed_everything(cfg.seed)
    return cfg, rd


def finish_stage(cfg: Profile, rd: RunDir, stage: str) -> None:
    """What every notebook does last: record that its stage finished under these settings."""
    S.finish(cfg, rd, S.stage(stage))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# 1. data
# --------------------------------------------------------------------------------------------

def prepare_data(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Build the benchmark (B1; B3 in :mod:`xqglib.b3`) and write the corpus, test queries, qrels,
    answers and all training data."""
    if cfg.data.benchmark != "b1":
        from .b3 import prepare_b3

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


# --------------------------------------------------------------------------------------------
# 2. generator training, 3. generation
# --------------------------------------------------------------------------------------------

def _save_trained(model: Any, tokenizer: Any, folder: Path, log_path: Path, log: list[dict[str, float]],
                  fingerprint: dict[str, Any]) -> None:
    """A trained model as a Hugging Face folder (written beside it, then renamed into place),
    its training log, and the fingerprint of what it was trained from (written last)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _fingerprint_path(folder).unlink(missing_ok=True)
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    except BaseException as exc:  # a full disk, Ctrl-C: leave no half-written folder behind
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UserError(f"could not save the trained model to {folder} ({exc.strerror or exc}); "
                            "free some disk space and rerun this stage") from None
        raise
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    write_json(log_path, log)
    write_json(_fingerprint_path(folder), {**fingerprint, "weights": weights_digest(folder)})


def training_fingerprint(cfg: Profile, model: str, section: str, inputs: list[Path],
                         extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a trained model depends on: the base model (with its builder's version where it is
    built locally), its settings section ("generator" or "retriever", and any ``extra`` settings)
    and the run settings (seed, bf16), and the SHA-256 of its training data files."""
    base = build_stamp(Path(resolve(model))) if model in BUILDERS else None
    return json.loads(json.dumps({"model": model, **({"build": base} if base else {}),
                                  "settings": cfg.select([section, *extra, "run"]),
                                  "inputs": {p.name: sha256_file(p) for p in inputs}}))


def _fingerprint_path(folder: Path) -> Path:
    return folder.with_name("fingerprint.json")


def weights_digest(folder: Path) -> str:
    """SHA-256 over a model folder's weight files (what a reuse must find unchanged)."""
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    if not files:
        return "no weights"
    return sha256_text(" ".join(f"{f.name}:{sha256_file(f)}" for f in files))


def _earlier_training(folder: Path, log_path: Path,
                      fingerprint: dict[str, Any]) -> list[dict[str, float]] | None:
    """The log of a model trained earlier from exactly the same inputs, if there is one: a rerun
    (say after a later stage failed) reuses it instead of spending the training time again. A
    folder whose weights no longer match what was saved (corrupt, changed) is trained again."""
    path = _fingerprint_path(folder)
    if not (folder.is_dir() and log_path.exists() and path.exists()):
        return None
    recorded = read_json(path)
    if {k: v for k, v in recorded.items() if k != "weights"} != fingerprint:
        return None
    digest = weights_digest(folder)
    if "weights" not in recorded:  # recorded by a version that kept no digest: keep this one from now on
        write_json(path, {**recorded, "weights": digest})
    elif recorded["weights"] != digest:
        print(f"not reusing {folder}: its weights differ from the ones saved (corrupt or changed); training again")
        return None
    print(f"reusing {folder}: trained earlier from the same data and settings")
    return read_json(log_path)


def _generator(cfg: Profile, name: str, source: str) -> QueryGenerator:
    kind = generator_kind(name)
    return QueryGenerator(load_generator(source, kind), load_tokenizer(source), kind,
                          cfg.generator.max_input_len, cfg.generator.max_target_len)


def train_query_generator(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    inputs = [rd.require(rd.generator_pairs("train"), "data"), rd.generator_pairs("dev")]
    fingerprint = training_fingerprint(cfg, name, "generator", inputs)
    earlier = _earlier_training(rd.generator_model(name), rd.generator_log(name), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    gen = _generator(cfg, name, name)
    train = read_jsonl(inputs[0])
    g = cfg.generator
    if g.max_train_pairs is not None:
        random.Random(cfg.seed).shuffle(train)
        train = train[: g.max_train_pairs]
    dev = read_jsonl(inputs[1])
    log = train_generator(gen, train, dev, steps=g.steps, batch_size=g.batch_size, lr=g.lr, seed=cfg.seed,
                          eval_every=g.eval_every, bf16=cfg.use_bf16, freeze_embeddings=g.freeze_embeddings,
                          max_dev_pairs=g.max_dev_pairs, plateau=g.plateau)
    _save_trained(gen.model, gen.tok, rd.generator_model(name), rd.generator_log(name), log, fingerprint)
    return log


def generation_fingerprint(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """What a generated-query file depends on: the generator's weights, the generation and run
    settings, and the corpus and dev pairs (the vocabulary report)."""
    model = rd.require(rd.generator_model(name), "train-generator")
    inputs = [rd.require(rd.corpus, "data"), rd.require(rd.generator_pairs("dev"), "data")]
    return json.loads(json.dumps({"generator": weights_digest(model), "settings": cfg.select(["generation", "run"]),
                                  "sampler": SAMPLER_VERSION, "inputs": {p.name: sha256_file(p) for p in inputs}}))


def generate_queries(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None = None) -> list[dict[str, Any]]:
    """Generate queries for every corpus passage (released xQG format). A file generated earlier
    by the same generator weights from the same corpus and settings is reused.

    With ``accelerator`` (``python -m xqglib generate NAME`` under ``torchrun`` / ``accelerate
    launch``) every process generates a contiguous share of the sampling batches into its own
    shard, and the first one merges them (every passage once, in corpus order): the file equals the
    one-process file, since every batch is seeded by its position. Stage 3 then reuses it."""
    fingerprint = generation_fingerprint(cfg, rd, name)
    done = rd.generation_fingerprint(name)
    if rd.generated(name).exists() and rd.generation_report(name).exists() and same_generation(done, fingerprint):
        print(f"reusing {rd.generated(name)}: generated earlier by the same generator from the same corpus and settings")
        return read_jsonl(rd.generated(name))
    started = time.perf_counter()
    main = accelerator is None or accelerator.is_main_process
    if main:
        done.unlink(missing_ok=True)
    seed_everything(cfg.seed)
    gen = _generator(cfg, name, str(rd.require(rd.generator_model(name), "train-generator")))
    corpus = read_jsonl(rd.require(rd.corpus, "data"))
    report: dict[str, Any] = {"vocabulary": "full", "vocabulary_size": len(gen.tok)}
    g = cfg.generation
    if g.vocabulary == "data" and gen.kind == "decoder":
        gen.vocabulary = sampling_vocabulary(cfg, gen, corpus)
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
        from .sharding import merge_rows_shards, rows_shard_path, shard_range, write_rows_shard

        stem = rd.path("generated", "shards", safe_name(name))
        rank, world = accelerator.process_index, accelerator.num_processes
        if not rows_shard_path(stem, rank, world).exists():
            start, stop = shard_range(len(generation_batches(corpus, g.batch_passages)), rank, world)
            write_rows_shard(stem, rank, world, generate_xqg(gen, corpus, g.languages, batches=range(start, stop),
                                                             **settings))
        accelerator.wait_for_everyone()
        if not main:
            return []
        rows = merge_rows_shards(stem, world, "docid", [p["docid"] for p in corpus])
    write_json(rd.generation_report(name), report)
    write_jsonl(rd.generated(name), rows)
    write_json(done, {**fingerprint, "seconds": round(time.perf_counter() - started, 2)})
    return rows


def same_generation(done: Path, fingerprint: dict[str, Any]) -> bool:
    """Whether the generated file whose fingerprint record is ``done`` was generated from what
    ``fingerprint`` names. The record also keeps the seconds that generation took: a reuse notes
    them (:func:`xqglib.stages.note_reused`), so the run's time counts the work the file stands for."""
    record = read_json(done) if done.exists() else None
    if record is None or {k: v for k, v in record.items() if k != "seconds"} != fingerprint:
        return False
    S.note_reused("generation", record.get("seconds"))
    return True


def sampling_vocabulary(cfg: Profile, gen: QueryGenerator, corpus: list[dict[str, str]]) -> torch.Tensor:
    """The tokens of the data a generator may write: XQuAD paragraphs and questions of the train
    and dev articles in the generation languages, and the corpus (English names and terms), plus
    the stop tokens. Test-article questions are not looked at."""
    b1 = D.build_b1(cfg)
    texts = D.xquad_texts(b1, ("train", "dev"), cfg.generation.languages)
    texts += [f"{p['title']} {p['text']}" for p in corpus]
    return data_vocabulary(gen.tok, texts, gen.stop_ids)


# --------------------------------------------------------------------------------------------
# 4. retriever training
# --------------------------------------------------------------------------------------------

def _encoder(cfg: Profile, source: str, passage_max_len: int | None = None) -> DenseEncoder:
    r = cfg.retriever
    return DenseEncoder(load_encoder(source), load_tokenizer(source), encoder_spec(r.encoder),
                        r.query_max_len, passage_max_len or r.passage_max_len, cfg.use_bf16)


def retriever_source(cfg: Profile, rd: RunDir, name: str) -> str:
    """The model a retriever row uses: the encoder itself, or the folder training wrote."""
    training = cfg.retriever_spec(name).training
    if training == "none":
        return cfg.retriever.encoder
    stage = "train-contrastive" if training in CONTRASTIVE_TRAININGS else "train-retriever"
    return str(rd.require(rd.retriever_model(name), stage))


def train_dense_retriever(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None = None) -> list[dict[str, float]]:
    """Train one retriever row (on the processes of ``accelerator`` where given: see
    :mod:`xqglib.distributed`; the first process saves it). A model trained earlier from the same
    inputs is reused, so stage 4 picks up a model trained by ``python -m xqglib train-retriever``."""
    spec = cfg.retriever_spec(name)
    inputs = [rd.require(rd.retriever_rows(spec.training), "data")]
    fingerprint = training_fingerprint(cfg, cfg.retriever.encoder, "retriever", inputs)
    earlier = _earlier_training(rd.retriever_model(name), rd.retriever_log(name), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    r = cfg.retriever
    encoder = _encoder(cfg, r.encoder)
    log = train_retriever(encoder, read_jsonl(inputs[0]), epochs=r.epochs, max_steps=r.max_steps,
                          batch_size=r.batch_size, n_negatives=r.negatives, lr=r.lr,
                          warmup_ratio=r.warmup_ratio, seed=cfg.seed, freeze_embeddings=r.freeze_embeddings,
                          max_grad_norm=r.max_grad_norm, accelerator=accelerator)
    if accelerator is None or accelerator.is_main_process:
        _save_trained(encoder.model, encoder.tok, rd.retriever_model(name), rd.retriever_log(name), log, fingerprint)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return log


# --------------------------------------------------------------------------------------------
# 5. encoding, augmentation, search
# --------------------------------------------------------------------------------------------

def generated_query_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten xQG rows into one record per generated query: docid, lang, slot (0..n-1), text."""
    return [{"docid": r["docid"], "lang": lang, "slot": slot, "query": q}
            for r in rows for lang, qs in r["generated_queries"].items() for slot, q in enumerate(qs)]


#: What stage 5 encodes per retriever, in order.
ENCODED = ("passages", "queries", "generated")


def encoding_fingerprint(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """What a retriever's encodings depend on: the model's weights, the retriever and run settings,
    and the corpus, test queries and generated queries."""
    folder = Path(resolve(retriever_source(cfg, rd, name)))
    inputs = [rd.require(rd.corpus, "data"), rd.require(rd.test_queries, "data"),
              rd.require(rd.generated(cfg.primary_generator), "generate")]
    return json.loads(json.dumps({"model": weights_digest(folder) if folder.is_dir() else str(folder),
                                  "settings": cfg.select(["retriever", "run"]),
                                  "inputs": {p.name: sha256_file(p) for p in inputs}}))


def encode_retriever(cfg: Profile, rd: RunDir, name: str, accelerator: Any | None = None) -> dict[str, Any]:
    """Encode corpus, test queries and the primary generator's queries with one retriever.

    With ``accelerator`` (``python -m xqglib encode NAME`` under ``torchrun`` / ``accelerate
    launch``, see :mod:`xqglib.distributed`) every process encodes its slice of each into its own
    shard, the first one merges them and records what they were encoded from; stage 5 then reuses
    them. Without, stage 5 encodes here (reusing a sharded encoding of the very same inputs)."""
    seed_everything(cfg.seed)
    record = encoding_record(rd, name)
    fingerprint = encoding_fingerprint(cfg, rd, name)
    if accelerator is None and record.exists():
        earlier = read_json(record)
        if earlier.get("fingerprint") == fingerprint and all(rd.embeddings(name, k).exists() for k in ENCODED):
            print(f"reusing the encodings of {name}: encoded earlier on {earlier['processes']} process(es) "
                  f"in {earlier['seconds']:.1f} s from the same model and inputs")
            return {**earlier["counts"], "processes": earlier["processes"]}
    record.unlink(missing_ok=True)
    encoder = _encoder(cfg, retriever_source(cfg, rd, name))
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
        from .sharding import shard_range

        bounds["passages"] = [shard_range(len(corpus), r, accelerator.num_processes)
                              for r in range(accelerator.num_processes)]
        bounds["generated"] = aligned_bounds([g["docid"] for g in generated], [p["docid"] for p in corpus],
                                             bounds["passages"])
    for kind in ENCODED:
        texts, is_query, ids = work[kind]
        if accelerator is None:
            rd.save_embeddings(name, kind, encoder.encode(texts, is_query, bs, f"{name}: {labels[kind]}"), ids)
            continue
        from .distributed import encode_sharded

        # merged on disk shard by shard (never the whole matrix in memory), then its ids beside it
        merged = encode_sharded(encoder, texts, [str(i) for i in range(len(ids))],
                                rd.path("embeddings", name, "shards", kind), is_query, bs, accelerator,
                                bounds[kind], dest=rd.embeddings(name, kind))
        if merged is not None:
            write_json(rd.embeddings_meta(name, kind), ids)
    counts = {"passages": len(corpus), "test queries": len(queries), "generated queries": len(generated)}
    if accelerator is not None and accelerator.is_main_process:
        write_json(record, {"fingerprint": fingerprint, "processes": accelerator.num_processes,
                            "seconds": round(time.perf_counter() - started, 2), "counts": counts,
                            "bounds": {k: v for k, v in bounds.items() if v is not None}})
    return counts


def aligned_bounds(owners: list[str], docids: list[str], passage_bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The [start, stop) of the rows (generated queries, in corpus order, ``owners`` their
    passages) that belong to each slice of passages."""
    position = {d: i for i, d in enumerate(docids)}
    order = [position[o] for o in owners]
    if order != sorted(order):
        raise ValueError("generated queries are not in corpus order")
    return [(bisect.bisect_left(order, start), bisect.bisect_left(order, stop)) for start, stop in passage_bounds]


def search_retriever(cfg: Profile, rd: RunDir, name: str) -> dict[str, str]:
    """Write the TREC runs of the retriever's Table 1 systems (without and with xQG)."""
    corpus_ids = [p["docid"] for p in read_jsonl(rd.corpus)]
    query_ids = [q["query_id"] for q in read_jsonl(rd.test_queries)]
    searcher = RetrieverSearch(cfg, rd, name, corpus_ids, query_ids)
    systems = [c for c in main_conditions(cfg) if c.retriever == name]
    for c in systems:
        write_trec_run(rd.trec_run(c.name), searcher.run(c), c.name)
    return {c.name: str(rd.trec_run(c.name)) for c in systems}


# --------------------------------------------------------------------------------------------
# 7. the second research question's contrastive arms
# --------------------------------------------------------------------------------------------

def contrastive_languages(cfg: Profile) -> list[str]:
    """Languages of the arms' training data: B1's query languages and English."""
    return list(dict.fromkeys([*cfg.data.query_languages, "en"]))


def prepare_contrastive_data(cfg: Profile, rd: RunDir) -> dict[str, int]:
    """Write each arm kind's training data (train articles only): the xDR's rows with parallel
    translations (``align``), XQuAD's parallel questions and paragraphs (``hybrid``)."""
    b1 = D.build_b1(cfg)
    sizes = {}
    for training in sorted({arm.training for arm in cfg.contrastive.arms}):
        if training == "align":
            rows = D.alignment_rows(b1, cfg.data.query_languages, cfg.retriever.negatives, cfg.seed,
                                    cfg.retriever.negative_pool)
        else:
            rows = D.parallel_items(b1, "train", contrastive_languages(cfg))
        write_jsonl(rd.contrastive_rows(training), rows)
        sizes[f"{training} training rows"] = len(rows)
    return sizes


def xdr_steps(cfg: Profile) -> int:
    """The optimizer steps of the cross-lingual xDR: one row per train-article question and query
    language, ``retriever.epochs`` passes of ``batch_size``, at most ``max_steps``."""
    b1 = D.build_b1(cfg)
    rows = sum(len(b1.qids_of("train", b1.xquad_questions[lang])) for lang in cfg.data.query_languages)
    r = cfg.retriever
    steps = r.epochs * -(-rows // r.batch_size)
    return steps if r.max_steps is None else min(r.max_steps, steps)


#: The contrastive settings each kind of arm is trained with (its reuse fingerprint holds these).
ARM_SETTINGS = {"align": ("contrastive.align_weight", "contrastive.temperature"),
                "hybrid": ("contrastive.hybrid_alpha",)}


def train_contrastive_arm(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    """Train one arm from the encoder, with the retriever section's optimiser settings."""
    from .retrieval_training import hybrid_training_batches, train_on_batches

    spec = cfg.retriever_spec(name)
    inputs = [rd.require(rd.contrastive_rows(spec.training), "train-contrastive")]
    own = ARM_SETTINGS[spec.training]  # the settings this kind of arm is trained with, and no others
    r, c = cfg.retriever, cfg.contrastive
    rows = read_jsonl(inputs[0])
    # every arm takes as many optimizer steps as the xDR (whose rows the align arm shares): the
    # hybrid arm's smaller data set is passed over as many times as that needs
    steps = xdr_steps(cfg)
    fingerprint = {**training_fingerprint(cfg, cfg.retriever.encoder, "retriever", inputs, own),
                   "training": spec.training, **({"steps": steps} if spec.training == "hybrid" else {})}
    earlier = _earlier_training(rd.retriever_model(name), rd.retriever_log(name), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    encoder = _encoder(cfg, r.encoder)
    common = dict(lr=r.lr, warmup_ratio=r.warmup_ratio, seed=cfg.seed, freeze_embeddings=r.freeze_embeddings,
                  max_grad_norm=r.max_grad_norm)
    if spec.training == "align":
        log = train_retriever(encoder, rows, epochs=r.epochs, max_steps=r.max_steps, batch_size=r.batch_size,
                              n_negatives=r.negatives, align_weight=c.align_weight, temperature=c.temperature,
                              **common)
    else:
        batches = hybrid_training_batches(rows, contrastive_languages(cfg), r.batch_size, c.hybrid_alpha,
                                          r.negatives, cfg.seed)
        per_epoch = -(-len(rows) // r.batch_size)
        log = train_on_batches(encoder, batches, per_epoch, epochs=-(-steps // per_epoch), max_steps=steps, **common)
    _save_trained(encoder.model, encoder.tok, rd.retriever_model(name), rd.retriever_log(name), log, fingerprint)
    return log


# --------------------------------------------------------------------------------------------
# 8. the second research question's encodings: B1 for the arms, XQuAD-R for every retriever
# --------------------------------------------------------------------------------------------

def xquadr_pool(cfg: Profile, rd: RunDir, name: str, full: lareqa.XQuADR | None = None) -> lareqa.XQuADR:
    """The XQuAD-R pool a retriever is scored on: the full pool (all articles; ``full``, where it
    is loaded already) for the untrained encoder where ``xquadr.full_pool`` says so, else the test
    articles only (no trained retriever has seen a question of them; :func:`xqglib.lareqa.test_pool`)."""
    bench = full if full is not None else lareqa.load(cfg.xquadr.languages)
    if cfg.retriever_spec(name).training == "none" and cfg.xquadr.full_pool:
        return bench
    return lareqa.test_pool(bench, read_json(rd.require(rd.split, "data")), read_jsonl(rd.require(rd.corpus, "data")))


def encode_xquadr(cfg: Profile, rd: RunDir, name: str) -> dict[str, int]:
    """Encode XQuAD-R's questions (query side) and candidates (passage side: sentence, then
    paragraph, ``xquadr.candidate_max_len`` tokens) with one retriever. A bidirectional encoder
    sees the whole input, so the sentences of one paragraph cannot share one pass."""
    seed_everything(cfg.seed)
    bench = xquadr_pool(cfg, rd, name)
    encoder = _encoder(cfg, retriever_source(cfg, rd, name), cfg.xquadr.candidate_max_len)
    bs = cfg.retriever.encode_batch_size
    for what, texts, ids, is_query in (
            ("questions", [q["question"] for q in bench.questions], [q["uid"] for q in bench.questions], True),
            ("candidates", bench.candidate_texts(), [c["uid"] for c in bench.candidates], False)):
        vectors = encoder.encode(texts, is_query, bs, f"{name}: XQuAD-R {what}")
        save_npy(rd.xquadr(name, what), vectors)
        write_json(rd.xquadr_meta(name, what), ids)
    return {"questions": len(bench.questions), "candidates": len(bench.candidates),
            "articles": len({c["title"] for c in bench.candidates})}
