"""The low-precision generator's distribution check on a tiny model: identical models pass with
zero distance, a perturbed model fails, and the int8 paths run and are measured."""

from __future__ import annotations

import copy

import pytest
import torch

from xqglib.method.generator import QueryGenerator
from xqglib.models.registry import load_generator, load_tokenizer
from xqglib.quantization import distribution_check, passes, quantized, sampling_distribution

PAIRS = [
    {"lang": "de", "title": "Warsaw", "text": "Warsaw is the capital of Poland.", "question": "Was ist die Hauptstadt?"},
    {"lang": "th", "title": "Super Bowl", "text": "The Broncos won 24–10.", "question": "ใครชนะ"},
    {"lang": "ar", "title": "Oxygen", "text": "Oxygen has the symbol O.", "question": "ما هو رمز الأكسجين؟"},
]


def generator() -> QueryGenerator:
    torch.manual_seed(0)
    return QueryGenerator(load_generator("tiny-gemma3", "decoder"), load_tokenizer("tiny-gemma3"), "decoder", 64, 24)


def test_sampling_distribution_by_hand():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0]])
    dist = sampling_distribution(logits, 2)
    e = torch.exp(torch.tensor([2.0, 1.0]))
    assert torch.allclose(dist, torch.tensor([[e[0] / e.sum(), 0.0, e[1] / e.sum(), 0.0]]))


def test_the_same_model_passes_a_perturbed_one_fails():
    gen = generator()
    same = distribution_check(gen, copy.deepcopy(gen.model), PAIRS, k=10)
    assert same["total_variation"] == pytest.approx(0.0, abs=1e-6) and same["same_top_k"] == 1.0
    assert same["nll_increase"] == pytest.approx(0.0, abs=1e-6) and passes(same)
    noisy = copy.deepcopy(gen.model)
    with torch.no_grad():
        for name, param in noisy.get_decoder().named_parameters():
            if "layers" in name:
                param.add_(0.5 * param.std() * torch.randn_like(param))
    far = distribution_check(gen, noisy, PAIRS, k=10)
    assert far["total_variation"] > 0.1 and not passes(far)
    assert gen.model is not noisy  # the generator's own model is restored


@pytest.mark.parametrize("scheme", ["int8-weight", "int8-dynamic"])
def test_int8_paths_run_and_are_measured(scheme):
    pytest.importorskip("torchao")
    gen = generator()
    check = distribution_check(gen, quantized(gen.model, scheme), PAIRS, k=10)
    assert check["tokens"] > 0 and 0.0 <= check["total_variation"] <= 1.0
    assert torch.isfinite(torch.tensor(check["nll_candidate"]))
    with pytest.raises(ValueError):
        quantized(gen.model, "int4")
