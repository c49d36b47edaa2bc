"""Shared fixtures. Tests read the real data files from XQG_DATA_DIR (../shared/data in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xqglib.core.paths import data_dir


def pytest_collection_modifyitems(config, items):
    if os.environ.get("XQG_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="needs the real models; run with XQG_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = data_dir()
    if not (root / "xquad" / "xquad.en.json").exists():
        pytest.fail(f"the data directory {root} has no XQuAD files; set XQG_DATA_DIR to ../shared/data")
    return root
