"""The cross-lingual query generator (xQG): training and top-k sampling.

Two backends share one interface:

- ``seq2seq`` (mT5, as in the paper): the prompt is the encoder input, the question the target.
- ``decoder`` (Gemma 3, the offline default): ``<bos> prompt SEP question <eos>``; the loss is taken
  on the question tokens only, and the LM head is applied only at those positions (computing the
  262k-way logits over the prompt would be most of the step's cost and is thrown away).

Prompt, as the official DSI-QG/xQG code: ``Generate a {Language} question for this passage:
{title} {passage}``.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import LANGUAGE_NAMES

#: What separates the (possibly truncated) passage from the question for decoder-only models,
#: which, unlike seq2seq ones, have no encoder boundary to tell them where the prompt ends.
DECODER_SEPARATOR = "\nQuestion:"


def xqg_prompt(lang: str, title: str, text: str) -> str:
    return f"Generate a {LANGUAGE_NAMES[lang]} question for this passage: {title} {text}"


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
        self._sep = tokenizer(DECODER_SEPARATOR, add_special_tokens=False)["input_ids"]

    # ---- tokenisation ------------------------------------------------------------------
    def prompt_ids(self, lang: str, title: str, text: str) -> list[int]:
        ids = self.tok(xqg_prompt(lang, title, text), add_special_tokens=False, truncation=True,
                       max_length=self.max_input_len)["input_ids"]
        if self.kind == "seq2seq":
            return ids + [self.tok.eos_token_id]
        bos = [self.tok.bos_token_id] if self.tok.bos_token_id is not None else []
        return bos + ids + self._sep

    def target_ids(self, question: str) -> list[int]:
        ids = self.tok(question, add_special_tokens=False, truncation=True,
                       max_length=self.max_target_len - 1)["input_ids"]
        return ids + [self.tok.eos_token_id]

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
    def loss(self, batch: GeneratorBatch) -> torch.Tensor:
        """Mean cross-entropy over the question tokens of the batch."""
        if self.kind == "seq2seq":
            return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              labels=batch.labels).loss
        hidden = self.model.get_decoder()(input_ids=batch.input_ids,
                                           attention_mask=batch.attention_mask).last_hidden_state
        # position t predicts token t+1: keep only positions whose next token is a question token
        targets = batch.labels[:, 1:]
        keep = targets != -100
        logits = self.model.get_output_embeddings()(hidden[:, :-1][keep])
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return F.cross_entropy(logits.float(), targets[keep])

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
    def sample(self, prompts: Sequence[list[int]], n: int, top_k: int, max_new_tokens: int,
               seed: int, bf16: bool = False, shared_prefill: bool = True) -> list[list[str]]:
        """``n`` questions per prompt by top-k sampling (no top-p, temperature 1), seeded.

        Decoder-only models use :func:`sample_shared_prefill` (each prompt is read once and its
        cache copied n times); ``shared_prefill=False`` uses the plain ``generate`` loop, which
        reads every prompt n times (kept as the benchmark's baseline). Seq2seq models use
        ``generate``, which already encodes each prompt once.
        """
        ids, mask = self._pad(prompts)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if self.kind == "decoder" and shared_prefill:
                generator = torch.Generator().manual_seed(seed)
                out = sample_shared_prefill(self.model, ids, mask, n, top_k, max_new_tokens,
                                            self.tok.eos_token_id, self.pad_id, generator)
            else:
                torch.manual_seed(seed)
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=True, top_k=top_k, top_p=1.0,
                    temperature=1.0, num_return_sequences=n, max_new_tokens=max_new_tokens,
                    pad_token_id=self.pad_id, eos_token_id=self.tok.eos_token_id)
                if self.kind == "decoder":
                    out = out[:, ids.shape[1]:]
        texts = self.tok.batch_decode(out, skip_special_tokens=True)
        # a decoder may run on past the question: keep its first line
        texts = [t.strip().split("\n")[0].strip() for t in texts]
        return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]


def sample_top_k(logits: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """One token per row from the softmax over the row's k largest logits (as HF's top-k warper)."""
    values, indices = torch.topk(logits.float(), k, dim=-1)
    choice = torch.multinomial(torch.softmax(values, dim=-1), 1, generator=generator)
    return indices.gather(-1, choice).squeeze(-1)


def sample_shared_prefill(model: Any, ids: torch.Tensor, mask: torch.Tensor, n: int, top_k: int,
                          max_new_tokens: int, eos_id: int, pad_id: int,
                          generator: torch.Generator) -> torch.Tensor:
    """Top-k sampling of ``n`` continuations per left-padded prompt, reading each prompt once.

    The prompt's key/value cache is computed once and repeated n times, and the LM head is
    applied only at the last position; decoding then runs on all n x prompts rows at once.
    Returns the new tokens (rows in prompt-major order, padded with ``pad_id`` after eos).
    """
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                logits_to_keep=1)
    cache = out.past_key_values
    cache.batch_repeat_interleave(n)
    logits = out.logits[:, -1].repeat_interleave(n, 0)
    mask = mask.repeat_interleave(n, 0)
    next_position = positions[:, -1:].repeat_interleave(n, 0) + 1
    finished = torch.zeros(logits.shape[0], dtype=torch.bool)
    steps = []
    for _ in range(max_new_tokens):
        token = torch.where(finished, pad_id, sample_top_k(logits, top_k, generator))
        steps.append(token)
        finished |= token == eos_id
        if bool(finished.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_position,
                    past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1]
        next_position = next_position + 1
    return torch.stack(steps, dim=1)


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


def train_generator(gen: QueryGenerator, train_pairs: Sequence[dict[str, str]],
                    dev_pairs: Sequence[dict[str, str]], *, steps: int, batch_size: int, lr: float,
                    seed: int, eval_every: int, bf16: bool, freeze_embeddings: bool,
                    max_dev_pairs: int) -> list[dict[str, float]]:
    """Fine-tune with AdamW and linear decay; keep the checkpoint with the lowest dev loss.

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
    for step in tqdm(range(1, steps + 1), desc="train generator"):
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
        row = {"step": step, "train_loss": loss.item(), "seconds": time.perf_counter() - started}
        if dev and (step % eval_every == 0 or step == steps):
            row["dev_loss"] = evaluate_loss(gen, dev, batch_size, bf16)
            if row["dev_loss"] < best_loss:
                best_loss = row["dev_loss"]
                best_state = copy.deepcopy(gen.model.state_dict())
        log.append(row)
    if best_state is not None:
        gen.model.load_state_dict(best_state)
    gen.model.eval()
    return log


