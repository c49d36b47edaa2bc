"""Joint decoding over shared prefixes (xqglib.method.sampling.sample_shared_prefix) against the reference
path (one language at a time, the prefix cache repeated per row), on a tiny random Gemma 3 whose
sliding window covers the sequences: greedy decoding must give the same tokens (passages of different
lengths, instructions of different lengths, rows stopping at different steps), and sampling must be
seeded."""

from __future__ import annotations

import pytest
import torch

from xqglib.method.joint_decoding import joint_decoding_exact
from xqglib.method.sampling import sample_shared_prefix


@pytest.fixture(scope="module")
def model():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                              max_position_embeddings=256, sliding_window=128, pad_token_id=0)
    return Gemma3ForCausalLM(config).eval()


def _inputs():
    lengths = [9, 4, 7]  # left-padded passages of different lengths
    ids = torch.zeros(3, 9, dtype=torch.long)
    mask = torch.zeros(3, 9, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, 9 - length:] = torch.arange(10 + row, 10 + row + length)
        mask[row, 9 - length:] = 1
    instructions = [[50, 51, 52], [60, 61], [70, 71, 72, 73]]  # of different lengths
    return ids, mask, instructions


@pytest.mark.parametrize("sampler", [2, 3])
def test_greedy_joint_decoding_equals_the_reference_path(model, sampler):
    ids, mask, instructions = _inputs()
    kwargs = dict(n=2, top_k=1, max_new_tokens=8, pad_id=0, sampler=sampler)
    reference = sample_shared_prefix(model, ids, mask, instructions, stop_ids=[], generator=torch.Generator(),
                                     joint=False, **kwargs)
    # stop on a token some rows write early, so that rows finish at different steps and are dropped
    stop = int(reference[0][0, 1])
    reference = sample_shared_prefix(model, ids, mask, instructions, stop_ids=[stop], generator=torch.Generator(),
                                     joint=False, **kwargs)
    joint = sample_shared_prefix(model, ids, mask, instructions, stop_ids=[stop], generator=torch.Generator(),
                                 joint=True, **kwargs)
    assert sum(int((r == stop).any(1).sum()) for r in reference) >= 2  # some rows did stop early
    assert [r.shape for r in joint] == [(6, 8)] * 3
    for a, b in zip(reference, joint):
        assert torch.equal(a, b)


def test_joint_sampling_is_seeded_and_used_only_where_exact(model):
    ids, mask, instructions = _inputs()
    kwargs = dict(n=3, top_k=20, max_new_tokens=6, stop_ids=[], pad_id=0)
    first = sample_shared_prefix(model, ids, mask, instructions, generator=torch.Generator().manual_seed(5), **kwargs)
    again = sample_shared_prefix(model, ids, mask, instructions, generator=torch.Generator().manual_seed(5), **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({tuple(r.tolist()) for r in first[0]}) > 1  # sampled, not greedy
    assert joint_decoding_exact(model, 128) and not joint_decoding_exact(model, 129)  # the sliding window
    with pytest.raises(ValueError, match="joint decoding would not compute"):
        sample_shared_prefix(model, ids, mask, instructions, generator=torch.Generator(), joint=True,
                             **{**kwargs, "max_new_tokens": 120})
    with pytest.raises(ValueError, match="there are samplers"):
        sample_shared_prefix(model, ids, mask, instructions, generator=torch.Generator(), sampler=1, **kwargs)
    assert model.get_decoder().config._attn_implementation != "xqg_shared_prefix"  # restored after decoding


def _recording_head(monkeypatch, choose):
    """An LM head that records, per path (``Recording.path``: joint or not), the states it samples
    from, and picks ``choose(hidden, calls before on this path)`` as the tokens."""
    seen: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    class Recording:
        path = False

        def __init__(self, model, vocabulary=None):
            pass

        def sample(self, hidden, k, generator):
            seen[Recording.path].append(hidden.clone())
            return choose(hidden, len(seen[Recording.path]) - 1)

    from xqglib.method import sampling

    monkeypatch.setattr(sampling, "LMHead", Recording)
    return seen, Recording


def test_every_step_sees_the_same_hidden_states(model, monkeypatch):
    """The states each step's token is sampled from, both paths fed the same tokens: equal to float
    precision (greedy tokens alone could hide a small difference, e.g. attention to padding)."""

    # the same token at the same step on both paths (each language decodes 4 steps on the reference)
    seen, Recording = _recording_head(monkeypatch, lambda hidden, calls: torch.full((hidden.shape[0],), 7 + calls % 4))
    ids, mask, instructions = _inputs()
    for joint in (False, True):
        Recording.path = joint
        sample_shared_prefix(model, ids, mask, instructions, 2, 1, 4, [], 0, torch.Generator(), joint=joint)
    # the reference records language by language (4 steps each); the joint path every language at once
    reference = [torch.cat([seen[False][lang * 4 + step] for lang in range(3)]) for step in range(4)]
    assert len(seen[True]) == 4
    for step in range(4):
        assert torch.allclose(seen[True][step], reference[step], atol=1e-5), step


def test_sampler_3_drops_each_row_at_its_stop_and_sees_the_reference_states(model, monkeypatch):
    """Sampler 3, rows stopping at different steps: every step runs exactly the rows not yet
    stopped, on both paths, from the same hidden states (to float precision)."""

    stop = 99

    def stop_where_high(hidden, calls):
        # a row stops where its state's first feature passes 0.4 (two rows of eighteen at the first
        # step: fewer than an eighth, which sampler 2 would keep): the same rows on both paths
        assert bool(((hidden[:, 0] - 0.4).abs() > 1e-3).all()), "a state too near the stop rule's threshold"
        return torch.where(hidden[:, 0] > 0.4, stop, 7)

    seen, Recording = _recording_head(monkeypatch, stop_where_high)
    ids, mask, instructions = _inputs()
    out = {}
    for joint in (False, True):
        Recording.path = joint
        out[joint] = sample_shared_prefix(model, ids, mask, instructions, 2, 1, 5, [stop], 0, torch.Generator(),
                                          joint=joint, sampler=3)
    for a, b in zip(out[False], out[True]):
        assert torch.equal(a, b)
    tokens = torch.cat(out[True])
    lengths = [int(row.ne(0).sum()) for row in tokens]  # tokens written, the stop included
    assert len(set(lengths)) > 1  # rows did stop at different steps
    assert 0 < 8 * sum(n == 1 for n in lengths) < len(lengths)  # at the first step, fewer than an eighth
    # joint: step t ran exactly the rows that had not stopped before it
    for t, hidden in enumerate(seen[True]):
        assert hidden.shape[0] == sum(n > t for n in lengths), t
    # the reference path, language by language, sees the same states in the same row order
    steps = [sum(1 for t in range(5) if any(n > t for n in lengths[i * 6:(i + 1) * 6])) for i in range(3)]
    reference = iter(seen[False])
    by_language = [[next(reference) for _ in range(k)] for k in steps]
    for t, hidden in enumerate(seen[True]):
        parts = [states[t] for states in by_language if t < len(states)]
        assert torch.allclose(hidden, torch.cat(parts), atol=1e-5), t
