"""What the machine can do: native bf16, and a description for the reproducibility page."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_has_bf16() -> bool:
    """Whether this CPU executes bf16 natively (Linux: AVX-512 BF16 or AMX-BF16 flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_description() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(), "threads": torch.get_num_threads()}
