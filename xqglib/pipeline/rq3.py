"""The third research question: query-augmented (xQG) against passage-augmented retrieval on
XQuAD's query-language x passage-language matrix, measured by retrieval and by the EM/F1 of an
extractive reader (stages 10-12).

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
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from xqglib.pipeline import stages as S
from xqglib.core.artifacts import RunDir
from xqglib.core.formats import read_jsonl, save_npy, sha256_file, write_json, write_jsonl
from xqglib.config.settings import Profile
from xqglib.data.matrix import matrix_rows
from xqglib.method.augmentation import condition_texts, generated_by_passage
from xqglib.method.reading import reader_of
from xqglib.study.experiments import matrix_languages
from xqglib.data import b1 as D
from xqglib.data import sources as DS


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
    for what, items in rows.items():
        write_jsonl(rd.rq3_data(what), items)
    questions = rows["questions"]
    return {"passages": len(rows["passages"]), "test questions": sum(q["split"] == "test" for q in questions),
            "dev questions": sum(q["split"] == "dev" for q in questions),
            "generator train pairs": len(rows["generator_train"]), "reader training examples": len(rows["reader_train"])}


#: The name the generator for passages in every passage language is saved under.
GENERATOR = "rq3-passages"


def train_rq3_generator(cfg: Profile, rd: RunDir) -> list[dict[str, float]]:
    """Continue the Table 1 generator's training on passages in every passage language (reused
    where an identical one was trained before)."""
    from xqglib.method.generator_training import train_generator
    from xqglib.core.reuse import earlier_training, save_trained, training_fingerprint, weights_digest
    from xqglib.pipeline.common import generator_for, seed_everything

    source = rd.require(rd.generator_model(cfg.primary_generator), "train-generator")
    inputs = [rd.require(rd.rq3_data("generator_train"), "rq3-train"), rd.rq3_data("generator_dev")]
    fingerprint = {**training_fingerprint(cfg, cfg.primary_generator, "generator", inputs,
                                          ("rq3.generator_steps", "rq3.generation_languages",
                                           "rq3.passage_languages")),
                   "from": weights_digest(source)}
    earlier = earlier_training(rd.generator_model(GENERATOR), rd.generator_log(GENERATOR), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    gen = generator_for(cfg, cfg.primary_generator, str(source))
    g, steps = cfg.generator, cfg.rq3.generator_steps
    log = train_generator(gen, read_jsonl(inputs[0]), read_jsonl(inputs[1]), steps=steps, batch_size=g.batch_size,
                          lr=g.lr, seed=cfg.seed, eval_every=max(1, steps // 2), bf16=cfg.use_bf16,
                          freeze_embeddings=g.freeze_embeddings, max_dev_pairs=g.max_dev_pairs)
    save_trained(gen.model, gen.tok, rd.generator_model(GENERATOR), rd.generator_log(GENERATOR), log, fingerprint)
    return log


def train_rq3_reader(cfg: Profile, rd: RunDir) -> list[dict[str, float]]:
    """Fine-tune the extractive reader from the retrievers' encoder on train-article examples."""
    from xqglib.core.reuse import earlier_training, save_trained, training_fingerprint
    from xqglib.pipeline.common import seed_everything
    from xqglib.method.reading import ReaderExample, train_reader

    inputs = [rd.require(rd.rq3_data("reader_train"), "rq3-train")]
    fingerprint = training_fingerprint(cfg, cfg.retriever.encoder, "rq3", inputs)
    fingerprint["settings"] = {k: v for k, v in fingerprint["settings"].items()
                               if k.startswith(("rq3.reader_", "run.")) and k != "rq3.reader_questions"
                               and k != "rq3.reader_k" and k != "rq3.reader_retriever"}
    earlier = earlier_training(rd.reader_model(), rd.reader_log(), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    reader = reader_of(cfg, cfg.retriever.encoder)
    examples = [ReaderExample(e["question"], e["context"], e["answer"], e["answer_start"]) for e in read_jsonl(inputs[0])]
    r = cfg.rq3
    log = train_reader(reader, examples, steps=r.reader_steps, batch_size=r.reader_batch_size, lr=r.reader_lr,
                       warmup_ratio=cfg.retriever.warmup_ratio, seed=cfg.seed,
                       freeze_embeddings=cfg.retriever.freeze_embeddings)
    save_trained(reader.model, reader.tok, rd.reader_model(), rd.reader_log(), log, fingerprint)
    return log


# --------------------------------------------------------------------------------------------
# Stage 11: generation for every passage, encoding every condition's texts
# --------------------------------------------------------------------------------------------

def generate_rq3(cfg: Profile, rd: RunDir) -> list[dict[str, Any]]:
    """Generated queries (released xQG jsonl) for every passage of every passage language; a
    file generated earlier by the same weights from the same passages and settings is reused."""
    from xqglib.method.sampling import SAMPLER_VERSION
    from xqglib.method.generator import generate_xqg
    from xqglib.pipeline.common import generator_for, seed_everything
    from xqglib.core.reuse import same_generation, weights_digest

    model = rd.require(rd.generator_model(GENERATOR), "rq3-train")
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    fingerprint = json.loads(json.dumps({
        "generator": weights_digest(model), "passages": sha256_file(rd.rq3_data("passages")), "sampler": SAMPLER_VERSION,
        "settings": cfg.select(["generation", "rq3.generation_languages", "rq3.n_per_language", "run"])}))
    done = rd.generation_fingerprint(GENERATOR)
    if rd.generated(GENERATOR).exists() and same_generation(done, fingerprint):
        print(f"reusing {rd.generated(GENERATOR)}: generated earlier by the same generator from the same passages")
        return read_jsonl(rd.generated(GENERATOR))
    done.unlink(missing_ok=True)
    started = time.perf_counter()
    seed_everything(cfg.seed)
    gen = generator_for(cfg, str(model), str(model))
    g, r = cfg.generation, cfg.rq3
    if g.vocabulary == "data" and gen.kind == "decoder":
        gen.vocabulary = sampling_vocabulary(rd, gen, corpus)
    rows = generate_xqg(gen, corpus, r.generation_languages, n=r.n_per_language, top_k=g.top_k,
                        max_new_tokens=g.max_new_tokens, batch_passages=g.batch_passages, seed=cfg.seed,
                        bf16=cfg.use_bf16)
    write_jsonl(rd.generated(GENERATOR), rows)
    write_json(done, {**fingerprint, "seconds": round(time.perf_counter() - started, 2)})
    return rows


def sampling_vocabulary(rd: RunDir, gen: Any, corpus: Sequence[dict[str, Any]]) -> Any:
    """The tokens the generator may write for the matrix's passages: those of the passages and of
    the train- and dev-article questions it was trained towards, and its stop tokens."""
    from xqglib.method.generator import data_vocabulary

    pairs = read_jsonl(rd.rq3_data("generator_train")) + read_jsonl(rd.rq3_data("generator_dev"))
    return data_vocabulary(gen.tok, [p["text"] for p in corpus] + [p["question"] for p in pairs], gen.stop_ids)


def encode_rq3(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """Encode, with one retriever, the matrix's questions, passages, generated queries, expanded
    passages (``text``: encoded with ``rq3.text_max_len``) and query documents (``querydocs``)."""
    from xqglib.pipeline.common import encoder_for, retriever_source, seed_everything
    from xqglib.core.formats import generated_query_table

    seed_everything(cfg.seed)
    source = retriever_source(cfg, rd, name)
    encoder = encoder_for(cfg, source)
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    questions = read_jsonl(rd.rq3_data("questions"))
    rows = read_jsonl(rd.require(rd.generated(GENERATOR), "rq3-encode"))
    generated = generated_by_passage(rows, cfg.rq3.generation_languages)
    texts = condition_texts(encoder, corpus, generated)
    expander = encoder_for(cfg, source, cfg.rq3.text_max_len)
    counts = expander.token_counts(texts["text"], False)
    full = [len(ids) for ids in expander.tok([expander.spec.passage_prefix + t for t in texts["text"]])["input_ids"]]
    bs = cfg.retriever.encode_batch_size
    flat = generated_query_table(rows)
    jobs = [("questions", [q["question"] for q in questions], True, encoder,
             [{k: q[k] for k in ("qid", "lang", "split")} for q in questions]),
            ("passages", texts["passages"], False, encoder, [p["docid"] for p in corpus]),
            ("generated", [g["query"] for g in flat], True, encoder,
             [{k: g[k] for k in ("docid", "lang", "slot")} for g in flat]),
            ("text", texts["text"], False, expander, [p["docid"] for p in corpus]),
            ("querydocs", texts["querydocs"], False, encoder, [p["docid"] for p in corpus])]
    for what, items, is_query, enc, ids in jobs:
        with S.timed(rd, "rq3-encode", f"{name}: {what}", texts=len(items)):
            save_npy(rd.rq3(name, what), enc.encode(items, is_query, bs, f"{name}: {what}"))
        write_json(rd.rq3_meta(name, what), ids)
    kept = encoder.token_counts(texts["passages"], False)
    stats = {"questions": len(questions), "passages": len(corpus), "generated queries": len(flat),
             "passage tokens (mean)": float(np.mean(kept)),
             "expanded passage tokens (mean)": float(np.mean(counts)),
             "expanded passages cut": int(sum(f > c for f, c in zip(full, counts)))}
    write_json(rd.rq3_meta(name, "expansion"), stats)
    return stats
