"""What the machine can do: native bf16, and a description for the reproducibility page."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def forced_isa() -> str | None:
    """The instruction-set cap the environment sets for torch (``ATEN_CPU_CAPABILITY``), oneDNN
    (``ONEDNN_MAX_CPU_ISA``) and MKL's matrix products (``MKL_ENABLE_INSTRUCTIONS``), as
    "ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2"; None if none."""
    caps = [f"{name}={os.environ[name]}" for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                                      "MKL_ENABLE_INSTRUCTIONS") if os.environ.get(name)]
    return ", ".join(caps) or None


def cpu_has_bf16() -> bool:
    """Whether bf16 runs natively here: AVX-512 BF16 or AMX-BF16 flags (Linux), and no cap of the
    instruction set below AVX-512 (the study's budgets are measured with torch and oneDNN capped at
    AVX2, where bf16 is emulated)."""
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    capped = (os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in {"default", "avx2"}
              or onednn.startswith(("SSE", "AVX2")) or onednn == "AVX")
    if capped:
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: The instruction sets that decide this study's speed (see the README's budget section).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")

#: The packages whose versions a reproduction must match first.
KEY_PACKAGES = ("torch", "transformers", "tokenizers", "faiss-cpu", "numpy", "pandas", "scipy", "nltk",
                "ir-measures", "papermill", "jupyter-book", "myst-nb")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown", []
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return model, [f for f in ISA_FLAGS if f in flags]


def git_commit(root: Path) -> str:
    """The checkout's commit, marked "+ changes" when the working tree differs from it."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + changes" if dirty else "")


def machine_description() -> dict[str, Any]:
    """The machine, the software and the checkout a run used."""
    from importlib import metadata

    import torch

    from xqglib.core.paths import repo_root

    model, flags = cpu_model_and_flags()
    out: dict[str, Any] = {"CPU": model, "instruction sets": ", ".join(flags) or "none of " + ", ".join(ISA_FLAGS),
                           "instruction-set cap": forced_isa() or "none",
                           "native bf16": cpu_has_bf16(), "cores": os.cpu_count(),
                           "torch threads": torch.get_num_threads(), "platform": platform.platform(),
                           "python": platform.python_version(), "git commit": git_commit(repo_root())}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
