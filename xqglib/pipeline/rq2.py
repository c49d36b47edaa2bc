"""The pipeline's stage functions, wiring the pure modules to the run directory.

Each notebook opens its stage (:func:`open_run`: settings checked, earlier stages' outputs
checked against the current settings), calls these functions, and closes it
(:func:`finish_stage`). Each reads only what earlier stages wrote into the run directory, so a
stage can be rerun on its own. What the stages are, and what each reads and writes, is declared
once in :mod:`xqglib.pipeline.stages`; evaluation and analysis live in :mod:`xqglib.evaluation.rq1` and
:mod:`xqglib.study.analysis`.
"""

from __future__ import annotations



from xqglib.core.artifacts import RunDir
from xqglib.core.formats import read_jsonl, save_npy, write_json, write_jsonl
from xqglib.method.retriever_training import train_retriever
from xqglib.config.settings import Profile
from xqglib.core.reuse import earlier_training, save_trained, training_fingerprint
from xqglib.data.xquadr import xquadr_pool
from xqglib.pipeline.common import encoder_for, retriever_source, seed_everything
from xqglib.data import b1 as D


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
    from xqglib.method.retriever_training import hybrid_training_batches, train_on_batches

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
    earlier = earlier_training(rd.retriever_model(name), rd.retriever_log(name), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    encoder = encoder_for(cfg, r.encoder)
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
    save_trained(encoder.model, encoder.tok, rd.retriever_model(name), rd.retriever_log(name), log, fingerprint)
    return log


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
