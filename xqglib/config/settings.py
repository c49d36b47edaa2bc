"""Settings: one frozen dataclass per concern, nested in a :class:`Profile`, checked before any work.

As Tevatron's ``arguments.py`` does, each concern has its own dataclass: the benchmark's data, the
query generator's training, generation, the retrievers, augmentation, evaluation and the run itself.
Every field carries its type and, in its metadata, what values are allowed; :func:`apply_overrides`
and :func:`validate` turn any bad value into one line naming the field, the value and what is
allowed, before a single stage starts.

Overrides use the nested names, as a JSON object (``{"generator": {"steps": 200}}`` or
``{"generator.steps": 200}``) or as ``--set generator.steps=200`` on the command line.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xqglib.config.languages import GENERATION_LANGUAGES, XOR_LANGUAGES, XQUAD_ALL, XQUAD_LANGUAGES, XQUADR_LANGUAGES
from xqglib.core.errors import UserError

#: The benchmarks Table 1 can be built on: B1 (XQuAD -> English Wikipedia, the offline default),
#: B3 (XOR-Retrieve itself, the paper's task: needs its 18M-passage collection) and b3-tiny (the
#: B3 code path on a hand-made 33-passage collection in the same format, for the tests).
BENCHMARKS = ("b1", "b3", "b3-tiny")

#: The articles XQuAD and SQuAD v1.1 dev share, split into train / dev / test.
SHARED_ARTICLES = 48

#: The paper's fusion weight.
PAPER_ALPHA = 0.01

#: Generated queries per passage in the paper: 7 XOR-TyDi languages x n = 5.
PAPER_QUERIES_PER_PASSAGE = 35

#: How a retriever is trained (see :class:`RetrieverSpec`).
TRAININGS = ("none", "english", "crosslingual")

#: How the second research question's contrastive arms are trained (see :class:`ContrastiveSettings`).
CONTRASTIVE_TRAININGS = ("align", "hybrid")


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            above: float | None = None, choices: Sequence[Any] | None = None,
            nonempty: bool = False, unique: bool = False, trainings: Sequence[str] = TRAININGS) -> Any:
    """A field with its help text and allowed values (``low``/``high`` inclusive, ``above``
    exclusive; for a list these apply to every item; ``trainings``: for a list of retrievers, the
    trainings allowed)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "above": above,
                                            "choices": tuple(choices) if choices else None,
                                            "nonempty": nonempty, "unique": unique,
                                            "trainings": tuple(trainings)})


@dataclass(frozen=True)
class RetrieverSpec:
    """One retriever row of Table 1.

    ``training`` is ``"none"`` (the encoder as it is), ``"english"`` (English question ->
    paragraph pairs only: the analogue of the paper's NQ-only "zero-shot" model) or
    ``"crosslingual"`` (questions in the XQuAD languages -> English paragraph: the xDR).
    """

    name: str
    training: str
    label: str = ""


@dataclass(frozen=True)
class DataSettings:
    """The benchmark of Table 1: B1 (XQuAD questions -> English SQuAD v1.1 dev paragraphs), or B3
    (XOR-TyDi questions -> XOR-Retrieve's English Wikipedia; see :mod:`xqglib.data.b3`)."""

    benchmark: str = setting("b1", "the benchmark the retrievers are evaluated on: b1, b3 (XOR-Retrieve; "
                                   "paper profile) or b3-tiny (its code path on a hand-made collection)",
                             choices=BENCHMARKS)
    query_languages: tuple[str, ...] = setting(XQUAD_LANGUAGES, "languages of the test queries (B1: XQuAD's; "
                                               "B3: XOR-TyDi's)", choices=tuple(sorted(set(XQUAD_LANGUAGES + XOR_LANGUAGES))),
                                               nonempty=True, unique=True)
    split_articles: tuple[int, int, int] = setting(
        (30, 6, 12), f"train / dev / test articles of the {SHARED_ARTICLES} shared ones (seeded split)", low=1)
    max_corpus: int | None = setting(None, "cap on corpus passages (null: all 2,067); every test gold "
                                           "paragraph is always kept", low=1)
    max_test_questions: int | None = setting(None, "cap on test questions per language (null: all)", low=1)


