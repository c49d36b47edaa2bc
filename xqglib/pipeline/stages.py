"""The pipeline's stages, declared once.

:data:`STAGES` is the single table of the pipeline: for each stage its notebook, what it reads and
writes in the run directory (path templates), and which settings its fingerprint covers. The
runner, ``--from``/``--to``, reuse checks, stage timings and the book's stage list all read it;
adding a stage is adding a row (and its notebook).

A stage's *fingerprint* is the hash of the settings of that stage **and of every stage before
it** (each stage reads what the earlier ones wrote), of their notebooks, and, from the first stage
that generates queries on, of the sampler's version (a new sampler draws other queries). When a
stage finishes it writes a record (``stages/<name>.json``) with its fingerprint; a stage starts
only if the stages it reads from finished under the current settings and no earlier record
disagrees with them, so a run never mixes outputs of different settings (a changed setting names
the stage to rerun from), while a stage that reads only the data may run before the others.

Path templates may hold ``{generator}`` (every generator), ``{primary_generator}``, ``{retriever}``
(every retriever), ``{trained}`` (retrievers that are trained), ``{training}`` (their kinds of
training data), ``{system}`` (every Table 1 system, see :func:`xqglib.study.experiments.main_conditions`),
``{arm}`` (the second research question's contrastive arms), ``{arm_training}`` (their kinds of
training), ``{rq2}`` (every retriever the second research question compares), ``{rq3}`` (the
third's) and ``{sweep_seed}`` (the seed sweep's further sampling seeds).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqglib.config.settings import BENCHMARKS, Profile
from xqglib.core import timing
from xqglib.core.artifacts import RunDir, safe_name
from xqglib.core.errors import UserError
from xqglib.core.formats import read_json, write_json
from xqglib.core.timing import Timing
from xqglib.study.experiments import main_conditions


@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    notebook: str
    title: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    #: settings (a section, or ``section.field``) this stage's own work depends on
    settings: tuple[str, ...]
    #: the models the stage loads: "generator" (every generator) and/or "encoder" (the retrievers')
    models: tuple[str, ...] = ()
    #: the benchmarks (``data.benchmark``) the stage runs on: RQ2 and RQ3 are built on XQuAD (B1)
    benchmarks: tuple[str, ...] = BENCHMARKS

    @property
    def label(self) -> str:
        return f"stage {self.number} ({self.name})"


#: The retriever section's convergence criterion, which the reader trains until as well (on its
#: loss: ``retriever.dev_measure`` is the retrievers' alone).
CRITERION = ("retriever.converge", "retriever.max_dev_rows", "retriever.min_passes", "retriever.eval_share",
             "retriever.patience", "retriever.max_passes")

STAGES: tuple[Stage, ...] = (
    Stage(1, "data", "01_data", "Data: the benchmark (B1, or B3 in the paper profile)",
          reads=(),
          writes=("data/corpus.jsonl", "data/test_queries.jsonl", "data/qrels.test.txt",
                  "data/answers.test.json", "data/split.json", "data/generator_train.jsonl",
                  "data/generator_dev.jsonl", "data/retriever_train_{training}.jsonl"),
          settings=("data", "generation.languages", "retriever.retrievers", "retriever.negatives",
                    "retriever.negative_pool", "run.seed")),
    Stage(2, "train-generator", "02_train_generator", "Training the query generator",
          reads=("data/generator_train.jsonl", "data/generator_dev.jsonl"),
          writes=("generators/{generator}/model/config.json", "generators/{generator}/log.json",
                  "generators/{generator}/fingerprint.json"),
          settings=("generator", "run"),
          models=("generator",)),
    Stage(3, "generate", "03_generate_queries", "Generating queries",
          reads=("generators/{generator}/model/config.json", "data/corpus.jsonl", "data/generator_dev.jsonl"),
          writes=("generated/{generator}.jsonl", "generated/{generator}.report.json",
                  "generated/{generator}.fingerprint.json", "generated/{primary_generator}.seed-{sweep_seed}.jsonl"),
          settings=("generation", "run"),
          models=("generator",)),
    Stage(4, "train-retriever", "04_train_retriever", "Training the dense retrievers",
          reads=("data/retriever_train_{training}.jsonl",),
          writes=("retrievers/{trained}/model/config.json", "retrievers/{trained}/log.json",
                  "retrievers/{trained}/fingerprint.json"),
          settings=("retriever", "run"),
          models=("encoder",)),
    Stage(5, "encode-search", "05_encode_augment_search", "Encoding, augmentation and search",
          reads=("retrievers/{trained}/model/config.json", "data/corpus.jsonl", "data/test_queries.jsonl",
                 "generated/{primary_generator}.jsonl"),
          writes=("embeddings/{retriever}/passages.npy", "embeddings/{retriever}/passages.json",
                  "embeddings/{retriever}/queries.npy", "embeddings/{retriever}/queries.json",
                  "embeddings/{retriever}/generated.npy", "embeddings/{retriever}/generated.json",
                  "trec/{system}.trec"),
          settings=("retriever", "augmentation.alpha", "evaluation.search_depth", "run"),
          models=("encoder",)),
    Stage(6, "evaluate", "06_evaluate", "Evaluation",
          reads=("trec/{system}.trec", "embeddings/{retriever}/passages.npy", "data/qrels.test.txt",
                 "data/answers.test.json"),
          writes=("eval/results.parquet", "eval/seed_results.parquet", "eval/conditions.json",
                  "eval/xor_predictions/{system}.json", "eval/xor_predictions/answers.jsonl"),
          settings=("augmentation", "evaluation", "run")),
    Stage(7, "train-contrastive", "07_train_contrastive", "RQ2: training the contrastive retrievers",
          reads=("data/split.json",),
          writes=("data/contrastive_train_{arm_training}.jsonl", "retrievers/{arm}/model/config.json",
                  "retrievers/{arm}/log.json", "retrievers/{arm}/fingerprint.json"),
          settings=("contrastive", "retriever", "run"),
          models=("encoder",),
          benchmarks=("b1",)),
    Stage(8, "encode-rq2", "08_encode_rq2", "RQ2: encoding B1 and XQuAD-R",
          reads=("retrievers/{arm}/model/config.json", "retrievers/{trained}/model/config.json", "data/corpus.jsonl",
                 "data/test_queries.jsonl", "generated/{primary_generator}.jsonl", "data/split.json"),
          writes=("embeddings/{arm}/passages.npy", "embeddings/{arm}/queries.npy", "embeddings/{arm}/generated.npy",
                  "xquadr/{rq2}/questions.npy", "xquadr/{rq2}/questions.json",
                  "xquadr/{rq2}/candidates.npy", "xquadr/{rq2}/candidates.json"),
          settings=("xquadr", "run"),
          models=("encoder",),
          benchmarks=("b1",)),
    Stage(9, "evaluate-rq2", "09_evaluate_rq2", "RQ2: evaluation",
          reads=("embeddings/{rq2}/passages.npy", "xquadr/{rq2}/questions.npy", "xquadr/{rq2}/candidates.npy"),
          writes=("eval/rq2_results.parquet", "eval/rq2_seed_results.parquet", "eval/rq2_probe.parquet",
                  "eval/rq2_conditions.json"),
          settings=("augmentation", "evaluation", "xquadr", "run"),
          benchmarks=("b1",)),
    Stage(10, "rq3-train", "10_rq3_train", "RQ3: the matrix, a generator for every passage language, the reader",
          reads=("generators/{primary_generator}/model/config.json", "data/split.json"),
          writes=("data/rq3_passages.jsonl", "data/rq3_questions.jsonl", "data/rq3_answers.jsonl",
                  "data/rq3_generator_train.jsonl", "data/rq3_generator_dev.jsonl", "data/rq3_reader_train.jsonl",
                  "data/rq3_reader_dev.jsonl",
                  "generators/rq3-passages/model/config.json", "generators/rq3-passages/log.json",
                  "reader/model/config.json", "reader/log.json"),
          settings=("rq3.query_languages", "rq3.passage_languages", "rq3.generation_languages",
                    "rq3.max_questions", "rq3.generator_steps", "rq3.generator_max_pairs", "rq3.reader_steps",
                    "rq3.reader_max_examples", "rq3.reader_batch_size", "rq3.reader_lr", "rq3.reader_max_len",
                    "rq3.reader_stride", "generator", "retriever.encoder", "retriever.warmup_ratio",
                    "retriever.freeze_embeddings", *CRITERION, "run"),
          models=("generator", "encoder"),
          benchmarks=("b1",)),
    Stage(11, "rq3-encode", "11_rq3_encode", "RQ3: generating for every passage, encoding every condition",
          reads=("generators/rq3-passages/model/config.json", "data/rq3_passages.jsonl", "data/rq3_questions.jsonl",
                 "retrievers/{trained}/model/config.json", "retrievers/{arm}/model/config.json"),
          writes=("generated/rq3-passages.jsonl", "rq3/{rq3}/questions.npy", "rq3/{rq3}/passages.npy",
                  "rq3/{rq3}/generated.npy", "rq3/{rq3}/text.npy", "rq3/{rq3}/querydocs.npy",
                  "rq3/{rq3}/expansion.json", "generated/rq3-passages.seed-{sweep_seed}.jsonl",
                  "rq3/{rq3}/generated.seed-{sweep_seed}.npy", "rq3/{rq3}/text.seed-{sweep_seed}.npy",
                  "rq3/{rq3}/querydocs.seed-{sweep_seed}.npy"),
          settings=("rq3.retrievers", "rq3.n_per_language", "rq3.text_max_len", "generation", "retriever", "run"),
          models=("generator", "encoder"),
          benchmarks=("b1",)),
    Stage(12, "rq3-evaluate", "12_rq3_evaluate", "RQ3: retrieval and reading in every cell",
          reads=("rq3/{rq3}/passages.npy", "reader/model/config.json", "data/rq3_answers.jsonl"),
          writes=("eval/rq3_retrieval.parquet", "eval/rq3_reading.parquet", "eval/rq3_reads.parquet",
                  "eval/rq3_seed_results.parquet", "eval/rq3_conditions.json"),
          settings=("rq3", "augmentation.alpha", "run"),
          models=("encoder",),
          benchmarks=("b1",)),
)


def stage(key: str | int) -> Stage:
    """A stage by number (``2`` or ``"2"``), name (``"train-generator"``) or notebook."""
    for s in STAGES:
        if str(key) in (str(s.number), s.name, s.notebook):
            return s
    raise UserError(f"no stage {key!r}; stages are "
                    + ", ".join(f"{s.number} ({s.name})" for s in STAGES))


def select(start: str | int | None = None, stop: str | int | None = None,
           cfg: Profile | None = None) -> list[Stage]:
    """The stages from ``start`` to ``stop`` (inclusive; numbers or names); with ``cfg``, only
    those that run on its benchmark (a range of none of them is refused)."""
    first = stage(start) if start is not None else STAGES[0]
    last = stage(stop) if stop is not None else STAGES[-1]
    if first.number > last.number:
        raise UserError(f"--from {first.number} ({first.name}) comes after --to {last.number} ({last.name})")
    chosen = [s for s in STAGES if first.number <= s.number <= last.number]
    if cfg is None:
        return chosen
    runnable = [s for s in chosen if s in for_benchmark(cfg)]
    if not runnable:
        raise UserError(f"stages {first.number}-{last.number} do not run on benchmark {cfg.data.benchmark} "
                        f"(they are built on XQuAD, B1); on {cfg.data.benchmark} the stages are "
                        + ", ".join(f"{s.number} ({s.name})" for s in for_benchmark(cfg)))
    return runnable


def for_benchmark(cfg: Profile) -> list[Stage]:
    """The stages of a profile's benchmark (B3 answers the first research question only)."""
    return [s for s in STAGES if cfg.data.benchmark in s.benchmarks]


