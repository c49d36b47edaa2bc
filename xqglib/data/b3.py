"""Benchmark B3, XOR-Retrieve itself: the paper's task, for the paper profile.

Test questions are the XOR-TyDi dev questions of the profile's query languages; the collection is
XOR-Retrieve's English Wikipedia in 100-word passages (DPR's tsv format), streamed and never held
in memory; scores are the official R@2kt / R@5kt (:mod:`xqglib.evaluation.metrics`), which need only the
questions' English answers.

XOR-Retrieve has no passage-level relevance labels. Where a measure needs them (Recall@k, MRR@10,
the gold passage's rank) this module labels *answer-matched* passages: those whose text holds one
of the question's answer strings (the scorer's own test, applied to one passage), found in the same
streaming pass with an Aho-Corasick automaton (``pyahocorasick``).

Training data:

The collection is read from ``$XQG_DATA_DIR/xor-tydi/enwiki_20190201_w100.tsv``, downloaded there
from its published URL where the network allows (no checksum is published: its SHA-256 is recorded
with the run's data sizes).

- ``b3``: the paper's retriever training file, Tevatron's ``Tevatron/xor-tydi`` (``eng_span``
  train: each XOR train question with DPR's positive and hard negative passages), loaded from the
  hub with ``datasets`` where the network allows. The generator learns (positive passage ->
  question) pairs from the same rows, as DSI-QG's step 1 does.
- ``b3-tiny``: a hand-made 33-passage collection in the same tsv format
  (``xqglib/resources/xor_tiny_w100.tsv``) and, standing in for Tevatron's file, answer-matched
  positives: the XOR train questions whose answers occur in it, with seeded random negatives. It
  runs the whole paper code path in seconds (the tests); its numbers mean nothing.

Questions answered only by yes / no are left out (the official scorer does not count them).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xqglib.config.settings import Profile
from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import atomic_open, sha256_file, write_json, write_jsonl, write_qrels
from xqglib.core.paths import data_dir
from xqglib.core.progress import progress
from xqglib.data.sources import XOR_CORPUS, Passage, download, iter_xor_corpus, load_xor_retrieve

#: Where XOR-Retrieve's collection is published (the XOR QA README); no checksum is published.
XOR_CORPUS_URL = "https://nlp.cs.washington.edu/xorqa/XORQA_site/data/models/enwiki_20190201_w100.tsv"
#: The paper's retriever training data on the Hugging Face hub (Tevatron v1's XOR-TyDi loader).
TEVATRON_XOR = ("Tevatron/xor-tydi", "eng_span")
#: English Natural Questions with DPR's passages: the zero-shot ("english") rows' training data.
TEVATRON_NQ = "Tevatron/wikipedia-nq"
#: The hand-made collection of ``b3-tiny``.
TINY_CORPUS = Path(__file__).parent.parent / "resources" / "xor_tiny_w100.tsv"
#: Share of the XOR train questions held out for the generator's dev loss (XOR dev is the test set).
GENERATOR_DEV_SHARE = 0.05


def corpus_path(benchmark: str) -> Path:
    """The passage collection of ``b3`` or ``b3-tiny``."""
    return TINY_CORPUS if benchmark == "b3-tiny" else data_dir() / XOR_CORPUS


def _reachable(url: str, timeout: float = 5.0) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:  # offline, refused, moved: the run cannot fetch it
        return False


def missing_inputs(cfg: Profile) -> list[str]:
    """What a B3 run needs and this machine can neither find nor fetch, in words (checked before
    any work): the collection when it is absent and its URL cannot be reached."""
    if cfg.data.benchmark != "b3":
        return []
    path = corpus_path("b3")
    if path.exists() or _reachable(XOR_CORPUS_URL):
        return []
    return [f"XOR-Retrieve's passage collection at {path} (English Wikipedia of 2019-02-01 in 100-word "
            f"passages, DPR's tsv; published at {XOR_CORPUS_URL}, ~18M passages, no published checksum)",
            f"the retriever training data {TEVATRON_XOR[0]} ({TEVATRON_XOR[1]}) from the Hugging Face hub "
            "(read with `pip install datasets`)"]


def spans(answers: Iterable[str]) -> list[str]:
    """The answers the official scorer looks for: every one but yes / no (stripped, non-empty)."""
    return [a.strip() for a in answers if a.strip() and a not in ("yes", "no")]


class AnswerMatcher:
    """Which questions have an answer string in a text (substring, case-sensitive, as the official
    scorer tests its concatenated passages), for many questions at once."""

    def __init__(self, answers: Mapping[str, Sequence[str]]) -> None:
        import ahocorasick

        self.automaton = ahocorasick.Automaton()
        owners: dict[str, list[str]] = {}
        for key, strings in answers.items():
            for answer in strings:
                owners.setdefault(answer, []).append(key)
        for answer, keys in owners.items():
            self.automaton.add_word(answer, tuple(keys))
        self.empty = not owners
        if owners:
            self.automaton.make_automaton()

    def __call__(self, text: str) -> set[str]:
        if self.empty:
            return set()
        return {key for _, keys in self.automaton.iter(text) for key in keys}


def _questions(split: str, languages: Sequence[str]) -> list[dict[str, Any]]:
    """The split's questions in ``languages`` that the scorer counts, with their span answers."""
    rows = [{**row, "answers": spans(row["answers"])} for row in load_xor_retrieve(split) if row["lang"] in languages]
    return [row for row in rows if row["answers"]]


