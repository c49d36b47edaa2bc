"""Running the notebooks in order with papermill, and building the book from their executed copies.

The executed notebooks of a profile land in ``runs/<profile>/notebooks``. The book is built from a
copy of them (``book/_executed``) with jupyter-book 1, which never re-executes them: what the book
shows is what the run computed. A notebook that failed stops the pipeline, and no book is built
from a run with a failed or missing notebook.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .artifacts import RunDir
from .config import Profile, load_profile, repo_root
from .errors import UserError
from .formats import read_json, write_json

NOTEBOOKS = (
    "01_data",
    "02_train_generator",
    "03_generate_queries",
    "04_train_retriever",
    "05_encode_augment_search",
    "06_evaluate",
)
KERNEL = "xqg"


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def run_notebook(name: str, cfg: Profile, rd: RunDir, overrides: dict[str, Any] | None) -> Path:
    import papermill as pm

    source = repo_root() / "notebooks" / f"{name}.ipynb"
    if not source.exists():
        raise UserError(f"{source} is missing; is this a complete checkout?")
    out = rd.path("notebooks", f"{name}.ipynb")
    partial = out.with_suffix(".running.ipynb")
    try:
        pm.execute_notebook(str(source), str(partial), kernel_name=_kernel_name(), cwd=str(repo_root()),
                            parameters={"profile": cfg.name, "run_dir": str(rd.root),
                                        "overrides": json.dumps(overrides or {})},
                            progress_bar=sys.stderr.isatty())
    except pm.PapermillExecutionError as exc:
        failed = out.with_suffix(".failed.ipynb")
        partial.replace(failed)
        raise UserError(f"notebook {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                        f"the executed notebook, with the traceback, is at {failed}") from None
    partial.replace(out)
    return out


def run_pipeline(profile: str, overrides: dict[str, Any] | None = None, run_dir: str | Path | None = None,
                 start: int = 1, stop: int | None = None) -> RunDir:
    """Execute notebooks ``start``..``stop`` (1-based) for a profile; returns the run directory."""
    cfg = load_profile(profile, overrides)
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(cfg)
    rd.root.mkdir(parents=True, exist_ok=True)
    if start == 1:
        # a fresh run: stale timings of an earlier run must not mix into this one's
        rd.timings.unlink(missing_ok=True)
    write_json(rd.path("profile.json"), {"profile": cfg.to_dict(), "overrides": overrides or {}})
    for index, name in enumerate(NOTEBOOKS[start - 1: stop], start):
        print(f"[{index}/{len(NOTEBOOKS)}] {name} ({cfg.name})", file=sys.stderr, flush=True)
        run_notebook(name, cfg, rd, overrides)
    return rd


def run_is_complete(rd: RunDir, cfg: Profile) -> bool:
    """Whether ``rd`` holds every executed notebook, from this very profile."""
    marker = rd.root / "profile.json"
    if not marker.exists() or read_json(marker)["profile"] != json.loads(json.dumps(cfg.to_dict())):
        return False
    return all((rd.root / "notebooks" / f"{n}.ipynb").exists() for n in NOTEBOOKS)


def _check_executed(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise UserError(f"{path} holds an error output ({output.get('ename')}); rerun the pipeline")


#: What jupyter-book reads, relative to the repository root.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")


def build_book(profile: str, rerun: bool = False, root: Path | None = None) -> Path:
    """Run the pipeline if needed, then build the book from its executed notebooks.

    ``root``: where the book is built (default: the repository). Another folder gets a copy of
    the book's sources first, so that a test build never overwrites the published book.
    """
    cfg = load_profile(profile)
    rd = RunDir.for_profile(cfg)
    if rerun or not run_is_complete(rd, cfg):
        run_pipeline(profile)
    if root is None:
        root = repo_root()
    else:
        root.mkdir(parents=True, exist_ok=True)
        for name in BOOK_SOURCES:
            source = repo_root() / name
            if source.is_dir():
                shutil.copytree(source, root / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("_executed"))
            else:
                shutil.copy2(source, root / name)
    executed = root / "book" / "_executed"
    shutil.rmtree(executed, ignore_errors=True)
    executed.mkdir(parents=True)
    for name in NOTEBOOKS:
        source = rd.root / "notebooks" / f"{name}.ipynb"
        _check_executed(source)
        shutil.copy2(source, executed / source.name)
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: pages paste outputs of the notebooks (glue), a dependency Sphinx does not track, so
    # an incremental build after another run or profile would keep the previous numbers
    command = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "--all",
               "--warningiserror", "--keep-going"]
    result = subprocess.run(command, cwd=root)
    if result.returncode != 0:
        raise UserError(f"jupyter-book build failed (exit {result.returncode}); its messages are above")
    index = root / "_build" / "html" / "index.html"
    print(f"book: {index}", file=sys.stderr)
    return index
