"""Encoding queries and passages into vectors with one shared encoder (Tevatron v1 semantics).

Passage text is ``title + " " + text``; pooling is the backbone's (CLS of the last layer, no pooler
and no normalisation, for mBERT / XLM-R; mean pooling with "query: " / "passage: " prefixes for e5).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from xqglib.core.progress import progress
from xqglib.models.registry import EncoderSpec, pad_batch

#: texts per forward chunk in training on a CPU (:meth:`DenseEncoder.forward_many`): 1.07x a
#: padded batch's step on the cpu profile's rows, 4 to 16 alike (``benchmarks/retriever_step.py``)
TRAINING_GROUP = 4


def passage_text(title: str, text: str) -> str:
    return f"{title} {text}"


class PooledEncoder(torch.nn.Module):
    """The backbone and its pooling as one module: batches of token ids in, float32 vectors out."""

    def __init__(self, encoder: "DenseEncoder") -> None:
        super().__init__()
        self.model = encoder.model
        self._pool = encoder.pool

    def forward(self, batches: Sequence[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        return [self._pool(self.model(**b).last_hidden_state.float(), b["attention_mask"]) for b in batches]


class DenseEncoder:
    """A model, its tokenizer and its pooling: turns texts into vectors."""

    def __init__(self, model: Any, tokenizer: Any, spec: EncoderSpec, query_max_len: int,
                 passage_max_len: int, bf16: bool, group: int | None = TRAINING_GROUP) -> None:
        self.model, self.tok, self.spec = model, tokenizer, spec
        self.query_max_len, self.passage_max_len, self.bf16 = query_max_len, passage_max_len, bf16
        #: texts per chunk in :meth:`forward_many` on a CPU (None: each group one padded batch)
        self.group = group
        #: token positions (padding included) :meth:`forward` has run the model on
        self.positions_run = 0
        #: the model with its pooling, as one module (replaced by its distributed wrapper when
        #: training runs on several processes)
        self.module: torch.nn.Module = PooledEncoder(self)

    def _inputs(self, texts: Sequence[str], is_query: bool) -> tuple[list[str], int]:
        """The texts as the encoder reads them (with the query or passage prefix), and the limit."""
        prefix = self.spec.query_prefix if is_query else self.spec.passage_prefix
        return [prefix + t for t in texts], self.query_max_len if is_query else self.passage_max_len

    def tokenize(self, texts: Sequence[str], is_query: bool) -> dict[str, torch.Tensor]:
        inputs, max_len = self._inputs(texts, is_query)
        return self.tok(inputs, padding=True, truncation=True, max_length=max_len, return_tensors="pt")

    def token_counts(self, texts: Sequence[str], is_query: bool) -> list[int]:
        """Tokens per text as :meth:`tokenize` gives them, without padding (needs no model)."""
        inputs, max_len = self._inputs(texts, is_query)
        return [len(ids) for ids in self.tok(inputs, truncation=True, max_length=max_len)["input_ids"]]

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.spec.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    def forward(self, texts: Sequence[str], is_query: bool) -> torch.Tensor:
        """Vectors with gradients (training); float32."""
        return self.forward_many([(texts, is_query)])[0]

    def forward_many(self, groups: Sequence[tuple[Sequence[str], bool]]) -> list[torch.Tensor]:
        """Vectors with gradients for several groups of texts (queries, passages, ...) in one call
        of :attr:`module` (one forward per training step, as distributed data parallel needs).

        On a CPU each group's texts run in chunks of :attr:`group` of (nearly) equal token count,
        each padded to its own longest, and come back in input order: the same vectors as one
        padded batch (the attention mask; checked in the tests in eval mode: in training, dropout
        draws differ with the shapes) on fewer positions. An accelerator runs each group as one
        padded batch (small kernels cost it more than padding does). An empty group gives no rows."""
        chunked = self.group is not None and self.model.device.type == "cpu"
        chunks: list[dict[str, torch.Tensor]] = []
        orders: list[tuple[list[int], int]] = []
        for texts, is_query in groups:
            if not texts:
                parts = []
            elif chunked:
                inputs, max_len = self._inputs(texts, is_query)
                parts = list(self._by_tokens(self.tok(inputs, truncation=True, max_length=max_len), self.group))
            else:
                parts = [(list(range(len(texts))), self.tokenize(texts, is_query))]
            chunks += [batch for _, batch in parts]
            orders.append(([i for part, _ in parts for i in part], len(parts)))
        reps, out, at = self._run(chunks), [], 0
        for order, n in orders:
            if not n:
                out.append(torch.zeros((0, self.model.config.hidden_size), device=self.model.device))
                continue
            rows = torch.cat(reps[at:at + n])
            at += n
            inverse = torch.empty(len(order), dtype=torch.long)
            inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
            out.append(rows[inverse.to(rows.device)])
        return out

    def _by_tokens(self, encoded: Any, size: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """Texts tokenised once (without padding) cut into padded batches of ``size`` in order of
        token count, each with the positions of its texts (padded on the right, as CLS pooling needs)."""
        order = sorted(range(len(encoded["input_ids"])), key=lambda k: len(encoded["input_ids"][k]))
        for start in range(0, len(order), size):
            part = order[start:start + size]
            yield part, pad_batch(self.tok, {key: [column[k] for k in part] for key, column in encoded.items()},
                                  padding_side="right")

    def _run(self, batches: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        """:attr:`module` on padded batches, counting the positions it runs on."""
        self.positions_run += sum(int(b["input_ids"].numel()) for b in batches)  # padded: what the FLOPs go to
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.module(batches)

    def length_batches(self, texts: Sequence[str], is_query: bool, batch_size: int,
                       chunk_batches: int = 64) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """Padded model inputs for every text, in batches of texts of (nearly) equal token count,
        each with the positions of its texts in ``texts``.

        Texts are taken in order of character length, in chunks of ``chunk_batches`` batches; each
        chunk is tokenised once (without padding) and cut into batches in order of token count, so
        that little compute goes to padding (characters alone are a poor guide across scripts)
        while memory stays bounded by the chunk, however long the collection. Every batch equals
        :meth:`tokenize` of its texts (the same truncation, padding and prefix).
        """
        inputs, max_len = self._inputs(texts, is_query)
        by_chars = sorted(range(len(texts)), key=lambda i: len(inputs[i]))
        chunk = batch_size * chunk_batches
        for first in range(0, len(by_chars), chunk):
            idx = by_chars[first:first + chunk]
            encoded = self.tok([inputs[i] for i in idx], truncation=True, max_length=max_len)
            for part, batch in self._by_tokens(encoded, batch_size):
                yield [idx[k] for k in part], batch

    @torch.no_grad()
    def encode(self, texts: Sequence[str], is_query: bool, batch_size: int = 32,
               desc: str | None = None) -> np.ndarray:
        """float32 matrix, one row per text, in input order.

        Batches hold texts of nearly equal token count (:meth:`length_batches`), so that little
        compute goes to padding; padding does not change a vector (the attention mask).
        """
        self.model.eval()
        dim = self.model.config.hidden_size
        out = np.zeros((len(texts), dim), dtype=np.float32)
        batches = self.length_batches(texts, is_query, batch_size)
        for idx, batch in progress(batches, total=-(-len(texts) // batch_size), desc=desc or "encode",
                                   unit="batches", quiet=desc is None and len(texts) < 10 * batch_size):
            out[idx] = self._run([batch])[0].numpy()
        return out