@dataclass(frozen=True)
class GeneratorSettings:
    """Training the cross-lingual query generator (paper: lr 1e-4, batch 128, 2000 steps, input 128)."""

    models: tuple[str, ...] = setting(("gemma3-270m",), "generators to train; the first one's queries "
                                                        "augment the passages", nonempty=True, unique=True)
    steps: int = setting(200, "optimizer steps", low=1)
    batch_size: int = setting(8, "pairs per step", low=1)
    lr: float = setting(1e-4, "learning rate", above=0, high=1)
    max_input_len: int = setting(128, "prompt tokens kept", low=8)
    max_target_len: int = setting(48, "question tokens kept", low=1)
    max_train_pairs: int | None = setting(None, "cap on training pairs (null: all)", low=1)
    eval_every: int = setting(50, "steps between dev-loss measurements", low=1)
    plateau: float | None = setting(None, "stop before `steps` once the last 20% of steps improved the "
                                    "dev loss by less than this share (null: train all steps)",
                                    above=0, high=1)
    max_dev_pairs: int = setting(256, "dev-article pairs the dev loss is measured on", low=1)
    freeze_embeddings: bool = setting(True, "keep the (tied) embedding matrix frozen")
    converge: bool = setting(False, "train until the convergence criterion holds (xqglib.method.convergence): "
                             "steps, eval_every and plateau are then unused")
    min_passes: float = setting(1.0, "convergence: passes over the training pairs at least", above=0)
    eval_share: float = setting(0.25, "convergence: share of a pass between dev-loss measurements", above=0,
                                high=1)
    patience: int = setting(3, "convergence: evaluations without a new best dev loss that end training", low=1)
    max_passes: float = setting(4.0, "convergence: passes at most (a run stopped there is reported unconverged)",
                                above=0)


@dataclass(frozen=True)
class GenerationSettings:
    """Generating queries for every corpus passage (paper: n = 5 per language, top-k sampling)."""

    languages: tuple[str, ...] = setting(("ar", "de", "hi", "ru", "th", "zh", "es"),
                                         "languages questions are generated in",
                                         choices=tuple(sorted(set(GENERATION_LANGUAGES + XOR_LANGUAGES))),
                                         nonempty=True, unique=True)
    n_per_language: int = setting(5, "questions per passage and language", low=1)
    top_k: int = setting(10, "top-k sampling", low=1)
    max_new_tokens: int = setting(32, "cap on a question's tokens", low=1)
    batch_passages: int = setting(8, "passages per sampling batch", low=1)
    vocabulary: str = setting("full", "'full': top-k over the whole vocabulary (exact); 'data': over the "
                                      "tokens of the data (decoder only; its agreement is reported)",
                              choices=("full", "data"))
    seeds: tuple[int, ...] = setting((), "further sampling seeds (the seed sweep): the first generator's queries "
                                     "and RQ3's are generated again with each, and the gains of xQG (RQ1) and of "
                                     "RQ3's generated-query conditions are reported over run.seed and these",
                                     low=0, unique=True)


@dataclass(frozen=True)
class RetrieverSettings:
    """The dense retrievers (Tevatron v1 semantics) and how they encode."""

    encoder: str = setting("me5-small", "the encoder every retriever starts from")
    retrievers: tuple[RetrieverSpec, ...] = setting(
        (RetrieverSpec("base", "none", "encoder as is"),
         RetrieverSpec("english", "english", "English-only (zero-shot analogue)"),
         RetrieverSpec("xdr", "crosslingual", "cross-lingual xDR")),
        "the retriever rows: name, training (none / english / crosslingual), label", nonempty=True)
    epochs: int = setting(1, "passes over the training rows", low=1)
    max_steps: int | None = setting(None, "cap on optimizer steps (null: epochs decide)", low=1)
    batch_size: int = setting(32, "queries per step", low=1)
    negatives: int = setting(7, "hard negatives per query and step", low=0)
    negative_pool: int = setting(8, "hard negatives kept per query; each epoch draws `negatives` of them "
                                    "anew, as Tevatron does (the pool is at least `negatives`)", low=0)
    max_grad_norm: float | None = setting(1.0, "gradient clipping (global norm; null: none), as the "
                                               "Hugging Face Trainer Tevatron uses", above=0)
    lr: float = setting(1e-5, "learning rate", above=0, high=1)
    warmup_ratio: float = setting(0.1, "share of steps with a linear warm-up", low=0, high=1)
    query_max_len: int = setting(32, "query tokens kept", low=4)
    passage_max_len: int = setting(128, "passage tokens kept", low=8)
    freeze_embeddings: bool = setting(True, "keep the word-embedding matrix frozen")
    encode_batch_size: int = setting(32, "texts per encoding batch", low=1)
    max_train_rows: int | None = setting(None, "cap on training rows per retriever (a seeded subset; null: all)",
                                         low=1)
    converge: bool = setting(False, "train every retriever (and the reader) until the convergence criterion "
                             "holds (xqglib.method.convergence) on dev-article rows: epochs and max_steps "
                             "are then unused")
    max_dev_rows: int = setting(256, "convergence: dev-article rows the dev loss is measured on", low=1)
    min_passes: float = setting(1.0, "convergence: passes over the training rows at least", above=0)
    eval_share: float = setting(0.25, "convergence: share of a pass between dev measurements", above=0,
                                high=1)
    patience: int = setting(3, "convergence: evaluations without a new best (of `dev_measure`) that end training",
                           low=1)
    max_passes: float = setting(3.0, "convergence: passes at most (a run stopped there is reported unconverged)",
                                above=0)
    dev_measure: str = setting("loss", "convergence: what the retrievers' criterion follows on the dev rows: 'loss' "
                               "(Tevatron's, lower is better) or 'mrr' (MRR@10 of each positive among all dev "
                               "passages, higher is better); the reader follows its loss", choices=("loss", "mrr"))


