"""A published run: the small outputs a book is built from, exported from a complete run, checked
byte for byte, and the tiers that reproduce its headline numbers.

:func:`export` copies into ``published/<profile>/`` what the book and the headline numbers are made
of: ``eval/`` (the per-question tables and the other small files beside them), ``profile.json``,
``stages/`` (settings, fingerprints, machine and data digests of every stage), ``timings.json``,
the executed stage notebooks, the executed book pages (``notebooks/book/``), every figure as PNG
(``figures/<notebook>-<n>.png``), the headline table (``headlines.csv``), a summary
(``published.json``) and ``MANIFEST.json`` (every file's SHA-256 and size). No model, embedding,
generated-query file or TREC run. The export is written into ``<folder>.partial`` and renamed at the
end, and exporting the same run twice gives the same bytes.

:func:`verify` checks a published folder against its manifest (a changed byte refuses, naming the
file); :func:`stale_stages` compares its stage records with today's fingerprints; :func:`tier1` and
:func:`tier3` reproduce its headline numbers (``reproduction/``, outside the manifest: checking a
run does not change it).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from xqglib.config.profiles import load_profile
from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, sha256_file, write_json
from xqglib.core.paths import repo_root
from xqglib.pipeline import runner
from xqglib.pipeline import stages as S
from xqglib.pipeline.common import resolved_run, settings_text
from xqglib.study import headlines as H

MANIFEST = "MANIFEST.json"
SUMMARY = "published.json"
HEADLINES = "headlines.csv"
#: Where the tiers write their comparisons, inside the published folder but outside its manifest.
REPRODUCTION = "reproduction"
#: The run's files that are published besides ``eval/``, the notebooks and what the export makes.
RUN_FILES = ("profile.json", "timings.json")
#: The executed book pages a run keeps for its export (``notebooks/book/`` in the run and the export).
BOOK_FOLDER = "notebooks/book"


def published_dir(profile: str) -> Path:
    """``published/<profile>`` in the repository: where a profile's published run lives."""
    return repo_root() / "published" / profile


# --------------------------------------------------------------------------------------------
# Writing files that read the same every time
# --------------------------------------------------------------------------------------------

