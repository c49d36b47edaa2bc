"""The run directory: where each stage writes, and where the next stage reads.

``runs/<profile>/``
    ``data/``        corpus, test queries, qrels, answers, split, generator and retriever training data
    ``generators/``  one fine-tuned generator folder (Hugging Face format) and its loss log each
    ``generated/``   generated queries in the released xQG jsonl format, one file per generator
    ``retrievers/``  one trained retriever folder each, and its loss log
    ``embeddings/``  passage, test-query and generated-query vectors per retriever (.npy)
    ``trec/``        TREC run files, one per system (retriever, retriever+xQG)
    ``eval/``        metrics, per-question outcomes, result tables
    ``notebooks/``   the executed notebooks (what the book renders)
    ``timings.json`` wall time and peak memory of every stage
"""

from __future__ import annotations

import contextlib
import json
import platform
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import Profile, runs_dir
from .errors import UserError
from .formats import read_json, write_json


def safe_name(name: str) -> str:
    """A model or system name usable as a file name (hub names contain '/')."""
    return name.replace("/", "__")


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_profile(cls, profile: Profile) -> "RunDir":
        return cls(runs_dir() / profile.name)

    def path(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # data stage
    @property
    def corpus(self) -> Path: return self.path("data", "corpus.jsonl")
    @property
    def test_queries(self) -> Path: return self.path("data", "test_queries.jsonl")
    @property
    def qrels(self) -> Path: return self.path("data", "qrels.test.txt")
    @property
    def answers(self) -> Path: return self.path("data", "answers.test.json")
    @property
    def split(self) -> Path: return self.path("data", "split.json")
    def generator_pairs(self, split: str) -> Path: return self.path("data", f"generator_{split}.jsonl")
    def retriever_rows(self, training: str) -> Path: return self.path("data", f"retriever_train_{training}.jsonl")

    # models
    def generator_model(self, name: str) -> Path: return self.path("generators", safe_name(name), "model")
    def generator_log(self, name: str) -> Path: return self.path("generators", safe_name(name), "log.json")
    def generated(self, name: str) -> Path: return self.path("generated", f"{safe_name(name)}.jsonl")
    def generation_report(self, name: str) -> Path: return self.path("generated", f"{safe_name(name)}.report.json")
    def retriever_model(self, name: str) -> Path: return self.path("retrievers", name, "model")
    def retriever_log(self, name: str) -> Path: return self.path("retrievers", name, "log.json")

    # encoding and search
    def embeddings(self, retriever: str, what: str) -> Path: return self.path("embeddings", retriever, f"{what}.npy")
    def embeddings_meta(self, retriever: str, what: str) -> Path: return self.path("embeddings", retriever, f"{what}.json")
    def trec_run(self, system: str) -> Path: return self.path("trec", f"{safe_name(system)}.trec")
    def eval_file(self, name: str) -> Path: return self.path("eval", name)
    @property
    def timings(self) -> Path: return self.path("timings.json")

    def require(self, path: Path, stage: str) -> Path:
        if not path.exists():
            raise UserError(f"{path} is missing: run the '{stage}' stage (notebook) for this profile first")
        return path

    # ---- stage timing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def stage(self, name: str, **details: Any) -> Iterator[dict[str, Any]]:
        """Record the wall time and the process's peak resident memory of a stage."""
        record: dict[str, Any] = dict(details)
        started = time.perf_counter()
        yield record
        record["seconds"] = round(time.perf_counter() - started, 2)
        # ru_maxrss is in KiB on Linux: the peak of this (notebook kernel) process so far
        record["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        timings = read_json(self.timings) if self.timings.exists() else {}
        timings[name] = record
        write_json(self.timings, timings)


def machine_description() -> dict[str, Any]:
    import os

    import torch

    return {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)