@dataclass(frozen=True)
class ContrastiveSettings:
    """The second research question's multilingual contrastive arms, trained from the same encoder
    with the retriever section's optimiser settings (steps, batch, negatives, lr) as the xDR:

    - ``align``: the xDR's rows and loss, plus ``align_weight`` x a translation ranking loss
      (symmetric InfoNCE at ``temperature``) between each question and a parallel translation;
    - ``hybrid``: hybrid batches (arXiv 2408.10536): with probability ``hybrid_alpha`` a batch is
      monolingual (question in L -> paragraph in L), otherwise cross-lingual (L -> L' != L), from
      XQuAD's train-article parallel questions and paragraphs in every B1 language and English.
    """

    arms: tuple[RetrieverSpec, ...] = setting(
        (RetrieverSpec("xdr-align", "align", "xDR + contrastive alignment"),
         RetrieverSpec("hybrid", "hybrid", "hybrid-batch contrastive")),
        "the contrastive retrievers: name, training (align / hybrid), label", nonempty=True,
        trainings=CONTRASTIVE_TRAININGS)
    compare: tuple[str, ...] | None = setting(None, "retriever rows of Table 1 the arms are compared with "
                                              "(null: those trained 'none' or 'crosslingual': the encoder as "
                                              "is and the xDR)", unique=True)
    align_weight: float = setting(1.0, "weight of the translation ranking loss beside Tevatron's", above=0)
    temperature: float = setting(0.05, "temperature of the translation ranking loss", above=0, high=1)
    hybrid_alpha: float = setting(0.5, "share of monolingual batches in hybrid training", low=0, high=1)


@dataclass(frozen=True)
class XQuADRSettings:
    """Benchmark B2, XQuAD-R (LAReQA, XTREME-R), with XTREME-R's protocol."""

    languages: tuple[str, ...] = setting(XQUADR_LANGUAGES, "languages of questions and candidates (the "
                                         "official setting: all 11)", choices=XQUADR_LANGUAGES,
                                         nonempty=True, unique=True)
    k: int = setting(20, "cut-off of mAP@k (XTREME-R: 20)", low=1)
    candidate_max_len: int = setting(128, "tokens kept of a candidate (its sentence, then its paragraph)",
                                     low=8)
    full_pool: bool = setting(True, "also score the untrained encoder on the full pool (all 48 articles); "
                                    "trained retrievers are scored on the test articles only")