def generate_xqg(gen: QueryGenerator, passages: Sequence[dict[str, str]], languages: Sequence[str],
                 *, n: int, top_k: int, max_new_tokens: int, batch_passages: int, seed: int,
                 bf16: bool) -> list[dict[str, Any]]:
    """Rows of the released xQG jsonl: ``{docid, title, text, generated_queries: {lang: [n]}}``.

    Each (batch, language) call is seeded from ``seed`` and its position, so any part of the
    output can be regenerated alone and gives the same questions.
    """
    rows = [{"docid": p["docid"], "title": p["title"], "text": p["text"], "generated_queries": {}}
            for p in passages]
    gen.model.eval()
    # batches of similar length waste little compute on padding; the order is deterministic
    by_length = sorted(rows, key=lambda r: len(r["title"]) + len(r["text"]))
    n_batches = math.ceil(len(passages) / batch_passages)
    with tqdm(total=n_batches * len(languages), desc="generate queries") as bar:
        for b in range(n_batches):
            chunk = by_length[b * batch_passages:(b + 1) * batch_passages]
            for li, lang in enumerate(languages):
                prompts = [gen.prompt_ids(lang, r["title"], r["text"]) for r in chunk]
                questions = gen.sample(prompts, n, top_k, max_new_tokens,
                                       seed=seed * 1_000_003 + b * 131 + li, bf16=bf16)
                for row, qs in zip(chunk, questions):
                    row["generated_queries"][lang] = qs
                bar.update(1)
    return rows
