"""Training the dense retriever with Tevatron v1's contrastive loss.

Per query one positive and ``n`` hard negatives; the score of a query against every passage of the
batch (its own group and the other queries' groups: in-batch negatives) is the dot product of the
pooled vectors, temperature 1; the loss is cross-entropy with the query's own positive as target.
One encoder is shared by queries and passages.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .encoding import DenseEncoder, passage_text


def contrastive_loss(q_reps: torch.Tensor, p_reps: torch.Tensor) -> torch.Tensor:
    """Tevatron v1: ``CE(q @ p.T, target = i * group_size)`` with passages grouped per query."""
    group = p_reps.shape[0] // q_reps.shape[0]
    scores = q_reps @ p_reps.T
    target = torch.arange(q_reps.shape[0]) * group
    return F.cross_entropy(scores, target)


def train_retriever(encoder: DenseEncoder, rows: Sequence[dict[str, Any]], *, epochs: int,
                    max_steps: int | None, batch_size: int, n_negatives: int, lr: float,
                    warmup_ratio: float, seed: int, freeze_embeddings: bool) -> list[dict[str, float]]:
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
    with tqdm(total=steps, desc="train retriever") as bar:
        for _epoch in range(epochs):
            order = list(range(len(rows)))
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                if step >= steps:
                    break
                batch = [rows[i] for i in order[start:start + batch_size]]
                queries = [r["query"] for r in batch]
                passages = []
                for r in batch:
                    group = r["positive_passages"][:1] + r["negative_passages"][:n_negatives]
                    passages += [passage_text(p["title"], p["text"]) for p in group]
                loss = contrastive_loss(encoder.forward(queries, True), encoder.forward(passages, False))
                loss.backward()
                optim.step()
                sched.step()
                optim.zero_grad(set_to_none=True)
                step += 1
                log.append({"step": step, "loss": loss.item(), "seconds": time.perf_counter() - started})
                bar.update(1)
    model.eval()
    return log
