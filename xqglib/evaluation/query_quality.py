"""How good the generated queries are, per generation language, before any retrieval result:

- **in the requested language**: the share of a language's generated queries that a language
  identifier assigns to that language. The identifier is ``py3langid`` (langid.py's model, 97
  languages, shipped in the package; no restriction to the study's languages, so a question
  written in English, or in a neighbouring language, counts as a miss).
- **round trip**: the share whose own passage the base encoder (the retriever before any
  training) ranks first among the corpus, a measure of how specific a query is to its passage.

Both read the released xQG jsonl rows (``generated_queries: {lang: [..]}``) in the order of
:func:`xqglib.core.formats.generated_query_table`: passage by passage, language by language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd


def identify_language(text: str) -> str:
    """The ISO 639-1 code py3langid gives ``text``."""
    import py3langid

    return py3langid.classify(text)[0]


def language_shares(rows: Sequence[dict[str, Any]],
                    identify: Callable[[str], str] = identify_language) -> pd.DataFrame:
    """Per generation language: queries, the share identified as that language, and the language
    most often identified instead (with its share), from xQG jsonl rows."""
    found: dict[str, list[str]] = {}
    for row in rows:
        for lang, queries in row["generated_queries"].items():
            found.setdefault(lang, []).extend(identify(q) for q in queries)
    out = []
    for lang, labels in found.items():
        counts = pd.Series(labels, dtype=object).value_counts()
        others = counts.drop(lang, errors="ignore")
        out.append({"language": lang, "queries": len(labels),
                    "in requested language": float(counts.get(lang, 0)) / max(len(labels), 1),
                    "most common other": others.index[0] if len(others) else "",
                    "its share": float(others.iloc[0]) / len(labels) if len(others) else 0.0})
    return pd.DataFrame(out, columns=["language", "queries", "in requested language",
                                      "most common other", "its share"])


def round_trip(generated: Sequence[dict[str, str]], generated_vectors: np.ndarray,
               docids: Sequence[str], passage_vectors: np.ndarray) -> pd.DataFrame:
    """Per generation language: the share of generated queries whose own passage scores highest
    (inner product) among all passages. ``generated`` holds ``{docid, lang}`` per row of
    ``generated_vectors``; ties count against the query (its passage must be strictly first)."""
    if len(generated) != len(generated_vectors) or len(docids) != len(passage_vectors):
        raise ValueError("vectors and their rows are out of step")
    index = {d: i for i, d in enumerate(docids)}
    own = np.array([index[g["docid"]] for g in generated])
    scores = np.asarray(generated_vectors, dtype=np.float32) @ np.asarray(passage_vectors, dtype=np.float32).T
    own_score = scores[np.arange(len(own)), own]
    scores[np.arange(len(own)), own] = -np.inf
    first = own_score > scores.max(axis=1)
    frame = pd.DataFrame({"language": [g["lang"] for g in generated], "first": first})
    return (frame.groupby("language", sort=False)["first"].agg(["size", "mean"])
            .rename(columns={"size": "queries", "mean": "own passage first"}).reset_index())
