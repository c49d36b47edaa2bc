"""The pipeline's stage functions, wiring the pure modules to the run directory.

Each notebook opens its stage (:func:`open_run`: settings checked, earlier stages' outputs
checked against the current settings), calls these functions, and closes it
(:func:`finish_stage`). Each reads only what earlier stages wrote into the run directory, so a
stage can be rerun on its own. What the stages are, and what each reads and writes, is declared
once in :mod:`xqglib.pipeline.stages`; evaluation and analysis live in :mod:`xqglib.evaluation.rq1` and
:mod:`xqglib.study.analysis`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from xqglib.pipeline import stages as S
from xqglib.core.artifacts import RunDir
from xqglib.method.encoding import DenseEncoder
from xqglib.method.generator import QueryGenerator
from xqglib.models.registry import encoder_spec, generator_kind, load_encoder, load_generator, load_tokenizer
from xqglib.config.profiles import load_profile
from xqglib.config.settings import CONTRASTIVE_TRAININGS, Profile


def open_run(profile: str, run_dir: str | None, overrides: str | dict[str, Any] | None,
             stage: str | None = None) -> tuple[Profile, RunDir]:
    """What every notebook does first: the profile (with overrides, checked) and its run
    directory; with ``stage``, also check that every earlier stage finished under these settings
    (:func:`xqglib.pipeline.stages.begin`)."""
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


def generator_for(cfg: Profile, name: str, source: str) -> QueryGenerator:
    kind = generator_kind(name)
    return QueryGenerator(load_generator(source, kind), load_tokenizer(source), kind,
                          cfg.generator.max_input_len, cfg.generator.max_target_len)


# --------------------------------------------------------------------------------------------
# 4. retriever training
# --------------------------------------------------------------------------------------------

def encoder_for(cfg: Profile, source: str, passage_max_len: int | None = None) -> DenseEncoder:
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