def prepare_b3(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Stage 1 for B3: stream the collection into ``data/corpus.jsonl``, label answer-matched
    passages, and write test queries, qrels, answers and the training files, as :func:`xqglib.
    pipeline.prepare_data` does for B1."""
    benchmark = cfg.data.benchmark
    dev = _questions("dev", cfg.data.query_languages)
    tiny = benchmark == "b3-tiny"
    languages = sorted(set(cfg.data.query_languages) | set(cfg.generation.languages))
    train = _questions("train", languages) if tiny else []
    # the hub's training files first: without the network this stops before the long pass below
    hub = None if tiny else tevatron_training_rows(languages)
    trainings = sorted({r.training for r in cfg.retrievers} - {"none"})
    english = english_nq_rows() if "english" in trainings else []
    dev_matcher = AnswerMatcher({q["id"]: q["answers"] for q in dev})
    train_matcher = AnswerMatcher({q["id"]: q["answers"] for q in train})
    matched: dict[str, list[str]] = {}
    train_matched: dict[str, list[str]] = {}
    passages: list[Passage] = []
    count = 0
    source = corpus_path(benchmark)
    if not source.exists():  # b3 where the network allows: no checksum is published, so its digest is recorded
        download(XOR_CORPUS_URL, source, None)
    with atomic_open(rd.corpus) as out, progress(desc="B3 collection", unit=" passages") as bar:
        for passage in iter_xor_corpus(source):
            out.write(json.dumps(passage.as_tevatron(), ensure_ascii=False) + "\n")
            for qid in dev_matcher(passage.text):
                matched.setdefault(qid, []).append(passage.docid)
            for qid in train_matcher(passage.text):
                train_matched.setdefault(qid, []).append(passage.docid)
            if tiny:
                passages.append(passage)
            count += 1
            bar.update(1)
    if tiny:  # only questions the small collection can answer
        dev = [q for q in dev if q["id"] in matched]
    dev = _capped(dev, cfg.data.max_test_questions)
    queries = [{"query_id": f"{q['id']}-{q['lang']}", "query": q["question"], "lang": q["lang"], "qid": q["id"]}
               for q in dev]
    write_jsonl(rd.test_queries, queries)
    write_qrels(rd.qrels, {q["query_id"]: {d: 1 for d in matched.get(q["qid"], [])} for q in queries})
    write_json(rd.answers, {query["query_id"]: q["answers"] for query, q in zip(queries, dev)})
    rows = hub if hub is not None else tiny_training_rows(train, train_matched, passages,
                                                          cfg.retriever.negative_pool, cfg.seed)
    held_out = _generator_dev_ids([r["qid"] for r in rows], cfg.seed)
    write_json(rd.split, {"benchmark": benchmark, "generator dev questions": sorted(held_out)})
    sizes: dict[str, Any] = {"benchmark": benchmark, "collection SHA-256": sha256_file(source),
                             "corpus passages": count, "test questions": len(dev),
                             "test queries": len(queries),
                             "test questions with an answer-matched passage": sum(q["id"] in matched for q in dev)}
    for split in ("train", "dev"):
        pairs = [{"lang": r["lang"], "title": r["positive_passages"][0]["title"],
                  "text": r["positive_passages"][0]["text"], "question": r["query"]}
                 for r in rows if r["lang"] in cfg.generation.languages and (r["qid"] in held_out) == (split == "dev")]
        write_jsonl(rd.generator_pairs(split), pairs)
        sizes[f"generator {split} pairs"] = len(pairs)
    for training in trainings:
        # "english": the paper's zero-shot rows, English NQ (settings refuse it on b3-tiny)
        chosen = english if training == "english" else [r for r in rows if r["lang"] in cfg.data.query_languages]
        write_jsonl(rd.retriever_rows(training), chosen)
        sizes[f"retriever training rows ({training})"] = len(chosen)
    return sizes


def _capped(questions: list[dict[str, Any]], cap: int | None) -> list[dict[str, Any]]:
    """The first ``cap`` questions of each language (all with None)."""
    if cap is None:
        return questions
    kept: dict[str, int] = {}
    out = []
    for q in questions:
        if kept.get(q["lang"], 0) < cap:
            kept[q["lang"]] = kept.get(q["lang"], 0) + 1
            out.append(q)
    return out


def _generator_dev_ids(qids: Sequence[str], seed: int) -> set[str]:
    """A seeded share of the training questions kept out of the generator's training, for its dev loss."""
    unique = sorted(set(qids))
    n = max(1, round(GENERATOR_DEV_SHARE * len(unique))) if len(unique) > 1 else 0
    return set(random.Random(seed).sample(unique, n))


def tiny_training_rows(train: Sequence[Mapping[str, Any]], matched: Mapping[str, list[str]],
                       passages: Sequence[Passage], pool: int, seed: int) -> list[dict[str, Any]]:
    """Tevatron rows for ``b3-tiny``: every XOR train question with an answer-matched passage, that
    passage as its positive (the first in collection order) and ``pool`` seeded random passages
    without any of its answers as negatives."""
    by_id = {p.docid: p for p in passages}
    rng = random.Random(seed)
    rows = []
    for q in train:
        hits = matched.get(q["id"])
        if not hits:
            continue
        others = [p for p in passages if p.docid not in hits]
        negatives = rng.sample(others, min(pool, len(others)))
        rows.append({"query_id": f"{q['id']}-{q['lang']}", "qid": q["id"], "query": q["question"], "lang": q["lang"],
                     "positive_passages": [by_id[hits[0]].as_tevatron()],
                     "negative_passages": [p.as_tevatron() for p in negatives]})
    return rows


def _hub_rows(name: str, config: str | None) -> Any:
    """A training file of Tevatron v1 from the Hugging Face hub (``datasets``), or a clear error."""
    try:
        import datasets
    except ImportError:
        raise UserError(f"benchmark b3 trains on {name} from the Hugging Face hub, read with the `datasets` "
                        "package: pip install datasets") from None
    try:
        return datasets.load_dataset(name, config, split="train")
    except Exception as exc:  # offline, or the hub refused: say what is missing
        raise UserError(f"could not load {name} from the Hugging Face hub ({exc.__class__.__name__}: {exc}); "
                        "benchmark b3 needs the network, or the dataset in the local Hugging Face cache") from None


def _tevatron_row(row: Mapping[str, Any], lang: str) -> dict[str, Any]:
    return {"query_id": f"{row['query_id']}-{lang}", "qid": str(row["query_id"]), "query": row["query"],
            "lang": lang, "positive_passages": list(row["positive_passages"]),
            "negative_passages": list(row["negative_passages"])}


def tevatron_training_rows(languages: Sequence[str]) -> list[dict[str, Any]]:
    """The paper's training rows (``Tevatron/xor-tydi``, ``eng_span`` train) in the languages asked
    for; each row's language is the XOR train question's with the same text."""
    lang_of = {row["question"].strip(): row["lang"] for row in load_xor_retrieve("train")}
    return [_tevatron_row(row, lang_of[row["query"].strip()]) for row in _hub_rows(*TEVATRON_XOR)
            if lang_of.get(row["query"].strip()) in languages]


def english_nq_rows() -> list[dict[str, Any]]:
    """The zero-shot rows' English training data: Tevatron's Natural Questions (``Tevatron/wikipedia-nq``)."""
    return [_tevatron_row(row, "en") for row in _hub_rows(TEVATRON_NQ, None)]
