"""What each stage costs, in floating-point operations, against the machine's measured roof.

The count is of the matrix products, which are nearly all of a transformer's work: per token
position, every linear layer of the body costs 2 x its weights (multiply and add); the LM head,
2 x hidden x the vocabulary rows it scores, where it runs; attention scores, 4 x heads x
head_dim x the keys attended. Training counts 3 x the forward pass (the backward pass is two
products per forward one). Norms, activations, softmax and the optimiser are left out. The
count is checked against PyTorch's own FLOP counter (``torch.utils.flop_counter``) on tiny
models (``tests/test_cost.py``).

The **roof** is the fp32 matrix-product rate this machine reaches with the run's threads,
measured in the same process (:func:`measure_roof`); a stage's *roof time* is its FLOPs over the
roof, and its wall time over its roof time says how far it is from the machine's limit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from xqglib.core.timing import read_timings, work_seconds
from xqglib.data.matrix import matrix_vocabulary_texts
from xqglib.method import augmentation as AUG
from xqglib.method.generator import data_vocabulary
from xqglib.study.experiments import CONDITION_ENCODINGS, RQ3_GENERATOR


@dataclass(frozen=True)
class TransformerShape:
    """The sizes of a transformer stack that decide its FLOPs."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    gated_mlp: bool  # three MLP matrices (Gemma, T5 v1.1) instead of two (BERT)

    @classmethod
    def from_config(cls, config: Any) -> TransformerShape:
        """From a Hugging Face decoder (Gemma, Llama-like) or BERT-like encoder config."""
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        gated = config.model_type not in {"bert", "xlm-roberta", "roberta"}
        return cls(layers=config.num_hidden_layers, hidden=config.hidden_size,
                   intermediate=config.intermediate_size, heads=heads,
                   kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                   head_dim=head_dim, vocab=config.vocab_size, gated_mlp=gated)

    @property
    def body_weights(self) -> int:
        """Weights of the linear layers one token position passes through (biases left out)."""
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)  # q, o; k, v
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.intermediate
        return self.layers * (attention + mlp)

    def forward(self, positions: float, head_positions: float = 0, head_rows: int | None = None,
                attended: float = 0) -> float:
        """Forward FLOPs: ``positions`` token positions through the body, the LM head over
        ``head_rows`` vocabulary rows (default: all) at ``head_positions``, and ``attended``
        (query position, key) pairs of attention scores, summed over positions."""
        rows = self.vocab if head_rows is None else head_rows
        return (2 * self.body_weights * positions + 2 * self.hidden * rows * head_positions
                + 4 * self.layers * self.heads * self.head_dim * attended)


def measure_roof(seconds: float = 3.0, size: int = 1024) -> float:
    """fp32 FLOP/s of square matrix products with torch's current threads: the best of repeated
    ``size`` x ``size`` products over about ``seconds`` (a roof is what the machine can reach;
    interference only ever lowers a trial, so the best trial estimates it, not the median)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):  # warm-up
        a @ b
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        started = time.perf_counter()
        a @ b
        rates.append(2 * size**3 / (time.perf_counter() - started))
    return max(rates)


def stage_row(stage: str, what: str, flops: float, seconds: float | None, roof: float) -> dict[str, Any]:
    """One row of the cost table: FLOPs, wall time, roof time and the share of the roof reached."""
    roof_seconds = flops / roof
    return {"stage": stage, "what": what, "TFLOP": flops / 1e12, "wall s": seconds,
            "roof s": roof_seconds,
            "share of roof (%)": 100 * roof_seconds / seconds if seconds else None}


def cost_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows of :func:`stage_row`, with a total."""
    table = pd.DataFrame(rows)
    total = {"stage": "total", "what": "", "TFLOP": table["TFLOP"].sum(),
             "wall s": table["wall s"].sum(min_count=1), "roof s": table["roof s"].sum()}
    timed = table["wall s"].notna()
    total["share of roof (%)"] = (100 * table.loc[timed, "roof s"].sum() / total["wall s"]
                                  if total["wall s"] else None)
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


# --------------------------------------------------------------------------------------------
# The stages of a run