@dataclass(frozen=True)
class RQ3Settings:
    """The third research question: query-augmented (xQG) against passage-augmented retrieval on
    XQuAD's query-language x passage-language matrix, to EM/F1 of an extractive reader.

    The generator for passages in every passage language continues the Table 1 generator's
    training on XQuAD's train-article (paragraph in P, question in L) pairs; every condition uses
    the same generated queries (``generation_languages`` x ``n_per_language`` per passage)."""

    query_languages: tuple[str, ...] = setting(XQUAD_ALL, "languages of the questions", choices=XQUAD_ALL,
                                               nonempty=True, unique=True)
    passage_languages: tuple[str, ...] = setting(("en", "es", "ar", "hi"), "languages of the passages (with en)",
                                                 choices=XQUAD_ALL, nonempty=True, unique=True)
    retrievers: tuple[str, ...] | None = setting(None, "retrievers compared, Table 1 rows or contrastive arms by "
                                                 "name (null: those trained none, crosslingual or align)",
                                                 nonempty=True, unique=True)
    generation_languages: tuple[str, ...] = setting(("ar", "de", "hi", "th", "zh"), "languages of the "
                                                    "generated queries", choices=XQUAD_ALL, nonempty=True,
                                                    unique=True)
    n_per_language: int = setting(1, "generated queries per passage and language", low=1)
    generator_steps: int = setting(40, "optimizer steps the generator is trained on for passages in "
                                       "every passage language (from the Table 1 generator; where "
                                       "generator.converge is off)", low=1)
    generator_max_pairs: int | None = setting(None, "cap on the generator's training pairs for passages in every "
                                              "passage language (a seeded subset; null: all)", low=1)
    text_max_len: int = setting(256, "tokens kept of a passage with its queries appended (text-level "
                                     "expansion; the passage itself keeps retriever.passage_max_len)", low=8)
    dual_weights: tuple[float, ...] = setting((0.1, 0.2, 0.3, 0.5), "weights of the generated-query "
                                              "index in dual-index fusion; the best on dev-article "
                                              "questions is used", low=0, high=1, nonempty=True, unique=True)
    max_questions: int | None = setting(None, "cap on test questions (the same in every language; "
                                              "null: all)", low=1)
    reader_retriever: str | None = setting(None, "the retriever whose passages the reader reads (null: the "
                                                 "last of the compared retrievers)")
    reader_steps: int = setting(80, "optimizer steps of the reader (where retriever.converge is off)", low=1)
    reader_max_examples: int | None = setting(None, "cap on the reader's training examples (a seeded subset; "
                                              "null: all)", low=1)
    reader_batch_size: int = setting(16, "questions per reader step", low=1)
    reader_lr: float = setting(1e-4, "reader learning rate", above=0, high=1)
    reader_max_len: int = setting(256, "tokens of a reader window (question and passage)", low=32)
    reader_stride: int = setting(64, "tokens two windows of one passage share", low=0)
    reader_questions: int | None = setting(30, "test questions read per cell (the same questions in "
                                                "every cell; null: all)", low=1)
    reader_k: tuple[int, ...] = setting((1, 5), "passages read per question", low=1, nonempty=True,
                                        unique=True)


@dataclass(frozen=True)
class AugmentationSettings:
    """xQG: p' = (1 - alpha) p + alpha * sum of the passage's generated-query vectors."""

    alpha: float = setting(0.01, "weight of the generated queries (the paper's 0.01)", low=0, high=1)
    alpha_sweep: tuple[float, ...] = setting((0.0, 0.005, 0.01, 0.02, 0.05, 0.1),
                                             "alphas of the sweep", low=0, high=1, unique=True)


@dataclass(frozen=True)
class EvaluationSettings:
    """Search depth and which retriever the sweeps study."""

    search_depth: int = setting(100, "passages retrieved per query", low=1, high=100_000)
    sweep_retriever: str | None = setting(None, "retriever of the alpha and n sweeps (null: the last row)")


@dataclass(frozen=True)
class RunSettings:
    seed: int = setting(313, "seed of every random choice (split, sampling, training)", low=0)
    #: None = where the CPU has bf16 instructions (AVX-512 BF16 / AMX). There it is ~2.5x faster
    #: for the encoder; on AVX2-only CPUs it is emulated and ~7x *slower*.
    bf16: bool | None = setting(None, "bf16 autocast (null: only where the CPU has native bf16)")


SECTIONS: dict[str, type] = {
    "data": DataSettings, "generator": GeneratorSettings, "generation": GenerationSettings,
    "retriever": RetrieverSettings, "augmentation": AugmentationSettings,
    "evaluation": EvaluationSettings, "contrastive": ContrastiveSettings, "xquadr": XQuADRSettings,
    "rq3": RQ3Settings, "run": RunSettings,
}


def paper_weight(alpha: float, queries_per_passage: int) -> float:
    """alpha giving generated queries the paper's total weight: it fused 7 languages x 5 queries =
    35 with alpha 0.01 on their sum; fusing fewer, alpha is scaled by 35 over their number."""
    return alpha * PAPER_QUERIES_PER_PASSAGE / queries_per_passage


