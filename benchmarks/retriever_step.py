"""A retriever training step, each batch one padded batch per group (before) against chunks of
texts of (nearly) equal token count (now, :meth:`xqglib.method.encoding.DenseEncoder.forward_many`),
on a run's own training rows (stage 1 is enough).

    .venv/bin/python benchmarks/retriever_step.py [--run-dir runs/cpu] [--steps 8] [--groups 4,8,16]

Forward and backward of Tevatron's loss on the first pass's batches, the same weights for every
path (no update; the optimiser's step is the same on every path and left out), paths interleaved
batch by batch; the median seconds a step, its ratio to the padded batch, the positions run and
the largest loss difference (in eval mode: dropout draws differ with the shapes).
Measure on AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

import pandas as pd
import torch

from xqglib.core.formats import read_jsonl
from xqglib.core.reuse import seeded_subset
from xqglib.method.retriever_training import batch_losses, row_batches
from xqglib.pipeline.common import encoder_for, open_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--training", default="crosslingual", help="whose rows: english or crosslingual")
    parser.add_argument("--steps", type=int, default=6, help="batches timed per path")
    parser.add_argument("--groups", default="4,8,16", help="chunk sizes compared with the padded batch")
    args = parser.parse_args()
    cfg, rd = open_run(args.profile, args.run_dir, None)
    r = cfg.retriever
    rows = seeded_subset(read_jsonl(rd.require(rd.retriever_rows(args.training), "data")), r.max_train_rows, cfg.seed)
    batches = list(itertools.islice(row_batches(rows, r.batch_size, r.negatives, cfg.seed)(0, random.Random(cfg.seed)),
                                    args.steps + 1))
    encoder = encoder_for(cfg, r.encoder)
    encoder.model.get_input_embeddings().weight.requires_grad_(not r.freeze_embeddings)
    encoder.model.train()
    paths: list[int | None] = [None, *(int(g) for g in args.groups.split(","))]
    seconds: dict[int | None, list[float]] = {g: [] for g in paths}
    positions: dict[int | None, int] = dict.fromkeys(paths, 0)
    losses: dict[int | None, list[float]] = {g: [] for g in paths}
    for k, batch in enumerate(batches):
        for group in paths:
            encoder.group, before = group, encoder.positions_run
            encoder.model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            loss, _ = batch_losses(encoder, batch, 0.0, 0.05)
            loss.backward()
            if k:  # the first batch warms up every path
                seconds[group].append(time.perf_counter() - started)
                positions[group] += encoder.positions_run - before
    encoder.model.eval()
    with torch.no_grad():
        for group in paths:
            encoder.group = group
            losses[group] = [batch_losses(encoder, b, 0.0, 0.05)[0].item() for b in batches[1:]]
    base = statistics.median(seconds[None])
    table = pd.DataFrame([{"path": "one padded batch" if g is None else f"chunks of {g}",
                           "median s a step": statistics.median(seconds[g]), "ratio": base / statistics.median(seconds[g]),
                           "positions": positions[g], "positions saved (%)": 100 * (1 - positions[g] / positions[None]),
                           "max |loss difference|": max(abs(a - b) for a, b in zip(losses[g], losses[None]))}
                          for g in paths]).set_index("path")
    with pd.option_context("display.width", 200, "display.max_columns", 10, "display.float_format", "{:,.4g}".format):
        print(f"profile {cfg.name}; {args.training} rows; {args.steps} steps of {r.batch_size} queries and "
              f"{r.batch_size * (1 + r.negatives)} passages; torch threads {torch.get_num_threads()}; forward and backward")
        print(table)


if __name__ == "__main__":
    main()
