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

import copy
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from xqglib.core.progress import progress
from xqglib.method.convergence import Convergence, verdict_of_log
from xqglib.method.encoding import DenseEncoder, passage_text


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


def dev_batches(rows: Sequence[dict[str, Any]], batch_size: int, n_negatives: int, seed: int) -> list[Batch]:
    """Dev-article rows as fixed batches (drawn once, first-epoch negatives), so that every
    evaluation of the dev loss scores the same queries against the same passages."""
    return list(row_batches(rows, batch_size, n_negatives, seed)(0, random.Random(seed)))


@torch.no_grad()
def dev_scores(encoder: DenseEncoder, batches: Sequence[Batch]) -> dict[str, float]:
    """On the dev batches: Tevatron's loss (in-batch and hard negatives, no alignment term), the
    mean over their queries; and the MRR@10 of each query's positive among every distinct passage
    of all the batches (a ranking measure on the same vectors). Every process of a distributed run
    computes both alone, on all of the batches."""
    training = encoder.model.training
    encoder.model.eval()
    total, queries, pool, vectors, positives = 0.0, [], {}, [], []
    for b in batches:
        q, p = encoder.forward_many([(b.queries, True), (b.passages, False)])
        total += contrastive_loss(q, p).item() * len(b.queries)
        for text, vector in zip(b.passages, p):
            if text not in pool:
                pool[text] = len(vectors)
                vectors.append(vector)
        group = len(b.passages) // len(b.queries)
        positives += [pool[b.passages[i * group]] for i in range(len(b.queries))]
        queries.append(q)
    encoder.model.train(training)
    if not positives:
        return {"dev_loss": 0.0, "dev_mrr": 0.0}
    scores = torch.cat(queries) @ torch.stack(vectors).T
    own = scores[torch.arange(len(positives)), torch.tensor(positives)]
    rank = (scores >= own.unsqueeze(1)).sum(1)  # a tie ranks the positive behind (collapsed vectors score 0)
    return {"dev_loss": total / len(positives), "dev_mrr": float(torch.where(rank <= 10, 1.0 / rank, 0.0).mean())}


def agreed(value: float, accelerator: Any | None) -> float:
    """The first process's ``value`` on every process (so that all of them take the same decision
    to keep a checkpoint or to stop, whatever their floating-point differences)."""
    if accelerator is None or accelerator.num_processes == 1:
        return value
    import torch.distributed as dist

    shared = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(shared, 0)
    return float(shared.item())


def train_retriever(encoder: DenseEncoder, rows: Sequence[dict[str, Any]], *, epochs: int,
                    max_steps: int | None, batch_size: int, n_negatives: int, lr: float,
                    warmup_ratio: float, seed: int, freeze_embeddings: bool,
                    max_grad_norm: float | None = 1.0, align_weight: float = 0.0,
                    temperature: float = 0.05, accelerator: Any | None = None,
                    dev: Sequence[Batch] | None = None,
                    convergence: Convergence | None = None) -> list[dict[str, float]]:
    """Fine-tune ``encoder`` in place on Tevatron-style rows; returns the per-step loss log. With
    ``align_weight`` > 0 the rows carry ``translations`` and the translation ranking loss joins;
    with an ``accelerator`` it runs on several processes; with ``dev`` batches and a
    ``convergence`` criterion it trains until that holds (:func:`train_on_batches`)."""
    batches = row_batches(rows, batch_size, n_negatives, seed, align=align_weight > 0)
    return train_on_batches(encoder, batches, math.ceil(len(rows) / batch_size), epochs=epochs,
                            max_steps=max_steps, lr=lr, warmup_ratio=warmup_ratio, seed=seed,
                            freeze_embeddings=freeze_embeddings, max_grad_norm=max_grad_norm,
                            align_weight=align_weight, temperature=temperature, accelerator=accelerator,
                            dev=dev, convergence=convergence)


def first_of_each(ids: Sequence[str]) -> list[int]:
    """Positions of the first occurrence of every id (a question twice in one batch would be its
    own in-batch negative in the translation ranking loss)."""
    seen: set[str] = set()
    return [i for i, x in enumerate(ids) if not (x in seen or seen.add(x))]


