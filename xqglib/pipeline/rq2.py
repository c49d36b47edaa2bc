"""Stage functions of the second research question (stages 7-8): the contrastive arms' data and
training, and the XQuAD-R encodings.
"""

from __future__ import annotations

from typing import Any

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.formats import read_jsonl, save_npy, write_json, write_jsonl
from xqglib.data import b1 as D
from xqglib.data.xquadr import xquadr_pool
from xqglib.method.retriever_training import hybrid_training_batches, train_on_batches, train_retriever
from xqglib.pipeline.common import (
    encoder_for,
    retriever_source,
    seed_everything,
    seeded_subset,
    train_once,
    training_fingerprint,
)
from xqglib.pipeline.rq1 import retriever_convergence

# --------------------------------------------------------------------------------------------
# Stage 7: the contrastive arms
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


def xdr_rows(cfg: Profile) -> int:
    """The cross-lingual xDR's training rows: one per train-article question and query language,
    at most ``retriever.max_train_rows``."""
    b1 = D.build_b1(cfg)
    rows = sum(len(b1.qids_of("train", b1.xquad_questions[lang])) for lang in cfg.data.query_languages)
    return rows if cfg.retriever.max_train_rows is None else min(rows, cfg.retriever.max_train_rows)


def xdr_steps(cfg: Profile) -> int:
    """The optimizer steps of the cross-lingual xDR: ``retriever.epochs`` passes over its rows in
    batches of ``batch_size``, at most ``max_steps``."""
    r = cfg.retriever
    steps = r.epochs * -(-xdr_rows(cfg) // r.batch_size)
    return steps if r.max_steps is None else min(r.max_steps, steps)


#: The contrastive settings each kind of arm is trained with (its reuse fingerprint holds these).
ARM_SETTINGS = {"align": ("contrastive.align_weight", "contrastive.temperature"),
                "hybrid": ("contrastive.hybrid_alpha",)}


def train_contrastive_arm(cfg: Profile, rd: RunDir, name: str) -> list[dict[str, float]]:
    """Stage 7: train one arm from the encoder, with the retriever section's optimiser settings."""
    spec = cfg.retriever_spec(name)
    inputs = [rd.require(rd.contrastive_rows(spec.training), "train-contrastive")]
    r, c = cfg.retriever, cfg.contrastive
    # every arm takes as many optimizer steps as the xDR (whose rows the align arm shares): the
    # hybrid arm's smaller data set is passed over as many times as that needs; trained to
    # convergence, every arm's pass is as many steps as the xDR's, on the xDR's dev rows
    steps = xdr_steps(cfg)
    rows_count = len(read_jsonl(inputs[0])) if spec.training == "hybrid" else 0
    hybrid_epoch = -(-(xdr_rows(cfg) if r.converge else rows_count) // r.batch_size)

    def train() -> tuple[Any, Any, list[dict[str, Any]]]:
        rows = read_jsonl(inputs[0])
        seed_everything(cfg.seed)
        encoder = encoder_for(cfg, r.encoder)
        common = dict(lr=r.lr, warmup_ratio=r.warmup_ratio, seed=cfg.seed, freeze_embeddings=r.freeze_embeddings,
                      max_grad_norm=r.max_grad_norm, **retriever_convergence(cfg, "crosslingual"))
        if spec.training == "align":
            log = train_retriever(encoder, seeded_subset(rows, r.max_train_rows, cfg.seed), epochs=r.epochs,
                                  max_steps=r.max_steps, batch_size=r.batch_size, n_negatives=r.negatives,
                                  align_weight=c.align_weight, temperature=c.temperature, **common)
        else:
            per_epoch = hybrid_epoch
            batches = hybrid_training_batches(rows, contrastive_languages(cfg), r.batch_size, c.hybrid_alpha,
                                              r.negatives, cfg.seed, per_epoch if r.converge else None)
            log = train_on_batches(encoder, batches, per_epoch, epochs=-(-steps // per_epoch), max_steps=steps,
                                   **common)
        return encoder.model, encoder.tok, log

    # the settings this kind of arm is trained with, and no others
    made_from = training_fingerprint(cfg, r.encoder, ["retriever", *ARM_SETTINGS[spec.training]], inputs,
                                     training=spec.training,
                                     **({"steps": steps, "per_epoch": hybrid_epoch} if spec.training == "hybrid" else {}))
    return train_once(rd, "train-contrastive", name, rd.retriever_model(name), rd.retriever_log(name), made_from,
                      train, training=spec.training)


def encode_xquadr(cfg: Profile, rd: RunDir, name: str) -> dict[str, int]:
    """Encode XQuAD-R's questions (query side) and candidates (passage side: sentence, then
    paragraph, ``xquadr.candidate_max_len`` tokens) with one retriever. A bidirectional encoder
    sees the whole input, so the sentences of one paragraph cannot share one pass."""
    seed_everything(cfg.seed)
    bench = xquadr_pool(cfg, rd, name)
    encoder = encoder_for(cfg, retriever_source(cfg, rd, name), cfg.xquadr.candidate_max_len)
    bs = cfg.retriever.encode_batch_size
    for what, texts, ids, is_query in (
            ("questions", [q["question"] for q in bench.questions], [q["uid"] for q in bench.questions], True),
            ("candidates", bench.candidate_texts(), [c["uid"] for c in bench.candidates], False)):
        vectors = encoder.encode(texts, is_query, bs, f"{name}: XQuAD-R {what}")
        save_npy(rd.xquadr(name, what), vectors)
        write_json(rd.xquadr_meta(name, what), ids)
    return {"questions": len(bench.questions), "candidates": len(bench.candidates),
            "articles": len({c["title"] for c in bench.candidates})}
