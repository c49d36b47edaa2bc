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
    ``stages/``      one record per finished stage: the fingerprint of the settings it ran under
    ``timings.json`` wall time and peak memory of every stage
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xqglib.core.errors import UserError
from xqglib.core.formats import read_json
from xqglib.core.paths import runs_dir

if TYPE_CHECKING:
    from xqglib.config.settings import Profile


def safe_name(name: str) -> str:
    """A model or system name usable as a file name (hub names contain '/')."""
    return name.replace("/", "__")


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_profile(cls, profile: "Profile") -> "RunDir":
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
    def contrastive_rows(self, training: str) -> Path: return self.path("data", f"contrastive_train_{training}.jsonl")

    # models
    def generator_model(self, name: str) -> Path: return self.path("generators", safe_name(name), "model")
    def generator_log(self, name: str) -> Path: return self.path("generators", safe_name(name), "log.json")
    def generated(self, name: str) -> Path: return self.path("generated", f"{safe_name(name)}.jsonl")
    def generation_report(self, name: str) -> Path: return self.path("generated", f"{safe_name(name)}.report.json")
    def generation_fingerprint(self, name: str) -> Path: return self.path("generated", f"{safe_name(name)}.fingerprint.json")
    def retriever_model(self, name: str) -> Path: return self.path("retrievers", name, "model")
    def retriever_log(self, name: str) -> Path: return self.path("retrievers", name, "log.json")

    # encoding and search
    def embeddings(self, retriever: str, what: str) -> Path: return self.path("embeddings", retriever, f"{what}.npy")
    def embeddings_meta(self, retriever: str, what: str) -> Path: return self.path("embeddings", retriever, f"{what}.json")
    def xquadr(self, retriever: str, what: str) -> Path: return self.path("xquadr", retriever, f"{what}.npy")
    def xquadr_meta(self, retriever: str, what: str) -> Path: return self.path("xquadr", retriever, f"{what}.json")
    def rq3_data(self, what: str) -> Path: return self.path("data", f"rq3_{what}.jsonl")
    def reader_model(self) -> Path: return self.path("reader", "model")
    def reader_log(self) -> Path: return self.path("reader", "log.json")
    def rq3(self, retriever: str, what: str) -> Path: return self.path("rq3", retriever, f"{what}.npy")
    def rq3_meta(self, retriever: str, what: str) -> Path: return self.path("rq3", retriever, f"{what}.json")
    def trec_run(self, system: str) -> Path: return self.path("trec", f"{safe_name(system)}.trec")
    def eval_file(self, name: str) -> Path: return self.path("eval", name)
    @property
    def timings(self) -> Path: return self.path("timings.json")

    def require(self, path: Path, stage: str) -> Path:
        if not path.exists():
            raise UserError(f"{path} is missing: run the '{stage}' stage (notebook) for this profile first")
        return path

    def save_embeddings(self, retriever: str, what: str, vectors: Any, ids: list[Any]) -> None:
        """A matrix and, beside it, the id of every row (a docid, a query id, or a generated
        query's ``{"docid", "lang", "slot"}``)."""
        from xqglib.core.formats import save_npy, write_json

        if len(vectors) != len(ids):
            raise ValueError(f"{len(vectors)} vectors but {len(ids)} ids")
        save_npy(self.embeddings(retriever, what), vectors)
        write_json(self.embeddings_meta(retriever, what), ids)

    def load_embeddings(self, retriever: str, passage_ids: list[str] | None = None,
                        query_ids: list[str] | None = None) -> dict[str, Any]:
        """A retriever's passage, test-query and generated-query vectors (stage 5's output), each
        checked against the ids stored with it, and against the expected ids where given."""
        import numpy as np

        out: dict[str, Any] = {}
        for what, expected in (("passages", passage_ids), ("queries", query_ids), ("generated", None)):
            path = self.require(self.embeddings(retriever, what), "encode-search")
            vectors = np.load(path)
            ids = read_json(self.require(self.embeddings_meta(retriever, what), "encode-search"))
            if len(ids) != len(vectors) or (expected is not None and ids != expected):
                raise UserError(f"{path} is out of step with the ids it was written for "
                                f"({len(vectors)} rows, {len(ids)} stored ids"
                                + ("" if expected is None else f", {len(expected)} expected") +
                                "): rerun from stage 5 (python -m xqglib run --from 5 ...)")
            out[what] = vectors
            out[f"{what}_ids"] = ids
        out["generated_meta"] = out.pop("generated_ids")
        return out


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)
