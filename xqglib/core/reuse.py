"""Reuse: work is done again only where what it is made from has changed.

Every reusable output (a trained model, a generated-query file, a sharded encoding, a reading) has
a *record* beside it: the *fingerprint* of what it was made from (settings, digests of its input
files and models, code versions), the seconds the making took, and details. The work is reused
when the record's fingerprint equals the one the current settings give and its outputs are there
(a model's weights must also be the ones saved). The record is written last, so an interrupted
making leaves none behind.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, sha256_file, sha256_text, write_json


def fingerprint(**parts: Any) -> dict[str, Any]:
    """A fingerprint as it reads back from JSON (tuples become lists), so that it compares equal."""
    return json.loads(json.dumps(parts, sort_keys=True, ensure_ascii=False))


def file_digests(paths: Sequence[Path]) -> dict[str, str]:
    """SHA-256 of each input file, by name."""
    return {p.name: sha256_file(p) for p in paths}


def earlier(record: Path, wanted: dict[str, Any], outputs: Sequence[Path] = ()) -> dict[str, Any] | None:
    """The record of work done earlier from exactly ``wanted``, if it and its outputs exist."""
    if not record.exists() or not all(p.exists() for p in outputs):
        return None
    found = read_json(record)
    return found if found.get("fingerprint") == wanted else None


def remember(record: Path, made_from: dict[str, Any], seconds: float, **details: Any) -> None:
    """Write the record of work just done (after its outputs)."""
    write_json(record, {"fingerprint": made_from, "seconds": round(float(seconds), 2), **details})


# --------------------------------------------------------------------------------------------
# Trained models
# --------------------------------------------------------------------------------------------

def model_record(folder: Path) -> Path:
    return folder.with_name("fingerprint.json")


def weights_digest(folder: Path) -> str:
    """SHA-256 over a model folder's weight files (what a reuse must find unchanged)."""
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    if not files:
        return "no weights"
    return sha256_text(" ".join(f"{f.name}:{sha256_file(f)}" for f in files))


def earlier_model(folder: Path, log_path: Path, wanted: dict[str, Any]) -> tuple[list[dict[str, Any]], float] | None:
    """The training log and seconds of a model trained earlier from ``wanted``, if its folder
    still holds the weights saved then (a corrupt or changed folder is trained again)."""
    found = earlier(model_record(folder), wanted, [folder, log_path])
    if found is None:
        return None
    if found.get("weights") != weights_digest(folder):
        print(f"not reusing {folder}: its weights differ from the ones saved (corrupt or changed); training again")
        return None
    print(f"reusing {folder}: trained earlier from the same data and settings")
    return read_json(log_path), found["seconds"]


def save_model(model: Any, tokenizer: Any, folder: Path, log_path: Path, log: list[dict[str, Any]],
               made_from: dict[str, Any], seconds: float) -> None:
    """A trained model as a Hugging Face folder (written beside it, then renamed into place), its
    training log, then its record."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model_record(folder).unlink(missing_ok=True)
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
    remember(model_record(folder), made_from, seconds, weights=weights_digest(folder))


def seeded_subset(rows: list[Any], cap: int | None, seed: int) -> list[Any]:
    """``rows`` where ``cap`` is None; otherwise the first ``cap`` of them shuffled with ``seed``."""
    if cap is None:
        return rows
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:cap]
