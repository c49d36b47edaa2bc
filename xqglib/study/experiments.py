"""Experiments declared as data: conditions, and the experiments that group them.

A :class:`Condition` is one system to evaluate: a benchmark, a retriever, and how the retriever's
passage vectors are augmented (``"none"``, or ``"xqg"``: fusion with the generated queries'
vectors at some alpha, from all or the first *n* queries per language). Evaluation
(:mod:`xqglib.evaluation.rq1`) turns every condition of a profile into rows of one tidy results
table; every table, test and figure of the book is a function of that table
(:mod:`xqglib.study.analysis`).

:data:`EXPERIMENTS` names the groups of conditions the study reports: Table 1, the alpha sweep,
the n sweep, alpha scaled to the paper's number of queries, and the second research question's
tables. Adding an experiment is adding a function of the profile that returns conditions. The
third research question's conditions (:data:`CONDITIONS`) and what each encodes per passage
(:data:`CONDITION_ENCODINGS`) are declared here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from xqglib.config.settings import Profile

#: How passage vectors may be augmented: not at all, xQG as the official code fuses (a sum), or
#: xQG rescaled to the passage vector's norm after fusion (more kinds join with RQ3).
AUGMENTATIONS = ("none", "xqg", "xqg-renorm")

#: Benchmark B2, XQuAD-R: on the test articles (every retriever) and on all articles (the
#: untrained encoder only).
B2, B2_FULL = "b2", "b2-full"


@dataclass(frozen=True)
class Condition:
    """One system: a retriever on a benchmark, with or without xQG augmentation."""

    benchmark: str
    retriever: str
    augmentation: str = "none"
    #: xQG only: the fusion weight
    alpha: float | None = None
    #: xQG only: fuse the first n generated queries per language (None: all of them)
    n: int | None = None
    #: the system's name in tables and file names
    name: str = ""

    def __post_init__(self) -> None:
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augmentation!r}")
        if (self.augmentation == "none") != (self.alpha is None):
            raise ValueError("alpha is given exactly when the passages are augmented")

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two conditions the same system (the name aside)."""
        return (self.benchmark, self.retriever, self.augmentation, self.alpha, self.n)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plain(cfg: Profile, retriever: str, benchmark: str | None = None) -> Condition:
    return Condition(benchmark or cfg.data.benchmark, retriever, name=retriever)


def xqg(cfg: Profile, retriever: str, alpha: float, n: int | None = None, *, benchmark: str | None = None,
        renorm: bool = False) -> Condition:
    """xQG at ``alpha`` from the first ``n`` queries per language (rescaled to the passage norm
    with ``renorm``), in canonical form: alpha 0 is the plain retriever (p' = p exactly), and
    n >= the queries generated means all of them."""
    if alpha == 0:
        return plain(cfg, retriever, benchmark)
    if n is not None and n >= cfg.generation.n_per_language:
        n = None
    options = (["renormalised"] if renorm else []) + \
              ([] if alpha == cfg.augmentation.alpha else [f"alpha={alpha:.4g}"]) + \
              ([] if n is None else [f"n={n}"])
    name = f"{retriever}+xQG" + (f"({', '.join(options)})" if options else "")
    return Condition(benchmark or cfg.data.benchmark, retriever, "xqg-renorm" if renorm else "xqg",
                     float(alpha), n, name)


def main_conditions(cfg: Profile) -> list[Condition]:
    """Table 1: every retriever without and with xQG at the profile's alpha. Stage 5 searches
    these and writes their TREC runs."""
    return [c for spec in cfg.retrievers
            for c in (plain(cfg, spec.name), xqg(cfg, spec.name, cfg.augmentation.alpha))]


def alpha_sweep(cfg: Profile) -> list[Condition]:
    """The sweep retriever at every alpha of ``augmentation.alpha_sweep``."""
    return [xqg(cfg, cfg.sweep_retriever, a) for a in cfg.augmentation.alpha_sweep]


def n_sweep(cfg: Profile) -> list[Condition]:
    """The sweep retriever with the first n = 1..N generated queries per language."""
    return [xqg(cfg, cfg.sweep_retriever, cfg.augmentation.alpha, n)
            for n in range(1, cfg.generation.n_per_language + 1)]


def scaled_alpha(cfg: Profile) -> list[Condition]:
    """Every retriever without xQG, at the paper's alpha, and at alpha scaled to the paper's total
    query weight (:attr:`~xqglib.config.settings.Profile.scaled_alpha`)."""
    return [c for spec in cfg.retrievers
            for c in (plain(cfg, spec.name), xqg(cfg, spec.name, cfg.augmentation.alpha),
                      xqg(cfg, spec.name, cfg.scaled_alpha))]