def stable_json(obj: Any) -> str:
    """JSON with sorted keys, one space indent and a final newline: the same object, the same bytes."""
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def write_headlines(path: Path, frame: pd.DataFrame) -> None:
    """The headline table as CSV, values at full precision (``repr``: they read back as the same floats)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(H.COLUMNS)
    for r in frame[H.COLUMNS].itertuples(index=False):
        writer.writerow([*r[:6], repr(float(r.value)), int(r.precision)])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def read_headlines(path: Path) -> pd.DataFrame:
    """A table written by :func:`write_headlines` (or a tier's), every float as written."""
    frame = pd.read_csv(path, keep_default_na=False, dtype={**{c: str for c in H.KEY}, "value": str})
    frame["value"] = [float(v) for v in frame["value"]]  # Python's float() reads repr back exactly
    return frame


def normalised_notebook(path: Path) -> str:
    """An executed notebook without what differs between two executions of the same code on the same
    inputs: papermill's clock (start, end, duration) and the kernel's execution timestamps."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).get("papermill", {}).pop("start_time", None)
    for key in ("end_time", "duration"):
        nb.get("metadata", {}).get("papermill", {}).pop(key, None)
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        meta.pop("execution", None)
        for key in ("start_time", "end_time", "duration"):
            meta.get("papermill", {}).pop(key, None)
    return json.dumps(nb, ensure_ascii=False, indent=1) + "\n"


def extract_figures(notebook: Path, dest: Path) -> list[str]:
    """Every PNG in a notebook's outputs, in cell order, as ``<dest>/<notebook>-<n>.png`` (n from 1)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    written = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data is None:
                continue
            name = f"{notebook.stem}-{len(written) + 1}.png"
            (dest / name).write_bytes(base64.b64decode("".join(data) if isinstance(data, list) else data))
            written.append(name)
    return written


# --------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------

def listed_files(folder: Path) -> list[str]:
    """Every file of a published folder the manifest covers (all but itself and ``reproduction/``)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST and p.relative_to(folder).parts[0] != REPRODUCTION)


def write_manifest(folder: Path) -> dict[str, Any]:
    """``MANIFEST.json``: every file's SHA-256 and size in bytes."""
    files = {rel: {"sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
             for rel in listed_files(folder)}
    manifest = {"files": files, "total bytes": sum(f["bytes"] for f in files.values())}
    (folder / MANIFEST).write_text(stable_json(manifest), encoding="utf-8")
    return manifest


def verify(folder: Path) -> dict[str, Any]:
    """Refuse a published folder that is not byte for byte what its manifest lists: a changed,
    missing or extra file is named (one line)."""
    path = folder / MANIFEST
    if not path.exists():
        raise UserError(f"{folder} holds no {MANIFEST}: it is not a published run (python -m xqglib publish ...)")
    manifest = read_json(path)
    files = manifest.get("files", {})
    for rel, entry in sorted(files.items()):
        target = folder / rel
        if not target.is_file():
            raise UserError(f"{folder}: {rel} is listed in {MANIFEST} but missing; restore it (git checkout) or re-export")
        if target.stat().st_size != entry["bytes"] or sha256_file(target) != entry["sha256"]:
            raise UserError(f"{folder}: {rel} differs from {MANIFEST} (SHA-256 {sha256_file(target)[:12]}, "
                            f"recorded {entry['sha256'][:12]}); restore it (git checkout) or re-export")
    extra = [rel for rel in listed_files(folder) if rel not in files]
    if extra:
        raise UserError(f"{folder}: {extra[0]} is not in {MANIFEST}; remove it or re-export")
    return manifest


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

def book_notebooks(cfg: Profile, rd: RunDir) -> Path:
    """The run's executed book pages (``<run>/notebooks/book/``; they read the run's corpus,
    generated queries and runs, which are not published): executed once per run and notebook
    version, then kept, so that a second export gives the same bytes (a page measures this
    machine's roof each time it runs)."""
    folder = rd.root / BOOK_FOLDER
    made_from = {"run": S.fingerprint(cfg, S.for_benchmark(cfg)[-1]),
                 "notebooks": {name: S.notebook_digest(name) for name in runner.BOOK_NOTEBOOKS}}
    record = folder / "made_from.json"
    if record.exists() and read_json(record) == made_from \
            and all((folder / f"{name}.ipynb").exists() for name in runner.BOOK_NOTEBOOKS):
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write the book pages into {folder} ({exc.strerror}); publish from a writable copy "
                        "of the run") from None
    record.unlink(missing_ok=True)
    for name in runner.BOOK_NOTEBOOKS:
        runner.execute_book_notebook(name, {"run_dir": str(rd.root), "profile": cfg.name}, folder / f"{name}.ipynb")
        runner.check_executed(folder / f"{name}.ipynb")
    write_json(record, made_from)
    return folder


def complete_run(profile: str, run_dir: str | Path | None) -> tuple[Profile, RunDir]:
    """A run's own settings and folder, refused (one line) unless every stage finished under them."""
    rd = RunDir(run_dir) if run_dir else RunDir.for_profile(load_profile(profile))
    if not (rd.root / "profile.json").exists():
        raise UserError(f"{rd.root} holds no run (no profile.json): run it first (python -m xqglib run --profile "
                        f"{profile} --run-dir {rd.root})")
    cfg, rd = resolved_run(profile, str(rd.root))
    if cfg.name != profile:
        raise UserError(f"{rd.root} is a run of the {cfg.name} profile, not {profile}")
    unfinished = runner.first_unfinished(cfg, rd)
    if unfinished is not None:
        reason = S.stale_reason(cfg, rd, unfinished) or f"its executed notebook {unfinished.notebook} is missing"
        raise UserError(f"{rd.root} is not a complete run: {reason}; finish it first (python -m xqglib run "
                        f"--profile {profile} --run-dir {rd.root} --from {unfinished.number})")
    return cfg, rd


def run_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The per-question tables the headline numbers are computed from (``eval/<name>.parquet``)."""
    missing = [n for n in H.TABLES if not (folder / "eval" / f"{n}.parquet").exists()]
    if missing:
        raise UserError(f"{folder}/eval has no {missing[0]}.parquet; is the run complete?")
    return {n: pd.read_parquet(folder / "eval" / f"{n}.parquet") for n in H.TABLES}


def summary(cfg: Profile, rd: RunDir, overrides: dict[str, Any]) -> dict[str, Any]:
    """What the banner and the README say about a published run, from its stage records only
    (nothing of the export's own time or place)."""
    records = [read_json(S.record_path(rd, s)) for s in S.for_benchmark(cfg)]
    last = max(records, key=lambda r: r["finished"])
    machine = last.get("machine") or {}
    return {"profile": cfg.name, "overrides": overrides, "finished": last["finished"],
            "commit": machine.get("git commit", "unknown"), "cpu": machine.get("CPU", "unknown"),
            "threads": machine.get("torch threads"), "cores": machine.get("cores"),
            "stages": {s.label: r["fingerprint"] for s, r in zip(S.for_benchmark(cfg), records)}}


def export(profile: str, run_dir: str | Path | None = None, to: str | Path | None = None) -> Path:
    """Export a complete run of ``profile`` into ``to`` (default ``published/<profile>``); returns it."""
    cfg, rd = complete_run(profile, run_dir)
    dest = Path(to) if to else published_dir(profile)
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"publishing {rd.root} -> {dest}", file=sys.stderr, flush=True)
    pages = book_notebooks(cfg, rd)
    (partial / "eval").mkdir(parents=True)
    for path in sorted((rd.root / "eval").iterdir()):
        if path.is_file() and not path.name.startswith("."):  # parquet byte for byte; xor_predictions/ stays
            shutil.copyfile(path, partial / "eval" / path.name)
    for name in RUN_FILES:
        shutil.copyfile(rd.root / name, partial / name)
    (partial / "stages").mkdir()
    for s in S.for_benchmark(cfg):
        shutil.copyfile(S.record_path(rd, s), partial / "stages" / S.record_path(rd, s).name)
    (partial / BOOK_FOLDER).mkdir(parents=True)
    (partial / "figures").mkdir()
    for s in S.for_benchmark(cfg):
        shutil.copyfile(rd.root / "notebooks" / f"{s.notebook}.ipynb", partial / "notebooks" / f"{s.notebook}.ipynb")
    for name in runner.BOOK_NOTEBOOKS:
        (partial / BOOK_FOLDER / f"{name}.ipynb").write_text(normalised_notebook(pages / f"{name}.ipynb"), encoding="utf-8")
    for notebook in sorted((partial / "notebooks").rglob("*.ipynb")):
        extract_figures(notebook, partial / "figures")
    write_headlines(partial / HEADLINES, H.headline_rows(cfg, run_tables(partial)))
    saved = read_json(rd.root / "profile.json")
    (partial / SUMMARY).write_text(stable_json(summary(cfg, rd, saved.get("overrides", {}))), encoding="utf-8")
    manifest = write_manifest(partial)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    partial.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    print(f"published {len(manifest['files'])} files, {manifest['total bytes'] / 1e6:.1f} MB, in {dest}", file=sys.stderr)
    return dest


# --------------------------------------------------------------------------------------------
# In step with the code
# --------------------------------------------------------------------------------------------

def published_profile(folder: Path) -> Profile:
    """The settings a published run ran under: its profile with its recorded overrides, as the
    code defines that profile today."""
    saved = read_json(folder / "profile.json")
    return load_profile(saved["profile"]["name"], saved.get("overrides", {}))


def stale_stages(folder: Path) -> list[tuple[S.Stage, str]]:
    """Each stage whose published record no longer matches today's fingerprint (the settings and
    notebooks of it and every earlier stage), with what changed; empty when in step."""
    cfg = published_profile(folder)
    out = []
    for s in S.for_benchmark(cfg):
        path = folder / "stages" / S.record_path(RunDir(folder), s).name
        if not path.exists():
            out.append((s, "no record is published"))
            continue
        record = read_json(path)
        if record.get("fingerprint") != S.fingerprint(cfg, s):
            now = S.covered_settings(cfg, s)
            then = record.get("settings", {})
            changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
            out.append((s, "changed: " + (", ".join(changed[:4]) or "the fingerprint's recipe")
                        + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")))
    return out


def stale_message(folder: Path) -> str | None:
    """One line naming the first stage to rerun for a published run out of step (None: in step)."""
    stale = stale_stages(folder)
    if not stale:
        return None
    first, why = stale[0]
    cfg = published_profile(folder)
    return (f"the published run in {folder} is out of step with the code from {first.label} on ({why}): rerun "
            f"from stage {first.number} (python -m xqglib run --profile {cfg.name} --from {first.number}), then "
            f"python -m xqglib publish --profile {cfg.name}")


# --------------------------------------------------------------------------------------------
# Reproduction tiers
# --------------------------------------------------------------------------------------------

def tier1(folder: Path, write: bool = True) -> pd.DataFrame:
    """Tier 1: the headline numbers recomputed from the published per-question tables, against the
    published headline table (they must match exactly)."""
    verify(folder)
    rerun = H.headline_rows(published_profile(folder), run_tables(folder))
    compared = H.compare_headlines(read_headlines(folder / HEADLINES), rerun)
    if write:
        record_tier(folder, 1, compared, f"the published per-question tables of {folder.name}")
    return compared


def tier3(folder: Path, run_dir: str | Path) -> pd.DataFrame:
    """Tier 3: a fresh complete run of the published settings (``python -m xqglib run --profile P
    --run-dir D``, finished before this is called) against the published headline numbers."""
    verify(folder)
    expected = published_profile(folder)
    cfg, rd = complete_run(expected.name, run_dir)
    if cfg.to_dict() != expected.to_dict():
        changed = sorted(k for k, v in cfg.flat().items() if expected.flat().get(k) != v)
        raise UserError(f"{rd.root} ran under other settings than the published run ({', '.join(changed[:4])}); "
                        f"rerun it with the published ones (python -m xqglib run --profile {expected.name} "
                        f"--run-dir {rd.root})")
    compared = H.compare_headlines(read_headlines(folder / HEADLINES), H.headline_rows(cfg, run_tables(rd.root)))
    stages = {s.label: read_json(S.record_path(rd, s)).get("machine", {}) for s in S.for_benchmark(cfg)}
    last = stages[S.for_benchmark(cfg)[-1].label]
    record_tier(folder, 3, compared, f"the run in {rd.root} (commit {last.get('git commit', 'unknown')}, "
                                     f"{last.get('CPU', 'unknown CPU')}, {last.get('torch threads', '?')} threads)")
    return compared


def record_tier(folder: Path, tier: int, compared: pd.DataFrame, against: str) -> Path:
    """``reproduction/tier<N>.csv`` (every number, both values, diff, tolerance, verdict) and its
    note ``tier<N>.json`` (what was compared, when, the verdict counts)."""
    out = folder / REPRODUCTION
    out.mkdir(exist_ok=True)
    path = out / f"tier{tier}.csv"
    compared.to_csv(path, index=False, float_format="%.17g", lineterminator="\n")
    note = {"tier": tier, "compared": against, "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "counts": H.verdict_counts(compared)}
    (out / f"tier{tier}.json").write_text(stable_json(note), encoding="utf-8")
    return path


def recorded_tiers(folder: Path) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """Every tier recorded in ``reproduction/``, by tier: its note and its table."""
    out = []
    for note in sorted((folder / REPRODUCTION).glob("tier*.json")):
        table = note.with_suffix(".csv")
        if table.exists():
            out.append((read_json(note), pd.read_csv(table, keep_default_na=False, na_values=["nan", ""],
                                                     dtype={c: str for c in H.KEY})))
    return out


def reproduce(tier: int, published: str | Path | None = None, profile: str = "cpu",
              run_dir: str | Path | None = None) -> pd.DataFrame:
    """``python -m xqglib reproduce --tier N``: run a tier, record it, and print its verdict counts."""
    folder = Path(published) if published else published_dir(profile)
    if tier == 1:
        compared = tier1(folder)
    elif tier == 3:
        if run_dir is None:
            raise UserError("tier 3 compares a fresh complete run with the published one: run it first (python -m "
                            "xqglib run --profile P --run-dir D), then pass --run-dir D")
        compared = tier3(folder, run_dir)
    elif tier == 2:
        raise UserError("tier 2 (scoring the published TREC runs again) is not implemented: TREC runs are not "
                        "published; use tier 1 (the published tables) or tier 3 (a fresh run)")
    else:
        raise UserError(f"no tier {tier}; tiers are 1 (the published tables) and 3 (a fresh run)")
    counts = H.verdict_counts(compared)
    print(f"tier {tier}: " + ", ".join(f"{n} {v}" for v, n in counts.items())
          + f" of {len(compared)} headline numbers; {folder / REPRODUCTION / f'tier{tier}.csv'}")
    return compared


# --------------------------------------------------------------------------------------------
# The book from a published run
# --------------------------------------------------------------------------------------------

def published_banner(folder: Path) -> str:
    """The line every page shows for a book built from a published run."""
    import html

    meta = read_json(folder / SUMMARY)
    cfg = published_profile(folder)
    changed = settings_text(cfg)
    threads = f", {meta['threads']} threads" if meta.get("threads") else ""
    where = f"{folder.parent.name}/{folder.name}"
    return (f"Published run of the <code>{html.escape(meta['profile'])}</code> profile "
            f"(<code>{html.escape(where)}</code>), commit <code>{html.escape(str(meta['commit']))}</code>, "
            f"machine {html.escape(str(meta['cpu']))}{threads}, finished {html.escape(meta['finished'][:10])}"
            + (f"; settings changed from the profile: <code>{html.escape(changed)}</code>" if changed else "") + ".")


def build_published_book(folder: Path, root: Path | None = None) -> Path:
    """The book from a published run, without running any model: its manifest checked, its executed
    notebooks copied into the book, the reproduction page executed against it (tables only)."""
    verify(folder)
    stale = stale_message(folder)
    if stale:
        print(f"warning: {stale}", file=sys.stderr)
    cfg = published_profile(folder)
    root = runner.prepare_book(root)
    executed = root / "book" / "_executed"
    for s in S.STAGES:
        source = folder / "notebooks" / f"{s.notebook}.ipynb"
        runner.check_executed(source)
        runner.copy_for_the_book(source, executed / source.name)
    for name in runner.BOOK_NOTEBOOKS:
        runner.copy_for_the_book(folder / BOOK_FOLDER / f"{name}.ipynb", executed / f"{name}.ipynb")
    runner.execute_reproduction_page(cfg.name, executed, published=folder)
    return runner.render_book(root, published_banner(folder))


def book(profile: str, local: bool = False, rerun: bool = False, overrides: dict[str, Any] | str | None = None,
         run_dir: str | Path | None = None, root: Path | None = None) -> Path:
    """``python -m xqglib book``: the profile's complete local run when there is one; else its
    published run (``published/<profile>``, no model runs); else the pipeline runs, as with ``local``
    (or any of ``rerun``, ``overrides``, ``run_dir``)."""
    if local or rerun or overrides or run_dir:
        return runner.build_book(profile, rerun=rerun, overrides=overrides, run_dir=run_dir, root=root)
    cfg = load_profile(profile)
    own = RunDir.for_profile(cfg)
    if (own.root / "profile.json").exists() and runner.first_unfinished(cfg, own) is None:
        return runner.build_book(profile, root=root)
    folder = published_dir(profile)
    if (folder / MANIFEST).exists():
        print(f"no complete local run of {profile}: the book shows the published one ({folder}); "
              "--local runs the pipeline instead", file=sys.stderr)
        return build_published_book(folder, root)
    return runner.build_book(profile, root=root)