# --------------------------------------------------------------------------------------------
# Paths: templates expanded for a profile
# --------------------------------------------------------------------------------------------

def _placeholders(cfg: Profile) -> dict[str, list[str]]:
    trained = [r for r in cfg.retrievers if r.training != "none"]
    return {
        "generator": [safe_name(g) for g in cfg.generator.models],
        "primary_generator": [safe_name(cfg.primary_generator)],
        "retriever": [r.name for r in cfg.retrievers],
        "trained": [r.name for r in trained],
        "training": sorted({r.training for r in trained}),
        "system": [safe_name(c.name) for c in main_conditions(cfg)],
        "arm": [r.name for r in cfg.contrastive.arms],
        "arm_training": sorted({r.training for r in cfg.contrastive.arms}),
        "rq2": [r.name for r in cfg.rq2_retrievers],
        "rq3": list(cfg.rq3_retrievers),
        "sweep_seed": [str(seed) for seed in cfg.generation.seeds],
    }


def expand(template: str, cfg: Profile) -> list[str]:
    """Every relative path a template stands for under a profile."""
    keys = re.findall(r"{(\w+)}", template)
    values = _placeholders(cfg)
    unknown = [k for k in keys if k not in values]
    if unknown:
        raise ValueError(f"unknown placeholder(s) {unknown} in {template!r}")
    return [template.format(**dict(zip(keys, combo)))
            for combo in itertools.product(*(values[k] for k in keys))]


