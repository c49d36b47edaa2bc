"""When training has converged: a criterion that a still-falling dev curve cannot meet.

Training is evaluated on dev-article rows every ``eval_share`` of a pass over its training rows.
It has converged once it has seen at least ``min_passes`` passes and the last ``patience``
evaluations set no new best of its ``measure`` (a lower dev loss, or a higher dev MRR@10 for a
retriever). The best evaluated checkpoint is the one kept, never one chosen on test. Training that
reaches ``max_passes`` first stops there, unconverged, and its verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The dev measures a criterion may follow (a log row's key), what they are called, and which way is better.
MEASURES = {"dev_loss": "dev loss", "dev_mrr": "dev MRR@10"}
HIGHER_IS_BETTER = frozenset({"dev_mrr"})


@dataclass(frozen=True)
class Convergence:
    """The criterion's settings (see the module's docstring)."""

    min_passes: float = 1.0
    eval_share: float = 0.25
    patience: int = 3
    max_passes: float = 4.0
    #: the log key it follows (:data:`MEASURES`)
    measure: str = "dev_loss"

    def __post_init__(self) -> None:
        if (not 0 < self.eval_share <= 1 or self.patience < 1 or not 0 < self.min_passes <= self.max_passes
                or self.measure not in MEASURES):
            raise ValueError(f"not a usable criterion: {self}")

    @classmethod
    def of(cls, section: Any) -> Convergence:
        """The criterion a settings section states (its ``min_passes``, ``eval_share``,
        ``patience``, ``max_passes`` and, where it has one, ``dev_measure``: loss or mrr)."""
        return cls(section.min_passes, section.eval_share, section.patience, section.max_passes,
                   f"dev_{getattr(section, 'dev_measure', 'loss')}")

    @property
    def label(self) -> str:
        return MEASURES[self.measure]

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` is a new best against ``than`` (None: nothing yet); a tie is not."""
        return than is None or (value > than if self.measure in HIGHER_IS_BETTER else value < than)

    def steps_per_eval(self, steps_per_pass: int) -> int:
        return max(1, round(self.eval_share * steps_per_pass))

    def max_steps(self, steps_per_pass: int) -> int:
        return max(1, math.ceil(self.max_passes * steps_per_pass))


@dataclass(frozen=True)
class Verdict:
    """Where training stands: converged (and at which evaluation the best checkpoint is), or not."""

    converged: bool
    best_step: int | None
    #: the best value of the criterion's measure (the kept checkpoint's)
    best: float | None
    steps: int
    passes: float
    evaluations: int
    reason: str


def verdict(criterion: Convergence, evaluations: Sequence[tuple[int, float]], steps_per_pass: int,
            steps: int | None = None) -> Verdict:
    """The criterion applied to ``(step, value of its measure)`` evaluations after ``steps`` steps
    (the last evaluated step where not given)."""
    steps = steps if steps is not None else (evaluations[-1][0] if evaluations else 0)
    passes = steps / steps_per_pass
    if not evaluations:
        return Verdict(False, None, None, steps, passes, 0, "no dev evaluation yet")
    best = 0
    for i, (_, value) in enumerate(evaluations):
        if criterion.better(value, evaluations[best][1]):
            best = i
    since = len(evaluations) - 1 - best
    best_step, best_value = evaluations[best]
    if passes + 1e-9 < criterion.min_passes:
        reason = f"{passes:.2f} of at least {criterion.min_passes:g} passes"
        return Verdict(False, best_step, best_value, steps, passes, len(evaluations), reason)
    if since >= criterion.patience:
        reason = (f"no new best {criterion.label} in the last {since} evaluations (every {criterion.eval_share:g} of a "
                  f"pass) after {passes:.2f} passes")
        return Verdict(True, best_step, best_value, steps, passes, len(evaluations), reason)
    reason = f"a new best {criterion.label} {since} evaluation(s) ago, after {passes:.2f} passes"
    if passes + 1e-9 >= criterion.max_passes:
        reason = f"stopped at the most passes ({criterion.max_passes:g}) with {reason}"
    return Verdict(False, best_step, best_value, steps, passes, len(evaluations), reason)


def steps_per_pass_of(log: Sequence[Mapping[str, float]]) -> int:
    """The steps of one pass over the training rows, from a log whose rows carry ``passes``."""
    return max(1, round(log[-1]["step"] / log[-1]["passes"]))


def verdict_of_log(criterion: Convergence, log: Sequence[Mapping[str, float]],
                   steps_per_pass: int | None = None) -> Verdict:
    """The verdict on a training log (rows with ``step`` and, where evaluated, the criterion's
    measure; the steps of a pass from its ``passes`` where not given)."""
    if steps_per_pass is None:
        steps_per_pass = steps_per_pass_of(log) if log else 1
    evaluations = [(int(r["step"]), float(r[criterion.measure])) for r in log if criterion.measure in r]
    return verdict(criterion, evaluations, steps_per_pass, int(log[-1]["step"]) if log else 0)
