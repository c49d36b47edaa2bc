"""Running the notebooks in order with papermill, and building the book from their executed copies.

The executed notebooks of a profile land in ``runs/<profile>/notebooks``. The book is built from a
copy of them (``book/_executed``) with jupyter-book 1, which never re-executes them: what the book
shows is what the run computed. A notebook that failed stops the pipeline, and no book is built
from a run with a failed or missing notebook.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from xqglib.config.profiles import load_profile
from xqglib.config.settings import Profile, flatten_overrides, parse_overrides
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.paths import repo_root
from xqglib.core.progress import duration
from xqglib.pipeline import stages as S
from xqglib.pipeline.common import record_profile, settings_text

KERNEL = "xqg"


def _kernel_manager_class():
    """Kernels over local sockets (IPC) rather than TCP: nothing is exposed, and the kernel has no
    reason to warn six times a run that TCP traffic is not encrypted."""
    import tempfile

    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(tempfile.gettempdir(), f"xqg-kernel-{os.getpid()}"))
            super().__init__(**kwargs)

    return IPCKernelManager


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


#: The executed copy being written now (removed if the run is interrupted).
_RUNNING: list[Path] = []


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C or a kill while a notebook runs: papermill swallows the KeyboardInterrupt, so leave
    here. The half-executed notebook goes; finished stages stay (their records say so); the
    kernel, orphaned, exits on its own."""
    for partial in _RUNNING:
        partial.unlink(missing_ok=True)
    sys.stderr.write("\ninterrupted; finished stages are kept, and `run --from N` resumes\n")
    sys.stderr.flush()
    os._exit(130)


