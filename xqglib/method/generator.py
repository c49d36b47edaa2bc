"""The cross-lingual query generator (xQG): prompts, the model wrapper, and generation.

Two backends share one interface:

- ``seq2seq`` (mT5, as in the paper): the prompt is the encoder input, the question the target.
  Prompt, as the official DSI-QG/xQG code: ``Generate a {Language} question for this passage:
  {title} {passage}``.
- ``decoder`` (Gemma 3, the offline default): ``<bos> {title} {passage}`` then ``\nGenerate a
  {Language} question for this passage:\nQuestion:`` then the question and ``<eos>``. The passage
  comes first, so its key/value cache is computed once and shared by every language's
  instruction. The loss is taken on the question tokens only, and the LM head is applied only at
  those positions.

Sampling (:mod:`xqglib.method.sampling`) is top-k. Optionally the LM head is restricted to the
tokens seen in the data (:func:`data_vocabulary`); :func:`head_agreement` measures how close that
comes to sampling over the full vocabulary.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from xqglib.config.languages import LANGUAGE_NAMES
from xqglib.core.progress import progress
from xqglib.method.sampling import LMHead, sample_shared_prefix

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

    def restrict_vocabulary(self, texts: Iterable[str]) -> torch.Tensor:
        """Sample only the tokens of ``texts`` and the stop tokens (:func:`data_vocabulary`)."""
        self.vocabulary = data_vocabulary(self.tok, texts, self.stop_ids)
        return self.vocabulary

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
    :func:`generation_batches` (one process's share: see :mod:`xqglib.pipeline.distributed`)."""
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
