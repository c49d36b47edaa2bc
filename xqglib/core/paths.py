"""Where things live: the checkout, the data, locally built models and run directories."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The data directory: ``$XQG_DATA_DIR``, else ``../shared/data`` beside the checkout, else ``data/``."""
    env = os.environ.get("XQG_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    shared = repo_root().parent / "shared" / "data"
    if shared.is_dir():
        return shared.resolve()
    return repo_root() / "data"


def model_dir() -> Path:
    """Where locally built models live: ``$XQG_MODEL_DIR``, else ``.models/`` in the checkout."""
    env = os.environ.get("XQG_MODEL_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / ".models"


def runs_dir() -> Path:
    env = os.environ.get("XQG_RUNS_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / "runs"


def cache_dir() -> Path:
    """Small caches (data-file digests): ``$XQG_CACHE_DIR``, else ``.cache/`` in the checkout."""
    env = os.environ.get("XQG_CACHE_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / ".cache"