def outputs(s: Stage, cfg: Profile) -> list[str]:
    return [p for t in s.writes for p in expand(t, cfg)]


def inputs(s: Stage, cfg: Profile) -> list[str]:
    return [p for t in s.reads for p in expand(t, cfg)]


def producer(path: str, cfg: Profile) -> Stage:
    """The stage that writes a run-directory path (an expanded template) under ``cfg``."""
    for s in STAGES:
        if path in outputs(s, cfg):
            return s
    raise ValueError(f"no stage writes {path!r}")


# --------------------------------------------------------------------------------------------
# Fingerprints and stage records
# --------------------------------------------------------------------------------------------

def notebook_digest(s: Stage | str) -> str:
    """SHA-256 of a stage's notebook (or of ``notebooks/<name>.ipynb``): its cells' sources only
    (outputs and metadata do not count)."""
    from xqglib.core.paths import repo_root

    name = s.notebook if isinstance(s, Stage) else s
    cells = json.loads((repo_root() / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    text = json.dumps([[c["cell_type"], "".join(c["source"])] for c in cells], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def covered_settings(cfg: Profile, s: Stage) -> dict[str, Any]:
    """What stage ``s``'s outputs depend on: its own and every earlier stage's settings, and
    their notebooks (a changed notebook makes its stage, and every later one, stale)."""
    earlier = [e for e in STAGES if e.number <= s.number]
    covered = cfg.select([p for e in earlier for p in e.settings])
    covered.update({f"notebook {e.notebook}": notebook_digest(e) for e in earlier})
    if any("generation" in e.settings for e in earlier):  # what generates decides the queries too
        from xqglib.method.sampling import SAMPLER_VERSION

        covered["sampler version"] = SAMPLER_VERSION
    return covered


def fingerprint(cfg: Profile, s: Stage) -> str:
    text = json.dumps(covered_settings(cfg, s), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def record_path(rd: RunDir, s: Stage) -> Path:
    return rd.path("stages", f"{s.number:02d}_{s.name}.json")


def _differences(recorded: dict[str, Any], current: dict[str, Any], limit: int = 4) -> str:
    keys = sorted(set(recorded) | set(current))
    changed = [k for k in keys if recorded.get(k) != current.get(k)]
    shown = [f"{k}: {json.dumps(recorded.get(k))} -> {json.dumps(current.get(k))}" for k in changed[:limit]]
    more = f", and {len(changed) - limit} more" if len(changed) > limit else ""
    return "; ".join(shown) + more


def stale_reason(cfg: Profile, rd: RunDir, s: Stage) -> str | None:
    """Why stage ``s``'s outputs in ``rd`` cannot be used under ``cfg`` (None: they can)."""
    path = record_path(rd, s)
    if not path.exists():
        return f"{s.label} has not finished in {rd.root}"
    record = read_json(path)
    if record.get("fingerprint") != fingerprint(cfg, s):
        return (f"{s.label} ran with other settings ("
                f"{_differences(record.get('settings', {}), covered_settings(cfg, s))})")
    missing = [p for p in outputs(s, cfg) if not (rd.root / p).exists()]
    if missing:
        return f"{s.label} finished, but {missing[0]} is gone"
    return None


def ancestors(s: Stage, cfg: Profile) -> list[Stage]:
    """The stages whose outputs ``s`` reads, and theirs, in order (from the declared reads)."""
    found: set[int] = set()
    todo = [s]
    while todo:
        for path in inputs(todo.pop(), cfg):
            up = producer(path, cfg)
            if up.number not in found:
                found.add(up.number)
                todo.append(up)
    return [e for e in STAGES if e.number in found]


def check_ready(cfg: Profile, rd: RunDir, s: Stage, planned: Sequence[Stage] = ()) -> None:
    """Refuse to start ``s`` unless the stages it reads from (:func:`ancestors`) finished under the
    current settings and no other earlier stage finished under other settings: a stage that needs
    only the data (the retrievers, stage 4) may run before the generator's stages have. Stages in
    ``planned`` (those a run will execute before ``s``) are not asked."""
    needed = {e.number for e in ancestors(s, cfg)}
    for earlier in STAGES:
        if earlier.number >= s.number:
            break
        if earlier in planned:
            continue
        reason = stale_reason(cfg, rd, earlier)
        if reason and (earlier.number in needed or record_path(rd, earlier).exists()):
            raise UserError(f"cannot start {s.label}: {reason}. Run from stage {earlier.number} "
                            f"(python -m xqglib run --from {earlier.number} ...)")


def begin(cfg: Profile, rd: RunDir, s: Stage) -> None:
    """What a stage does first: check its inputs' settings, then forget its own old record."""
    check_ready(cfg, rd, s)
    record_path(rd, s).unlink(missing_ok=True)


def finish(cfg: Profile, rd: RunDir, s: Stage) -> None:
    """What a stage does last: check it wrote what it declares, and record its fingerprint."""
    missing = [p for p in outputs(s, cfg) if not (rd.root / p).exists()]
    if missing:
        raise RuntimeError(f"{s.label} did not write {missing}: the stage table and the code disagree")
    from xqglib.core.hardware import machine_description
    from xqglib.data.sources import KNOWN_FILES, files_used

    write_json(record_path(rd, s), {
        "stage": s.name, "fingerprint": fingerprint(cfg, s), "settings": covered_settings(cfg, s),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        # where it ran: CPU and flags, threads, package versions, the checkout's commit
        "machine": machine_description(),
        # the benchmark's data files and their published SHA-256 (every load is checked against it)
        "data": {f: KNOWN_FILES[f][1] for f in files_used(cfg) if f in KNOWN_FILES}})


def is_complete(cfg: Profile, rd: RunDir, stages: Sequence[Stage] = STAGES) -> bool:
    """Every stage finished under ``cfg``, and its executed notebook is there."""
    return all(stale_reason(cfg, rd, s) is None and (rd.root / "notebooks" / f"{s.notebook}.ipynb").exists()
               for s in stages)


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def timed(rd: RunDir, stage_name: str, part: str | None = None, **details: Any) -> contextlib.AbstractContextManager[Timing]:
    """Time (a part of) a stage into the run's ``timings.json`` (:func:`xqglib.core.timing.timed`)."""
    s = stage(stage_name)
    return timing.timed(rd.timings, s.number, s.name, part, **details)


def forget_timings(rd: RunDir, stages: Sequence[Stage]) -> None:
    """Drop the timings of ``stages`` (they are about to be measured again); later stages that
    stay valid keep theirs."""
    timing.forget(rd.timings, [s.number for s in stages])


def needs(s: Stage, cfg: Profile) -> str:
    """The stages ``s`` reads from, as numbers ("1, 2"; "-": none)."""
    return ", ".join(str(e.number) for e in ancestors(s, cfg)) or "-"


def table(cfg: Profile) -> list[dict[str, str]]:
    """The stage table as rows, for the book (lists comma-separated: pandas shows a newline as ``\\n``)."""
    return [{"stage": f"{s.number} {s.name}", "notebook": s.notebook, "needs stages": needs(s, cfg),
             "reads": ", ".join(s.reads) or "-", "writes": ", ".join(s.writes), "settings": ", ".join(s.settings)}
            for s in for_benchmark(cfg)]
