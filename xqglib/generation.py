"""The cross-lingual query generator (xQG): training and top-k sampling.

Two backends share one interface:

- ``seq2seq`` (mT5, as in the paper): the prompt is the encoder input, the question the target.
  Prompt, as the official DSI-QG/xQG code: ``Generate a {Language} question for this passage:
  {title} {passage}``.
- ``decoder`` (Gemma 3, the offline default): ``<bos> {title} {passage}`` then ``\nGenerate a
  {Language} question for this passage:\nQuestion:`` then the question and ``<eos>``. The same
  words as the paper's prompt, with the passage first: a decoder reads left to right, so with the
  passage first its key/value cache is computed once and shared by every language's instruction
  (5 languages: the prompt is read once instead of five times). The loss is taken on the question
  tokens only, and the LM head is applied only at those positions (the 262k-way logits over the
  prompt would be most of the step's cost and are thrown away).

Sampling is top-k (no top-p, temperature 1). Optionally the LM head is restricted to a vocabulary
(the tokens seen in the data, see :func:`data_vocabulary`): Gemma's 262k-row head is most of each
decoding step's cost, and a 13k-row head is 20 times cheaper. That is an approximation of top-k
sampling over the full vocabulary; :func:`head_agreement` measures how close it is.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from .progress import progress

from .settings import LANGUAGE_NAMES

#: What separates the prompt from the question for decoder-only models, which, unlike seq2seq
#: ones, have no encoder boundary to tell them where the prompt ends.
DECODER_SEPARATOR = "\nQuestion:"


def xqg_prompt(lang: str, title: str, text: str) -> str:
    """The paper's prompt (the seq2seq backend's input)."""
    return f"Generate a {LANGUAGE_NAMES[lang]} question for this passage: {title} {text}"


def decoder_instruction(lang: str) -> str:
    """What follows the passage in the decoder backend's prompt (the paper's words, passage first)."""
    return f"\nGenerate a {LANGUAGE_NAMES[lang]} question for this passage:{DECODER_SEPARATOR}"


def decoder_prompt(lang: str, title: str, text: str) -> str:
    """The decoder backend's prompt as text (before ``<bos>`` and truncation): passage first,
    then the paper's instruction, so one passage's cache serves every language."""
    return f"{title} {text}{decoder_instruction(lang)}"


@dataclass
class GeneratorBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


class QueryGenerator:
    """A tokenizer and a generator model of one kind, with the xQG prompt built in."""

    def __init__(self, model: Any, tokenizer: Any, kind: str, max_input_len: int,
                 max_target_len: int) -> None:
        if kind not in {"seq2seq", "decoder"}:
            raise ValueError(f"unknown generator kind {kind!r}")
        self.model, self.tok, self.kind = model, tokenizer, kind
        self.max_input_len, self.max_target_len = max_input_len, max_target_len
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        #: LM-head rows sampling may choose from (None: the whole vocabulary)
        self.vocabulary: torch.Tensor | None = None

    # ---- tokenisation ------------------------------------------------------------------
    def passage_ids(self, title: str, text: str) -> list[int]:
        """Decoder backend: ``<bos> title passage``, truncated to ``max_input_len`` tokens."""
        bos = [self.tok.bos_token_id] if self.tok.bos_token_id is not None else []
        return bos + self.tok(f"{title} {text}", add_special_tokens=False, truncation=True,
                              max_length=self.max_input_len)["input_ids"]

    def instruction_ids(self, lang: str) -> list[int]:
        return self.tok(decoder_instruction(lang), add_special_tokens=False)["input_ids"]

    def prompt_ids(self, lang: str, title: str, text: str) -> list[int]:
        if self.kind == "seq2seq":
            ids = self.tok(xqg_prompt(lang, title, text), add_special_tokens=False, truncation=True,
                           max_length=self.max_input_len)["input_ids"]
            return ids + [self.tok.eos_token_id]
        return self.passage_ids(title, text) + self.instruction_ids(lang)

    def target_ids(self, question: str) -> list[int]:
        ids = self.tok(question, add_special_tokens=False, truncation=True,
                       max_length=self.max_target_len - 1)["input_ids"]
        return ids + [self.tok.eos_token_id]

    @functools.cached_property
    def stop_ids(self) -> list[int]:
        """Tokens that end a question: eos, and for decoders any token holding a line break
        (a decoder may run on past its question; only the first line is kept, so stopping there
        changes no output and saves the steps)."""
        stops = {self.tok.eos_token_id}
        if self.kind == "decoder":
            pieces = self.tok.convert_ids_to_tokens(list(range(len(self.tok))))
            stops |= {i for i, piece in enumerate(pieces) if piece and "\n" in piece}
        return sorted(stops)

    def collate(self, pairs: Sequence[dict[str, str]]) -> GeneratorBatch:
        """Right-padded training batch; labels are -100 wherever no loss is taken."""
        inputs, labels = [], []
        for pair in pairs:
            prompt = self.prompt_ids(pair["lang"], pair["title"], pair["text"])
            target = self.target_ids(pair["question"])
            if self.kind == "seq2seq":
                inputs.append(prompt)
                labels.append(target)
            else:
                inputs.append(prompt + target)
                labels.append([-100] * len(prompt) + target)
        width = max(map(len, inputs))
        label_width = max(map(len, labels))
        ids = torch.full((len(inputs), width), self.pad_id)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        lab = torch.full((len(inputs), label_width), -100)
        for i, (seq, target) in enumerate(zip(inputs, labels)):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            lab[i, : len(target)] = torch.tensor(target)
        return GeneratorBatch(ids, mask, lab)

    # ---- loss ------------------------------------------------------------------------------
    def question_hidden(self, batch: GeneratorBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder backend: final hidden states at the positions that predict a question token,
        and those tokens."""
        hidden = self.model.get_decoder()(input_ids=batch.input_ids,
                                           attention_mask=batch.attention_mask).last_hidden_state
        # position t predicts token t+1: keep only positions whose next token is a question token
        targets = batch.labels[:, 1:]
        keep = targets != -100
        return hidden[:, :-1][keep], targets[keep]

    def loss(self, batch: GeneratorBatch) -> torch.Tensor:
        """Mean cross-entropy over the question tokens of the batch."""
        if self.kind == "seq2seq":
            return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              labels=batch.labels).loss
        hidden, targets = self.question_hidden(batch)
        return F.cross_entropy(LMHead(self.model).logits(hidden).float(), targets)

    # ---- sampling --------------------------------------------------------------------------
    def _pad(self, prompts: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), self.pad_id)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, seq in enumerate(prompts):
            # decoder-only models continue from the right edge, so they are left-padded
            cols = slice(width - len(seq), width) if self.kind == "decoder" else slice(0, len(seq))
            ids[i, cols] = torch.tensor(seq)
            mask[i, cols] = 1
        return ids, mask

    @torch.no_grad()
    def sample(self, passages: Sequence[tuple[str, str]], languages: Sequence[str], n: int,
               top_k: int, max_new_tokens: int, seed: int, bf16: bool = False,
               shared_prefill: bool = True, joint: bool | None = None) -> dict[str, list[list[str]]]:
        """``n`` questions per (title, text) passage and language by top-k sampling, seeded.

        Returns ``{lang: [[n questions] per passage]}``. Decoder-only models use
        :func:`sample_shared_prefix` (each passage is read once for all languages and samples);
        ``shared_prefill=False`` runs transformers' ``generate`` on every full prompt, which reads
        it n times per language (the benchmark's baseline); ``joint`` as there. Seq2seq models use
        ``generate``, which already encodes each prompt once per language.
        """
        out: dict[str, list[list[str]]] = {}
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if self.kind == "decoder" and shared_prefill:
                ids, mask = self._pad([self.passage_ids(t, x) for t, x in passages])
                tokens = sample_shared_prefix(
                    self.model, ids, mask, [self.instruction_ids(lang) for lang in languages], n,
                    top_k, max_new_tokens, self.stop_ids, self.pad_id,
                    torch.Generator().manual_seed(seed), self.vocabulary, joint)
                out = {lang: self._texts(t, n) for lang, t in zip(languages, tokens)}
            else:
                torch.manual_seed(seed)
                for lang in languages:
                    ids, mask = self._pad([self.prompt_ids(lang, t, x) for t, x in passages])
                    gen = self.model.generate(
                        input_ids=ids, attention_mask=mask, do_sample=True, top_k=top_k, top_p=1.0,
                        temperature=1.0, num_return_sequences=n, max_new_tokens=max_new_tokens,
                        pad_token_id=self.pad_id, eos_token_id=self.stop_ids)
                    out[lang] = self._texts(gen[:, ids.shape[1]:] if self.kind == "decoder" else gen, n)
        return out

    def _texts(self, tokens: torch.Tensor, n: int) -> list[list[str]]:
        texts = self.tok.batch_decode(tokens, skip_special_tokens=True)
        # a decoder may run on past the question: keep its first line
        texts = [t.strip().split("\n")[0].strip() for t in texts]
        return [texts[i * n:(i + 1) * n] for i in range(len(texts) // n)]


class LMHead:
    """A decoder's output projection, optionally restricted to some vocabulary rows."""

    def __init__(self, model: Any, vocabulary: torch.Tensor | None = None) -> None:
        weight = model.get_output_embeddings().weight
        self.vocabulary = vocabulary
        self.weight = weight if vocabulary is None else weight[vocabulary].contiguous()
        self.cap = getattr(model.config, "final_logit_softcapping", None)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = hidden @ self.weight.to(hidden.dtype).T
        if self.cap:
            logits = torch.tanh(logits / self.cap) * self.cap
        return logits

    def sample(self, hidden: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        tokens = sample_top_k(self.logits(hidden), k, generator)
        return tokens if self.vocabulary is None else self.vocabulary[tokens]


def sample_top_k(logits: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """One token per row from the softmax over the row's k largest logits (as HF's top-k warper)."""
    values, indices = torch.topk(logits.float(), k, dim=-1)
    choice = torch.multinomial(torch.softmax(values, dim=-1), 1, generator=generator)
    return indices.gather(-1, choice).squeeze(-1)


#: The sampler's version, part of every generated file's fingerprint: 2 decodes every language's
#: rows together over the shared passage prefixes (:func:`sample_shared_prefix`), which draws the
#: same distributions as version 1 (one language at a time) but in another random order.
SAMPLER_VERSION = 2


@torch.no_grad()
def sample_shared_prefix(model: Any, ids: torch.Tensor, mask: torch.Tensor,
                         instructions: Sequence[list[int]], n: int, top_k: int, max_new_tokens: int,
                         stop_ids: Iterable[int], pad_id: int, generator: torch.Generator,
                         vocabulary: torch.Tensor | None = None, joint: bool | None = None) -> list[torch.Tensor]:
    """Top-k sampling of ``n`` continuations of ``passage + instruction`` for each left-padded
    passage and each instruction, reading every passage once.

    The passages' key/value cache is computed once and extended by each instruction (the same
    tokens on every row). Then, ``joint`` (the default where :func:`joint_decoding_exact` holds):
    the rows of every instruction and sample decode together, P x languages x n rows per step,
    each attending to its passage's prefix *without copying it per row*
    (:func:`shared_prefix_attention`); this is the same computation as decoding each language on
    its own with the prefix repeated n times (checked in the tests: greedy decoding gives the same
    tokens, every step the same hidden states), at ~1.5x the speed on a 2-core machine, since the
    body's matrix products run on 5x as many rows. Otherwise (``joint=False``, the reference
    path): one instruction at a time, the cache copied and repeated n times per row. The LM head is
    applied only where a token is sampled; rows that have stopped are dropped as they accumulate.
    Returns, per instruction, the new tokens (rows in passage-major order, padded with ``pad_id``
    after the stop token)."""
    decoder = model.get_decoder()
    head = LMHead(model, vocabulary)
    stops = torch.tensor(sorted(set(stop_ids)))
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    if joint is not False:  # asked for, or chosen where exact
        exact = joint_decoding_exact(model, ids.shape[1] + max(map(len, instructions)) + max_new_tokens)
        if joint and not exact:
            raise ValueError("joint decoding would not compute what this model computes for these lengths "
                             "(see joint_decoding_exact); use joint=None or False")
        joint = exact
    cache = decoder(input_ids=ids, attention_mask=mask, position_ids=positions,
                    use_cache=True).past_key_values
    if joint:
        return _sample_joint(decoder, head, cache, mask, positions, instructions, n, top_k, max_new_tokens,
                             stops, pad_id, generator)
    results = []
    for i, instruction in enumerate(instructions):
        own = cache if i == len(instructions) - 1 else copy.deepcopy(cache)
        suffix = torch.tensor(instruction).expand(ids.shape[0], -1)
        suffix_mask = torch.cat([mask, torch.ones_like(suffix)], dim=1)
        suffix_pos = positions[:, -1:] + 1 + torch.arange(suffix.shape[1])
        hidden = decoder(input_ids=suffix, attention_mask=suffix_mask, position_ids=suffix_pos,
                         past_key_values=own, use_cache=True).last_hidden_state[:, -1]
        own.batch_repeat_interleave(n)
        results.append(_decode(decoder, head, own, suffix_mask.repeat_interleave(n, 0),
                               suffix_pos[:, -1:].repeat_interleave(n, 0) + 1,
                               hidden.repeat_interleave(n, 0), top_k, max_new_tokens, stops,
                               pad_id, generator))
    return results


def _decode(decoder: Any, head: LMHead, cache: Any, mask: torch.Tensor | None, position: torch.Tensor,
            hidden: torch.Tensor, top_k: int, max_new_tokens: int, stops: torch.Tensor, pad_id: int,
            generator: torch.Generator, prefix: PrefixContext | None = None) -> torch.Tensor:
    """The decoding loop of :func:`sample_shared_prefix` from a filled cache (with ``prefix``: the
    rows' own cache is a :class:`SuffixCache` and ``mask`` is unused)."""
    out = torch.full((hidden.shape[0], max_new_tokens), pad_id)
    rows = torch.arange(hidden.shape[0])  # which output row each batch row is
    done = torch.zeros(hidden.shape[0], dtype=torch.bool)
    for step in range(max_new_tokens):
        token = torch.where(done, pad_id, head.sample(hidden, top_k, generator))
        out[rows, step] = token
        done |= torch.isin(token, stops)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        # every row costs compute (and, on the reference path, a cache copy) per step: drop
        # stopped rows once they are an eighth
        if int(done.sum()) * 8 >= len(done):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            if prefix is not None:
                prefix.place(prefix.passage[keep])
            else:
                mask = mask[keep]
            rows, done, token, position = rows[keep], done[keep], token[keep], position[keep]
        if prefix is None:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            hidden = decoder(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                             past_key_values=cache, use_cache=True).last_hidden_state[:, -1]
        else:  # the masks are the prefix context; cache_position is given so no cache length is asked
            hidden = decoder(input_ids=token[:, None], attention_mask={"full_attention": prefix, "sliding_attention": prefix},
                             position_ids=position, past_key_values=cache, use_cache=True,
                             cache_position=position[:1, 0]).last_hidden_state[:, -1]
        position = position + 1
    return out


# --------------------------------------------------------------------------------------------
# Joint decoding over shared prefixes
# --------------------------------------------------------------------------------------------

#: The name of :func:`shared_prefix_attention` among transformers' attention implementations.
SHARED_PREFIX_ATTENTION = "xqg_shared_prefix"


def joint_decoding_exact(model: Any, length: int) -> bool:
    """Whether :func:`shared_prefix_attention` computes exactly what the model's own attention
    does for sequences up to ``length`` tokens: a Gemma 3 text decoder without attention logit
    soft-capping whose sliding window (if any) covers the whole sequence."""
    config = model.get_decoder().config
    window = getattr(config, "sliding_window", None)
    return (config.model_type == "gemma3_text" and getattr(config, "attn_logit_softcapping", None) is None
            and (window is None or length <= window))


class PrefixContext:
    """What every layer's attention needs besides a row's own tokens: the shared prefixes' keys and
    values per layer ``(prefixes, kv_heads, length, head_dim)``, their padding, and which prefix
    each row continues (rows of a prefix are consecutive)."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], mask: torch.Tensor,
                 prefix_of_row: torch.Tensor) -> None:
        self.keys, self.values = keys, values
        self.pad = ~mask.bool()
        self.place(prefix_of_row)

    def place(self, prefix_of_row: torch.Tensor) -> None:
        """(Re)build the row layout: each row's prefix and its slot among that prefix's rows."""
        self.passage = prefix_of_row
        counts = torch.bincount(prefix_of_row, minlength=self.pad.shape[0])
        self.slot = torch.arange(len(prefix_of_row)) - (torch.cumsum(counts, 0) - counts)[prefix_of_row]
        self.width = int(counts.max()) if len(prefix_of_row) else 0


class SuffixCache:
    """The keys and values of the tokens each row generated, in buffers allocated once (no copy per
    step), in the interface transformers' layers call (``update``)."""

    def __init__(self, layers: int, rows: int, kv_heads: int, head_dim: int, capacity: int,
                 dtype: torch.dtype) -> None:
        self.keys = [torch.empty(rows, kv_heads, capacity, head_dim, dtype=dtype) for _ in range(layers)]
        self.values = [torch.empty(rows, kv_heads, capacity, head_dim, dtype=dtype) for _ in range(layers)]
        self.length = 0

    def update(self, key: torch.Tensor, value: torch.Tensor, layer: int, kwargs: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key.shape[2]
        self.keys[layer][:, :, self.length:end] = key
        self.values[layer][:, :, self.length:end] = value
        if layer == len(self.keys) - 1:
            self.length = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def batch_select_indices(self, keep: torch.Tensor) -> None:
        self.keys = [k[keep] for k in self.keys]
        self.values = [v[keep] for v in self.values]


def shared_prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: PrefixContext, dropout: float = 0.0, scaling: float | None = None,
                            **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of one new token per row over [its prefix | its own tokens], in transformers'
    attention-function interface: ``query`` (rows, heads, 1, d); ``key`` / ``value`` (rows,
    kv_heads, own tokens, d) from :class:`SuffixCache`; ``attention_mask`` the
    :class:`PrefixContext`. One softmax over the concatenated scores, as the model's own attention
    over the concatenated keys; the prefix is read once per prefix, not once per row (each
    prefix's rows are gathered into a padded block for one batched product)."""
    ctx, layer = attention_mask, module.layer_idx
    pk, pv = ctx.keys[layer], ctx.values[layer]
    rows, heads, _, d = query.shape
    prefixes, kv, length, _ = pk.shape
    g, m = heads // kv, ctx.width
    scale = scaling if scaling is not None else d ** -0.5
    q = query[:, :, 0, :].reshape(rows, kv, g, d)
    block = query.new_zeros(prefixes, m, kv, g, d)
    block[ctx.passage, ctx.slot] = q
    block = block.permute(0, 2, 1, 3, 4).reshape(prefixes * kv, m * g, d)
    scores = torch.bmm(block, pk.reshape(prefixes * kv, length, d).transpose(1, 2)) * scale
    scores = scores.view(prefixes, kv, m, g, length).masked_fill(ctx.pad[:, None, None, None, :], float("-inf"))
    own = torch.matmul(q, key.transpose(2, 3)) * scale
    probs = torch.softmax(torch.cat([scores.permute(0, 2, 1, 3, 4)[ctx.passage, ctx.slot], own], dim=-1), dim=-1)
    weights = probs.new_zeros(prefixes, m, kv, g, length)
    weights[ctx.passage, ctx.slot] = probs[..., :length]
    weights = weights.permute(0, 2, 1, 3, 4).reshape(prefixes * kv, m * g, length)
    from_prefix = torch.bmm(weights, pv.reshape(prefixes * kv, length, d)).view(prefixes, kv, m, g, d)
    out = from_prefix.permute(0, 2, 1, 3, 4)[ctx.passage, ctx.slot] + torch.matmul(probs[..., length:], value)
    return out.reshape(rows, 1, heads, d), None


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)


@contextlib.contextmanager
def _attention(config: Any, name: str) -> Iterator[None]:
    """The model's layers use attention implementation ``name`` inside the block."""
    before = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = before


def _sample_joint(decoder: Any, head: LMHead, cache: Any, mask: torch.Tensor, positions: torch.Tensor,
                  instructions: Sequence[list[int]], n: int, top_k: int, max_new_tokens: int,
                  stops: torch.Tensor, pad_id: int, generator: torch.Generator) -> list[torch.Tensor]:
    """:func:`sample_shared_prefix`'s joint path: each instruction extends the passages' cache
    (then cut back), its keys and values become one prefix per (instruction, passage), shorter
    instructions padded (masked) between passage and instruction so positions stay as they are;
    then every row decodes in one loop."""
    _register_attention()
    passages, width = mask.shape
    longest = max(map(len, instructions))
    keys: list[list[torch.Tensor]] = [[] for _ in cache.layers]
    values: list[list[torch.Tensor]] = [[] for _ in cache.layers]
    masks, hidden, position = [], [], []
    for instruction in instructions:
        suffix = torch.tensor(instruction).expand(passages, -1)
        gap = longest - len(instruction)
        suffix_pos = positions[:, -1:] + 1 + torch.arange(suffix.shape[1])
        hidden.append(decoder(input_ids=suffix, attention_mask=torch.cat([mask, torch.ones_like(suffix)], dim=1),
                              position_ids=suffix_pos, past_key_values=cache, use_cache=True).last_hidden_state[:, -1])
        for i, layer in enumerate(cache.layers):
            for store, full in ((keys[i], layer.keys), (values[i], layer.values)):
                blank = full.new_zeros(*full.shape[:2], gap, full.shape[3])
                store.append(torch.cat([full[:, :, :width], blank, full[:, :, width:]], dim=2))
        masks.append(torch.cat([mask, torch.zeros(passages, gap, dtype=mask.dtype), torch.ones_like(suffix)], dim=1))
        position.append(suffix_pos[:, -1:] + 1)
        cache.crop(width)
    prefix = PrefixContext([torch.cat(k) for k in keys], [torch.cat(v) for v in values], torch.cat(masks),
                           torch.arange(passages * len(instructions)).repeat_interleave(n))
    first = prefix.keys[0]
    own = SuffixCache(len(prefix.keys), len(prefix.passage), first.shape[1], first.shape[3], max_new_tokens, first.dtype)
    with _attention(decoder.config, SHARED_PREFIX_ATTENTION):
        out = _decode(decoder, head, own, None, torch.cat(position).repeat_interleave(n, 0),
                      torch.cat(hidden).repeat_interleave(n, 0), top_k, max_new_tokens, stops, pad_id, generator,
                      prefix)
    return list(out.split(passages * n))


def data_vocabulary(tokenizer: Any, texts: Iterable[str], extra: Iterable[int] = ()) -> torch.Tensor:
    """Sorted token ids of ``texts`` (plus ``extra``): a vocabulary to restrict sampling to."""
    ids: set[int] = set(extra)
    for text in texts:
        ids.update(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    return torch.tensor(sorted(ids))


@torch.no_grad()
def head_agreement(gen: QueryGenerator, pairs: Sequence[dict[str, str]], vocabulary: torch.Tensor,
                   top_k: int, batch_size: int = 8) -> dict[str, float]:
    """How close top-k sampling over ``vocabulary`` is to top-k sampling over the full vocabulary.

    At every question position of ``pairs`` (teacher-forced), the two top-k distributions are
    compared: the share of positions whose top-k token sets are identical, the mean total-variation
    distance between the two sampling distributions, and the mean probability that exact sampling
    picks a token outside the vocabulary.
    """
    full, restricted = LMHead(gen.model), LMHead(gen.model, vocabulary)
    inside = torch.zeros(full.weight.shape[0], dtype=torch.bool)
    inside[vocabulary] = True
    same = tv = outside = 0.0
    count = 0
    gen.model.eval()
    for start in range(0, len(pairs), batch_size):
        hidden, _ = gen.question_hidden(gen.collate(pairs[start:start + batch_size]))
        p_full = _top_k_distribution(full.logits(hidden).float(), top_k, None, inside.shape[0])
        p_restricted = _top_k_distribution(restricted.logits(hidden).float(), top_k, vocabulary,
                                           inside.shape[0])
        same += float(((p_full > 0) == (p_restricted > 0)).all(dim=1).sum())
        tv += float(0.5 * (p_full - p_restricted).abs().sum(dim=1).sum())
        outside += float(p_full[:, ~inside].sum(dim=1).sum())
        count += hidden.shape[0]
    return {"positions": count, "same_top_k": same / max(count, 1),
            "total_variation": tv / max(count, 1), "p_outside": outside / max(count, 1)}


def _top_k_distribution(logits: torch.Tensor, k: int, vocabulary: torch.Tensor | None,
                        size: int) -> torch.Tensor:
    values, indices = torch.topk(logits, k, dim=-1)
    if vocabulary is not None:
        indices = vocabulary[indices]
    return torch.zeros(logits.shape[0], size).scatter_(1, indices, torch.softmax(values, dim=-1))


def _freeze_embeddings(model: Any) -> None:
    model.get_input_embeddings().weight.requires_grad_(False)


@torch.no_grad()
def evaluate_loss(gen: QueryGenerator, pairs: Sequence[dict[str, str]], batch_size: int,
                  bf16: bool) -> float:
    """Token-weighted mean loss over ``pairs`` (the dev-article loss)."""
    gen.model.eval()
    total, count = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        batch = gen.collate(pairs[start:start + batch_size])
        tokens = int((batch.labels[:, 1:] != -100).sum()) if gen.kind == "decoder" else int((batch.labels != -100).sum())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            total += float(gen.loss(batch)) * tokens
        count += tokens
    return total / max(count, 1)


#: The share of the steps so far that :func:`at_plateau` looks back over, and the relative gain
#: below which the study calls a dev loss flat (where the profile sets no other).
PLATEAU_WINDOW = 0.2
PLATEAU_GAIN = 0.02


def plateau_comparison(log: Sequence[Mapping[str, float]]) -> tuple[int, float, int, float] | None:
    """What the plateau rule compares: (earlier step, its dev loss, last step, its dev loss), the
    earlier one being the latest evaluation at or before 80% of the last evaluated step (so the
    span covers at least the last 20% of the steps); None while there is none."""
    evaluated = [(int(row["step"]), row["dev_loss"]) for row in log if "dev_loss" in row]
    if not evaluated:
        return None
    step, loss = evaluated[-1]
    earlier = [(at, past) for at, past in evaluated[:-1] if at <= (1 - PLATEAU_WINDOW) * step]
    return (*earlier[-1], step, loss) if earlier else None


def recent_gain(log: Sequence[Mapping[str, float]]) -> float | None:
    """The relative fall of the dev loss over the span :func:`plateau_comparison` compares."""
    comparison = plateau_comparison(log)
    if comparison is None:
        return None
    _, earlier, _, last = comparison
    return (earlier - last) / earlier


def at_plateau(log: Sequence[Mapping[str, float]], min_gain: float) -> bool:
    """Whether the dev loss has reached a plateau: the last 20% of the steps so far improved it by
    less than ``min_gain`` (:func:`recent_gain`). False while no evaluation lies that far back."""
    gain = recent_gain(log)
    return gain is not None and gain < min_gain


def train_generator(gen: QueryGenerator, train_pairs: Sequence[dict[str, str]],
                    dev_pairs: Sequence[dict[str, str]], *, steps: int, batch_size: int, lr: float,
                    seed: int, eval_every: int, bf16: bool, freeze_embeddings: bool,
                    max_dev_pairs: int, plateau: float | None = None) -> list[dict[str, float]]:
    """Fine-tune with AdamW and linear decay over ``steps``; keep the checkpoint with the lowest
    dev loss. With ``plateau``, stop early at the first evaluation where the dev loss has reached
    a plateau (:func:`at_plateau`).

    Returns the log: one row per step (``train_loss``), with ``dev_loss`` where evaluated.
    """
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rng = random.Random(seed)
    if freeze_embeddings:
        _freeze_embeddings(gen.model)
    params = [p for p in gen.model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(optim, 0, steps)
    dev = list(dev_pairs)
    rng.shuffle(dev)
    dev = dev[:max_dev_pairs]
    order: list[int] = []
    log: list[dict[str, float]] = []
    best_loss, best_state = math.inf, None
    started = time.perf_counter()
    for step in progress(range(1, steps + 1), desc="train generator", unit="steps"):
        gen.model.train()
        if len(order) < batch_size:
            fresh = list(range(len(train_pairs)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch = gen.collate([train_pairs[i] for i in order[:batch_size]])
        del order[:batch_size]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = gen.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        row = {"step": step, "train_loss": loss.item(), "seconds": time.perf_counter() - started,
               # what the step's FLOPs are spent on: model positions (padding included), and the
               # positions where the LM head runs (the question tokens)
               "positions": batch.input_ids.numel() + (batch.labels.numel() if gen.kind == "seq2seq" else 0),
               "head_positions": int((batch.labels != -100).sum())}
        if dev and (step % eval_every == 0 or step == steps):
            row["dev_loss"] = evaluate_loss(gen, dev, batch_size, bf16)
            if row["dev_loss"] < best_loss:
                best_loss = row["dev_loss"]
                best_state = copy.deepcopy(gen.model.state_dict())
        log.append(row)
        if plateau is not None and "dev_loss" in row and at_plateau(log, plateau):
            break
    if best_state is not None:
        gen.model.load_state_dict(best_state)
    gen.model.eval()
    return log


def generation_batches(passages: Sequence[dict[str, str]], batch_passages: int) -> list[list[int]]:
    """The sampling batches: passage indices sorted by length (batches of similar length waste
    little compute on padding), ``batch_passages`` at a time. Batch ``b`` is seeded from the seed
    and ``b``, so any batch can be generated alone (another process, a rerun) and gives the same
    questions."""
    order = sorted(range(len(passages)), key=lambda i: len(passages[i]["title"]) + len(passages[i]["text"]))
    return [order[start:start + batch_passages] for start in range(0, len(order), batch_passages)]


def generate_xqg(gen: QueryGenerator, passages: Sequence[dict[str, str]], languages: Sequence[str],
                 *, n: int, top_k: int, max_new_tokens: int, batch_passages: int, seed: int,
                 bf16: bool, batches: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Rows of the released xQG jsonl: ``{docid, title, text, generated_queries: {lang: [n]}}``,
    in corpus order; with ``batches``, only the passages of those batches of
    :func:`generation_batches` (one process's share: see :mod:`xqglib.distributed`)."""
    plan = generation_batches(passages, batch_passages)
    chosen = range(len(plan)) if batches is None else batches
    rows: dict[int, dict[str, Any]] = {}
    gen.model.eval()
    for b in progress(chosen, desc=f"generate queries ({len(languages)} languages x {n})", unit="batches"):
        chunk = plan[b]
        questions = gen.sample([(passages[i]["title"], passages[i]["text"]) for i in chunk], languages, n, top_k,
                               max_new_tokens, seed=seed * 1_000_003 + b, bf16=bf16)
        for position, i in enumerate(chunk):
            p = passages[i]
            rows[i] = {"docid": p["docid"], "title": p["title"], "text": p["text"],
                       "generated_queries": {lang: questions[lang][position] for lang in languages}}
    return [rows[i] for i in sorted(rows)]
