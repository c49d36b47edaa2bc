"""Top-k sampling from a decoder over shared passage prefixes (the reference path and the joint one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from xqglib.method.joint_decoding import (
    SHARED_PREFIX_ATTENTION,
    PrefixContext,
    attention_as,
    joint_decoding_exact,
    joint_prefix,
)


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
#: same distributions as version 1 (one language at a time) but in another random order; 3 drops
#: a row from the batch at the step it stops (2: once stopped rows are an eighth of the batch),
#: so no row-step is spent on a stopped row; the same distributions again, other random draws.
SAMPLER_VERSION = 3

#: Per sampler version, the share of stopped rows at which they are dropped (None: at once). On the
#: reference path a drop copies the rows' whole cache, so there sampler 3 may cost more than it
#: saves; the pipeline decodes jointly wherever that is exact (benchmarks/joint_decoding.py times
#: sampler 2 and 3 on the joint path).
COMPACTION = {2: 8, 3: None}


@torch.no_grad()
def sample_shared_prefix(model: Any, ids: torch.Tensor, mask: torch.Tensor,
                         instructions: Sequence[list[int]], n: int, top_k: int, max_new_tokens: int,
                         stop_ids: Iterable[int], pad_id: int, generator: torch.Generator,
                         vocabulary: torch.Tensor | None = None, joint: bool | None = None,
                         sampler: int = SAMPLER_VERSION) -> list[torch.Tensor]:
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
    applied only where a token is sampled; rows that have stopped are dropped (``sampler`` 3: at the
    step they stop; 2: once they are an eighth of the batch, see :data:`COMPACTION`). Returns, per
    instruction, the new tokens (rows in passage-major order, padded with ``pad_id`` after the stop
    token)."""
    if sampler not in COMPACTION:
        raise ValueError(f"sampler {sampler}: there are samplers {sorted(COMPACTION)}")
    share = COMPACTION[sampler]
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
        prefix, own, position, hidden = joint_prefix(decoder, cache, mask, positions, instructions, n,
                                                     max_new_tokens)
        with attention_as(decoder.config, SHARED_PREFIX_ATTENTION):
            out = decode(decoder, head, own, None, position, hidden, top_k, max_new_tokens, stops, pad_id,
                         generator, prefix, share)
        return list(out.split(ids.shape[0] * n))
    results = []
    for i, instruction in enumerate(instructions):
        own = cache if i == len(instructions) - 1 else copy.deepcopy(cache)
        suffix = torch.tensor(instruction).expand(ids.shape[0], -1)
        suffix_mask = torch.cat([mask, torch.ones_like(suffix)], dim=1)
        suffix_pos = positions[:, -1:] + 1 + torch.arange(suffix.shape[1])
        hidden = decoder(input_ids=suffix, attention_mask=suffix_mask, position_ids=suffix_pos,
                         past_key_values=own, use_cache=True).last_hidden_state[:, -1]
        own.batch_repeat_interleave(n)
        results.append(decode(decoder, head, own, suffix_mask.repeat_interleave(n, 0),
                               suffix_pos[:, -1:].repeat_interleave(n, 0) + 1,
                               hidden.repeat_interleave(n, 0), top_k, max_new_tokens, stops,
                               pad_id, generator, share=share))
    return results


def decode(decoder: Any, head: LMHead, cache: Any, mask: torch.Tensor | None, position: torch.Tensor,
            hidden: torch.Tensor, top_k: int, max_new_tokens: int, stops: torch.Tensor, pad_id: int,
            generator: torch.Generator, prefix: PrefixContext | None = None, share: int | None = None) -> torch.Tensor:
    """The decoding loop of :func:`sample_shared_prefix` from a filled cache (with ``prefix``: the
    rows' own cache is a :class:`SuffixCache` and ``mask`` is unused). Stopped rows are dropped
    once they are 1/``share`` of the batch (``None``: at the step they stop)."""
    out = torch.full((hidden.shape[0], max_new_tokens), pad_id)
    rows = torch.arange(hidden.shape[0])  # which output row each batch row is
    done = torch.zeros(hidden.shape[0], dtype=torch.bool)
    for step in range(max_new_tokens):
        token = torch.where(done, pad_id, head.sample(hidden, top_k, generator))
        out[rows, step] = token
        done |= torch.isin(token, stops)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        # every row costs compute (and, on the reference path, a cache copy) per step
        stopped = int(done.sum())
        if stopped and (share is None or stopped * share >= len(done)):
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
