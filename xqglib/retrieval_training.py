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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
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


@dataclass
class Batch:
    """One training step's texts: the queries, each query's group of passages (positive first,
    then its hard negatives), and for alignment a parallel translation of every query with the id
    its question shares across languages (None: no alignment)."""

    queries: list[str]
    passages: list[str]
    translations: list[str] | None = None
    question_ids: list[str] | None = None


def row_batches(rows: Sequence[dict[str, Any]], batch_size: int, n_negatives: int, seed: int,
                align: bool = False) -> Callable[[int, random.Random], Iterator[Batch]]:
    """Tevatron v1 batches of training rows, epoch by epoch: the rows shuffled with the training's
    random stream, then each query with its positive and this epoch's hard negatives. With
    ``align`` each row also brings one of its ``translations`` (drawn per row and epoch with its
    own seed, so the main stream is the same as without alignment)."""
    def epoch_batches(epoch: int, rng: random.Random) -> Iterator[Batch]:
        order = list(range(len(rows)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [(i, rows[i]) for i in order[start:start + batch_size]]
            passages = []
            for i, r in batch:
                negatives = epoch_negatives(r["negative_passages"], n_negatives, epoch, seed + i)
                passages += [passage_text(p["title"], p["text"]) for p in r["positive_passages"][:1] + negatives]
            translations = ids = None
            if align:
                picks = [random.Random(f"{seed}-{i}-{epoch}").choice(sorted(r["translations"])) for i, r in batch]
                translations = [r["translations"][lang] for (_, r), lang in zip(batch, picks)]
                ids = [r["query_id"].rsplit("-", 1)[0] for _, r in batch]
            yield Batch([r["query"] for _, r in batch], passages, translations, ids)
    return epoch_batches


def train_retriever(encoder: DenseEncoder, rows: Sequence[dict[str, Any]], *, epochs: int,
                    max_steps: int | None, batch_size: int, n_negatives: int, lr: float,
                    warmup_ratio: float, seed: int, freeze_embeddings: bool,
                    max_grad_norm: float | None = 1.0, align_weight: float = 0.0,
                    temperature: float = 0.05) -> list[dict[str, float]]:
    """Fine-tune ``encoder`` in place on Tevatron-style rows; returns the per-step loss log. With
    ``align_weight`` > 0 the rows carry ``translations`` and the translation ranking loss joins."""
    batches = row_batches(rows, batch_size, n_negatives, seed, align=align_weight > 0)
    return train_on_batches(encoder, batches, math.ceil(len(rows) / batch_size), epochs=epochs,
                            max_steps=max_steps, lr=lr, warmup_ratio=warmup_ratio, seed=seed,
                            freeze_embeddings=freeze_embeddings, max_grad_norm=max_grad_norm,
                            align_weight=align_weight, temperature=temperature)


def first_of_each(ids: Sequence[str]) -> list[int]:
    """Positions of the first occurrence of every id (a question twice in one batch would be its
    own in-batch negative in the translation ranking loss)."""
    seen: set[str] = set()
    return [i for i, x in enumerate(ids) if not (x in seen or seen.add(x))]


def train_on_batches(encoder: DenseEncoder, batches: Callable[[int, random.Random], Iterable[Batch]],
                     steps_per_epoch: int, *, epochs: int, max_steps: int | None, lr: float,
                     warmup_ratio: float, seed: int, freeze_embeddings: bool,
                     max_grad_norm: float | None = 1.0, align_weight: float = 0.0,
                     temperature: float = 0.05) -> list[dict[str, float]]:
    """The training loop: Tevatron's loss on every batch (plus ``align_weight`` x the translation
    ranking loss where the batch has translations), AdamW, linear warm-up and decay, clipping."""
    from transformers import get_linear_schedule_with_warmup

    from .alignment import translation_ranking_loss

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = encoder.model
    if freeze_embeddings:
        # the 250k-row word-embedding matrix is most of the parameters and of the optimiser cost
        model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(optim, int(warmup_ratio * steps), steps)
    log: list[dict[str, float]] = []
    started = time.perf_counter()
    model.train()
    step = 0
    with progress(total=steps, desc="train retriever", unit="steps") as bar:
        for epoch in range(epochs):
            for batch in batches(epoch, rng):
                if step >= steps:
                    break
                positions_before = encoder.positions_run
                q_reps = encoder.forward(batch.queries, True)
                ranking = contrastive_loss(q_reps, encoder.forward(batch.passages, False))
                loss, entry = ranking, {}
                if align_weight > 0 and batch.translations is not None:
                    keep = first_of_each(batch.question_ids or [str(i) for i in range(len(batch.queries))])
                    t_reps = encoder.forward([batch.translations[i] for i in keep], True)
                    alignment = translation_ranking_loss(q_reps[keep], t_reps, temperature)
                    loss = ranking + align_weight * alignment
                    entry = {"ranking_loss": ranking.item(), "alignment_loss": alignment.item()}
                loss.backward()
                grad_norm = (torch.nn.utils.clip_grad_norm_(params, max_grad_norm).item()
                             if max_grad_norm is not None else float("nan"))
                optim.step()
                sched.step()
                optim.zero_grad(set_to_none=True)
                step += 1
                log.append({"step": step, "loss": loss.item(), **entry, "grad_norm": grad_norm,
                            "positions": encoder.positions_run - positions_before,
                            "seconds": time.perf_counter() - started})
                bar.update(1)
    model.eval()
    return log


def hybrid_training_batches(items: Sequence[dict[str, Any]], languages: Sequence[str], batch_size: int,
                            alpha: float, n_negatives: int,
                            seed: int) -> Callable[[int, random.Random], Iterator[Batch]]:
    """Hybrid batches (:func:`xqglib.alignment.hybrid_batches`, drawn anew each epoch), each
    question with its paragraph in the batch's passage language and ``n_negatives`` hard negatives:
    other paragraphs of the same article in that language (``item["negatives"][lang]``)."""
    from .alignment import hybrid_batches

    by_id = {item["id"]: (i, item) for i, item in enumerate(items)}

    def epoch_batches(epoch: int, rng: random.Random) -> Iterator[Batch]:
        for batch in hybrid_batches(items, languages, batch_size, alpha, seed + epoch):
            passages = []
            for example in batch:
                i, item = by_id[example["id"]]
                negatives = epoch_negatives(item["negatives"][example["passage_lang"]], n_negatives, epoch, seed + i)
                passages += [passage_text(p["title"], p["text"]) for p in [example] + negatives]
            yield Batch([example["query"] for example in batch], passages)
    return epoch_batches
