"""Training the dense retriever with Tevatron v1's contrastive loss.

Per query one positive and ``n`` hard negatives; the score of a query against every passage of the
batch (its own group and the other queries' groups: in-batch negatives) is the dot product of the
pooled vectors, temperature 1; the loss is cross-entropy with the query's own positive as target.
One encoder is shared by queries and passages.

As Tevatron v1's ``TrainDataset`` and its Hugging Face Trainer: each query's hard negatives are
drawn anew every epoch from its pool of negatives (the pool shuffled once with a per-query seed,
then a new window each epoch; sampled with replacement when the pool is smaller than asked), and
gradients are clipped to a global norm of 1.0 (the Trainer's ``max_grad_norm``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from .progress import progress

from .encoding import DenseEncoder, passage_text


def contrastive_loss(q_reps: torch.Tensor, p_reps: torch.Tensor) -> torch.Tensor:
    """Tevatron v1: ``CE(q @ p.T, target = i * group_size)`` with passages grouped per query."""
    group = p_reps.shape[0] // q_reps.shape[0]
    scores = q_reps @ p_reps.T
    target = torch.arange(q_reps.shape[0]) * group
    return F.cross_entropy(scores, target)


def epoch_negatives(pool: Sequence[Any], n: int, epoch: int, seed: int) -> list[Any]:
    """The ``n`` hard negatives of one query in one epoch, as Tevatron v1 draws them: the pool
    shuffled with the query's own seed, then the window starting at ``epoch * n`` (cyclic), so
    every epoch sees the next negatives of the pool; with replacement if the pool is too small."""
    rng = random.Random(seed)
    if n == 0 or not pool:
        return []
    if len(pool) < n:
        return rng.choices(list(pool), k=n)
    shuffled = list(pool)
    rng.shuffle(shuffled)
    offset = epoch * n % len(shuffled)
    return (shuffled * 2)[offset: offset + n]


def train_retriever(encoder: DenseEncoder, rows: Sequence[dict[str, Any]], *, epochs: int,
                    max_steps: int | None, batch_size: int, n_negatives: int, lr: float,
                    warmup_ratio: float, seed: int, freeze_embeddings: bool,
                    max_grad_norm: float | None = 1.0) -> list[dict[str, float]]:
    """Fine-tune ``encoder`` in place on Tevatron-style rows; returns the per-step loss log."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = encoder.model
    if freeze_embeddings:
        # the 250k-row word-embedding matrix is most of the parameters and of the optimiser cost
        model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    steps_per_epoch = math.ceil(len(rows) / batch_size)
    steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(optim, int(warmup_ratio * steps), steps)
    log: list[dict[str, float]] = []
    started = time.perf_counter()
    model.train()
    step = 0
    with progress(total=steps, desc="train retriever", unit="steps") as bar:
        for epoch in range(epochs):
            order = list(range(len(rows)))
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                if step >= steps:
                    break
                batch = [(i, rows[i]) for i in order[start:start + batch_size]]
                positions_before = encoder.positions_run
                queries = [r["query"] for _, r in batch]
                passages = []
                for i, r in batch:
                    negatives = epoch_negatives(r["negative_passages"], n_negatives, epoch, seed + i)
                    passages += [passage_text(p["title"], p["text"]) for p in r["positive_passages"][:1] + negatives]
                loss = contrastive_loss(encoder.forward(queries, True), encoder.forward(passages, False))
                loss.backward()
                grad_norm = (torch.nn.utils.clip_grad_norm_(params, max_grad_norm).item()
                             if max_grad_norm is not None else float("nan"))
                optim.step()
                sched.step()
                optim.zero_grad(set_to_none=True)
                step += 1
                log.append({"step": step, "loss": loss.item(), "grad_norm": grad_norm,
                            "positions": encoder.positions_run - positions_before,
                            "seconds": time.perf_counter() - started})
                bar.update(1)
    model.eval()
    return log
