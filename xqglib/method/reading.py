"""The extractive reader: a span head on the encoder, its training, and its span decoding from
start and end logits to an answer string, as Hugging Face's question-answering post-processing
does it.

A span (s, e) of context tokens scores start[s] + end[e]; it is valid when both tokens belong to
the context (their character offsets are known), s <= e, and it holds at most
``max_answer_tokens`` tokens. The best valid span among the ``n_best`` highest start and end
logits is the answer; over several passages (the top-k retrieved), the answer is the best
span of any passage.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xqglib.config.settings import Profile
from xqglib.method.convergence import Convergence, verdict_of_log

#: The reading's version: 2 decodes each window from its own tokens (version 1 chose the n-best
#: start and end tokens among the padding of its batch too, so its answers could depend on the
#: batch). Stored readings are reused only when read by the same version.
READING_VERSION = 2

#: Windows per forward pass of the reader's training loss (:meth:`Reader.loss`).
TRAINING_GROUP = 4


@dataclass(frozen=True)
class Span:
    text: str
    score: float
    passage: int  # which of the passages read it came from
    start_char: int
    end_char: int


def best_span(start_logits: Sequence[float], end_logits: Sequence[float],
              offsets: Sequence[tuple[int, int] | None], context: str, passage: int = 0,
              max_answer_tokens: int = 30, n_best: int = 20) -> Span | None:
    """The best valid span of one passage; ``offsets[i]`` is token i's (start, end) character span
    in ``context``, None for tokens outside it (question, special tokens, padding)."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    starts = np.argsort(start_logits)[::-1][:n_best]
    ends = np.argsort(end_logits)[::-1][:n_best]
    best: Span | None = None
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_tokens:
                continue
            score = float(start_logits[s] + end_logits[e])
            if best is None or score > best.score:
                first, last = offsets[s][0], offsets[e][1]
                # sentencepiece tokenizers (XLM-R's) count the space before a word into its offsets
                first += len(context[first:last]) - len(context[first:last].lstrip())
                best = Span(context[first:last], score, passage, first, last)
    return best


def best_over_passages(spans: Sequence[Span | None]) -> Span | None:
    """The highest-scoring span over the passages read (None when no passage gave one)."""
    found = [s for s in spans if s is not None]
    return max(found, key=lambda s: s.score) if found else None


# --------------------------------------------------------------------------------------------
# The reader: a span-extraction head on the encoder (``AutoModelForQuestionAnswering``), fed as
# Hugging Face's question-answering examples feed it: question, then the context cut into windows
# of ``max_len`` tokens that overlap by ``stride`` tokens.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReaderExample:
    """One training example: a question, its context and the answer's first character in it."""

    question: str
    context: str
    answer: str
    answer_start: int