def run_notebook(stage: S.Stage, cfg: Profile, rd: RunDir, overrides: dict[str, Any] | None) -> Path:
    import papermill as pm

    source = repo_root() / "notebooks" / f"{stage.notebook}.ipynb"
    if not source.exists():
        raise UserError(f"{source} is missing; is this a complete checkout?")
    out = rd.path("notebooks", f"{stage.notebook}.ipynb")
    partial = out.with_suffix(".running.ipynb")
    out.unlink(missing_ok=True)  # an executed copy is only ever the latest, finished one
    _RUNNING[:] = [partial]
    try:
        # progress comes from the library itself (xqglib.core.progress), straight to this terminal
        pm.execute_notebook(str(source), str(partial), kernel_name=_kernel_name(), cwd=str(repo_root()),
                            parameters={"profile": cfg.name, "run_dir": str(rd.root),
                                        "overrides": json.dumps(flatten_overrides(overrides or {}))},
                            progress_bar=False, kernel_manager_class=_kernel_manager_class(),
                            # the library's progress lines go to this terminal, not into the notebook
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    except pm.PapermillExecutionError as exc:
        failed = out.with_suffix(".failed.ipynb")
        partial.replace(failed)
        raise UserError(f"notebook {stage.notebook} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                        f"the executed notebook, with the traceback, is at {failed}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        _RUNNING.clear()
    partial.replace(out)
    return out


def _keep_the_default_run(cfg: Profile, rd: RunDir) -> None:
    """Overrides without ``--run-dir`` must not silently replace stages of the profile's own run."""
    replaced = [s for s in S.STAGES if S.record_path(rd, s).exists() and S.stale_reason(cfg, rd, s)]
    if replaced:
        raise UserError(f"these settings differ from the run in {rd.root} from {replaced[0].label} on, so its "
                        "results would be replaced; give this run its own --run-dir (copy that directory "
                        "there first to reuse its finished stages), or pass --run-dir "
                        f"{rd.root} to replace them on purpose")


def _usable_run_dir(rd: RunDir) -> None:
    if rd.root.exists() and not rd.root.is_dir():
        raise UserError(f"the run directory {rd.root} is a file; choose another --run-dir")
    try:
        rd.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the run directory {rd.root} ({exc.strerror}); choose another --run-dir") from None


def run_pipeline(profile: str, overrides: dict[str, Any] | str | None = None, run_dir: str | Path | None = None,
                 start: str | int | None = None, stop: str | int | None = None) -> RunDir:
    """Execute the stages ``start``..``stop`` (numbers or names) for a profile.

    ``start`` None resumes: the first stage that has not finished under these settings (stages
    before it are reused, and the run says so). Everything is checked before any work starts:
    the settings, the stage range, the run directory, and that every stage of the range finds what
    it reads finished under these very settings (or run by the range before it).
    """
    given = parse_overrides(overrides)
    cfg = load_profile(profile, given)
    chosen = S.select(start, stop, cfg)
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(cfg)
    if given and run_dir is None:
        _keep_the_default_run(cfg, rd)
    _usable_run_dir(rd)
    if start is None:
        first = first_unfinished(cfg, rd)
        chosen = [s for s in chosen if first is not None and s.number >= first.number]
        if not chosen:
            print(f"every stage finished under these settings in {rd.root}; nothing to run "
                  "(--from 1 runs them all again)", file=sys.stderr)
            return rd
        if chosen[0].number > 1:
            print(f"stages 1-{chosen[0].number - 1} finished under these settings: reusing them "
                  "(--from 1 runs them all again)", file=sys.stderr)
    for s in chosen:  # every stage of the range, before the first starts
        S.check_ready(cfg, rd, s, planned=chosen)
    _models_at_hand(cfg, chosen)
    # stale timings of an earlier run must not mix into this one's
    S.forget_timings(rd, chosen)
    record_profile(rd, cfg, given)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupted)
    for stage in chosen:
        print(f"[{stage.number}/{len(S.for_benchmark(cfg))}] {stage.title} ({stage.notebook}, {cfg.name} profile)",
              file=sys.stderr, flush=True)
        started = time.perf_counter()
        run_notebook(stage, cfg, rd, given)
        print(f"      done in {duration(time.perf_counter() - started)}", file=sys.stderr, flush=True)
    return rd


def _models_at_hand(cfg: Profile, chosen: list[S.Stage]) -> None:
    """Refuse at once, before any work, a run whose stages need models this machine cannot load
    (hub names offline: the paper profile without the network)."""
    from xqglib.models.registry import missing_models

    loaded = {kind for s in chosen for kind in s.models}
    needed = (list(cfg.generator.models) if "generator" in loaded else []) + \
             ([cfg.retriever.encoder] if "encoder" in loaded else [])
    missing = missing_models(needed)
    problems = []
    if missing:
        problems.append(f"model(s) {', '.join(missing)}: they come from the Hugging Face hub: download them where "
                        "the network allows (huggingface-cli download NAME, then copy the cache), or point the "
                        "settings at saved model folders (--set retriever.encoder=/path/to/folder)")
    if any(s.number == 1 for s in chosen):
        from xqglib.data.b3 import missing_inputs

        problems += missing_inputs(cfg)
    if problems:
        raise UserError(f"the {cfg.name} profile needs what this machine does not have:\n"
                        + "\n".join(f"  - {p}" for p in problems)
                        + ("\n  (the same code path runs offline on tiny models: --set data.benchmark=b3-tiny, "
                           "see the README)" if cfg.data.benchmark == "b3" else ""))


def first_unfinished(cfg: Profile, rd: RunDir) -> S.Stage | None:
    """The first stage whose outputs in ``rd`` are missing or from other settings (None: all done)."""
    for stage in S.for_benchmark(cfg):
        if S.stale_reason(cfg, rd, stage) or not (rd.root / "notebooks" / f"{stage.notebook}.ipynb").exists():
            return stage
    return None


def execute_book_notebook(name: str, parameters: dict[str, Any], out: Path) -> None:
    """A page of :data:`BOOK_NOTEBOOKS` (or :data:`REPRODUCTION_PAGE`): executed with ``parameters``
    (seconds), straight into ``out``."""
    import papermill as pm

    print(f"[book] {name.replace('_', ' ')}", file=sys.stderr, flush=True)
    try:
        pm.execute_notebook(str(repo_root() / "notebooks" / f"{name}.ipynb"), str(out),
                            kernel_name=_kernel_name(), cwd=str(repo_root()), progress_bar=False,
                            parameters=parameters, kernel_manager_class=_kernel_manager_class(),
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    except pm.PapermillExecutionError as exc:
        out.unlink(missing_ok=True)
        raise UserError(f"the book page {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None


def copy_for_the_book(source: Path, dest: Path) -> None:
    """An executed notebook as the book shows it: the parameter cells (a run's local paths, no
    content) are hidden."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    dest.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")


def _install_mathjax(dest: Path) -> None:
    """MathJax 3 (its tex-chtml component and fonts) into the book's static files, from the
    PyPI package django-static-mathjax, so that formulas render without a network."""
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    es5 = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5" if spec else None
    if es5 is None or not (es5 / "tex-chtml.js").exists():
        raise UserError("MathJax is missing: the package django-static-mathjax==3.2.2.1 is not installed; run `make setup`")
    if (dest / "tex-chtml.js").exists():
        return
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    shutil.copy2(es5 / "tex-chtml.js", partial / "tex-chtml.js")
    shutil.copytree(es5 / "output" / "chtml" / "fonts", partial / "output" / "chtml" / "fonts")
    partial.rename(dest)


def check_executed(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise UserError(f"{path} holds an error output ({output.get('ename')}); rerun the pipeline")


#: What jupyter-book reads, relative to the repository root.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")


def book_toc() -> str:
    """``_toc.yml``: the study's pages, then one page per stage of the stage table."""
    lines = ["format: jb-book", "root: book/intro", "parts:", "- caption: The study", "  chapters:"]
    lines += [f"  - file: book/{page}" for page in BOOK_PAGES]  # the worked example comes second
    lines += ["- caption: The pipeline, as executed", "  chapters:"]
    lines += [f"  - file: book/_executed/{s.notebook}" for s in S.STAGES]
    return "\n".join(lines) + "\n"


#: The study's own pages, in order: book/<page>.md, and the notebooks of :data:`BOOK_NOTEBOOKS`.
BOOK_PAGES = ("method", "_executed/worked_example", "results", "rq2", "rq3", "reproducibility",
              "_executed/reproduction", "_executed/study_cost", "_executed/paper_cost")
#: Notebooks executed against the run when the book is built (not stages): the worked example that
#: teaches the method, the whole study's cost against one roof, and the paper profile's cost sheet
#: (the reproducibility page quotes both).
BOOK_NOTEBOOKS = ("worked_example", "study_cost", "paper_cost")


def book_banner(cfg: Profile, rd: RunDir) -> str:
    """The line every page of the book shows: the run it was built from and its changed settings."""
    changed = settings_text(cfg)
    return (f"Built from run <code>{html.escape(rd.root.name)}</code> of the <code>{cfg.name}</code> profile"
            + (f"; settings changed from the profile: <code>{html.escape(changed)}</code>" if changed else "") + ".")


#: The book's configuration as a build uses it (``_config.yml`` and the run's banner).
GENERATED_CONFIG = "_config.generated.yml"


def _book_config(root: Path, banner: str) -> Path:
    """``_config.yml`` with the run's banner on every page, written beside it (its relative paths
    mean the same there; the committed file stays as it is)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config.setdefault("html", {})["announcement"] = banner
    path = root / GENERATED_CONFIG
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def build_book(profile: str, rerun: bool = False, root: Path | None = None,
               overrides: dict[str, Any] | str | None = None, run_dir: str | Path | None = None) -> Path:
    """Run what the pipeline still needs, then build the book from its executed notebooks.

    Stages that finished under the same settings are reused; the first one that did not (or all,
    with ``rerun``) and every later one run again. ``root``: where the book is built (default:
    the repository). Another folder gets a copy of the book's sources first, so that a test build
    never overwrites the published book.
    """
    cfg = load_profile(profile, overrides)
    if cfg.data.benchmark != "b1":
        raise UserError(f"the book is built on benchmark B1 (its pages answer all three research questions on "
                        f"XQuAD); a {cfg.data.benchmark} run answers the first one: run it with `python -m xqglib "
                        f"run --profile {profile} ...` and read its Table 1 in runs/<profile>/notebooks/06_evaluate.ipynb")
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(cfg)
    run_pipeline(profile, overrides, rd.root, start=1 if rerun else None)
    unfinished = first_unfinished(cfg, rd)
    if unfinished is not None:  # never publish a page of a stage that did not finish under these settings
        raise UserError(f"{unfinished.label} has not finished under these settings in {rd.root}; "
                        f"no book is built (python -m xqglib run --from {unfinished.number} ...)")
    root = prepare_book(root)
    executed = root / "book" / "_executed"
    for stage in S.STAGES:
        source = rd.root / "notebooks" / f"{stage.notebook}.ipynb"
        check_executed(source)
        copy_for_the_book(source, executed / source.name)
    for name in BOOK_NOTEBOOKS:
        execute_book_notebook(name, {"run_dir": str(rd.root), "profile": cfg.name}, executed / f"{name}.ipynb")
        copy_for_the_book(executed / f"{name}.ipynb", executed / f"{name}.ipynb")
    execute_reproduction_page(cfg.name, executed, run_dir=rd.root)
    return render_book(root, book_banner(cfg, rd))


#: The reproduction page: executed when any book is built (it reads tables only, no model), against
#: the profile's published run where there is one.
REPRODUCTION_PAGE = "reproduction"


def execute_reproduction_page(profile: str, executed: Path, run_dir: Path | None = None,
                              published: Path | None = None) -> None:
    """The reproduction page into the book: the published run of ``profile`` (``published``, default
    ``published/<profile>``), its tier-1 check made now and the latest recorded tiers."""
    folder = published if published is not None else repo_root() / "published" / profile
    out = executed / f"{REPRODUCTION_PAGE}.ipynb"
    execute_book_notebook(REPRODUCTION_PAGE, {"profile": profile, "published": str(folder),
                                              "run_dir": "" if run_dir is None else str(run_dir)}, out)
    copy_for_the_book(out, out)


def prepare_book(root: Path | None = None) -> Path:
    """The folder a book is built in, ready for its executed notebooks: the repository (default),
    or another folder that gets a copy of the book's sources first (a test build never overwrites
    the repository's book); the table of contents, MathJax and an empty ``book/_executed``."""
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
    (root / "_toc.yml").write_text(book_toc(), encoding="utf-8")
    _install_mathjax(root / "book" / "_static" / "mathjax")
    executed = root / "book" / "_executed"
    shutil.rmtree(executed, ignore_errors=True)
    executed.mkdir(parents=True)
    return root


def render_book(root: Path, banner: str) -> Path:
    """jupyter-book over ``root`` (its ``book/_executed`` filled), ``banner`` on every page."""
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: pages paste outputs of the notebooks (glue), a dependency Sphinx does not track, so
    # an incremental build after another run or profile would keep the previous numbers
    # --quiet: no Sphinx status dump; warnings still show, and fail the build
    command = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "--all", "--quiet",
               "--warningiserror", "--keep-going", "--config", str(_book_config(root, banner))]
    print("building the book (jupyter-book)", file=sys.stderr, flush=True)
    # its banner goes to stdout: shown only when the build fails; warnings (stderr) always show
    result = subprocess.run(command, cwd=root, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout)
        raise UserError(f"jupyter-book build failed (exit {result.returncode}); its messages are above")
    index = root / "_build" / "html" / "index.html"
    print(f"book: {index}", file=sys.stderr)
    return index
