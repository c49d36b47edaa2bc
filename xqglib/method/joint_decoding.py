"""Joint decoding over shared prefixes: every language's rows decode together, each attending to
its passage's prefix without a copy per row (an attention implementation registered with
transformers), used where it computes exactly what the model's own attention does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

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


def register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)


@contextlib.contextmanager
def attention_as(config: Any, name: str) -> Iterator[None]:
    """The model's layers use attention implementation ``name`` inside the block."""
    before = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = before


def joint_prefix(decoder: Any, cache: Any, mask: torch.Tensor, positions: torch.Tensor,
                 instructions: Sequence[list[int]], n: int,
                 max_new_tokens: int) -> tuple[PrefixContext, SuffixCache, torch.Tensor, torch.Tensor]:
    """The joint path's start: each instruction extends the passages' cache (then cut back), its
    keys and values become one prefix per (instruction, passage), shorter instructions padded
    (masked) between passage and instruction so positions stay as they are. Returns the prefix
    context, the rows' own (empty) cache, and each row's next position and last hidden state."""
    register_attention()
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
    return prefix, own, torch.cat(position).repeat_interleave(n, 0), torch.cat(hidden).repeat_interleave(n, 0)