class Reader:
    """An extractive reader: a question-answering model, its tokenizer and its window settings."""

    def __init__(self, model: Any, tokenizer: Any, max_len: int = 256, stride: int = 64,
                 max_answer_tokens: int = 30, group: int | None = TRAINING_GROUP) -> None:
        self.model, self.tok = model, tokenizer
        self.max_len, self.stride, self.max_answer_tokens = max_len, stride, max_answer_tokens
        #: windows per forward pass in :meth:`loss` (None: the whole batch, padded together)
        self.group = group
        #: token positions (padding included) the model has run on
        self.positions_run = 0

    def windows(self, questions: Sequence[str], contexts: Sequence[str], padded: bool = True) -> Any:
        """Tokenised (question, context window) features; ``overflow_to_sample_mapping`` says
        which input each window comes from, ``offset_mapping`` the context characters of each token.
        ``padded``: as one batch of tensors; otherwise lists, each window its own length."""
        return self.tok(list(questions), list(contexts), truncation="only_second", max_length=self.max_len,
                        stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                        padding=padded, return_tensors="pt" if padded else None)

    @staticmethod
    def context_offsets(features: Any, i: int) -> list[tuple[int, int] | None]:
        """Window ``i``'s character offsets, None for every token outside the context."""
        ids = features.sequence_ids(i)
        offsets = features["offset_mapping"][i]  # a tensor row, or a list where not padded
        offsets = offsets.tolist() if hasattr(offsets, "tolist") else offsets
        return [tuple(o) if s == 1 else None for o, s in zip(offsets, ids)]

    def labels(self, features: Any, examples: Sequence[ReaderExample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end token of the answer in each window; 0 (the first token, as Hugging Face's
        recipe) where the window does not hold the whole answer."""
        starts, ends = [], []
        mapping = features["overflow_to_sample_mapping"]
        for i, sample in enumerate(mapping.tolist() if hasattr(mapping, "tolist") else mapping):
            ex = examples[sample]
            first, last = ex.answer_start, ex.answer_start + len(ex.answer)
            offsets = self.context_offsets(features, i)
            inside = [k for k, o in enumerate(offsets) if o is not None]
            s = e = 0
            if inside and offsets[inside[0]][0] <= first and offsets[inside[-1]][1] >= last:
                s = next(k for k in inside if offsets[k][1] > first)
                e = next(k for k in reversed(inside) if offsets[k][0] < last)
            starts.append(s)
            ends.append(e)
        return torch.tensor(starts), torch.tensor(ends)

    def _forward(self, features: Any) -> Any:
        # no segment ids: XLM-R (multilingual-e5's base) was pre-trained without them
        inputs = {k: features[k] for k in ("input_ids", "attention_mask")}
        self.positions_run += int(inputs["input_ids"].numel())
        return self.model(**inputs)

    def loss(self, examples: Sequence[ReaderExample]) -> torch.Tensor:
        """Hugging Face's question-answering loss, the mean over windows of the start and end
        cross-entropies, over each window's own tokens (padding is never a candidate answer).

        The windows run in groups of ``group`` of (nearly) equal length, each padded to its own
        longest: the same loss as one padded batch (checked in the tests) on ~22% fewer positions
        (cpu profile: 73% of a padded batch's positions are tokens, 94% in groups of 4)."""
        from xqglib.models.registry import pad_batch

        features = self.windows([e.question for e in examples], [e.context for e in examples], padded=False)
        starts, ends = self.labels(features, examples)
        lengths = [len(ids) for ids in features["input_ids"]]
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        size = self.group or len(order)
        total = torch.zeros(())
        for first in range(0, len(order), size):
            part = order[first:first + size]
            batch = pad_batch(self.tok, {k: [features[k][w] for w in part] for k in ("input_ids", "attention_mask")},
                              padding_side="right")
            out = self._forward(batch)
            padding = batch["attention_mask"] == 0
            for logits, target in ((out.start_logits, starts), (out.end_logits, ends)):
                total = total + torch.nn.functional.cross_entropy(logits.float().masked_fill(padding, float("-inf")),
                                                                  target[part], reduction="sum")
        return total / (2 * len(order))

    @torch.no_grad()
    def read(self, questions: Sequence[str], contexts: Sequence[str], batch_size: int = 32,
             desc: str | None = None) -> list[Span | None]:
        """The best span of each (question, context) pair, over the context's windows.

        Every pair is cut into its windows once; the windows of all pairs are then read in batches
        of ``batch_size`` windows of (nearly) equal length, so that little compute goes to padding,
        and each window's span is decoded from its own tokens only: the answer is the one each
        window read alone would give, whatever else shares its batch.
        """
        from xqglib.core.progress import progress
        from xqglib.models.registry import pad_batch

        self.model.eval()
        features = self.windows(questions, contexts, padded=False)
        sample_of = features["overflow_to_sample_mapping"]
        lengths = [len(ids) for ids in features["input_ids"]]
        windows = sorted(range(len(lengths)), key=lambda w: lengths[w])
        best: list[Span | None] = [None] * len(questions)
        for start in progress(range(0, len(windows), batch_size), desc=desc or "read", unit="batches",
                              quiet=desc is None):
            part = windows[start:start + batch_size]
            batch = pad_batch(self.tok, {key: [features[key][w] for w in part] for key in ("input_ids", "attention_mask")},
                              padding_side="right")  # a window's own tokens first
            out = self._forward(batch)
            for row, w in enumerate(part):
                i, n = sample_of[w], lengths[w]
                span = best_span(out.start_logits[row, :n].float().numpy(), out.end_logits[row, :n].float().numpy(),
                                 self.context_offsets(features, w), contexts[i],
                                 max_answer_tokens=self.max_answer_tokens)
                best[i] = best_over_passages([best[i], span])
        return best


@torch.no_grad()
def reader_dev_loss(reader: Reader, examples: Sequence[ReaderExample], batch_size: int) -> float:
    """The reader's loss over dev examples (in their order, batches of ``batch_size``), the mean over
    the batches weighted by their examples."""
    training = reader.model.training
    reader.model.eval()
    total = sum(float(reader.loss(examples[i:i + batch_size])) * len(examples[i:i + batch_size])
                for i in range(0, len(examples), batch_size))
    reader.model.train(training)
    return total / max(1, len(examples))


def train_reader(reader: Reader, examples: Sequence[ReaderExample], *, steps: int, batch_size: int,
                 lr: float, warmup_ratio: float, seed: int, freeze_embeddings: bool = True,
                 max_grad_norm: float | None = 1.0, dev: Sequence[ReaderExample] | None = None,
                 convergence: Convergence | None = None) -> list[dict[str, float]]:
    """Fine-tune the reader in place: examples shuffled with ``seed`` (passed over again as
    ``steps`` needs), AdamW, linear warm-up and decay, clipping; returns the per-step log. With
    ``convergence`` (and ``dev`` examples), ``steps`` gives way to the criterion: at most its
    ``max_passes`` passes, the dev loss every ``eval_share`` of a pass, a stop once it holds, and
    the weights of the best dev loss kept."""

    from transformers import get_linear_schedule_with_warmup

    from xqglib.core.progress import progress

    steps_per_pass = -(-len(examples) // batch_size)
    eval_every = None
    if convergence is not None:
        if not dev or convergence.measure != "dev_loss":
            raise ValueError("training to convergence needs dev examples, and follows their loss")
        steps, eval_every = convergence.max_steps(steps_per_pass), convergence.steps_per_eval(steps_per_pass)
    torch.manual_seed(seed)
    model = reader.model
    if freeze_embeddings:  # the 250k-row word-embedding matrix: most of the parameters
        model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(optim, int(warmup_ratio * steps), steps)
    rng = random.Random(seed)
    order: list[int] = []
    log: list[dict[str, float]] = []
    best_loss, best_state = float("inf"), None
    started = time.perf_counter()
    model.train()
    for step in progress(range(1, steps + 1), desc="train reader", unit="steps"):
        while len(order) < batch_size:
            more = list(range(len(examples)))
            rng.shuffle(more)
            order += more
        batch, order = [examples[i] for i in order[:batch_size]], order[batch_size:]
        before = reader.positions_run
        loss = reader.loss(batch)
        loss.backward()
        grad_norm = (torch.nn.utils.clip_grad_norm_(params, max_grad_norm).item()
                     if max_grad_norm is not None else float("nan"))
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        row = {"step": step, "loss": loss.item(), "grad_norm": grad_norm,
               "positions": reader.positions_run - before, "passes": step / steps_per_pass}
        if eval_every and (step % eval_every == 0 or step == steps):
            before = reader.positions_run
            row["dev_loss"] = reader_dev_loss(reader, dev, batch_size)
            row["dev_positions"] = reader.positions_run - before
            if row["dev_loss"] < best_loss:
                best_loss, best_state = row["dev_loss"], copy.deepcopy(model.state_dict())
        row["seconds"] = time.perf_counter() - started
        log.append(row)
        if "dev_loss" in row and verdict_of_log(convergence, log, steps_per_pass).converged:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return log


def reader_of(cfg: Profile, source: str) -> Any:
    from xqglib.models.registry import load_reader, load_tokenizer

    r = cfg.rq3
    return Reader(load_reader(source), load_tokenizer(source), r.reader_max_len, r.reader_stride)