def _config(name: str) -> Any:
    from transformers import AutoConfig

    from xqglib.models.registry import resolve

    return AutoConfig.from_pretrained(resolve(name))


def generator_training_flops(shape: TransformerShape, log: list[dict[str, Any]], batch_size: int,
                             dev_pairs: int, freeze_embeddings: bool) -> float | None:
    """A generator's training: 3 x forward on the body; the LM head 2 x forward with a frozen
    (tied) embedding (no weight gradient), else 3 x; attention over each batch's padded square;
    plus the dev-loss evaluations (forward only, at the training batches' mean length).
    None for a log without position counts (written before they were logged)."""
    if not log or "positions" not in log[0]:
        return None
    head = 2 if freeze_embeddings else 3
    flops = 0.0
    for row in log:
        width = row["positions"] / batch_size
        flops += 3 * shape.forward(row["positions"], attended=row["positions"] * width)
        flops += head * 2 * shape.hidden * shape.vocab * row["head_positions"]
    evaluations = sum(1 for row in log if "dev_loss" in row)
    per_pair = sum(r["positions"] for r in log) / (len(log) * batch_size)
    per_pair_head = sum(r["head_positions"] for r in log) / (len(log) * batch_size)
    flops += evaluations * dev_pairs * shape.forward(per_pair, per_pair_head, attended=per_pair * per_pair)
    return flops


