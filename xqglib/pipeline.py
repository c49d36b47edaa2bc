"""The pipeline's stages, one function each, wiring the pure modules to the run directory.

Each notebook calls one of these (and shows what it returned); each reads only what earlier stages
wrote into the run directory, so a stage can be rerun on its own.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import data as D
from .artifacts import RunDir, safe_name
from .augmentation import fuse
from .config import Profile, load_profile
from .encoding import DenseEncoder, passage_text
from .formats import (ranked_docids, read_json, read_jsonl, read_qrels, read_trec_run, save_npy,
                      sha256_file, write_json, write_jsonl, write_qrels, write_trec_run)
from .generation import QueryGenerator, data_vocabulary, generate_xqg, head_agreement, train_generator
from .metrics import (Tokenizer, XorOutcome, exact_tokenizer_available, fallback_word_tokenize,
                      standard_measures, xor_recall_at_kt, xor_word_tokenize)
from .models import encoder_spec, generator_kind, load_encoder, load_generator, load_tokenizer
from .retrieval_training import train_retriever
from .search import search
from .statistics import compare_by_language


def open_run(profile: str, run_dir: str | None, overrides: str | dict[str, Any] | None) -> tuple[Profile, RunDir]:
    """What every notebook does first: the profile (with overrides) and its run directory."""
    cfg = load_profile(profile, overrides)
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(cfg)
    seed_everything(cfg.seed)
    return cfg, rd


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# 1. data
# --------------------------------------------------------------------------------------------

def prepare_data(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Build B1 and write the corpus, test queries, qrels, answers and all training data."""
    b1 = D.build_b1(cfg)
    queries = D.test_queries(b1, cfg.query_languages)
    write_jsonl(rd.corpus, (p.as_tevatron() for p in b1.corpus))
    write_jsonl(rd.test_queries, queries)
    write_qrels(rd.qrels, D.qrels_for(b1, queries))
    write_json(rd.answers, {q["query_id"]: b1.answers[q["qid"]] for q in queries})
    write_json(rd.split, b1.split)
    sizes: dict[str, Any] = {"articles": {s: len(b1.articles(s)) for s in ("train", "dev", "test")},
                             "corpus passages": len(b1.corpus), "test questions": len(b1.test_qids),
                             "test queries": len(queries)}
    for split in ("train", "dev"):
        pairs = D.generator_pairs(b1, split, cfg.gen_languages)
        write_jsonl(rd.generator_pairs(split), pairs)
        sizes[f"generator {split} pairs"] = len(pairs)
    for training in sorted({r.training for r in cfg.retrievers} - {"none"}):
        rows = D.retriever_training_rows(b1, training, cfg.query_languages, cfg.ret_negatives, cfg.seed)
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
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    write_json(log_path, log)
    write_json(_fingerprint_path(folder), fingerprint)


def training_fingerprint(cfg: Profile, model: str, prefix: str, inputs: list[Path]) -> dict[str, Any]:
    """What a trained model depends on: the base model, the seed, the profile's fields of its
    stage (``prefix``: "gen_" or "ret_") and the SHA-256 of its training data files."""
    fields = {k: v for k, v in cfg.to_dict().items() if k.startswith(prefix) or k in {"seed", "bf16"}}
    return json.loads(json.dumps({"model": model, "fields": fields,
                                  "inputs": {p.name: sha256_file(p) for p in inputs}}))


def _fingerprint_path(folder: Path) -> Path:
    return folder.with_name("fingerprint.json")


def _earlier_training(folder: Path, log_path: Path,
                      fingerprint: dict[str, Any]) -> list[dict[str, float]] | None:
    """The log of a model trained earlier from exactly the same inputs, if there is one: a rerun
    (say after a later stage failed) reuses it instead of spending the training time again."""
    path = _fingerprint_path(folder)
    if folder.is_dir() and log_path.exists() and path.exists() and read_json(path) == fingerprint:
        print(f"reusing {folder}: trained earlier from the same data and settings")
        return read_json(log_path)
    return None