@dataclass(frozen=True)
class Profile:
    """A named, complete set of settings: everything a run depends on."""

    name: str
    description: str
    data: DataSettings = DataSettings()
    generator: GeneratorSettings = GeneratorSettings()
    generation: GenerationSettings = GenerationSettings()
    retriever: RetrieverSettings = RetrieverSettings()
    augmentation: AugmentationSettings = AugmentationSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    contrastive: ContrastiveSettings = ContrastiveSettings()
    xquadr: XQuADRSettings = XQuADRSettings()
    rq3: RQ3Settings = RQ3Settings()
    run: RunSettings = RunSettings()

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def use_bf16(self) -> bool:
        from xqglib.core.hardware import cpu_has_bf16

        return cpu_has_bf16() if self.run.bf16 is None else self.run.bf16

    @property
    def scaled_alpha(self) -> float:
        """alpha giving Table 1's generated queries the paper's total weight (:func:`paper_weight`)."""
        return paper_weight(self.augmentation.alpha, len(self.generation.languages) * self.generation.n_per_language)

    @property
    def rq3_queries_per_passage(self) -> int:
        """The third question's generated queries per passage: generation languages x n."""
        return len(self.rq3.generation_languages) * self.rq3.n_per_language

    @property
    def rq3_alpha(self) -> float:
        """The same rule for the third question's queries per passage (:func:`paper_weight`)."""
        return paper_weight(self.augmentation.alpha, self.rq3_queries_per_passage)

    @property
    def primary_generator(self) -> str:
        return self.generator.models[0]

    @property
    def retrievers(self) -> tuple[RetrieverSpec, ...]:
        return self.retriever.retrievers

    @property
    def sweep_retriever(self) -> str:
        return self.evaluation.sweep_retriever or self.retriever.retrievers[-1].name

    @property
    def rq2_retrievers(self) -> tuple[RetrieverSpec, ...]:
        """The second research question's rows: the Table 1 rows it compares with, then its arms."""
        compare = self.contrastive.compare
        rows = (tuple(self.retriever_spec(n) for n in compare) if compare is not None else
                tuple(r for r in self.retriever.retrievers if r.training in ("none", "crosslingual")))
        return rows + self.contrastive.arms

    @property
    def rq3_retrievers(self) -> tuple[str, ...]:
        """The third research question's retrievers: ``rq3.retrievers``, or by default the encoder
        as it is, the cross-lingual xDR and the contrastive alignment arm (by their trainings)."""
        if self.rq3.retrievers is not None:
            return self.rq3.retrievers
        return tuple(r.name for r in self.retriever.retrievers + self.contrastive.arms
                     if r.training in ("none", "crosslingual", "align"))

    @property
    def reader_retriever(self) -> str:
        """The retriever whose passages the reader reads (by default the last compared one)."""
        return self.rq3.reader_retriever or self.rq3_retrievers[-1]

    def retriever_spec(self, name: str) -> RetrieverSpec:
        """A retriever of Table 1 or a contrastive arm, by name."""
        for spec in self.retriever.retrievers + self.contrastive.arms:
            if spec.name == name:
                return spec
        raise UserError(f"no retriever named {name!r}; the profile has "
                        f"{[r.name for r in self.retriever.retrievers + self.contrastive.arms]}")

    def to_dict(self) -> dict[str, Any]:
        """Nested and JSON-ready (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def flat(self) -> dict[str, Any]:
        """``{"section.field": value}`` for every setting, JSON-ready."""
        nested = self.to_dict()
        return {f"{s}.{k}": v for s in SECTIONS for k, v in nested[s].items()}

    def select(self, paths: Sequence[str]) -> dict[str, Any]:
        """The settings under each path (a section, or ``section.field``), flat and JSON-ready."""
        flat = self.flat()
        return {k: v for k, v in flat.items() if any(k == p or k.startswith(p + ".") for p in paths)}


# --------------------------------------------------------------------------------------------
# Checking values
# --------------------------------------------------------------------------------------------

class _Invalid(Exception):
    """One bad value: the message says what is wrong."""


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:
        return repr(value)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(hint: Any, meta: Mapping[str, Any]) -> str:
    """What a field allows, in words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)][0]
        return f"{_describe(inner, meta)}, or null"
    if origin is tuple:
        if hint == tuple[RetrieverSpec, ...]:
            return ('a list of {"name", "training", "label"} objects, training one of '
                    + ", ".join(meta.get("trainings") or TRAININGS))
        kind = "a non-empty list" if meta.get("nonempty") else "a list"
        count = "" if args[-1] is Ellipsis else f" of {len(args)}"
        return f"{kind}{count}, each {_describe(args[0], meta)}"
    if meta.get("choices"):
        return "one of " + ", ".join(map(str, meta["choices"]))
    base = {int: "whole number", float: "number", bool: "true or false", str: "string"}.get(hint, str(hint))
    bounds = []
    if meta.get("above") is not None:
        bounds.append(f"> {meta['above']:g}")
    if meta.get("low") is not None:
        bounds.append(f">= {meta['low']:g}")
    if meta.get("high") is not None:
        bounds.append(f"<= {meta['high']:g}")
    article = "" if hint is bool else "a "
    return f"{article}{base}" + (" " + " and ".join(bounds) if bounds else "")