def generation_flops(shape: TransformerShape, passage_tokens: list[int], instruction_tokens: list[int],
                     query_tokens: list[int], head_rows: int, n_passages: int) -> float:
    """Shared-prefix sampling: every passage read once; per language its instruction on top; then
    one decoding step per generated token (the question's tokens and its stop token), each
    attending to the passage, the instruction and the tokens before it, with the LM head over
    the sampling vocabulary. ``query_tokens`` are per generated query, languages in the order of
    ``instruction_tokens`` (equal counts per language)."""
    prefill = shape.forward(sum(passage_tokens), attended=sum(t * (t + 1) / 2 for t in passage_tokens))
    mean_passage = sum(passage_tokens) / max(len(passage_tokens), 1)
    for length in instruction_tokens:
        prefill += shape.forward(n_passages * length, attended=n_passages * length * (mean_passage + length))
    per_language = len(query_tokens) // max(len(instruction_tokens), 1)
    decode = 0.0
    for index, tokens in enumerate(query_tokens):
        context = mean_passage + instruction_tokens[min(index // max(per_language, 1), len(instruction_tokens) - 1)]
        steps = tokens + 1  # the question's tokens and its stop token, each sampled
        decode += shape.forward(steps - 1, head_positions=steps, head_rows=head_rows,
                                attended=(steps - 1) * context + (steps - 1) * steps / 2)
    return prefill + decode


def generation_row(stage: str, what: str, cfg: Any, shape: TransformerShape, gen: Any,
                   generated: list[dict[str, Any]], languages: list[str], head_rows: int,
                   seconds: float | None, roof: float) -> dict[str, Any]:
    """Generation from the generated rows (released xQG format): every passage's prompt tokens, each
    language's instruction, each query's tokens (capped as sampling caps them), counted by the
    generator's own prompt tokenisation (``gen`` needs no model)."""
    passages = [len(gen.passage_ids(r["title"], r["text"])) for r in generated]
    queries = [q for lang in languages for r in generated for q in r["generated_queries"][lang]]
    query_tokens = [min(len(ids), cfg.generation.max_new_tokens - 1)
                    for ids in gen.tok(queries, add_special_tokens=False)["input_ids"]]
    flops = generation_flops(shape, passages, [len(gen.instruction_ids(lang)) for lang in languages],
                             query_tokens, head_rows, len(generated))
    return stage_row(stage, f"{what}: {len(queries):,} queries", flops, seconds, roof)


def training_row(stage: str, name: str, log: list[dict[str, Any]], shape: TransformerShape,
                 seconds: float | None, roof: float) -> dict[str, Any] | None:
    """A retriever's training from its log: 3 x forward on the positions it ran, and a forward on
    those of its dev evaluations (None for a log that kept no positions)."""
    if not (log and "positions" in log[0]):
        return None
    flops = 3 * shape.forward(sum(r["positions"] for r in log)) + shape.forward(sum(r.get("dev_positions", 0) for r in log))
    return stage_row(stage, f"{name}: {len(log)} steps", flops, seconds, roof)


def b1_encoding_positions(cfg: Any, rd: Any, generated: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """What encoding B1 costs one retriever: token positions of the corpus, the test queries and
    the generated queries (each as the encoder reads it), and the passage, test-query and
    generated-query counts."""
    from xqglib.core.formats import generated_query_table, read_jsonl
    from xqglib.method.encoding import DenseEncoder, passage_text
    from xqglib.models.registry import encoder_spec, load_tokenizer

    r = cfg.retriever
    encoder = DenseEncoder(None, load_tokenizer(r.encoder), encoder_spec(r.encoder), r.query_max_len,
                           r.passage_max_len, False)
    corpus = read_jsonl(rd.corpus)
    queries = [q["query"] for q in read_jsonl(rd.test_queries)]
    generated_queries = [row["query"] for row in generated_query_table(generated)]
    positions = (sum(encoder.token_counts([passage_text(p["title"], p["text"]) for p in corpus], False))
                 + sum(encoder.token_counts(queries + generated_queries, True)))
    return positions, len(corpus), len(queries), len(generated_queries)


def run_costs(cfg: Any, rd: Any, roof: float) -> pd.DataFrame:
    """The cost table of a finished run (stages 2-5 of the primary generator and every
    retriever): FLOPs from the run's own logs and outputs, wall times from its timings."""
    from xqglib.core.formats import read_json, read_jsonl
    from xqglib.method.generator import QueryGenerator
    from xqglib.models.registry import generator_kind, load_tokenizer

    timings = read_timings(rd.timings)
    rows = []
    name = cfg.primary_generator
    generated = read_jsonl(rd.generated(name))
    if generator_kind(name) == "decoder":
        shape = TransformerShape.from_config(_config(name))
        g = cfg.generator
        # the generator's own prompt tokenisation (it needs no model)
        gen = QueryGenerator(None, load_tokenizer(name), "decoder", g.max_input_len, g.max_target_len)
        log = read_json(rd.generator_log(name))
        flops = generator_training_flops(shape, log, g.batch_size, g.max_dev_pairs, g.freeze_embeddings)
        if flops is not None:
            rows.append(stage_row("2 train-generator", f"{name}: {len(log)} steps of {g.batch_size}",
                                  flops, work_seconds(timings, 2, name), roof))
        languages = list(generated[0]["generated_queries"]) if generated else []
        rows.append(generation_row("3 generate", name, cfg, shape, gen, generated, languages,
                                   read_json(rd.generation_report(name))["vocabulary_size"],
                                   work_seconds(timings, 3, name), roof))
    encoder_shape = TransformerShape.from_config(_config(cfg.retriever.encoder))
    for spec in cfg.retriever.retrievers:
        if spec.training == "none":
            continue
        row = training_row("4 train-retriever", spec.name, read_json(rd.retriever_log(spec.name)), encoder_shape,
                           work_seconds(timings, 4, spec.name), roof)
        if row is not None:
            rows.append(row)
    positions, passages, queries, generated_queries = b1_encoding_positions(cfg, rd, generated)
    search = 2 * queries * passages * encoder_shape.hidden
    for spec in cfg.retriever.retrievers:
        seconds = [work_seconds(timings, 5, f"{part} {spec.name}") for part in ("encode", "search")]
        rows.append(stage_row("5 encode-search", f"{spec.name}: {passages:,} passages, "
                              f"{queries + generated_queries:,} queries",
                              encoder_shape.forward(positions) + search,
                              sum(s for s in seconds if s is not None) or None, roof))
    return cost_table(rows)


def rq2_costs(cfg: Any, rd: Any, roof: float) -> pd.DataFrame:
    """The cost table of the second research question's stages: the contrastive arms' training
    (stage 7, from their logs' positions), their B1 encoding and every retriever's XQuAD-R encoding
    (stage 8, from the texts' token counts); wall times from the run's timings."""
    from xqglib.core.formats import read_json, read_jsonl
    from xqglib.data import xquadr
    from xqglib.data.xquadr import xquadr_pool
    from xqglib.method.encoding import DenseEncoder
    from xqglib.models.registry import encoder_spec, load_tokenizer

    timings = read_timings(rd.timings)
    shape = TransformerShape.from_config(_config(cfg.retriever.encoder))
    rows = []
    for spec in cfg.contrastive.arms:
        row = training_row("7 train-contrastive", spec.name, read_json(rd.retriever_log(spec.name)), shape,
                           work_seconds(timings, 7, spec.name), roof)
        if row is not None:
            rows.append(row)
    positions, passages, queries, generated_queries = b1_encoding_positions(
        cfg, rd, read_jsonl(rd.generated(cfg.primary_generator)))
    for spec in cfg.contrastive.arms:
        rows.append(stage_row("8 encode-rq2", f"B1 {spec.name}: {passages:,} passages, "
                              f"{queries + generated_queries:,} queries", shape.forward(positions),
                              work_seconds(timings, 8, f"encode {spec.name}"), roof))
    r = cfg.retriever
    candidates = DenseEncoder(None, load_tokenizer(r.encoder), encoder_spec(r.encoder), r.query_max_len,
                              cfg.xquadr.candidate_max_len, False)
    full = xquadr.load(cfg.xquadr.languages)
    for spec in cfg.rq2_retrievers:
        bench = xquadr_pool(cfg, rd, spec.name, full)
        count = (sum(candidates.token_counts(bench.candidate_texts(), False))
                 + sum(candidates.token_counts([q["question"] for q in bench.questions], True)))
        rows.append(stage_row("8 encode-rq2", f"XQuAD-R {spec.name}: {len(bench.candidates):,} candidates, "
                              f"{len(bench.questions):,} questions", shape.forward(count),
                              work_seconds(timings, 8, f"encode XQuAD-R {spec.name}"), roof))
    return cost_table(rows)


def rq3_costs(cfg: Any, rd: Any, roof: float) -> pd.DataFrame:
    """The cost table of the third research question's stages: the generator's and the reader's
    training (stage 10, from their logs), generation for every passage and every retriever's
    encodings (stage 11, from the texts' token counts) and the reader's reading (stage 12, from
    the windows of the pairs it read); wall times from the logs and the run's timings."""
    from xqglib.core.formats import read_json, read_jsonl
    from xqglib.method.encoding import DenseEncoder
    from xqglib.method.generator import QueryGenerator
    from xqglib.models.registry import encoder_spec, generator_kind, load_tokenizer

    timings = read_timings(rd.timings)
    rows = []
    g, r3 = cfg.generator, cfg.rq3
    name = cfg.primary_generator
    generated = read_jsonl(rd.generated(RQ3_GENERATOR))
    if generator_kind(name) == "decoder":
        shape = TransformerShape.from_config(_config(name))
        log = read_json(rd.generator_log(RQ3_GENERATOR))
        flops = generator_training_flops(shape, log, g.batch_size, g.max_dev_pairs, g.freeze_embeddings)
        if flops is not None:
            rows.append(stage_row("10 rq3-train", f"generator: {len(log)} steps of {g.batch_size}", flops,
                                  work_seconds(timings, 10, "generator"), roof))
        gen = QueryGenerator(None, load_tokenizer(name), "decoder", g.max_input_len, g.max_target_len)
        # the sampling vocabulary stage 11 used, rebuilt
        restricted = cfg.generation.vocabulary == "data"
        head_rows = len(data_vocabulary(gen.tok, matrix_vocabulary_texts(rd, generated), gen.stop_ids)) if restricted else len(gen.tok)
        rows.append(generation_row("11 rq3-encode", "generate", cfg, shape, gen, generated,
                                   list(r3.generation_languages), head_rows,
                                   work_seconds(timings, 11, "generate"), roof))
    encoder_shape = TransformerShape.from_config(_config(cfg.retriever.encoder))
    reader_log = read_json(rd.reader_log())
    reader_shape = encoder_shape  # the encoder with a span head (two outputs per position: left out)
    row = training_row("10 rq3-train", "reader", reader_log, reader_shape, work_seconds(timings, 10, "reader"), roof)
    if row is not None:
        rows.append(row)
    r = cfg.retriever
    tok = load_tokenizer(r.encoder)
    encoder = DenseEncoder(None, tok, encoder_spec(r.encoder), r.query_max_len, r.passage_max_len, False)
    expander = DenseEncoder(None, tok, encoder_spec(r.encoder), r.query_max_len, r3.text_max_len, False)
    corpus = read_jsonl(rd.rq3_data("passages"))
    questions = read_jsonl(rd.rq3_data("questions"))
    texts = AUG.condition_texts(encoder, corpus, AUG.generated_by_passage(generated, r3.generation_languages))
    counts = {"questions": sum(encoder.token_counts([q["question"] for q in questions], True)),
              "passages": sum(encoder.token_counts(texts["passages"], False)),
              "generated": sum(encoder.token_counts([q for p in generated for lang in r3.generation_languages
                                                     for q in p["generated_queries"][lang]], True)),
              "text": sum(expander.token_counts(texts["text"], False)),
              "querydocs": sum(encoder.token_counts(texts["querydocs"], False))}
    for retriever in cfg.rq3_retrievers:
        seconds = [work_seconds(timings, 11, f"{retriever}: {what}") for what in counts]
        rows.append(stage_row("11 rq3-encode", f"{retriever}: questions, passages, queries, expansions",
                              encoder_shape.forward(sum(counts.values())),
                              sum(s for s in seconds if s is not None) or None, roof))
    reads = pd.read_parquet(rd.eval_file("rq3_reads.parquet"))
    by_q = {(q["lang"], q["qid"]): q["question"] for q in questions}
    paragraphs = {lang: [p["text"] for p in corpus if p["lang"] == lang] for lang in r3.passage_languages}
    windows = tok([by_q[(a, q)] for a, q in zip(reads["asked_lang"], reads["qid"])],
                  [paragraphs[p][k] for p, k in zip(reads["passage_lang"], reads["position"])],
                  truncation="only_second", max_length=r3.reader_max_len, stride=r3.reader_stride,
                  return_overflowing_tokens=True)["input_ids"]
    positions = sum(len(w) for w in windows)
    rows.append(stage_row("12 rq3-evaluate", f"reading: {len(reads):,} question-passage pairs, {len(windows):,} windows",
                          reader_shape.forward(positions, attended=sum(len(w) ** 2 for w in windows)),
                          work_seconds(timings, 12, "score and read"), roof))
    return cost_table(sorted(rows, key=lambda row: int(row["stage"].split(" ", 1)[0])))  # stage order


def rq3_condition_costs(cfg: Any, timings: list[Any]) -> pd.DataFrame:
    """What each RQ3 condition costs its index: what it encodes per passage, the seconds of those
    encodings (stage 11, every retriever), and its vectors per passage."""
    seconds = {what: sum(t.seconds for t in timings if t.stage == 11 and (t.part or "").endswith(f": {what}"))
               for what in ("questions", "passages", "generated", "text", "querydocs")}
    return pd.DataFrame([{"condition": name, "encoded per passage": text,
                          "vectors per passage": vectors,
                          "encoding seconds (all retrievers)": sum(seconds[w] for w in encodings),
                          "dot products per query and passage": vectors}
                         for name, (text, encodings, vectors) in CONDITION_ENCODINGS.items()]).set_index("condition")


def study_summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per research question (the cost tables of :func:`run_costs`, :func:`rq2_costs`,
    :func:`rq3_costs`, keyed by question) and for the whole study: the stages' wall time and roof
    time (over the stages with a wall time), the share of the roof, and wall over roof time."""
    rows = []
    for question, table in [*tables.items(), ("whole study", pd.concat(list(tables.values())))]:
        timed = table[(table["stage"] != "total") & table["wall s"].notna()]
        wall, roof = float(timed["wall s"].sum()), float(timed["roof s"].sum())
        rows.append({"question": question, "stages": timed["stage"].nunique(), "wall min": wall / 60,
                     "roof min": roof / 60, "share of roof (%)": 100 * roof / wall if wall else None,
                     "wall / roof": wall / roof if roof else None})
    return pd.DataFrame(rows).set_index("question")


def study_costs(cfg: Any, rd: Any, roof: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole study's cost: every research question's cost table against one roof (one table,
    in stage order, the question in the first column), and :func:`study_summary` of them."""
    tables = {"RQ1": run_costs(cfg, rd, roof), "RQ2": rq2_costs(cfg, rd, roof), "RQ3": rq3_costs(cfg, rd, roof)}
    every = pd.concat([t[t["stage"] != "total"].assign(question=q) for q, t in tables.items()], ignore_index=True)
    return every[["question", *[c for c in every.columns if c != "question"]]], study_summary(tables)


# --------------------------------------------------------------------------------------------
# The levers left: how much of a workload is padding or stopped rows, on the run's own texts
# --------------------------------------------------------------------------------------------

def compaction_row_steps(lengths: Sequence[int], max_new_tokens: int, share: int | None = 8) -> int:
    """Decoder row-steps (rows run through the body after a sampled token) of one generation batch
    whose rows sample ``lengths`` tokens each (the stop token included), as
    :func:`xqglib.method.sampling.decode` drops stopped rows: once they are 1/``share`` of the
    batch (sampler 2); ``share=None``: as soon as any stops (compacting every step)."""
    active = [min(n, max_new_tokens) for n in lengths]
    steps = 0
    for t in range(max_new_tokens - 1):
        stopped = sum(n <= t + 1 for n in active)
        if stopped == len(active):
            break
        if stopped and (share is None or stopped * share >= len(active)):
            active = [n for n in active if n > t + 1]
        steps += len(active)
    return steps


def padding_rows(before: str, now: str, batches: Sequence[Sequence[int]], group: int) -> list[dict[str, Any]]:
    """Encoder positions of batches of texts (their token counts) run as one padded batch each
    (``before``) and in chunks of ``group`` by length (``now``), against their tokens."""
    chunks: list[list[int]] = []
    for b in batches:
        lengths = sorted(b)
        chunks += [lengths[k:k + group] for k in range(0, len(lengths), group)]
    needed = sum(map(sum, batches))
    return [lever_row(before, "encoder positions", sum(max(b) * len(b) for b in batches), needed),
            lever_row(now, "encoder positions", sum(max(c) * len(c) for c in chunks), needed)]


def lever_row(lever: str, work: str, as_run: int, needed: int) -> dict[str, Any]:
    return {"lever": lever, "work": work, "as run": as_run, "needed": needed,
            "saved at most (%)": 100 * (1 - needed / as_run) if as_run else 0.0}


def levers(cfg: Any, rd: Any) -> pd.DataFrame:
    """What each lever saves at most, measured on the run's own texts: the decoder row-steps spent
    on stopped rows under sampler 2 and under today's sampler (the generated queries' tokens as the generator's tokenizer
    counts them, plus the stop token), and the padding of the retriever's and the reader's
    training batches (the first pass's batches; each in one padded batch, as they ran before, and
    in the chunks or groups they run in now). ``as run``: positions (or row-steps) the
    model computes; ``needed``: those without padding or stopped rows."""
    import random

    from xqglib.core.formats import read_jsonl
    from xqglib.core.reuse import seeded_subset
    from xqglib.method.encoding import TRAINING_GROUP as ENCODER_GROUP
    from xqglib.method.reading import TRAINING_GROUP
    from xqglib.method.retriever_training import row_batches
    from xqglib.method.sampling import COMPACTION, SAMPLER_VERSION
    from xqglib.models.registry import encoder_spec, load_tokenizer

    rows = []
    generated, model = rd.generated(cfg.primary_generator), rd.generator_model(cfg.primary_generator)
    if generated.exists() and model.exists():
        tok, g = load_tokenizer(str(model)), cfg.generation
        passages = read_jsonl(generated)
        before = now = ideal = 0
        for first in range(0, len(passages), g.batch_passages):
            texts = [q for p in passages[first:first + g.batch_passages] for lang in g.languages
                     for q in p["generated_queries"].get(lang, [])]
            lengths = [len(ids) + 1 for ids in tok(texts, add_special_tokens=False)["input_ids"]]
            before += compaction_row_steps(lengths, g.max_new_tokens, COMPACTION[2])
            now += compaction_row_steps(lengths, g.max_new_tokens, COMPACTION[SAMPLER_VERSION])
            ideal += compaction_row_steps(lengths, g.max_new_tokens, None)
        rows.append(lever_row("generation, stopped rows dropped once an eighth (sampler 2, before)", "decoder row-steps",
                        before, ideal))
        rows.append(lever_row(f"generation, as sampler {SAMPLER_VERSION} drops them (now)", "decoder row-steps", now, ideal))
    r = cfg.retriever
    spec, tok = encoder_spec(r.encoder), load_tokenizer(r.encoder)
    training = rd.path("data", "retriever_train_crosslingual.jsonl")
    if training.exists():
        data = seeded_subset(read_jsonl(training), r.max_train_rows, cfg.seed)
        padded = []
        for batch in row_batches(data, r.batch_size, r.negatives, cfg.seed)(0, random.Random(cfg.seed)):
            for texts, prefix, cap in ((batch.queries, spec.query_prefix, r.query_max_len),
                                       (batch.passages, spec.passage_prefix, r.passage_max_len)):
                padded.append([len(x) for x in tok([prefix + t for t in texts], truncation=True, max_length=cap)["input_ids"]])
        rows += padding_rows("retriever training, one padded batch per group (before)",
                             f"retriever training, texts by length in chunks of {ENCODER_GROUP} on a CPU (now)", padded, ENCODER_GROUP)
    reader_rows = rd.rq3_data("reader_train")
    if reader_rows.exists():
        q = cfg.rq3
        examples = seeded_subset(read_jsonl(reader_rows), q.reader_max_examples, cfg.seed)
        windows = [tok([e["question"] for e in part], [e["context"] for e in part], truncation="only_second",
                       max_length=q.reader_max_len, stride=q.reader_stride, return_overflowing_tokens=True)["input_ids"]
                   for part in (examples[k:k + q.reader_batch_size] for k in range(0, len(examples), q.reader_batch_size))]
        rows += padding_rows("reader training, one padded batch (before)",
                             f"reader training, windows by length in groups of {TRAINING_GROUP} (now)",
                             [[len(x) for x in ids] for ids in windows], TRAINING_GROUP)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The paper profile at full scale: a projection from counts, not a measurement
# --------------------------------------------------------------------------------------------

#: The published sizes of the paper's models (their hub configs), transcribed: no hub here.
MBERT = TransformerShape(layers=12, hidden=768, intermediate=3072, heads=12, kv_heads=12, head_dim=64,
                         vocab=119_547, gated_mlp=False)
MT5_BASE_ENCODER = TransformerShape(layers=12, hidden=768, intermediate=2048, heads=12, kv_heads=12, head_dim=64,
                                    vocab=250_112, gated_mlp=True)
#: mT5's decoder per position: self-attention and the cross-attention's query and output on top of
#: the encoder's body (the cross keys and values are counted per encoder position).
MT5_BASE_DECODER = TransformerShape(layers=12, hidden=768, intermediate=2048, heads=24, kv_heads=12, head_dim=64,
                                    vocab=250_112, gated_mlp=True)

#: The scale of the paper's run (its own figures): ~18M passages, 7 languages x n = 5 queries each.
PAPER_PASSAGES = 18_000_000
#: XOR-Retrieve train questions (our copy of the file), the epochs, batch and passages per query of
#: the paper's retriever training; the generator's steps and batch.
PAPER_TRAIN_QUESTIONS, PAPER_EPOCHS, PAPER_PASSAGES_PER_QUERY = 15_250, 40, 8
PAPER_GENERATOR_STEPS, PAPER_GENERATOR_BATCH = 2000, 128
#: Assumed token counts (stated on the page): a 100-word passage fills the 128-token input of both
#: models; a generated or test question is ~16 tokens (the 32-token query cap is rarely reached).
PASSAGE_TOKENS, QUESTION_TOKENS = 128, 16
#: Bytes on disk: fp32 vectors of 768 dimensions (the official code pickles fp32 embeddings); a
#: generated question as UTF-8 JSON (~100 bytes in the non-Latin scripts of most of the 7 languages).
VECTOR_BYTES, GENERATED_QUERY_BYTES = 768 * 4, 100


def _decoder_keys(steps: int) -> float:
    """Keys a decoder position attends, per head of :data:`MT5_BASE_DECODER` (whose 24 "heads" are
    12 self-attention heads over ~steps / 2 earlier tokens and 12 cross-attention heads over the
    passage): the mean of the two."""
    return (steps / 2 + PASSAGE_TOKENS) / 2


#: The disk the official pipeline takes, by its README ("around 2.5TB").
PAPER_DISK_TB = 2.5


def paper_cost_sheet(queries_per_passage: int = 35, passages: int = PAPER_PASSAGES) -> pd.DataFrame:
    """The full paper profile's work per stage: FLOPs (this module's count on the published model
    sizes and the assumed token counts above) and disk. It is a projection: GPU time is the FLOPs
    over a device's measured rate, which only a GPU run can give."""
    queries = passages * queries_per_passage
    prompts = passages * queries_per_passage // 5  # one encoder pass per passage and language, 5 samples each
    steps = QUESTION_TOKENS + 1  # the question's tokens and its end
    cross_kv = 2 * MT5_BASE_DECODER.layers * 2 * 768 * 768  # keys and values of every encoder position
    generation = (MT5_BASE_ENCODER.forward(prompts * PASSAGE_TOKENS, attended=prompts * PASSAGE_TOKENS ** 2)
                  + queries * PASSAGE_TOKENS * cross_kv
                  + MT5_BASE_DECODER.forward(queries * steps, head_positions=queries * steps,
                                             attended=queries * steps * _decoder_keys(steps)))
    pairs = PAPER_GENERATOR_STEPS * PAPER_GENERATOR_BATCH
    generator = 3 * (MT5_BASE_ENCODER.forward(pairs * PASSAGE_TOKENS, attended=pairs * PASSAGE_TOKENS ** 2)
                     + pairs * PASSAGE_TOKENS * cross_kv
                     + MT5_BASE_DECODER.forward(pairs * steps, head_positions=pairs * steps,
                                                attended=pairs * steps * _decoder_keys(steps)))
    examples = PAPER_TRAIN_QUESTIONS * PAPER_EPOCHS
    retriever = 3 * MBERT.forward(examples * (QUESTION_TOKENS + PAPER_PASSAGES_PER_QUERY * PASSAGE_TOKENS),
                                  attended=examples * (QUESTION_TOKENS ** 2 + PAPER_PASSAGES_PER_QUERY * PASSAGE_TOKENS ** 2))
    encode_passages = MBERT.forward(passages * PASSAGE_TOKENS, attended=passages * PASSAGE_TOKENS ** 2)
    encode_queries = MBERT.forward(queries * QUESTION_TOKENS, attended=queries * QUESTION_TOKENS ** 2)
    rows = [
        ("2 train-generator", f"mT5-base: {PAPER_GENERATOR_STEPS:,} steps of {PAPER_GENERATOR_BATCH}", generator, 0),
        ("3 generate", f"mT5-base: {queries:,} queries ({queries_per_passage} a passage)", generation,
         queries * GENERATED_QUERY_BYTES),
        ("4 train-retriever", f"mBERT: {PAPER_EPOCHS} epochs of {PAPER_TRAIN_QUESTIONS:,} questions x "
                              f"{PAPER_PASSAGES_PER_QUERY} passages", retriever, 0),
        ("5 encode", f"mBERT: {passages:,} passages", encode_passages, passages * VECTOR_BYTES),
        ("5 encode", f"mBERT: {queries:,} generated queries", encode_queries, queries * VECTOR_BYTES),
    ]
    table = pd.DataFrame([{"stage": s, "what": w, "PFLOP": f / 1e15, "disk GB": b / 1e9} for s, w, f, b in rows])
    total = {"stage": "total", "what": "", "PFLOP": table["PFLOP"].sum(), "disk GB": table["disk GB"].sum()}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True).set_index(["stage", "what"])


def gpu_hours(table: pd.DataFrame, tflops: float) -> pd.Series:
    """GPU-hours of each row of :func:`paper_cost_sheet` at a sustained rate of ``tflops``."""
    return table["PFLOP"] * 1e3 / tflops / 3600
