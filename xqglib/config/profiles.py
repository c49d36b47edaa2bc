"""The three profiles: one code path, three sizes (smoke / cpu / paper).

A profile fixes everything a run depends on: models, data sizes, hyperparameters and the seed
(:mod:`xqglib.config.settings` says what each setting means and allows). The same profile and seed give
the same numbers. Notebooks receive only the profile's name (and optional overrides); everything
else is read from here, so the book always states what it ran.
"""

from __future__ import annotations

from typing import Any

from xqglib.config.languages import XOR_LANGUAGES
from xqglib.config.settings import (
    AugmentationSettings,
    DataSettings,
    EvaluationSettings,
    GenerationSettings,
    GeneratorSettings,
    Profile,
    RetrieverSettings,
    RetrieverSpec,
    RQ3Settings,
    RunSettings,
    XQuADRSettings,
    apply_overrides,
    check,
    parse_overrides,
)
from xqglib.core.errors import UserError

SMOKE = Profile(
    name="smoke",
    description="tiny randomly initialised models of the real architectures on a few dozen real "
                "passages; checks the plumbing, the numbers mean nothing",
    data=DataSettings(query_languages=("ar", "de", "th"), max_corpus=40, max_test_questions=12),
    generator=GeneratorSettings(models=("tiny-gemma3", "tiny-mt5"), steps=6, batch_size=4, lr=1e-3,
                                max_input_len=64, max_target_len=24, max_train_pairs=64, eval_every=3,
                                max_dev_pairs=16, freeze_embeddings=False),
    generation=GenerationSettings(languages=("ar", "de", "th"), n_per_language=2, max_new_tokens=8,
                                  batch_passages=20, vocabulary="data", seeds=(314,)),
    retriever=RetrieverSettings(
        encoder="tiny-bert",
        retrievers=(RetrieverSpec("base", "none", "encoder as is"),
                    RetrieverSpec("xdr", "crosslingual", "cross-lingual xDR")),
        max_steps=4, batch_size=4, negatives=1, lr=1e-3, query_max_len=24, passage_max_len=64,
        freeze_embeddings=False, encode_batch_size=16),
    augmentation=AugmentationSettings(alpha_sweep=(0.0, 0.01, 0.1)),
    evaluation=EvaluationSettings(search_depth=20),
    xquadr=XQuADRSettings(languages=("de", "en", "th"), candidate_max_len=64, full_pool=False),
    rq3=RQ3Settings(query_languages=("de", "en", "th"), passage_languages=("en", "th"),
                    generation_languages=("de", "th"), generator_steps=2, text_max_len=96,
                    dual_weights=(0.1, 0.5), max_questions=12, reader_steps=2,
                    reader_batch_size=4, reader_max_len=96, reader_stride=32, reader_questions=4),
    # bf16 autocast slows miniature models down (4-8x measured): it pays only for real sizes
    run=RunSettings(bf16=False),
)

CPU = Profile(
    name="cpu",
    description="the real offline models (multilingual-e5-small, Gemma 3 270M) on the real B1 "
                "benchmark, sized for a 2-core machine",
    # The floor: >= 1,000 passages with every test gold paragraph, >= 5 generation
    # languages including ar, hi and th, n = 5 (25,000 generated queries). Measured on a 2-core
    # machine capped at AVX2 without bf16: a generator step (batch 8, ~147 tokens a pair with
    # Gemma's real tokenizer) takes ~8 s; a retriever step (32 queries, 64 passages) ~16 s. The
    # generator trains to convergence: at least one pass over its 3,685 pairs (461 steps), a
    # dev loss on 128 dev-article pairs every eighth of a pass, at most two passes.
    data=DataSettings(max_corpus=1000),
    generator=GeneratorSettings(max_dev_pairs=128, converge=True, min_passes=1.0, eval_share=0.125, patience=3,
                                max_passes=2.0),
    # top-k over the data's 13k tokens instead of 262k: ~2x faster generation (measured; the
    # agreement with exact sampling is reported with the generated queries)
    # two more sampling seeds for the seed sweep: ~25 min of generation and ~5 min of encoding per
    # retriever each
    generation=GenerationSettings(languages=("ar", "de", "hi", "th", "zh"), batch_passages=32,
                                  vocabulary="data", seeds=(314, 315)),
    # every retriever, RQ2 arm and the reader train to convergence on dev-article rows: at least a
    # pass, a dev measurement every quarter of a pass, at most three. A seeded 2,048 of the 7,370
    # (6,642 English) training rows: a pass of 64 steps (~17-25 min at 16-23 s a step) instead of ~60 min.
    # The retrievers follow their dev MRR@10: the english one's dev loss still fell at three passes
    # (0.984 after one, 0.939 after three) while its MRR@10 peaked at 1.5 passes (0.750; 0.742 at three)
    retriever=RetrieverSettings(negatives=1, lr=3e-5, encode_batch_size=64, max_train_rows=2048, converge=True,
                                eval_share=0.25, patience=3, min_passes=1.0, max_passes=3.0, dev_measure="mrr"),
    # RQ3's generator continues on 1,840 of its 14,740 pairs (a pass of 230 steps, ~26 min); the
    # reader on 4,800 of its ~14,700 examples (a pass of 300 steps)
    rq3=RQ3Settings(generator_max_pairs=1840, reader_max_examples=4800),
)

PAPER = Profile(
    name="paper",
    description="the paper's task, models and hyperparameters (XOR-Retrieve, benchmark B3; mBERT / "
                "mT5-base from the hub); for GPU machines with network access",
    data=DataSettings(benchmark="b3", query_languages=XOR_LANGUAGES),
    generator=GeneratorSettings(models=("google/mt5-base",), steps=2000, batch_size=128,
                                max_target_len=64, freeze_embeddings=False),
    generation=GenerationSettings(languages=XOR_LANGUAGES, n_per_language=5, top_k=10, batch_passages=64),
    retriever=RetrieverSettings(encoder="bert-base-multilingual-cased", epochs=40, batch_size=128,
                                freeze_embeddings=False, encode_batch_size=256),
    run=RunSettings(bf16=False),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, CPU, PAPER)}


def load_profile(name: str, overrides: dict[str, Any] | str | None = None, *, from_text: bool = False) -> Profile:
    """The named profile with optional overrides (a dict or its JSON text), checked."""
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return apply_overrides(check(PROFILES[name]), parse_overrides(overrides), from_text=from_text)