def _generator(cfg: Profile, name: str, source: str) -> QueryGenerator:
    kind = generator_kind(name)
    return QueryGenerator(load_generator(source, kind), load_tokenizer(source), kind,
                          cfg.gen_max_input_len, cfg.gen_max_target_len)


def train_query_generator(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    inputs = [rd.require(rd.generator_pairs("train"), "data"), rd.generator_pairs("dev")]
    fingerprint = training_fingerprint(cfg, name, "gen_", inputs)
    earlier = _earlier_training(rd.generator_model(name), rd.generator_log(name), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    gen = _generator(cfg, name, name)
    train = read_jsonl(inputs[0])
    if cfg.gen_max_train_pairs is not None:
        random.Random(cfg.seed).shuffle(train)
        train = train[: cfg.gen_max_train_pairs]
    dev = read_jsonl(inputs[1])
    log = train_generator(gen, train, dev, steps=cfg.gen_steps, batch_size=cfg.gen_batch_size,
                          lr=cfg.gen_lr, seed=cfg.seed, eval_every=cfg.gen_eval_every, bf16=cfg.use_bf16,
                          freeze_embeddings=cfg.gen_freeze_embeddings,
                          max_dev_pairs=cfg.gen_max_dev_pairs)
    _save_trained(gen.model, gen.tok, rd.generator_model(name), rd.generator_log(name), log, fingerprint)
    return log


def generate_queries(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, Any]]:
    seed_everything(cfg.seed)
    gen = _generator(cfg, name, str(rd.require(rd.generator_model(name), "train generator")))
    corpus = read_jsonl(rd.require(rd.corpus, "data"))
    report: dict[str, Any] = {"vocabulary": "full", "vocabulary_size": len(gen.tok)}
    if cfg.gen_vocabulary == "data" and gen.kind == "decoder":
        gen.vocabulary = sampling_vocabulary(cfg, gen, corpus)
        dev = read_jsonl(rd.require(rd.generator_pairs("dev"), "data"))
        random.Random(cfg.seed).shuffle(dev)
        report = {"vocabulary": "data", "vocabulary_size": len(gen.vocabulary),
                  "full_vocabulary_size": len(gen.tok),
                  "agreement_on_dev_questions": head_agreement(gen, dev[: cfg.gen_max_dev_pairs],
                                                               gen.vocabulary, cfg.gen_top_k)}
    write_json(rd.generation_report(name), report)
    rows = generate_xqg(gen, corpus, cfg.gen_languages, n=cfg.gen_n_per_language, top_k=cfg.gen_top_k,
                        max_new_tokens=cfg.gen_max_new_tokens, batch_passages=cfg.gen_batch_passages,
                        seed=cfg.seed, bf16=cfg.use_bf16)
    write_jsonl(rd.generated(name), rows)
    return rows


def sampling_vocabulary(cfg: Profile, gen: QueryGenerator, corpus: list[dict[str, str]]) -> torch.Tensor:
    """The tokens of the data a generator may write: XQuAD paragraphs and questions of the train
    and dev articles in the generation languages, and the corpus (English names and terms), plus
    the stop tokens. Test-article questions are not looked at."""
    b1 = D.build_b1(cfg)
    texts = D.xquad_texts(b1, ("train", "dev"), cfg.gen_languages)
    texts += [f"{p['title']} {p['text']}" for p in corpus]
    return data_vocabulary(gen.tok, texts, gen.stop_ids)


# --------------------------------------------------------------------------------------------
# 4. retriever training
# --------------------------------------------------------------------------------------------

def _encoder(cfg: Profile, source: str) -> DenseEncoder:
    return DenseEncoder(load_encoder(source), load_tokenizer(source), encoder_spec(cfg.encoder),
                        cfg.ret_query_max_len, cfg.ret_passage_max_len, cfg.use_bf16)


def retriever_source(cfg: Profile, rd: RunDir, name: str) -> str:
    """The model a retriever row uses: the encoder itself, or the folder training wrote."""
    spec = next(r for r in cfg.retrievers if r.name == name)
    if spec.training == "none":
        return cfg.encoder
    return str(rd.require(rd.retriever_model(name), "train retriever"))


def train_dense_retriever(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    spec = next(r for r in cfg.retrievers if r.name == name)
    inputs = [rd.require(rd.retriever_rows(spec.training), "data")]
    fingerprint = training_fingerprint(cfg, cfg.encoder, "ret_", inputs)
    earlier = _earlier_training(rd.retriever_model(name), rd.retriever_log(name), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    encoder = _encoder(cfg, cfg.encoder)
    log = train_retriever(encoder, read_jsonl(inputs[0]), epochs=cfg.ret_epochs, max_steps=cfg.ret_max_steps,
                          batch_size=cfg.ret_batch_size, n_negatives=cfg.ret_negatives, lr=cfg.ret_lr,
                          warmup_ratio=cfg.ret_warmup_ratio, seed=cfg.seed,
                          freeze_embeddings=cfg.ret_freeze_embeddings)
    _save_trained(encoder.model, encoder.tok, rd.retriever_model(name), rd.retriever_log(name), log, fingerprint)
    return log


# --------------------------------------------------------------------------------------------
# 5. encoding, augmentation, search
# --------------------------------------------------------------------------------------------

def generated_query_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten xQG rows into one record per generated query: docid, lang, slot (0..n-1), text."""
    return [{"docid": r["docid"], "lang": lang, "slot": slot, "query": q}
            for r in rows for lang, qs in r["generated_queries"].items() for slot, q in enumerate(qs)]


def encode_retriever(cfg: Profile, rd: RunDir, name: str) -> dict[str, int]:
    """Encode corpus, test queries and the primary generator's queries with one retriever."""
    seed_everything(cfg.seed)
    encoder = _encoder(cfg, retriever_source(cfg, rd, name))
    corpus = read_jsonl(rd.require(rd.corpus, "data"))
    queries = read_jsonl(rd.test_queries)
    generated = generated_query_table(read_jsonl(rd.require(rd.generated(cfg.primary_generator), "generate")))
    bs = cfg.encode_batch_size
    save_npy(rd.embeddings(name, "passages"),
            encoder.encode([passage_text(p["title"], p["text"]) for p in corpus], False, bs, f"{name}: passages"))
    save_npy(rd.embeddings(name, "queries"),
            encoder.encode([q["query"] for q in queries], True, bs, f"{name}: test queries"))
    # generated queries are encoded with the query encoder (the official encode.py does the same)
    save_npy(rd.embeddings(name, "generated"),
            encoder.encode([g["query"] for g in generated], True, bs, f"{name}: generated queries"))
    write_json(rd.embeddings_meta(name, "generated"), [{k: g[k] for k in ("docid", "lang", "slot")} for g in generated])
    return {"passages": len(corpus), "test queries": len(queries), "generated queries": len(generated)}


def load_embeddings(rd: RunDir, name: str) -> dict[str, Any]:
    return {"passages": np.load(rd.require(rd.embeddings(name, "passages"), "encode")),
            "queries": np.load(rd.embeddings(name, "queries")),
            "generated": np.load(rd.embeddings(name, "generated")),
            "generated_meta": read_json(rd.embeddings_meta(name, "generated"))}


def augmented_passages(emb: dict[str, Any], passage_ids: list[str], alpha: float,
                       languages: set[str] | None = None, n: int | None = None) -> np.ndarray:
    """xQG-augmented passage vectors, optionally from a subset of languages / the first n per language."""
    meta = emb["generated_meta"]
    keep = [i for i, m in enumerate(meta)
            if (languages is None or m["lang"] in languages) and (n is None or m["slot"] < n)]
    return fuse(emb["passages"], passage_ids, emb["generated"][keep],
                [meta[i]["docid"] for i in keep], alpha)


def search_retriever(cfg: Profile, rd: RunDir, name: str) -> dict[str, str]:
    """Write the TREC runs of ``name`` and ``name+xQG`` (alpha from the profile)."""
    corpus_ids = [p["docid"] for p in read_jsonl(rd.corpus)]
    query_ids = [q["query_id"] for q in read_jsonl(rd.test_queries)]
    emb = load_embeddings(rd, name)
    systems = {name: emb["passages"], f"{name}+xQG": augmented_passages(emb, corpus_ids, cfg.alpha)}
    for system, passages in systems.items():
        write_trec_run(rd.trec_run(system), search(passages, corpus_ids, emb["queries"], query_ids,
                                                   cfg.search_depth), system)
    return {s: str(rd.trec_run(s)) for s in systems}


# --------------------------------------------------------------------------------------------
# 6. evaluation
# --------------------------------------------------------------------------------------------

class Evaluator:
    """Scores runs of the test queries: R@2kt / R@5kt per language, and the standard measures."""

    def __init__(self, rd: RunDir, tokenize: Tokenizer = xor_word_tokenize) -> None:
        self.queries = read_jsonl(rd.require(rd.test_queries, "data"))
        self.lang = {q["query_id"]: q["lang"] for q in self.queries}
        self.answers = read_json(rd.answers)
        self.qrels = read_qrels(rd.qrels)
        self.texts = {p["docid"]: p["text"] for p in read_jsonl(rd.corpus)}  # text only, no title
        # every system and sweep point ranks the same passages: tokenise each text once
        self.tokenize = functools.lru_cache(maxsize=None)(tokenize)

    def xor_outcomes(self, run: dict[str, dict[str, float]]) -> dict[str, XorOutcome]:
        """R@2kt and R@5kt of a run, keyed by measure."""
        return {f"R@{n}kt": xor_recall_at_kt(run, self.texts, self.answers, self.lang, n, self.tokenize)
                for n in (2, 5)}

    def evaluate(self, run: dict[str, dict[str, float]]) -> dict[str, Any]:
        result: dict[str, Any] = {"per_language": {}, "per_question": {}}
        for measure, outcome in self.xor_outcomes(run).items():
            result[measure] = outcome.macro_average
            result["per_language"][measure] = outcome.per_language
            result["per_question"][measure] = {q: (None if h is None else int(h))
                                               for q, h in outcome.hits.items()}
        for measure, values in standard_measures(run, self.qrels).items():
            result[measure] = float(np.mean(list(values.values())))
            result["per_question"][measure] = values
        result["counted"] = outcome.counted
        return result


def write_official_predictions(rd: RunDir, evaluator: "Evaluator", system: str,
                               run: dict[str, dict[str, float]]) -> None:
    """The run in the official XOR-Retrieve prediction format, ``[{"id", "lang", "ctxs": [text]}]``
    (passage texts in rank order), beside the answers as the official ``--data_file`` jsonl, so
    that ``eval_xor_retrieve.py --data_file answers.jsonl --pred_file <system>.json`` scores it."""
    predictions = [{"id": qid, "lang": evaluator.lang[qid],
                    "ctxs": [evaluator.texts[d] for d in ranked_docids(docs)]} for qid, docs in run.items()]
    write_json(rd.path("eval", "xor_predictions", f"{safe_name(system)}.json"), predictions)
    answers = rd.path("eval", "xor_predictions", "answers.jsonl")
    if not answers.exists():
        write_jsonl(answers, ({"id": q["query_id"], "lang": q["lang"], "answers": evaluator.answers[q["query_id"]]}
                              for q in evaluator.queries))


def evaluate_systems(cfg: Profile, rd: RunDir) -> dict[str, dict[str, Any]]:
    evaluator = Evaluator(rd)
    results = {}
    for spec in cfg.retrievers:
        for system in (spec.name, f"{spec.name}+xQG"):
            run = read_trec_run(rd.require(rd.trec_run(system), "search"))
            results[system] = evaluator.evaluate(run)
            write_official_predictions(rd, evaluator, system, run)
    write_json(rd.eval_file("metrics.json"), {s: {k: v for k, v in r.items() if k != "per_question"}
                                              for s, r in results.items()})
    write_json(rd.eval_file("per_question.json"), {s: r["per_question"] for s, r in results.items()})
    return results


def tokenizer_difference(rd: RunDir, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What the fallback tokenisation (:func:`~xqglib.metrics.fallback_word_tokenize`) changes
    against the exact ``nltk.word_tokenize`` of ``results``: per system and measure, the questions
    whose hit differs, and the macro averages under both. Empty where the exact tokeniser is not
    installed (then ``results`` were themselves computed with the fallback)."""
    if not exact_tokenizer_available():
        return []
    fallback = Evaluator(rd, tokenize=fallback_word_tokenize)
    rows = []
    for system, result in results.items():
        run = read_trec_run(rd.require(rd.trec_run(system), "search"))
        for measure, outcome in fallback.xor_outcomes(run).items():
            exact = result["per_question"][measure]
            changed = [q for q, hit in outcome.hits.items() if hit is not None and int(hit) != exact[q]]
            rows.append({"system": system, "measure": measure, "questions changed": len(changed),
                         "gained by fallback": sum(bool(outcome.hits[q]) for q in changed),
                         "exact": result[measure], "fallback": outcome.macro_average})
    write_json(rd.eval_file("tokenizer_difference.json"), rows)
    return rows


def xqg_significance(cfg: Profile, rd: RunDir, results: dict[str, dict[str, Any]],
                     measures: tuple[str, ...] = ("R@2kt", "R@5kt")) -> dict[str, dict[str, Any]]:
    """Each retriever against itself + xQG, per language and overall (paired tests, Bonferroni)."""
    langs = {q["query_id"]: q["lang"] for q in read_jsonl(rd.test_queries)}
    out: dict[str, dict[str, Any]] = {}
    for spec in cfg.retrievers:
        for measure in measures:
            out[f"{spec.name}|{measure}"] = compare_by_language(
                results[spec.name]["per_question"][measure],
                results[f"{spec.name}+xQG"]["per_question"][measure], langs, seed=cfg.seed)
    _write_significance(rd.eval_file("significance.json"), out)
    return out


def pairwise_significance(cfg: Profile, rd: RunDir, results: dict[str, dict[str, Any]],
                          measures: tuple[str, ...] = ("R@2kt", "R@5kt")) -> dict[str, dict[str, Any]]:
    """Every pair of retrievers, without and with xQG: paired tests per language (Bonferroni) and
    over all questions, keyed ``"A vs B|measure"`` (a positive difference favours B)."""
    langs = {q["query_id"]: q["lang"] for q in read_jsonl(rd.test_queries)}
    names = [spec.name for spec in cfg.retrievers]
    out: dict[str, dict[str, Any]] = {}
    for suffix in ("", "+xQG"):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                for measure in measures:
                    out[f"{a}{suffix} vs {b}{suffix}|{measure}"] = compare_by_language(
                        results[a + suffix]["per_question"][measure],
                        results[b + suffix]["per_question"][measure], langs, seed=cfg.seed)
    _write_significance(rd.eval_file("pairwise_significance.json"), out)
    return out


def _write_significance(path: Path, tests: dict[str, dict[str, Any]]) -> None:
    write_json(path, {key: {lang: (vars(r) if hasattr(r, "p_ttest") else r) for lang, r in by_lang.items()}
                      for key, by_lang in tests.items()})


class _Sweep:
    """One retriever's embeddings and an evaluator: scores the test queries against any variant
    of its passage vectors (the sweeps over alpha and over n)."""

    def __init__(self, cfg: Profile, rd: RunDir, name: str) -> None:
        self.cfg, self.evaluator = cfg, Evaluator(rd)
        self.corpus_ids = list(self.evaluator.texts)  # corpus order
        self.query_ids = [q["query_id"] for q in self.evaluator.queries]
        self.emb = load_embeddings(rd, name)

    def evaluate(self, alpha: float | None, n: int | None = None) -> dict[str, Any]:
        """Scores with xQG at ``alpha`` from the first ``n`` queries per language (None: plain)."""
        passages = (self.emb["passages"] if alpha is None
                    else augmented_passages(self.emb, self.corpus_ids, alpha, n=n))
        return self.evaluator.evaluate(search(passages, self.corpus_ids, self.emb["queries"], self.query_ids,
                                              self.cfg.search_depth))


def n_sweep(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, Any]]:
    """Effectiveness against the number of generated queries per language used (n = 1..N), each
    tested against the plain retriever (paired t-test over all questions, as the paper's figure)."""
    sweep = _Sweep(cfg, rd, name)
    plain = sweep.evaluate(None)
    rows = []
    for n in range(1, cfg.gen_n_per_language + 1):
        r = sweep.evaluate(cfg.alpha, n)
        row: dict[str, Any] = {"n": n}
        for measure in ("R@2kt", "R@5kt"):
            sig = compare_by_language(plain["per_question"][measure], r["per_question"][measure],
                                      sweep.evaluator.lang, seed=cfg.seed)["all"]
            row[measure] = r[measure]
            row[f"{measure} p"] = sig.p_ttest
        rows.append(row)
    write_json(rd.eval_file(f"n_sweep_{name}.json"), rows)
    return rows


def gold_rank_changes(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, Any]]:
    """Per language: where each test question's gold passage ranks without and with xQG
    (a passage beyond the search depth counts as depth + 1)."""
    qrels = read_qrels(rd.qrels)
    langs = {q["query_id"]: q["lang"] for q in read_jsonl(rd.test_queries)}
    runs = [read_trec_run(rd.require(rd.trec_run(s), "search")) for s in (name, f"{name}+xQG")]

    def rank(run: dict[str, dict[str, float]], qid: str) -> int:
        ranked = ranked_docids(run.get(qid, {}))
        gold = next(iter(qrels[qid]))
        return ranked.index(gold) + 1 if gold in ranked else cfg.search_depth + 1

    rows = []
    for lang in sorted(set(langs.values())):
        qids = [q for q in qrels if langs[q] == lang]
        before = np.array([rank(runs[0], q) for q in qids])
        after = np.array([rank(runs[1], q) for q in qids])
        rows.append({"lang": lang, "questions": len(qids), "mean rank": before.mean(),
                     "mean rank +xQG": after.mean(), "improved %": 100 * np.mean(after < before),
                     "worsened %": 100 * np.mean(after > before), "unchanged %": 100 * np.mean(after == before)})
    write_json(rd.eval_file(f"gold_rank_changes_{name}.json"), rows)
    return rows


def paper_and_scaled_alpha(cfg: Profile, rd: RunDir) -> list[dict[str, Any]]:
    """Every retriever without xQG, with the paper's alpha and with alpha scaled to the paper's
    total query weight (:attr:`Profile.scaled_alpha`)."""
    rows = []
    for spec in cfg.retrievers:
        sweep = _Sweep(cfg, rd, spec.name)
        for label, alpha in (("no xQG", None), (f"alpha {cfg.alpha:g} (paper)", cfg.alpha),
                             (f"alpha {cfg.scaled_alpha:.4g} (scaled)", cfg.scaled_alpha)):
            r = sweep.evaluate(alpha)
            rows.append({"retriever": spec.name, "xQG": label, "R@2kt": r["R@2kt"], "R@5kt": r["R@5kt"]})
    write_json(rd.eval_file("paper_and_scaled_alpha.json"), rows)
    return rows


def alpha_sweep(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    """R@2kt / R@5kt of ``name`` as alpha varies (alpha 0 is the plain retriever)."""
    sweep = _Sweep(cfg, rd, name)
    rows = []
    for alpha in cfg.alpha_sweep:
        r = sweep.evaluate(alpha)
        rows.append({"alpha": alpha, "R@2kt": r["R@2kt"], "R@5kt": r["R@5kt"], "RR@10": r["RR@10"]})
    write_json(rd.eval_file(f"alpha_sweep_{name}.json"), rows)
    return rows
