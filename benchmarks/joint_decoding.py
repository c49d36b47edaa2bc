"""Joint decoding against one language at a time, on a run's trained generator.

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        .venv/bin/python benchmarks/joint_decoding.py [--run-dir runs/cpu] [--repeats 3]

The profile's real sampling batch (``generation.batch_passages`` passages of the corpus x its
languages x n, top-k, the data vocabulary where the profile uses it), sampled by
:func:`xqglib.method.sampling.sample_shared_prefix` one language at a time (the reference path) and
with every language's rows decoded together over the shared prefixes (the pipeline's path), each
with the same seeds, and jointly with sampler 2 (stopped rows dropped once they are an eighth of the
batch) against today's sampler 3 (each row dropped at the step it stops); medians of ``--repeats``
rounds, and the ratios. Then greedy decoding (top-k = 1) by each, which must give the same tokens.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from xqglib.core.formats import read_jsonl
from xqglib.method.generator import QueryGenerator, data_vocabulary
from xqglib.method.joint_decoding import joint_decoding_exact
from xqglib.method.sampling import SAMPLER_VERSION, sample_shared_prefix
from xqglib.models.registry import load_generator, load_tokenizer
from xqglib.pipeline.common import open_run
from xqglib.pipeline.rq1 import vocabulary_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--offset", type=int, default=500, help="first corpus passage of the batch")
    args = parser.parse_args()
    cfg, rd = open_run(args.profile, args.run_dir, None)
    source = str(rd.require(rd.generator_model(cfg.primary_generator), "train-generator"))
    gen = QueryGenerator(load_generator(source, "decoder").eval(), load_tokenizer(source), "decoder",
                         cfg.generator.max_input_len, cfg.generator.max_target_len)
    corpus = read_jsonl(rd.corpus)
    g = cfg.generation
    vocabulary = data_vocabulary(gen.tok, vocabulary_texts(cfg, corpus), gen.stop_ids) if g.vocabulary == "data" else None
    chunk = corpus[args.offset:args.offset + g.batch_passages]
    ids, mask = gen._pad([gen.passage_ids(p["title"], p["text"]) for p in chunk])
    instructions = [gen.instruction_ids(lang) for lang in g.languages]
    length = ids.shape[1] + max(map(len, instructions)) + g.max_new_tokens
    print(f"{len(chunk)} passages x {len(instructions)} languages x n = {g.n_per_language}, top-k {g.top_k}, "
          f"head over {'the whole vocabulary' if vocabulary is None else f'{len(vocabulary):,} tokens'}; "
          f"joint decoding exact here: {joint_decoding_exact(gen.model, length)}; {torch.get_num_threads()} threads")

    def sample(joint: bool | None, seed: int, top_k: int, sampler: int = SAMPLER_VERSION) -> list[torch.Tensor]:
        return sample_shared_prefix(gen.model, ids, mask, instructions, g.n_per_language, top_k, g.max_new_tokens,
                                    gen.stop_ids, gen.pad_id, torch.Generator().manual_seed(seed), vocabulary, joint,
                                    sampler)

    if not joint_decoding_exact(gen.model, length):
        print("joint decoding is not exact for this generator and these lengths: the pipeline decodes one "
              "language at a time here, and there is nothing to compare")
        return
    runs = {"one language at a time": (False, SAMPLER_VERSION), "languages jointly": (True, SAMPLER_VERSION),
            "jointly, sampler 2": (True, 2)}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    tokens: dict[str, list[int]] = {name: [] for name in seconds}
    for repeat in range(args.repeats):
        for name, (joint, sampler) in runs.items():
            started = time.perf_counter()
            out = sample(joint, repeat, g.top_k, sampler)
            seconds[name].append(time.perf_counter() - started)
            tokens[name].append(sum(int((rows != gen.pad_id).sum()) for rows in out))
    queries = len(chunk) * len(instructions) * g.n_per_language
    for name in seconds:
        median = statistics.median(seconds[name])
        print(f"{name:>24}: {median:6.1f} s a batch ({queries / median:5.1f} queries/s, "
              f"{statistics.median(tokens[name]) / median:4.0f} tokens/s; rounds {[round(s, 1) for s in seconds[name]]})")
    joint = statistics.median(seconds["languages jointly"])
    print(f"ratio (joint against one at a time): {statistics.median(seconds['one language at a time']) / joint:.2f}")
    print(f"ratio (sampler 2 against sampler {SAMPLER_VERSION}, jointly): "
          f"{statistics.median(seconds['jointly, sampler 2']) / joint:.3f}")
    greedy = sample(True, 0, 1)
    for name, (joint_path, sampler) in runs.items():
        same = [torch.equal(a, b) for a, b in zip(sample(joint_path, 0, 1, sampler), greedy)]
        print(f"greedy decoding, {name}: the same tokens as jointly with sampler {SAMPLER_VERSION} "
              f"in {sum(same)} of {len(same)} languages")


if __name__ == "__main__":
    main()
