"""Generation and encoding throughput: this package's paths against the plain Hugging Face loop
on the same model, measured in the same run (medians of repeated trials, and their ratio).

    .venv/bin/python benchmarks/throughput.py                 # the cpu profile's real models
    .venv/bin/python benchmarks/throughput.py --profile smoke # tiny models, seconds

Generation: n questions per passage and language by top-k sampling. Baseline:
``model.generate(do_sample=True, num_return_sequences=n)`` on every full prompt, which reads it n
times per language. Ours (:func:`xqglib.generation.sample_shared_prefix`): each passage is read
once for all languages, its key/value cache copied per language and repeated n times, decoding
stops at the first line break and drops stopped rows; exact top-k over the full vocabulary, and
again with the LM head restricted to the data's vocabulary (an approximation; see
:func:`xqglib.generation.head_agreement`).
Encoding: passages through the encoder. Baseline: the plain loop (fp32, batches in input order).
Ours: :meth:`xqglib.encoding.DenseEncoder.encode` (bf16 autocast where the profile uses it,
batches of similar length).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from xqglib.profiles import load_profile
from xqglib.data import build_b1
from xqglib.encoding import DenseEncoder, passage_text
from xqglib.generation import QueryGenerator
from xqglib.models import encoder_spec, generator_kind, load_encoder, load_generator, load_tokenizer
from xqglib.pipeline import sampling_vocabulary


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--prompts", type=int, default=8, help="passages per generation batch")
    parser.add_argument("--languages", type=int, default=2, help="generation languages (the profile's first ones)")
    parser.add_argument("--passages", type=int, default=64, help="passages per encoding trial")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_profile(args.profile)
    torch.manual_seed(cfg.seed)
    b1 = build_b1(cfg)
    passages = b1.corpus[: max(args.prompts, args.passages)]
    print(f"profile {cfg.name}; torch threads {torch.get_num_threads()}; bf16 {cfg.use_bf16}; medians of {args.repeats}")

    name = cfg.primary_generator
    kind = generator_kind(name)
    gen = QueryGenerator(load_generator(name, kind), load_tokenizer(name), kind,
                         cfg.generator.max_input_len, cfg.generator.max_target_len)
    gen.model.eval()
    chunk = [(p.title, p.text) for p in passages[: args.prompts]]
    languages = cfg.generation.languages[: args.languages]
    g = cfg.generation
    n, k, new = g.n_per_language, g.top_k, g.max_new_tokens
    queries = len(chunk) * len(languages) * n
    vocabulary = sampling_vocabulary(cfg, gen, [p.as_tevatron() for p in b1.corpus])

    def generate(shared: bool, restricted: bool):
        def run():
            gen.vocabulary = vocabulary if restricted else None
            gen.sample(chunk, languages, n, k, new, seed=0, bf16=cfg.use_bf16, shared_prefill=shared)
        return run

    base = median_time(generate(False, False), args.repeats)
    print(f"generation ({name}, {len(chunk)} passages x {len(languages)} languages x n={n}, top-k {k}, "
          f"<= {new} new tokens):")
    print(f"  HF generate              {queries / base:8.2f} queries/s")
    for label, restricted in (("shared prefix", False), (f"+ {len(vocabulary)}-token head", True)):
        ours = median_time(generate(True, restricted), args.repeats)
        print(f"  {label:24} {queries / ours:8.2f} queries/s   ratio {base / ours:.2f}x")

    r = cfg.retriever
    model, tok = load_encoder(r.encoder), load_tokenizer(r.encoder)
    model.eval()
    spec = encoder_spec(r.encoder)
    texts = [passage_text(p.title, p.text) for p in passages[: args.passages]]
    bs = r.encode_batch_size

    @torch.no_grad()
    def plain_loop():
        for start in range(0, len(texts), bs):
            batch = tok([spec.passage_prefix + t for t in texts[start:start + bs]], padding=True,
                        truncation=True, max_length=r.passage_max_len, return_tensors="pt")
            model(**batch)

    encoder = DenseEncoder(model, tok, spec, r.query_max_len, r.passage_max_len, cfg.use_bf16)
    base = median_time(plain_loop, args.repeats)
    ours = median_time(lambda: encoder.encode(texts, False, bs), args.repeats)
    print(f"encoding ({r.encoder}, {len(texts)} passages, <= {r.passage_max_len} tokens, batch {bs}):")
    print(f"  HF loop (fp32)     {len(texts) / base:8.1f} passages/s")
    print(f"  DenseEncoder       {len(texts) / ours:8.1f} passages/s   ratio {base / ours:.2f}x")


if __name__ == "__main__":
    main()