def local_part(batch: Batch, rank: int, world: int) -> tuple[Batch, int]:
    """One process's contiguous share of a global batch (its queries, their passage groups and
    translations; every process draws the same global batches from the same seed), and the
    position of its first query in the global batch."""
    if world == 1:
        return batch, 0
    from xqglib.core.sharding import shard_range

    start, stop = shard_range(len(batch.queries), rank, world)
    group = len(batch.passages) // len(batch.queries)
    pick = (lambda xs: None if xs is None else xs[start:stop])
    return Batch(batch.queries[start:stop], batch.passages[start * group:stop * group],
                 pick(batch.translations), pick(batch.question_ids)), start


def gather_rows(local: torch.Tensor, accelerator: Any | None) -> torch.Tensor:
    """The rows of every process, in rank order, with gradients through this process's own rows
    (Tevatron's ``negatives_x_device``: each process scores its queries against every passage)."""
    if accelerator is None or accelerator.num_processes == 1:
        return local
    import torch.distributed as dist

    world = accelerator.num_processes
    sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]]))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype)
    padded[: local.shape[0]] = local.detach()
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    rows = [p[: int(n.item())] for p, n in zip(parts, sizes)]
    rows[accelerator.process_index] = local
    return torch.cat(rows)


def batch_losses(encoder: DenseEncoder, batch: Batch, align_weight: float, temperature: float,
                 accelerator: Any | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one global batch (computed by every process from the rows of all of them, with
    gradients through its own): Tevatron's, plus ``align_weight`` x the translation ranking loss
    over the batch's distinct questions where it has translations."""
    from xqglib.method.alignment import translation_ranking_loss

    world = 1 if accelerator is None else accelerator.num_processes
    rank = 0 if accelerator is None else accelerator.process_index
    local, start = local_part(batch, rank, world)
    align = align_weight > 0 and batch.translations is not None
    groups = [(local.queries, True), (local.passages, False)]
    if align:  # the translations of the batch's distinct questions (those in this process's share)
        keep = first_of_each(batch.question_ids or [str(i) for i in range(len(batch.queries))])
        mine = [i - start for i in keep if start <= i < start + len(local.queries)]
        groups.append(([local.translations[i] for i in mine], True))
    reps = [gather_rows(r, accelerator) for r in encoder.forward_many(groups)]
    ranking = contrastive_loss(reps[0], reps[1])
    if not align:
        return ranking, {}
    # the shares are contiguous and in rank order, so the gathered translations follow ``keep``
    alignment = translation_ranking_loss(reps[0][keep], reps[2], temperature)
    return ranking + align_weight * alignment, {"ranking_loss": ranking.item(), "alignment_loss": alignment.item()}


def train_on_batches(encoder: DenseEncoder, batches: Callable[[int, random.Random], Iterable[Batch]],
                     steps_per_epoch: int, *, epochs: int, max_steps: int | None, lr: float,
                     warmup_ratio: float, seed: int, freeze_embeddings: bool,
                     max_grad_norm: float | None = 1.0, align_weight: float = 0.0,
                     temperature: float = 0.05, accelerator: Any | None = None,
                     dev: Sequence[Batch] | None = None,
                     convergence: Convergence | None = None) -> list[dict[str, float]]:
    """The training loop: Tevatron's loss on every batch (plus ``align_weight`` x the translation
    ranking loss where the batch has translations), AdamW, linear warm-up and decay, clipping.

    With ``convergence`` (and ``dev`` batches), ``epochs`` and ``max_steps`` give way to the
    criterion: at most its ``max_passes`` passes (the schedule's length), the dev loss and MRR@10
    (:func:`dev_scores`) every ``eval_share`` of a pass, a stop once the criterion holds on its
    measure, and the weights of that measure's best kept at the end. Every log row says its ``passes``.

    With an ``accelerate.Accelerator`` of several processes (launched by ``torchrun`` or
    ``accelerate launch``), each process encodes its share of every global batch, the vectors are
    gathered across processes, and the model is wrapped in distributed data parallel: every
    process computes the global batch's loss, scaled by the number of processes because data
    parallel averages the gradients, so the update equals the one-process update on the global
    batch (up to floating-point order)."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = encoder.model
    if freeze_embeddings:
        # the 250k-row word-embedding matrix is most of the parameters and of the optimiser cost
        model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    eval_every = None
    if convergence is not None:
        if not dev:
            raise ValueError("training to convergence needs dev batches")
        steps, eval_every = convergence.max_steps(steps_per_epoch), convergence.steps_per_eval(steps_per_epoch)
        epochs = math.ceil(steps / steps_per_epoch)
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(optim, int(warmup_ratio * steps), steps)
    world = 1
    if accelerator is not None:
        world = accelerator.num_processes
        encoder.module = accelerator.prepare_model(encoder.module)
    log: list[dict[str, float]] = []
    best, best_state = None, None
    converged = False
    started = time.perf_counter()
    model.train()
    step = 0
    with progress(total=steps, desc="train retriever", unit="steps",
                  quiet=accelerator is not None and not accelerator.is_main_process) as bar:
        for epoch in range(epochs):
            for batch in batches(epoch, rng):
                if step >= steps or converged:
                    break
                positions_before = encoder.positions_run
                loss, entry = batch_losses(encoder, batch, align_weight, temperature, accelerator)
                (loss * world).backward()
                grad_norm = (torch.nn.utils.clip_grad_norm_(params, max_grad_norm).item()
                             if max_grad_norm is not None else float("nan"))
                optim.step()
                sched.step()
                optim.zero_grad(set_to_none=True)
                step += 1
                row = {"step": step, "loss": loss.item(), **entry, "grad_norm": grad_norm,
                       "positions": encoder.positions_run - positions_before, "passes": step / steps_per_epoch}
                if eval_every and (step % eval_every == 0 or step == steps):
                    positions_before = encoder.positions_run
                    scores = dev_scores(encoder, dev)
                    row["dev_loss"], row["dev_mrr"] = (agreed(scores[k], accelerator) for k in ("dev_loss", "dev_mrr"))
                    row["dev_positions"] = encoder.positions_run - positions_before
                    if convergence.better(row[convergence.measure], best):
                        best, best_state = row[convergence.measure], copy.deepcopy(model.state_dict())
                row["seconds"] = time.perf_counter() - started
                log.append(row)
                bar.update(1)
                converged = "dev_loss" in row and verdict_of_log(convergence, log, steps_per_epoch).converged
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return log


def hybrid_training_batches(items: Sequence[dict[str, Any]], languages: Sequence[str], batch_size: int,
                            alpha: float, n_negatives: int, seed: int,
                            per_epoch: int | None = None) -> Callable[[int, random.Random], Iterator[Batch]]:
    """Hybrid batches (:func:`xqglib.method.alignment.hybrid_batches`, drawn anew each epoch), each
    question with its paragraph in the batch's passage language and ``n_negatives`` hard negatives:
    other paragraphs of the same article in that language (``item["negatives"][lang]``). An epoch
    is one pass over the items or, with ``per_epoch``, that many batches of passes drawn anew."""
    from xqglib.method.alignment import hybrid_batches

    by_id = {item["id"]: (i, item) for i, item in enumerate(items)}

    def epoch_batches(epoch: int, rng: random.Random) -> Iterator[Batch]:
        draws: Iterable[list[dict[str, Any]]] = hybrid_batches(items, languages, batch_size, alpha, seed + epoch)
        if per_epoch is not None:  # the passes of epoch e are seeded apart from every other epoch's
            rounds = (hybrid_batches(items, languages, batch_size, alpha, seed + 100_003 * epoch + r)
                      for r in itertools.count())
            draws = itertools.islice(itertools.chain.from_iterable(rounds), per_epoch)
        for batch in draws:
            passages = []
            for example in batch:
                i, item = by_id[example["id"]]
                negatives = epoch_negatives(item["negatives"][example["passage_lang"]], n_negatives, epoch, seed + i)
                passages += [passage_text(p["title"], p["text"]) for p in [example] + negatives]
            yield Batch([example["query"] for example in batch], passages)
    return epoch_batches
