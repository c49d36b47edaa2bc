"""Training the query generator: the loss on question tokens, dev-article loss, and the plateau rule.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Mapping, Sequence

import torch

from xqglib.core.progress import progress
from xqglib.method.convergence import Convergence, verdict_of_log
from xqglib.method.generator import QueryGenerator


@torch.no_grad()
def evaluate_loss(gen: QueryGenerator, pairs: Sequence[dict[str, str]], batch_size: int,
                  bf16: bool) -> float:
    """Token-weighted mean loss over ``pairs`` (the dev-article loss)."""
    gen.model.eval()
    total, count = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        batch = gen.collate(pairs[start:start + batch_size])
        tokens = int((batch.labels[:, 1:] != -100).sum()) if gen.kind == "decoder" else int((batch.labels != -100).sum())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            total += float(gen.loss(batch)) * tokens
        count += tokens
    return total / max(count, 1)


#: The share of the steps so far that :func:`at_plateau` looks back over, and the relative gain
#: below which the study calls a dev loss flat (where the profile sets no other).
PLATEAU_WINDOW = 0.2
PLATEAU_GAIN = 0.02


def plateau_comparison(log: Sequence[Mapping[str, float]]) -> tuple[int, float, int, float] | None:
    """What the plateau rule compares: (earlier step, its dev loss, last step, its dev loss), the
    earlier one being the latest evaluation at or before 80% of the last evaluated step (so the
    span covers at least the last 20% of the steps); None while there is none."""
    evaluated = [(int(row["step"]), row["dev_loss"]) for row in log if "dev_loss" in row]
    if not evaluated:
        return None
    step, loss = evaluated[-1]
    earlier = [(at, past) for at, past in evaluated[:-1] if at <= (1 - PLATEAU_WINDOW) * step]
    return (*earlier[-1], step, loss) if earlier else None


def recent_gain(log: Sequence[Mapping[str, float]]) -> float | None:
    """The relative fall of the dev loss over the span :func:`plateau_comparison` compares."""
    comparison = plateau_comparison(log)
    if comparison is None:
        return None
    _, earlier, _, last = comparison
    return (earlier - last) / earlier


def at_plateau(log: Sequence[Mapping[str, float]], min_gain: float) -> bool:
    """Whether the dev loss has reached a plateau: the last 20% of the steps so far improved it by
    less than ``min_gain`` (:func:`recent_gain`). False while no evaluation lies that far back."""
    gain = recent_gain(log)
    return gain is not None and gain < min_gain


def train_generator(gen: QueryGenerator, train_pairs: Sequence[dict[str, str]],
                    dev_pairs: Sequence[dict[str, str]], *, steps: int, batch_size: int, lr: float,
                    seed: int, eval_every: int, bf16: bool, freeze_embeddings: bool,
                    max_dev_pairs: int, plateau: float | None = None,
                    convergence: Convergence | None = None) -> list[dict[str, float]]:
    """Fine-tune with AdamW and linear decay over ``steps``; keep the checkpoint with the lowest
    dev loss. With ``plateau``, stop early at the first evaluation where the dev loss has reached
    a plateau (:func:`at_plateau`). With ``convergence``, ``steps`` and ``eval_every`` come from
    the criterion (its passes over ``train_pairs``), and training stops once it holds.

    Returns the log: one row per step (``train_loss``, ``passes``), with ``dev_loss`` where
    evaluated.
    """
    from transformers import get_linear_schedule_with_warmup

    steps_per_pass = math.ceil(len(train_pairs) / batch_size)
    if convergence is not None:
        if convergence.measure != "dev_loss":
            raise ValueError("the generator's criterion follows its dev loss")
        steps, eval_every = convergence.max_steps(steps_per_pass), convergence.steps_per_eval(steps_per_pass)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    if freeze_embeddings:  # the tied embedding matrix: most of the parameters and of the optimiser cost
        gen.model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in gen.model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(optim, 0, steps)
    dev = list(dev_pairs)
    rng.shuffle(dev)
    dev = dev[:max_dev_pairs]
    order: list[int] = []
    log: list[dict[str, float]] = []
    best_loss, best_state = math.inf, None
    started = time.perf_counter()
    for step in progress(range(1, steps + 1), desc="train generator", unit="steps"):
        gen.model.train()
        if len(order) < batch_size:
            fresh = list(range(len(train_pairs)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch = gen.collate([train_pairs[i] for i in order[:batch_size]])
        del order[:batch_size]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = gen.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        row = {"step": step, "train_loss": loss.item(), "passes": step / steps_per_pass,
               "seconds": time.perf_counter() - started,
               # what the step's FLOPs are spent on: model positions (padding included), and the
               # positions where the LM head runs (the question tokens)
               "positions": batch.input_ids.numel() + (batch.labels.numel() if gen.kind == "seq2seq" else 0),
               "head_positions": int((batch.labels != -100).sum())}
        if dev and (step % eval_every == 0 or step == steps):
            row["dev_loss"] = evaluate_loss(gen, dev, batch_size, bf16)
            if row["dev_loss"] < best_loss:
                best_loss = row["dev_loss"]
                best_state = copy.deepcopy(gen.model.state_dict())
        log.append(row)
        if plateau is not None and "dev_loss" in row and at_plateau(log, plateau):
            break
        if convergence is not None and "dev_loss" in row and verdict_of_log(convergence, log, steps_per_pass).converged:
            break
    if best_state is not None:
        gen.model.load_state_dict(best_state)
    gen.model.eval()
    return log