def _convert(value: Any, hint: Any) -> Any:
    """``value`` as the field's type (lists become tuples), or :class:`_Invalid`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        return _convert(value, [a for a in args if a is not type(None)][0])
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _Invalid("expected a list")
        items = list(value)
        if args[-1] is not Ellipsis and len(items) != len(args):
            raise _Invalid(f"expected {len(args)} items, got {len(items)}")
        item_hints = [args[0]] * len(items) if args[-1] is Ellipsis else list(args)
        return tuple(_convert(v, h) for v, h in zip(items, item_hints))
    if hint is RetrieverSpec:
        if isinstance(value, RetrieverSpec):
            return value
        if not isinstance(value, Mapping):
            raise _Invalid("expected an object with name, training and label")
        unknown = set(value) - {"name", "training", "label"}
        if unknown or "name" not in value or "training" not in value:
            raise _Invalid("a retriever needs \"name\" and \"training\" (and may have \"label\")"
                           + (f"; unknown key(s) {sorted(unknown)}" if unknown else ""))
        if not all(isinstance(v, str) for v in value.values()):
            raise _Invalid("a retriever's name, training and label are strings")
        return RetrieverSpec(**value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _Invalid("expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("expected a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid("expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _Invalid("expected a string")
        return value
    raise TypeError(f"no converter for {hint}")  # a programming error, not a user's


def _check_value(value: Any, meta: Mapping[str, Any]) -> None:
    """The range and choice constraints, on a value or on every item of a list."""
    items = list(value) if isinstance(value, tuple) else [value]
    if isinstance(value, tuple):
        if meta.get("nonempty") and not items:
            raise _Invalid("the list is empty")
        if meta.get("unique") and len(set(items)) != len(items):
            dupes = sorted({str(v) for v in items if items.count(v) > 1})
            raise _Invalid(f"repeated item(s) {', '.join(dupes)}")
    which = (lambda item: f"item {_show(item)} is") if isinstance(value, tuple) else (lambda item: "it is")
    for item in items:
        if item is None or isinstance(item, RetrieverSpec):
            continue
        if meta.get("choices") and item not in meta["choices"]:
            raise _Invalid(f"{which(item)} not allowed")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if meta.get("low") is not None and item < meta["low"]:
                raise _Invalid(f"{which(item)} out of range")
            if meta.get("high") is not None and item > meta["high"]:
                raise _Invalid(f"{which(item)} out of range")
            if meta.get("above") is not None and item <= meta["above"]:
                raise _Invalid(f"{which(item)} out of range")


def _line(path: str, value: Any, problem: str, allowed: str) -> str:
    return f"{path} = {_show(value)}: {problem}; allowed: {allowed}"


def _field_line(section: str, f: dataclasses.Field, value: Any, problem: str) -> str:
    hint = _hints(SECTIONS[section])[f.name]
    return _line(f"{section}.{f.name}", value, problem, _describe(hint, f.metadata))


def validate(profile: Profile) -> list[str]:
    """Every problem of a profile, one line each (empty: the profile is sound)."""
    problems: list[str] = []
    for section, cls in SECTIONS.items():
        values = getattr(profile, section)
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            value = getattr(values, f.name)
            try:
                _convert(value, hints[f.name])
                _check_value(value, f.metadata)
            except _Invalid as exc:
                problems.append(_field_line(section, f, value, str(exc)))
    problems += _cross_checks(profile)
    return problems


def _cross_checks(p: Profile) -> list[str]:
    """Rules that involve more than one value."""
    from xqglib.models.registry import known_generator

    out = []
    split = p.data.split_articles
    if isinstance(split, tuple) and all(isinstance(v, int) for v in split) and sum(split) != SHARED_ARTICLES:
        out.append(_line("data.split_articles", split, f"adds up to {sum(split)}",
                         f"three whole numbers >= 1 adding up to {SHARED_ARTICLES}"))
    out += _benchmark_checks(p)
    g = p.generator
    if g.converge and g.plateau is not None:
        out.append(_line("generator.plateau", g.plateau, "is set with generator.converge",
                         "null when the convergence criterion decides (one stopping rule at a time)"))
    if isinstance(p.generation.seeds, tuple) and p.run.seed in p.generation.seeds:
        out.append(_line("generation.seeds", p.generation.seeds, f"holds run.seed ({p.run.seed})",
                         "seeds other than run.seed (its queries are the run's own)"))
    for section, c in (("generator", g), ("retriever", p.retriever)):
        if isinstance(c.min_passes, (int, float)) and isinstance(c.max_passes, (int, float)) and c.min_passes > c.max_passes:
            out.append(_line(f"{section}.max_passes", c.max_passes, f"is below {section}.min_passes ({c.min_passes})",
                             "at least min_passes"))
    names = [r.name for r in p.retriever.retrievers if isinstance(r, RetrieverSpec)]
    arms = [r.name for r in p.contrastive.arms if isinstance(r, RetrieverSpec)]
    for path, specs, trainings in (("retriever.retrievers", p.retriever.retrievers, TRAININGS),
                                   ("contrastive.arms", p.contrastive.arms, CONTRASTIVE_TRAININGS)):
        for r in specs:
            if not isinstance(r, RetrieverSpec):
                continue
            if r.training not in trainings:
                out.append(_line(path, dataclasses.asdict(r), f"unknown training {r.training!r}",
                                 "training one of " + ", ".join(trainings)))
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", r.name or ""):
                out.append(_line(path, dataclasses.asdict(r), f"bad name {r.name!r}",
                                 "names of letters, digits, '-' and '_' (they name files)"))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(_line("retriever.retrievers", names, f"repeated name(s) {', '.join(dupes)}",
                         "a distinct name per retriever"))
    dupes = sorted({n for n in arms if (names + arms).count(n) > 1})
    if dupes:
        out.append(_line("contrastive.arms", arms, f"repeated name(s) {', '.join(dupes)}",
                         "names no other retriever or arm has"))
    unknown = [n for n in p.contrastive.compare or () if n not in names]
    if unknown:
        out.append(_line("contrastive.compare", list(p.contrastive.compare), f"names no retriever ({', '.join(unknown)})",
                         "names of retriever.retrievers: " + ", ".join(names)))
    if "en" not in p.xquadr.languages:
        out.append(_line("xquadr.languages", list(p.xquadr.languages), "has no English",
                         "a list with en (the language-agnosticism probe pivots on it) and others"))
    everyone = names + arms
    unknown = [n for n in p.rq3.retrievers or () if n not in everyone]
    if unknown:
        out.append(_line("rq3.retrievers", list(p.rq3.retrievers), f"names no retriever ({', '.join(unknown)})",
                         "null, or names of retriever.retrievers and contrastive.arms: " + ", ".join(everyone)))
    elif not p.rq3_retrievers:
        out.append(_line("rq3.retrievers", None, "finds no retriever trained none, crosslingual or align",
                         "names of retriever.retrievers and contrastive.arms: " + ", ".join(everyone)))
    elif p.rq3.reader_retriever is not None and p.rq3.reader_retriever not in p.rq3_retrievers:
        out.append(_line("rq3.reader_retriever", p.rq3.reader_retriever, "is not among the compared retrievers",
                         "null or one of " + ", ".join(p.rq3_retrievers)))
    if "en" not in p.rq3.passage_languages:
        out.append(_line("rq3.passage_languages", list(p.rq3.passage_languages), "has no English",
                         "a list with en (the language the Table 1 generator was trained on) and others"))
    if p.rq3.reader_stride >= p.rq3.reader_max_len // 2:
        out.append(_line("rq3.reader_stride", p.rq3.reader_stride, "leaves too little new text per window",
                         f"a whole number below half of rq3.reader_max_len ({p.rq3.reader_max_len // 2})"))
    sweep = p.evaluation.sweep_retriever
    if sweep is not None and sweep not in names:
        out.append(_line("evaluation.sweep_retriever", sweep, "names no retriever",
                         "null or one of " + ", ".join(names)))
    for model in p.generator.models:
        if isinstance(model, str) and not known_generator(model):
            from xqglib.models.registry import GENERATOR_KINDS

            out.append(_line("generator.models", list(p.generator.models), f"unknown generator {model!r}",
                             "generators of " + ", ".join(sorted(GENERATOR_KINDS))))
    return out


def _benchmark_checks(p: Profile) -> list[str]:
    """The languages a benchmark has questions (and generator training pairs) in."""
    out = []
    b3 = p.data.benchmark in ("b3", "b3-tiny")
    name, allowed = ("XOR-TyDi's", XOR_LANGUAGES) if b3 else ("XQuAD's", XQUAD_LANGUAGES)
    for path, languages, extra in (("data.query_languages", p.data.query_languages, ()),
                                   ("generation.languages", p.generation.languages, () if b3 else ("en",))):
        wrong = [lang for lang in languages if lang not in allowed + extra]
        if wrong:
            out.append(_line(path, list(languages), f"has {', '.join(wrong)}, which benchmark {p.data.benchmark} has "
                             "no questions in", f"{name} languages: {', '.join(allowed + extra)}"))
    if p.data.benchmark == "b3-tiny" and any(r.training == "english" for r in p.retriever.retrievers):
        out.append(_line("retriever.retrievers", [r.name for r in p.retriever.retrievers],
                         "trains a retriever on English questions, which b3-tiny has none of (B3 takes them "
                         "from English NQ on the hub)", "retrievers trained none or crosslingual"))
    return out


def check(profile: Profile) -> Profile:
    """The profile itself if it is sound; otherwise a :class:`UserError` listing every problem."""
    problems = validate(profile)
    if problems:
        raise UserError(_problems_message(problems))
    return profile


def _problems_message(problems: list[str]) -> str:
    if len(problems) == 1:
        return f"bad setting: {problems[0]}"
    return "bad settings:\n" + "\n".join(f"  {p}" for p in problems)


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------

def flatten_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"generator": {"steps": 2}, "run.seed": 1}`` -> ``{"generator.steps": 2, "run.seed": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in SECTIONS and isinstance(value, Mapping):
            for inner, v in value.items():
                flat[f"{key}.{inner}"] = v
        else:
            flat[key] = value
    return flat


def apply_overrides(profile: Profile, overrides: Mapping[str, Any] | None, *, from_text: bool = False) -> Profile:
    """A copy of ``profile`` with some settings replaced, checked (:func:`check`).

    ``from_text``: the values came from ``--set`` on the command line, so a plain word for a list
    setting is read as a comma-separated list (``--set generation.languages=ar,de``).
    """
    problems: list[str] = []
    changes: dict[str, dict[str, Any]] = {}
    for path, value in flatten_overrides(overrides or {}).items():
        section, _, name = path.partition(".")
        if section not in SECTIONS:
            problems.append(f"{path}: unknown setting; settings are grouped in sections "
                            f"({', '.join(SECTIONS)}), e.g. generator.steps")
            continue
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
        if name not in fields:
            problems.append(f"{path}: unknown setting; {section} has {', '.join(fields)}")
            continue
        hint = _hints(SECTIONS[section])[name]
        if from_text and isinstance(value, str) and typing.get_origin(hint) is tuple:
            value = [v.strip() for v in value.split(",") if v.strip()]
        try:
            converted = _convert(value, hint)
            _check_value(converted, fields[name].metadata)
            changes.setdefault(section, {})[name] = converted
        except _Invalid as exc:
            problems.append(_field_line(section, fields[name], value, str(exc)))
    if problems:
        raise UserError(_problems_message(problems))
    replaced = {s: dataclasses.replace(getattr(profile, s), **c) for s, c in changes.items()}
    return check(dataclasses.replace(profile, **replaced))


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """``["generator.steps=200", "generation.languages=ar,de"]`` -> overrides (values read as JSON
    where they parse, else as text)."""
    out: dict[str, Any] = {}
    for item in assignments:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise UserError(f"--set {item!r}: expected section.field=value, e.g. --set generator.steps=200")
        try:
            out[path.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[path.strip()] = text
    return out


def parse_overrides(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Overrides given as JSON text (or already a mapping) -> a dict."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--overrides is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise UserError("--overrides must be a JSON object, e.g. '{\"augmentation\": {\"alpha\": 0.05}}'")
    return value


def describe(profile: Profile, *, with_help: bool = False) -> str:
    """The profile's settings grouped by section, as text."""
    lines = [f"{profile.name}: {profile.description}"]
    for section, cls in SECTIONS.items():
        lines.append(f"  [{section}]")
        values = getattr(profile, section)
        for f in dataclasses.fields(cls):
            value = getattr(values, f.name)
            if isinstance(value, tuple) and value and isinstance(value[0], RetrieverSpec):
                shown = "; ".join(f"{r.name} ({r.training})" for r in value)
            elif isinstance(value, tuple):
                shown = ", ".join(map(str, value))
            else:
                shown = "null" if value is None else str(value)
            lines.append(f"    {f.name:<18} {shown}" + (f"   # {f.metadata['help']}" if with_help else ""))
    return "\n".join(lines)
