"""Low-precision generation, kept only where it samples from the same distribution.

:func:`quantized` returns a copy of a decoder whose transformer-body linear layers are int8
(torchao: weights only, or weights and dynamically quantized activations); the tied embedding /
LM head stays fp32. :func:`distribution_check` compares it with the full-precision model on fixed
continuations (held-out questions after their prompts): the mean negative log-likelihood of the
question tokens under both, and, per position, the total variation distance between the two
*sampling* distributions, each model's softmax over its own top-k logits (what top-k sampling
draws from). :data:`TOLERANCE` is the bar a low-precision path must pass to be used.

torchao is optional (``pip install torchao==0.18.0``): no profile uses int8 until a generator
passes the check, and transformers imports torchao, with warnings, wherever it is installed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

#: What a low-precision generator must meet against full precision: mean total variation between
#: the top-k sampling distributions, and relative increase of the held-out negative log-likelihood.
TOLERANCE = {"total_variation": 0.1, "nll_increase": 0.01}

SCHEMES = ("int8-weight", "int8-dynamic")


def quantized(model: Any, scheme: str) -> Any:
    """A copy of ``model`` with the linear layers of its decoder body in int8 (``scheme``:
    "int8-weight" for weight-only, "int8-dynamic" for int8 weights and per-token dynamically
    quantized activations)."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; known: {SCHEMES}")
    config = Int8WeightOnlyConfig() if scheme == "int8-weight" else Int8DynamicActivationInt8WeightConfig()
    copied = copy.deepcopy(model)
    quantize_(copied.get_decoder(), config)
    return copied.eval()


def with_model(gen: Any, model: Any) -> Any:
    """The same generator (tokenizer, prompt, sampling vocabulary) over another model."""
    other = copy.copy(gen)
    other.model = model
    return other


def sampling_distribution(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Dense rows of the distribution top-k sampling draws from: softmax over each row's k largest
    logits, zero elsewhere."""
    values, indices = torch.topk(logits.float(), k, dim=-1)
    out = torch.zeros_like(logits, dtype=torch.float32)
    return out.scatter_(-1, indices, torch.softmax(values, dim=-1))


@torch.no_grad()
def distribution_check(gen: Any, candidate: Any, pairs: Sequence[dict[str, str]], k: int = 10,
                       batch_size: int = 8) -> dict[str, float]:
    """``candidate`` (a model of ``gen``'s kind) against ``gen.model`` on the question tokens of
    ``pairs``: mean NLL under both, mean total variation between the top-k sampling
    distributions, and the share of positions whose top-k sets are equal."""
    from xqglib.method.sampling import LMHead

    generators = {"reference": gen, "candidate": with_model(gen, candidate)}
    totals = {"tokens": 0, "nll_reference": 0.0, "nll_candidate": 0.0, "total_variation": 0.0, "same_top_k": 0.0}
    for start in range(0, len(pairs), batch_size):
        batch = gen.collate(pairs[start:start + batch_size])
        logits = {}
        for name, generator in generators.items():
            hidden, targets = generator.question_hidden(batch)
            logits[name] = LMHead(generator.model).logits(hidden).float()
        log_ref = torch.log_softmax(logits["reference"], -1)
        log_cand = torch.log_softmax(logits["candidate"], -1)
        rows = torch.arange(len(targets))
        totals["nll_reference"] -= float(log_ref[rows, targets].sum())
        totals["nll_candidate"] -= float(log_cand[rows, targets].sum())
        p, q = sampling_distribution(logits["reference"], k), sampling_distribution(logits["candidate"], k)
        totals["total_variation"] += float(0.5 * (p - q).abs().sum(-1).sum())
        top_ref = torch.topk(logits["reference"], k, -1).indices.sort(-1).values
        top_cand = torch.topk(logits["candidate"], k, -1).indices.sort(-1).values
        totals["same_top_k"] += float((top_ref == top_cand).all(-1).sum())
        totals["tokens"] += len(targets)
    n = max(totals["tokens"], 1)
    result = {key: value / n for key, value in totals.items() if key != "tokens"}
    result["tokens"] = totals["tokens"]
    result["nll_increase"] = (result["nll_candidate"] - result["nll_reference"]) / result["nll_reference"]
    return result


def passes(check: dict[str, float], tolerance: dict[str, float] = TOLERANCE) -> bool:
    """Whether a :func:`distribution_check` result stays within ``tolerance``."""
    return check["total_variation"] <= tolerance["total_variation"] and check["nll_increase"] <= tolerance["nll_increase"]
