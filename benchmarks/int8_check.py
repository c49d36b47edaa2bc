"""Int8 generation against full precision, on a run's trained generator.

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        .venv/bin/python benchmarks/int8_check.py [--run-dir runs/cpu] [--questions 50]

For each int8 scheme (torchao: weight-only; weights and dynamic activations): the distribution
check of :mod:`quantization` (beside this script) on held-out dev-article questions (mean NLL under both, total
variation between the top-k sampling distributions, share of positions with the same top-k set)
and whether it passes :data:`quantization.TOLERANCE`; and the sampling speed (queries/s and
tokens/s, medians) of the shared-prefix sampler with each model, against full precision in the
same run. int8 kernels may pick their own instructions whatever the cap: the table says which
path was measured, not which instructions it used.

torchao is not part of the study's environment (no profile uses int8 until it passes the check,
and transformers imports it, with warnings, wherever it is installed):
``.venv/bin/pip install torchao==0.18.0`` first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
from quantization import SCHEMES, TOLERANCE, distribution_check, passes, quantized, with_model

from xqglib.core.formats import read_jsonl
from xqglib.method.generator import QueryGenerator
from xqglib.models.registry import load_generator, load_tokenizer
from xqglib.pipeline.common import open_run
from xqglib.pipeline.rq1 import vocabulary_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--questions", type=int, default=50, help="held-out questions for the check")
    parser.add_argument("--passages", type=int, default=8, help="passages per sampling trial")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg, rd = open_run(args.profile, args.run_dir, "{}", stage=None)
    name = cfg.primary_generator
    folder = rd.generator_model(name)
    source = str(folder) if folder.exists() else name
    g, s = cfg.generator, cfg.generation
    gen = QueryGenerator(load_generator(source, "decoder"), load_tokenizer(source), "decoder",
                         g.max_input_len, g.max_target_len)
    gen.model.eval()
    dev = read_jsonl(rd.generator_pairs("dev"))[: args.questions]
    corpus = read_jsonl(rd.corpus)
    gen.restrict_vocabulary(vocabulary_texts(cfg, corpus))
    chunk = [(p["title"], p["text"]) for p in corpus[: args.passages]]
    print(f"generator {source}; {len(dev)} held-out questions; top-k {s.top_k}; tolerance {TOLERANCE}")

    def speed(model) -> tuple[float, float]:
        sampler = with_model(gen, model)
        out = {}
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            out["q"] = sampler.sample(chunk, s.languages, s.n_per_language, s.top_k, s.max_new_tokens, seed=0)
            times.append(time.perf_counter() - started)
        texts = [q for lang in s.languages for qs in out["q"][lang] for q in qs]
        tokens = sum(len(gen.tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)
        return len(texts) / statistics.median(times), tokens / statistics.median(times)

    rows = []
    base_q, base_t = speed(gen.model)
    rows.append({"path": "fp32", "queries/s": base_q, "tokens/s": base_t, "speed-up per token": 1.0})
    for scheme in SCHEMES:
        model = quantized(gen.model, scheme)
        check = distribution_check(gen, model, dev, k=s.top_k)
        q, t = speed(model)
        rows.append({"path": scheme, "queries/s": q, "tokens/s": t, "speed-up per token": t / base_t,
                     "NLL fp32": check["nll_reference"], "NLL int8": check["nll_candidate"],
                     "NLL increase (%)": 100 * check["nll_increase"],
                     "top-k TV": check["total_variation"], "same top-k (%)": 100 * check["same_top_k"],
                     "passes": passes(check)})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.3f}".format):
        print(pd.DataFrame(rows).set_index("path"))


if __name__ == "__main__":
    main()
