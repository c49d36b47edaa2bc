"""What every stage does: open the run, load its models, train once, finish.

Each notebook opens its stage (:func:`open_run`: settings checked, earlier stages' outputs
checked against the current settings), calls the stage functions of :mod:`xqglib.pipeline.rq1`,
``rq2`` or ``rq3``, and closes it (:func:`finish_stage`).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xqglib.config.profiles import PROFILES, load_profile
from xqglib.config.settings import CONTRASTIVE_TRAININGS, Profile, flatten_overrides, parse_overrides
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, write_json
from xqglib.core.reuse import (  # noqa: F401 (seeded_subset: the pipeline's import of it)
    earlier,
    earlier_model,
    file_digests,
    fingerprint,
    remember,
    save_model,
    seeded_subset,
)
from xqglib.core.timing import Timing
from xqglib.method.encoding import DenseEncoder
from xqglib.method.generator import QueryGenerator
from xqglib.models.builds import BUILDERS, build_stamp
from xqglib.models.registry import encoder_spec, generator_kind, load_encoder, load_generator, load_tokenizer, resolve
from xqglib.pipeline import stages as S


def open_run(profile: str, run_dir: str | None, overrides: str | dict[str, Any] | None,
             stage: str | None = None) -> tuple[Profile, RunDir]:
    """What every notebook does first: the profile (with overrides, checked) and its run
    directory; with ``stage``, also check that every earlier stage finished under these settings
    (:func:`xqglib.pipeline.stages.begin`) and record them as the run's (``profile.json``)."""
    given = parse_overrides(overrides)
    cfg = load_profile(profile, given)
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(cfg)
    if stage is not None:
        S.begin(cfg, rd, S.stage(stage))
        record_profile(rd, cfg, given)
    seed_everything(cfg.seed)
    return cfg, rd


def record_profile(rd: RunDir, cfg: Profile, overrides: dict[str, Any]) -> None:
    """Write the run's resolved settings (``profile.json``): what its book pages read back."""
    write_json(rd.path("profile.json"), {"profile": cfg.to_dict(), "overrides": flatten_overrides(overrides)})


def resolved_run(profile: str, run_dir: str | None) -> tuple[Profile, RunDir]:
    """A run's own settings: its profile with the overrides it ran under (``profile.json``), so
    a page executed after the run shows the settings the run used."""
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(load_profile(profile))
    path = rd.root / "profile.json"
    if not path.exists():
        raise UserError(f"{rd.root} holds no profile.json: run the pipeline there first (python -m xqglib run ...)")
    saved = read_json(path)
    cfg = load_profile(saved["profile"]["name"], saved["overrides"])
    if cfg.to_dict() != saved["profile"]:
        raise UserError(f"the settings in {path} no longer resolve to the same profile (the profile changed "
                        "since the run): rerun it")
    return cfg, rd


def changed_settings(cfg: Profile) -> dict[str, Any]:
    """Every setting of ``cfg`` that differs from its profile's, by nested name."""
    defaults = PROFILES[cfg.name].flat()
    return {k: v for k, v in cfg.flat().items() if defaults.get(k) != v}


def settings_text(cfg: Profile) -> str:
    """The changed settings as one phrase: ``a = 1, b = "x"`` (empty where none changed)."""
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in changed_settings(cfg).items())


def run_banner(cfg: Profile, rd: RunDir) -> str:
    """What a page says first: the run it shows, its profile and every setting changed from it."""
    text = f"**Profile `{cfg.name}`**: {cfg.description}. Seed {cfg.seed}. Run directory `{rd.root.name}`."
    changed = settings_text(cfg)
    return text + (f" Settings changed from the profile: `{changed}`." if changed else "")


def finish_stage(cfg: Profile, rd: RunDir, stage: str) -> None:
    """What every notebook does last: record that its stage finished under these settings."""
    S.finish(cfg, rd, S.stage(stage))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def generator_for(cfg: Profile, name: str, source: str) -> QueryGenerator:
    """The generator ``name`` (its kind decides the backend) loaded from ``source``."""
    kind = generator_kind(name)
    return QueryGenerator(load_generator(source, kind), load_tokenizer(source), kind,
                          cfg.generator.max_input_len, cfg.generator.max_target_len)


def encoder_for(cfg: Profile, source: str, passage_max_len: int | None = None) -> DenseEncoder:
    """The retrievers' encoder loaded from ``source`` (the base model, or a trained folder)."""
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


def stage_timer(rd: RunDir, stage: str, part: str | None, accelerator: Any | None = None,
                **details: Any) -> contextlib.AbstractContextManager[Timing]:
    """A stage part's timing; work launched on several processes outside a stage is not timed
    (the stage that reuses it records the seconds it took)."""
    if accelerator is not None:
        number = S.stage(stage).number
        return contextlib.nullcontext(Timing(number, stage, part, details=details))
    return S.timed(rd, stage, part, **details)


def make_once(record: Path, made_from: dict[str, Any], outputs: Sequence[Path], make: Callable[[], Any],
              timing: Timing, what: str) -> bool:
    """Run ``make()`` (which writes ``outputs``) unless it ran earlier from ``made_from`` and its
    outputs are still there; ``timing`` records its seconds either way. Returns whether it was reused."""
    found = earlier(record, made_from, outputs)
    if found is not None:
        timing.did(what, found["seconds"], reused=True)
        return True
    record.unlink(missing_ok=True)
    started = time.perf_counter()
    make()
    seconds = time.perf_counter() - started
    remember(record, made_from, seconds)
    timing.did(what, seconds)
    return False


def train_once(rd: RunDir, stage: str, part: str, folder: Path, log_path: Path, made_from: dict[str, Any],
               train: Callable[[], tuple[Any, Any, list[dict[str, Any]]]], accelerator: Any | None = None,
               **details: Any) -> list[dict[str, Any]]:
    """Train a model with ``train()`` (model, tokenizer, log) unless one was trained earlier from
    ``made_from``; either way the stage part's timing records the training's seconds."""
    with stage_timer(rd, stage, part, accelerator, **details) as timing:
        found = earlier_model(folder, log_path, made_from)
        if found is not None:
            log, seconds = found
            timing.did("training", seconds, reused=True)
        else:
            model, tokenizer, log = train()
            seconds = log[-1]["seconds"]
            if accelerator is None or accelerator.is_main_process:
                save_model(model, tokenizer, folder, log_path, log, made_from, seconds)
            if accelerator is not None:
                accelerator.wait_for_everyone()
            timing.did("training", seconds)
        timing.details["steps"] = len(log)
    return log


def training_fingerprint(cfg: Profile, model: str, sections: Sequence[str], inputs: Sequence[Path],
                         **extra: Any) -> dict[str, Any]:
    """What a trained model depends on: its base model (and the builder's version where it is
    built locally), its settings (``sections`` and the run's), its training files and ``extra``."""
    base = build_stamp(Path(resolve(model))) if model in BUILDERS else None
    return fingerprint(model=model, **({"build": base} if base else {}), settings=cfg.select([*sections, "run"]),
                       inputs=file_digests(inputs), **extra)
