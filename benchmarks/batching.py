"""Batching by length, measured on a finished run's own texts (``make bench`` compares each stage
with the naive loop; this compares the pipeline's batching with the one it replaced).

    .venv/bin/python benchmarks/batching.py [--run-dir runs/cpu] [--pairs 1500]

- **encoding**: the previous batching (texts in order of character length, each batch tokenised
  on its own) against :meth:`xqglib.method.encoding.DenseEncoder.encode` (chunks tokenised once and cut by
  token count), on the run's passages, test queries and a seeded sample of its generated queries;
  the largest difference between the two matrices.
- **reading**: the previous reading (pairs in order of character length, their windows padded
  together, spans decoded from the padded logits) against :meth:`xqglib.method.reading.Reader.read`
  (windows of all pairs batched by length, each decoded from its own tokens), on a seeded sample
  of stage 12's pairs, with the run's reader; how many answers agree.

Measure on AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``); one pass of each path.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import pandas as pd
import torch

from xqglib.core.formats import read_jsonl
from xqglib.method.encoding import DenseEncoder, passage_text
from xqglib.method.reading import Reader, best_over_passages, best_span
from xqglib.models.registry import encoder_spec, load_encoder, load_reader, load_tokenizer
from xqglib.pipeline.common import open_run


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--generated", type=int, default=6400, help="generated queries sampled")
    parser.add_argument("--pairs", type=int, default=1500, help="stage 12's pairs sampled")
    args = parser.parse_args()
    cfg, rd = open_run(args.profile, args.run_dir, None)
    r = cfg.retriever
    enc = DenseEncoder(load_encoder(r.encoder).eval(), load_tokenizer(r.encoder), encoder_spec(r.encoder),
                       r.query_max_len, r.passage_max_len, cfg.use_bf16, group=None)  # forward: one padded batch
    rng = random.Random(cfg.seed)
    generated = [q for p in read_jsonl(rd.generated(cfg.primary_generator))
                 for qs in p["generated_queries"].values() for q in qs]
    sets = {"passages": ([passage_text(p["title"], p["text"]) for p in read_jsonl(rd.corpus)], False),
            "test queries": ([q["query"] for q in read_jsonl(rd.test_queries)], True),
            "generated queries (sample)": (rng.sample(generated, min(args.generated, len(generated))), True)}

    @torch.no_grad()
    def by_characters(texts: list[str], is_query: bool) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), enc.model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(texts), r.encode_batch_size):
            idx = order[start:start + r.encode_batch_size]
            out[idx] = enc.forward([texts[i] for i in idx], is_query).numpy()
        return out

    rows = []
    for name, (texts, is_query) in sets.items():
        before, base = timed(lambda: by_characters(texts, is_query))
        after, ours = timed(lambda: enc.encode(texts, is_query, r.encode_batch_size))
        rows.append({"work": f"encoding: {name}", "items": len(texts), "previous s": base, "now s": ours,
                     "ratio": base / ours, "agreement": f"max |difference| {np.abs(before - after).max():.1e}"})

    reader = Reader(load_reader(str(rd.reader_model())).eval(), load_tokenizer(str(rd.reader_model())),
                    cfg.rq3.reader_max_len, cfg.rq3.reader_stride)
    reads = pd.read_parquet(rd.eval_file("rq3_reads.parquet"))
    by_q = {(q["lang"], q["qid"]): q["question"] for q in read_jsonl(rd.rq3_data("questions"))}
    paragraphs: dict[str, list[str]] = {}
    for p in read_jsonl(rd.rq3_data("passages")):
        paragraphs.setdefault(p["lang"], []).append(p["text"])
    pick = sorted(random.Random(cfg.seed).sample(range(len(reads)), min(args.pairs, len(reads))))
    questions = [by_q[(reads["asked_lang"][i], reads["qid"][i])] for i in pick]
    contexts = [paragraphs[reads["passage_lang"][i]][reads["position"][i]] for i in pick]

    @torch.no_grad()
    def previous_reading() -> list:
        best = [None] * len(questions)
        order = sorted(range(len(questions)), key=lambda i: len(contexts[i]) + len(questions[i]))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            f = reader.windows([questions[i] for i in idx], [contexts[i] for i in idx])
            out = reader.model(input_ids=f["input_ids"], attention_mask=f["attention_mask"])
            for w, sample in enumerate(f["overflow_to_sample_mapping"].tolist()):
                span = best_span(out.start_logits[w].numpy(), out.end_logits[w].numpy(), reader.context_offsets(f, w),
                                 contexts[idx[sample]], max_answer_tokens=reader.max_answer_tokens)
                best[idx[sample]] = best_over_passages([best[idx[sample]], span])
        return best

    before, base = timed(previous_reading)
    after, ours = timed(lambda: reader.read(questions, contexts, 32))
    same = sum((a.text if a else None) == (b.text if b else None) for a, b in zip(before, after))
    rows.append({"work": "reading: stage 12's pairs (sample)", "items": len(questions), "previous s": base,
                 "now s": ours, "ratio": base / ours, "agreement": f"same answer {same} of {len(questions)}"})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.2f}".format):
        print(f"profile {cfg.name}; run {rd.root}; torch threads {torch.get_num_threads()}; one pass of each path")
        print(pd.DataFrame(rows).set_index("work"))


if __name__ == "__main__":
    main()
