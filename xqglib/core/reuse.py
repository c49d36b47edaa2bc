"""The pipeline's stage functions, wiring the pure modules to the run directory.

Each notebook opens its stage (:func:`open_run`: settings checked, earlier stages' outputs
checked against the current settings), calls these functions, and closes it
(:func:`finish_stage`). Each reads only what earlier stages wrote into the run directory, so a
stage can be rerun on its own. What the stages are, and what each reads and writes, is declared
once in :mod:`xqglib.pipeline.stages`; evaluation and analysis live in :mod:`xqglib.evaluation.rq1` and
:mod:`xqglib.study.analysis`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


from xqglib.pipeline import stages as S
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, sha256_file, sha256_text, write_json
from xqglib.models.builds import BUILDERS, build_stamp
from xqglib.models.registry import resolve
from xqglib.config.settings import Profile


# --------------------------------------------------------------------------------------------
# 2. generator training, 3. generation
# --------------------------------------------------------------------------------------------

def save_trained(model: Any, tokenizer: Any, folder: Path, log_path: Path, log: list[dict[str, float]],
                  fingerprint: dict[str, Any]) -> None:
    """A trained model as a Hugging Face folder (written beside it, then renamed into place),
    its training log, and the fingerprint of what it was trained from (written last)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fingerprint_path(folder).unlink(missing_ok=True)
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
    write_json(fingerprint_path(folder), {**fingerprint, "weights": weights_digest(folder)})


def training_fingerprint(cfg: Profile, model: str, section: str, inputs: list[Path],
                         extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a trained model depends on: the base model (with its builder's version where it is
    built locally), its settings section ("generator" or "retriever", and any ``extra`` settings)
    and the run settings (seed, bf16), and the SHA-256 of its training data files."""
    base = build_stamp(Path(resolve(model))) if model in BUILDERS else None
    return json.loads(json.dumps({"model": model, **({"build": base} if base else {}),
                                  "settings": cfg.select([section, *extra, "run"]),
                                  "inputs": {p.name: sha256_file(p) for p in inputs}}))


def fingerprint_path(folder: Path) -> Path:
    return folder.with_name("fingerprint.json")


def weights_digest(folder: Path) -> str:
    """SHA-256 over a model folder's weight files (what a reuse must find unchanged)."""
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    if not files:
        return "no weights"
    return sha256_text(" ".join(f"{f.name}:{sha256_file(f)}" for f in files))


def earlier_training(folder: Path, log_path: Path,
                      fingerprint: dict[str, Any]) -> list[dict[str, float]] | None:
    """The log of a model trained earlier from exactly the same inputs, if there is one: a rerun
    (say after a later stage failed) reuses it instead of spending the training time again. A
    folder whose weights no longer match what was saved (corrupt, changed) is trained again."""
    path = fingerprint_path(folder)
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


def same_generation(done: Path, fingerprint: dict[str, Any]) -> bool:
    """Whether the generated file whose fingerprint record is ``done`` was generated from what
    ``fingerprint`` names. The record also keeps the seconds that generation took: a reuse notes
    them (:func:`xqglib.pipeline.stages.note_reused`), so the run's time counts the work the file stands for."""
    record = read_json(done) if done.exists() else None
    if record is None or {k: v for k, v in record.items() if k != "seconds"} != fingerprint:
        return False
    S.note_reused("generation", record.get("seconds"))
    return True
