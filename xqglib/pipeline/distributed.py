"""Several processes, through an existing engine: Hugging Face ``accelerate`` over
``torch.distributed`` (NCCL on GPUs, gloo on CPUs), launched by ``torchrun`` or ``accelerate launch``.

- Training: :func:`xqglib.method.retriever_training.train_on_batches` with the :func:`accelerator` of this
  module. Each process encodes its share of every global batch; vectors are gathered across
  processes (Tevatron's ``negatives_x_device``) and the model is wrapped in distributed data
  parallel, so an update equals the one-process update on the same global batch.
- Encoding: :func:`encode_sharded`: each process encodes a contiguous slice of the texts and writes
  its own shard (:mod:`xqglib.core.sharding`); finished shards are skipped on a rerun; the first process
  merges them, checking every id once and in order.

``python -m xqglib.pipeline.distributed check --out DIR`` runs both on a tiny model and tiny hand-made rows
and writes what a comparison needs; the tests launch it with one and with two processes on gloo and
compare (``tests/test_distributed.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xqglib.core.sharding import merge_shards, shard_done, shard_range, write_shard
from xqglib.method.encoding import DenseEncoder


def accelerator() -> Any:
    """The run's ``accelerate.Accelerator``: GPUs where there are, else CPU processes on gloo.
    (Every trainable parameter reaches the loss: the encoders are loaded without BERT's pooler.)"""
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


def encode_sharded(encoder: DenseEncoder, texts: Sequence[str], ids: Sequence[str], stem: Path, is_query: bool,
                   batch_size: int, acc: Any,
                   bounds: Sequence[tuple[int, int]] | None = None,
                   dest: Path | None = None) -> tuple[np.ndarray, list[str]] | None:
    """Encode this process's slice of ``texts`` into its shard (skipped where the shard is already
    finished), wait for every process, and on the first one merge the shards (returned there;
    None elsewhere; with ``dest``, merged into that file, see :func:`merge_shards`). ``bounds``:
    each process's [start, stop) (default: :func:`shard_range`)."""
    rank, world = acc.process_index, acc.num_processes
    if not shard_done(stem, rank, world):
        start, stop = bounds[rank] if bounds is not None else shard_range(len(texts), rank, world)
        vectors = encoder.encode(list(texts[start:stop]), is_query, batch_size,
                                 f"rank {rank}: encode" if acc.is_main_process else None)
        write_shard(stem, rank, world, vectors, ids[start:stop])
    acc.wait_for_everyone()
    return merge_shards(stem, world, ids, dest) if acc.is_main_process else None


def check_rows(n: int = 8) -> list[dict[str, Any]]:
    """Tiny hand-made training rows (each with translations), for the consistency check."""
    return [{"query_id": f"q{i % 4}-{'ar' if i < 4 else 'de'}", "query": f"what is item number {i}?",
             "positive_passages": [{"title": "Items", "text": f"item {i} is a thing of kind {i % 3}"}],
             "negative_passages": [{"title": "Items", "text": f"other item {i + j} of kind {j}"} for j in range(3)],
             "translations": {"en": f"which one is item {i % 4}", "th": f"item {i % 4} please"}}
            for i in range(n)]


def _check_encoder() -> DenseEncoder:
    from xqglib.models.registry import encoder_spec, load_encoder, load_tokenizer

    torch.manual_seed(0)
    encoder = DenseEncoder(load_encoder("tiny-bert"), load_tokenizer("tiny-bert"), encoder_spec("tiny-bert"),
                           16, 24, False)
    # dropout draws its masks per process, as in any data-parallel training; the comparison needs
    # a deterministic forward pass
    for module in encoder.model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_prob"):  # attention dropout, applied inside scaled_dot_product_attention
            module.dropout_prob = 0.0
    return encoder


def check(out: Path, steps: int = 3) -> None:
    """What the one- and two-process runs are compared on, written by the first process into
    ``out``: the first global batch's loss and gradient (after data parallel's averaging), the
    losses of a few training steps (tiny BERT, dropout off, with alignment), and the vectors of
    some texts encoded in shards by an untrained copy and merged."""
    import random

    from xqglib.core.formats import write_json
    from xqglib.method.retriever_training import batch_losses, row_batches, train_on_batches

    acc = accelerator()
    batches = row_batches(check_rows(), 4, 1, seed=5, align=True)
    # the first step's gradient
    encoder = _check_encoder()
    encoder.model.get_input_embeddings().weight.requires_grad_(False)
    if acc.num_processes > 1:
        encoder.module = acc.prepare_model(encoder.module)
    loss, _ = batch_losses(encoder, next(iter(batches(0, random.Random(5)))), 0.5, 0.05, acc)
    (loss * acc.num_processes).backward()
    gradient = torch.cat([p.grad.flatten() for p in encoder.model.parameters() if p.grad is not None]).numpy()
    # a few steps of training
    log = train_on_batches(_check_encoder(), batches, 2, epochs=2, max_steps=steps, lr=1e-3, warmup_ratio=0.0,
                           seed=5, freeze_embeddings=True, align_weight=0.5, accelerator=acc)
    # sharded encoding
    texts = [f"passage {i} " + "word " * (i % 7) for i in range(11)]
    merged = encode_sharded(_check_encoder(), texts, [f"d{i}" for i in range(11)], out / "shards" / "passages",
                            False, 3, acc)
    if acc.is_main_process:
        write_json(out / "check.json", {"processes": acc.num_processes, "first_loss": loss.item(),
                                        "losses": [r["loss"] for r in log], "ids": merged[1]})
        np.save(out / "gradient.npy", gradient)
        np.save(out / "vectors.npy", merged[0])
    acc.wait_for_everyone()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xqglib.pipeline.distributed")
    parser.add_argument("task", choices=["check"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    check(args.out, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