#: The study's experiments, each a function of the profile.
EXPERIMENTS: dict[str, Callable[[Profile], list[Condition]]] = {
    "table1": main_conditions,
    "alpha_sweep": alpha_sweep,
    "n_sweep": n_sweep,
    "scaled_alpha": scaled_alpha,
}


# --------------------------------------------------------------------------------------------
# The second research question
# --------------------------------------------------------------------------------------------

def rq2_table(cfg: Profile) -> list[Condition]:
    """Every retriever of the second research question without and with xQG, on B1 and on
    XQuAD-R's test articles."""
    return [c for benchmark in (cfg.data.benchmark, B2) for spec in cfg.rq2_retrievers
            for c in (plain(cfg, spec.name, benchmark), xqg(cfg, spec.name, cfg.augmentation.alpha, benchmark=benchmark))]


def rq2_full_pool(cfg: Profile) -> list[Condition]:
    """The untrained encoder on the full XQuAD-R pool (where ``xquadr.full_pool`` says so)."""
    return [plain(cfg, spec.name, B2_FULL) for spec in cfg.rq2_retrievers
            if spec.training == "none" and cfg.xquadr.full_pool]


def rq2_fusion(cfg: Profile) -> list[Condition]:
    """Fusion hygiene on B1: every retriever at every alpha of the sweep, fused as the official
    code does and rescaled to the passage norm."""
    return [xqg(cfg, spec.name, a, renorm=renorm) for spec in cfg.rq2_retrievers
            for renorm in (False, True) for a in cfg.augmentation.alpha_sweep]


#: The second research question's experiments (stage 9 evaluates them).
RQ2_EXPERIMENTS: dict[str, Callable[[Profile], list[Condition]]] = {
    "rq2_table": rq2_table,
    "rq2_full_pool": rq2_full_pool,
    "rq2_fusion": rq2_fusion,
}


def all_conditions(cfg: Profile, experiments: dict[str, Callable[[Profile], list[Condition]]] = EXPERIMENTS
                   ) -> list[Condition]:
    """Every condition of every experiment, each once (the first name of a system is kept)."""
    seen: dict[tuple[Any, ...], Condition] = {}
    for function in experiments.values():
        for c in function(cfg):
            seen.setdefault(c.key, c)
    return list(seen.values())


def experiment(cfg: Profile, name: str) -> list[Condition]:
    """The conditions of one experiment, under the names :func:`all_conditions` gave them."""
    group = EXPERIMENTS if name in EXPERIMENTS else RQ2_EXPERIMENTS
    canonical = {c.key: c for c in all_conditions(cfg, group)}
    return [canonical[c.key] for c in group[name](cfg)]


#: The name the generator for passages in every passage language is saved under.
RQ3_GENERATOR = "rq3-passages"

#: The conditions compared, in the order tables show them.
CONDITIONS: dict[str, str] = {
    "none": "passage as it is",
    "xqg": "xQG (queries fused into the passage vector)",
    "text": "doc2query (queries appended to the passage text)",
    "dual": "dual index (passage and queries scored apart, scores fused)",
    "translations": "passage fused with its human translations (oracle)",
    "query-translated": "question in the passage language (human translation)",
}

#: The conditions whose passages depend on the generated queries: the seed sweep samples them
#: again (the others do not change with the sampling seed).
SEED_CONDITIONS = ("xqg", "text", "dual")

#: What each condition encodes per passage (a description, the stage-11 encodings it reads) and
#: how many vectors a passage has in its index (the dot products per query and passage).
CONDITION_ENCODINGS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "none": ("passage", ("passages",), 1),
    "xqg": ("passage + its queries (short)", ("passages", "generated"), 1),
    "text": ("passage with queries appended", ("text",), 1),
    "dual": ("passage + queries as one text", ("passages", "querydocs"), 2),
    "translations": ("passage + its translations", ("passages",), 1),
    "query-translated": ("passage (the question is translated)", ("passages",), 1),
}

#: The reader's gold-passage row: the reader's ceiling.
GOLD = "gold passage"


def matrix_languages(cfg: Profile) -> list[str]:
    return sorted(set(cfg.rq3.query_languages) | set(cfg.rq3.passage_languages)
                  | set(cfg.rq3.generation_languages))


def seed_variant(name: str, seed: int) -> str:
    """The name the generated queries of the seed sweep are saved under (``<generator>.seed-<seed>``)."""
    return f"{name}.seed-{seed}"


def seed_system(system: str, seed: int) -> str:
    """The name of a Table 1 xQG system's run with the queries of another sampling seed."""
    return f"{system}.seed-{seed}"
