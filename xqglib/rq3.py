"""The third research question: query-augmented (xQG) against passage-augmented retrieval on
XQuAD's query-language x passage-language matrix, measured by retrieval and by the EM/F1 of an
extractive reader (stages 10-12).

A cell (Q, P) of the matrix (:mod:`xqglib.language_pairs`): XQuAD's 240 paragraphs in P are the
corpus, the test-article questions in Q the queries, the paragraph that holds a question its gold
passage, the answer of the parallel question in P its gold answer. The paragraphs carry no title
(XQuAD's titles are English only), so every passage language sees the same kind of text.

The conditions, all from one retriever, one corpus and the same generated queries per passage
(``rq3.generation_languages`` x ``rq3.n_per_language``):

- ``none``: the passage vector as it is;
- ``xqg``: the passage vector fused with its generated queries' vectors (RQ1's rule: the paper's
  alpha scaled by 35 over the queries fused);
- ``text``: the queries appended to the passage's text before encoding (doc2query): the passage
  keeps ``retriever.passage_max_len`` tokens, the queries follow, ``rq3.text_max_len`` in all;
- ``dual``: passage and queries (as one text) in two indexes, scores fused at search time with
  the weight of ``rq3.dual_weights`` best on dev-article questions (two vectors per passage);
- ``translations``: the passage vector fused with its human translations into the other passage
  languages (an oracle: XQuAD's translations), with the total weight xQG gives its queries;
- ``query-translated``: the question asked in the passage language (XQuAD's human translation),
  the translate-the-query control.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import data as D
from . import stages as S
from .artifacts import RunDir
from .augmentation import combine, expanded_text, fuse, queries_document
from .encoding import passage_text
from .errors import UserError
from .formats import read_json, read_jsonl, save_npy, sha256_file, sha256_text, write_json, write_jsonl
from .language_pairs import check_parallel, paragraph_docid
from .qa_metrics import best_over_golds, exact_match, f1
from .reading import best_over_passages
from .settings import PAPER_QUERIES_PER_PASSAGE, Profile

#: The conditions compared, in the order tables show them.
CONDITIONS: dict[str, str] = {
    "none": "passage as it is",
    "xqg": "xQG (queries fused into the passage vector)",
    "text": "doc2query (queries appended to the passage text)",
    "dual": "dual index (passage and queries scored apart, scores fused)",
    "translations": "passage fused with its human translations (oracle)",
    "query-translated": "question in the passage language (human translation)",
}

#: The reader's gold-passage row: the reader's ceiling.
GOLD = "gold passage"

#: Pre-training data of XLM-R, the model multilingual-e5 starts from: CC-100 size per language in
#: GiB (Conneau et al., ACL 2020, "Unsupervised Cross-lingual Representation Learning at Scale",
#: Table 6; zh: simplified and traditional Chinese together). Transcribed from the paper, which
#: this project's machines cannot reach to check; the groups depend only on which side of
#: :data:`LOW_RESOURCE_GIB` a language falls, where the nearest (ar) is 2 GiB away.
CC100_GIB = {"ar": 28.0, "de": 66.6, "el": 46.9, "en": 300.8, "es": 53.3, "hi": 20.2, "ro": 61.4,
             "ru": 278.0, "th": 71.7, "tr": 20.9, "vi": 137.3, "zh": 63.5}

#: Languages with less CC-100 text than this (GiB) form the low-resource group.
LOW_RESOURCE_GIB = 30.0


def resource_table() -> pd.DataFrame:
    """The measure behind the language groups: CC-100 GiB per language and its group."""
    return pd.DataFrame({"CC-100 (GiB)": CC100_GIB, "group": {l: resource_group(l) for l in CC100_GIB}}
                        ).rename_axis("language").sort_values("CC-100 (GiB)")


def resource_group(lang: str) -> str:
    """"low" or "high" resource, by the encoder's pre-training data (:data:`CC100_GIB`)."""
    return "low" if CC100_GIB[lang] < LOW_RESOURCE_GIB else "high"


def fusion_alpha(cfg: Profile) -> float:
    """xQG's alpha for the third question's queries: the paper's total weight over ours (RQ1's rule)."""
    return cfg.augmentation.alpha * PAPER_QUERIES_PER_PASSAGE / queries_per_passage(cfg)


def queries_per_passage(cfg: Profile) -> int:
    return len(cfg.rq3.generation_languages) * cfg.rq3.n_per_language


def matrix_languages(cfg: Profile) -> list[str]:
    return sorted(set(cfg.rq3.query_languages) | set(cfg.rq3.passage_languages)
                  | set(cfg.rq3.generation_languages))


# --------------------------------------------------------------------------------------------
# Stage 10: data, the generator for passages in every language, the reader
# --------------------------------------------------------------------------------------------

def matrix_rows(parallel: dict[str, list[dict[str, Any]]], split: dict[str, str], query_languages: Sequence[str],
                passage_languages: Sequence[str], generation_languages: Sequence[str],
                test_qids: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The matrix from XQuAD's parallel files (``parallel``: language -> articles) and the article
    split (title -> train / dev / test):

    - ``passages``: every paragraph in every passage language (``index``: its position, the same
      in every language; no title);
    - ``questions``: the dev- and test-article questions in every query language (test ones only
      those of ``test_qids`` where given), with the ``index`` of their paragraph;
    - ``answers``: per dev/test question and passage language, the answers of the parallel question;
    - ``generator_train`` / ``generator_dev``: (paragraph in P, question in L) pairs of the train
      and dev articles, for every passage language P and generation language L.
    """
    check_parallel(parallel)
    keep = None if test_qids is None else set(test_qids)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("passages", "questions", "answers",
                                                             "generator_train", "generator_dev")}
    index = 0
    for a, article in enumerate(parallel["en"]):  # titles are the English ones in every file
        part = split[article["title"]]
        for p in range(len(article["paragraphs"])):
            for lang in passage_languages:
                par = parallel[lang][a]["paragraphs"][p]
                docid = paragraph_docid(lang, a, p)
                out["passages"].append({"docid": docid, "lang": lang, "index": index, "title": "",
                                        "text": par["context"], "split": part})
                for qa in par["qas"]:
                    if part != "train":
                        out["answers"].append({"qid": qa["id"], "lang": lang,
                                               "answers": list(dict.fromkeys(x["text"] for x in qa["answers"]))})
                    if part in ("train", "dev"):
                        for gen_lang in generation_languages:
                            question = _question(parallel[gen_lang][a]["paragraphs"][p], qa["id"])
                            out[f"generator_{part}"].append({"qid": qa["id"], "lang": gen_lang, "docid": docid,
                                                             "title": "", "text": par["context"], "question": question})
            for lang in query_languages:
                for qa in parallel[lang][a]["paragraphs"][p]["qas"]:
                    if part == "dev" or (part == "test" and (keep is None or qa["id"] in keep)):
                        out["questions"].append({"qid": qa["id"], "lang": lang, "question": qa["question"],
                                                 "index": index, "split": part})
            index += 1
    return out


def prepare_rq3_data(cfg: Profile, rd: RunDir) -> dict[str, int]:
    """Write the matrix (:func:`matrix_rows`, test questions capped by ``rq3.max_questions``) and
    the reader's examples (train articles only)."""
    b1 = D.build_b1(cfg)
    parallel = {lang: D.load_xquad(lang) for lang in matrix_languages(cfg)}
    r = cfg.rq3
    test_qids = sorted(qa["id"] for a in parallel["en"] if b1.split[a["title"]] == "test"
                       for p in a["paragraphs"] for qa in p["qas"])
    if r.max_questions is not None:
        random.Random(cfg.seed).shuffle(test_qids)
        test_qids = sorted(test_qids[: r.max_questions])
    rows = matrix_rows(parallel, b1.split, r.query_languages, r.passage_languages, r.generation_languages, test_qids)
    rows["reader_train"] = D.reader_examples(b1, "train", sorted(parallel))
    for what, items in rows.items():
        write_jsonl(rd.rq3_data(what), items)
    questions = rows["questions"]
    return {"passages": len(rows["passages"]), "test questions": sum(q["split"] == "test" for q in questions),
            "dev questions": sum(q["split"] == "dev" for q in questions),
            "generator train pairs": len(rows["generator_train"]), "reader training examples": len(rows["reader_train"])}


def _question(paragraph: dict[str, Any], qid: str) -> str:
    for qa in paragraph["qas"]:
        if qa["id"] == qid:
            return qa["question"]
    raise UserError(f"XQuAD files are not parallel at question {qid}")


#: The name the generator for passages in every passage language is saved under.
GENERATOR = "rq3-passages"


def train_rq3_generator(cfg: Profile, rd: RunDir) -> list[dict[str, float]]:
    """Continue the Table 1 generator's training on passages in every passage language (reused
    where an identical one was trained before)."""
    from .generation import train_generator
    from .pipeline import _earlier_training, _generator, _save_trained, seed_everything, training_fingerprint, \
        weights_digest

    source = rd.require(rd.generator_model(cfg.primary_generator), "train-generator")
    inputs = [rd.require(rd.rq3_data("generator_train"), "rq3-train"), rd.rq3_data("generator_dev")]
    fingerprint = {**training_fingerprint(cfg, cfg.primary_generator, "generator", inputs,
                                          ("rq3.generator_steps", "rq3.generation_languages",
                                           "rq3.passage_languages")),
                   "from": weights_digest(source)}
    earlier = _earlier_training(rd.generator_model(GENERATOR), rd.generator_log(GENERATOR), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    gen = _generator(cfg, cfg.primary_generator, str(source))
    g, steps = cfg.generator, cfg.rq3.generator_steps
    log = train_generator(gen, read_jsonl(inputs[0]), read_jsonl(inputs[1]), steps=steps, batch_size=g.batch_size,
                          lr=g.lr, seed=cfg.seed, eval_every=max(1, steps // 2), bf16=cfg.use_bf16,
                          freeze_embeddings=g.freeze_embeddings, max_dev_pairs=g.max_dev_pairs)
    _save_trained(gen.model, gen.tok, rd.generator_model(GENERATOR), rd.generator_log(GENERATOR), log, fingerprint)
    return log


def reader_of(cfg: Profile, source: str) -> Any:
    from .models import load_reader, load_tokenizer
    from .reading import Reader

    r = cfg.rq3
    return Reader(load_reader(source), load_tokenizer(source), r.reader_max_len, r.reader_stride)


def train_rq3_reader(cfg: Profile, rd: RunDir) -> list[dict[str, float]]:
    """Fine-tune the extractive reader from the retrievers' encoder on train-article examples."""
    from .pipeline import _earlier_training, _save_trained, seed_everything, training_fingerprint
    from .reading import ReaderExample, train_reader

    inputs = [rd.require(rd.rq3_data("reader_train"), "rq3-train")]
    fingerprint = training_fingerprint(cfg, cfg.retriever.encoder, "rq3", inputs)
    fingerprint["settings"] = {k: v for k, v in fingerprint["settings"].items()
                               if k.startswith(("rq3.reader_", "run.")) and k != "rq3.reader_questions"
                               and k != "rq3.reader_k" and k != "rq3.reader_retriever"}
    earlier = _earlier_training(rd.reader_model(), rd.reader_log(), fingerprint)
    if earlier is not None:
        return earlier
    seed_everything(cfg.seed)
    reader = reader_of(cfg, cfg.retriever.encoder)
    examples = [ReaderExample(e["question"], e["context"], e["answer"], e["answer_start"]) for e in read_jsonl(inputs[0])]
    r = cfg.rq3
    log = train_reader(reader, examples, steps=r.reader_steps, batch_size=r.reader_batch_size, lr=r.reader_lr,
                       warmup_ratio=cfg.retriever.warmup_ratio, seed=cfg.seed,
                       freeze_embeddings=cfg.retriever.freeze_embeddings)
    _save_trained(reader.model, reader.tok, rd.reader_model(), rd.reader_log(), log, fingerprint)
    return log


# --------------------------------------------------------------------------------------------
# Stage 11: generation for every passage, encoding every condition's texts
# --------------------------------------------------------------------------------------------

def generate_rq3(cfg: Profile, rd: RunDir) -> list[dict[str, Any]]:
    """Generated queries (released xQG jsonl) for every passage of every passage language; a
    file generated earlier by the same weights from the same passages and settings is reused."""
    from .generation import SAMPLER_VERSION, generate_xqg
    from .pipeline import _generator, same_generation, seed_everything, weights_digest

    model = rd.require(rd.generator_model(GENERATOR), "rq3-train")
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    fingerprint = json.loads(json.dumps({
        "generator": weights_digest(model), "passages": sha256_file(rd.rq3_data("passages")), "sampler": SAMPLER_VERSION,
        "settings": cfg.select(["generation", "rq3.generation_languages", "rq3.n_per_language", "run"])}))
    done = rd.generation_fingerprint(GENERATOR)
    if rd.generated(GENERATOR).exists() and same_generation(done, fingerprint):
        print(f"reusing {rd.generated(GENERATOR)}: generated earlier by the same generator from the same passages")
        return read_jsonl(rd.generated(GENERATOR))
    done.unlink(missing_ok=True)
    started = time.perf_counter()
    seed_everything(cfg.seed)
    gen = _generator(cfg, str(model), str(model))
    g, r = cfg.generation, cfg.rq3
    if g.vocabulary == "data" and gen.kind == "decoder":
        gen.vocabulary = sampling_vocabulary(rd, gen, corpus)
    rows = generate_xqg(gen, corpus, r.generation_languages, n=r.n_per_language, top_k=g.top_k,
                        max_new_tokens=g.max_new_tokens, batch_passages=g.batch_passages, seed=cfg.seed,
                        bf16=cfg.use_bf16)
    write_jsonl(rd.generated(GENERATOR), rows)
    write_json(done, {**fingerprint, "seconds": round(time.perf_counter() - started, 2)})
    return rows


def sampling_vocabulary(rd: RunDir, gen: Any, corpus: Sequence[dict[str, Any]]) -> Any:
    """The tokens the generator may write for the matrix's passages: those of the passages and of
    the train- and dev-article questions it was trained towards, and its stop tokens."""
    from .generation import data_vocabulary

    pairs = read_jsonl(rd.rq3_data("generator_train")) + read_jsonl(rd.rq3_data("generator_dev"))
    return data_vocabulary(gen.tok, [p["text"] for p in corpus] + [p["question"] for p in pairs], gen.stop_ids)


def clip_to_tokens(tokenizer: Any, text: str, max_tokens: int, prefix: str = "") -> str:
    """The longest start of ``text`` that the encoder keeps within ``max_tokens`` tokens (special
    tokens and ``prefix`` included): what the encoder sees of a passage, as text."""
    enc = tokenizer(prefix + text, truncation=True, max_length=max_tokens, return_offsets_mapping=True)
    ends = [end for start, end in enc["offset_mapping"] if end > start]
    cut = max(ends) - len(prefix) if ends else 0
    return text[: max(cut, 0)]


def condition_texts(encoder: Any, corpus: Sequence[dict[str, Any]],
                    generated: dict[str, list[str]]) -> dict[str, list[str]]:
    """The passage-side texts each passage condition encodes, one per corpus passage: the passage
    (``passages``), the passage as the encoder keeps it followed by its generated queries (``text``)
    and the queries alone, as one text (``querydocs``)."""
    texts = [passage_text(p["title"], p["text"]) for p in corpus]
    kept = [clip_to_tokens(encoder.tok, t, encoder.passage_max_len, encoder.spec.passage_prefix) for t in texts]
    return {"passages": texts,
            "text": [expanded_text("", k, generated[p["docid"]]).strip() for k, p in zip(kept, corpus)],
            "querydocs": [queries_document(generated[p["docid"]]) for p in corpus]}


def generated_by_passage(rows: Sequence[dict[str, Any]], languages: Sequence[str]) -> dict[str, list[str]]:
    """Every passage's generated queries, language by language in ``languages`` order."""
    return {r["docid"]: [q for lang in languages for q in r["generated_queries"][lang]] for r in rows}


def encode_rq3(cfg: Profile, rd: RunDir, name: str) -> dict[str, Any]:
    """Encode, with one retriever, the matrix's questions, passages, generated queries, expanded
    passages (``text``: encoded with ``rq3.text_max_len``) and query documents (``querydocs``)."""
    from .pipeline import _encoder, generated_query_table, retriever_source, seed_everything

    seed_everything(cfg.seed)
    source = retriever_source(cfg, rd, name)
    encoder = _encoder(cfg, source)
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    questions = read_jsonl(rd.rq3_data("questions"))
    rows = read_jsonl(rd.require(rd.generated(GENERATOR), "rq3-encode"))
    generated = generated_by_passage(rows, cfg.rq3.generation_languages)
    texts = condition_texts(encoder, corpus, generated)
    expander = _encoder(cfg, source, cfg.rq3.text_max_len)
    counts = expander.token_counts(texts["text"], False)
    full = [len(ids) for ids in expander.tok([expander.spec.passage_prefix + t for t in texts["text"]])["input_ids"]]
    bs = cfg.retriever.encode_batch_size
    flat = generated_query_table(rows)
    jobs = [("questions", [q["question"] for q in questions], True, encoder,
             [{k: q[k] for k in ("qid", "lang", "split")} for q in questions]),
            ("passages", texts["passages"], False, encoder, [p["docid"] for p in corpus]),
            ("generated", [g["query"] for g in flat], True, encoder,
             [{k: g[k] for k in ("docid", "lang", "slot")} for g in flat]),
            ("text", texts["text"], False, expander, [p["docid"] for p in corpus]),
            ("querydocs", texts["querydocs"], False, encoder, [p["docid"] for p in corpus])]
    for what, items, is_query, enc, ids in jobs:
        with S.timed(rd, "rq3-encode", f"{name}: {what}", texts=len(items)):
            save_npy(rd.rq3(name, what), enc.encode(items, is_query, bs, f"{name}: {what}"))
        write_json(rd.rq3_meta(name, what), ids)
    kept = encoder.token_counts(texts["passages"], False)
    stats = {"questions": len(questions), "passages": len(corpus), "generated queries": len(flat),
             "passage tokens (mean)": float(np.mean(kept)),
             "expanded passage tokens (mean)": float(np.mean(counts)),
             "expanded passages cut": int(sum(f > c for f, c in zip(full, counts)))}
    write_json(rd.rq3_meta(name, "expansion"), stats)
    return stats


# --------------------------------------------------------------------------------------------
# Stage 12: retrieval in every cell and condition, reading, scoring
# --------------------------------------------------------------------------------------------

class Vectors:
    """One retriever's stage-11 vectors, indexed for the matrix."""

    def __init__(self, cfg: Profile, rd: RunDir, name: str, corpus: Sequence[dict[str, Any]]) -> None:
        def load(what: str) -> tuple[np.ndarray, list[Any]]:
            return (np.load(rd.require(rd.rq3(name, what), "rq3-encode")),
                    read_json(rd.require(rd.rq3_meta(name, what), "rq3-encode")))

        self.cfg = cfg
        questions, self.question_meta = load("questions")
        self.question_row = {(m["lang"], m["qid"]): i for i, m in enumerate(self.question_meta)}
        self.questions = questions
        passages, ids = load("passages")
        if ids != [p["docid"] for p in corpus]:
            raise UserError(f"the vectors of {name} were encoded for other passages: rerun from stage 11")
        self.corpus = corpus
        self.rows = {lang: [i for i, p in enumerate(corpus) if p["lang"] == lang] for lang in cfg.rq3.passage_languages}
        self.passages = passages
        self.generated, generated_meta = load("generated")
        self.generated_docids = [m["docid"] for m in generated_meta]
        self.text = load("text")[0]
        self.querydocs = load("querydocs")[0]
        self._matrices: dict[tuple[str, str], np.ndarray] = {}

    def passage_matrix(self, condition: str, lang: str) -> np.ndarray:
        """The passage vectors of one passage language as a condition uses them (rows in
        paragraph order; fused once, then kept for every query language and weight)."""
        if (condition, lang) not in self._matrices:
            self._matrices[(condition, lang)] = self._passage_matrix(condition, lang)
        return self._matrices[(condition, lang)]

    def _passage_matrix(self, condition: str, lang: str) -> np.ndarray:
        rows = self.rows[lang]
        own = self.passages[rows]
        if condition in ("none", "query-translated", "dual"):
            return own
        if condition == "text":
            return self.text[rows]
        alpha = fusion_alpha(self.cfg)
        if condition == "xqg":
            ids = [self.corpus[i]["docid"] for i in rows]
            keep = np.isin(self.generated_docids, ids)
            return fuse(own, ids, self.generated[keep], [d for d, k in zip(self.generated_docids, keep) if k], alpha)
        if condition == "translations":
            others = [self.passages[self.rows[o]] for o in self.cfg.rq3.passage_languages if o != lang]
            if not others:
                return own
            # the translations get the total weight xQG gives its queries
            scale = queries_per_passage(self.cfg) / len(others)
            return combine(own, scale * np.sum(others, axis=0), alpha)
        raise ValueError(f"unknown condition {condition!r}")

    def scores(self, condition: str, query_lang: str, passage_lang: str, qids: Sequence[str],
               dual_weight: float) -> np.ndarray:
        """Questions x passages scores of one cell under one condition."""
        asked = passage_lang if condition == "query-translated" else query_lang
        q = self.questions[[self.question_row[(asked, qid)] for qid in qids]]
        s = q @ self.passage_matrix(condition, passage_lang).T
        if condition == "dual":
            s = (1 - dual_weight) * s + dual_weight * (q @ self.querydocs[self.rows[passage_lang]].T)
        return s


def gold_ranks(scores: np.ndarray, gold: Sequence[int]) -> np.ndarray:
    """1-based rank of each question's gold column: one plus the passages scoring strictly higher
    (a tie is resolved in the gold's favour)."""
    gold = np.asarray(gold)
    own = scores[np.arange(len(gold)), gold]
    return 1 + (scores > own[:, None]).sum(axis=1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first (stable: lower index on ties)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def question_index(questions: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(q["lang"], q["qid"]): q for q in questions}


def retrieval_rows(cfg: Profile, vec: Vectors, questions: Sequence[dict[str, Any]], retriever: str,
                   split: str, dual_weight: float, depth: int = 10,
                   conditions: Sequence[str] = tuple(CONDITIONS)) -> tuple[pd.DataFrame, dict[tuple, np.ndarray]]:
    """Per question, cell and condition: the gold passage's rank; and each cell's top ``depth``
    paragraphs (as paragraph positions within the passage language)."""
    frames, tops = [], {}
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for q in questions:
        if q["split"] == split:
            by_lang.setdefault(q["lang"], []).append(q)
    for query_lang in cfg.rq3.query_languages:
        qs = by_lang.get(query_lang, [])
        if not qs:
            continue
        qids = [q["qid"] for q in qs]
        for passage_lang in cfg.rq3.passage_languages:
            positions = {vec.corpus[i]["index"]: k for k, i in enumerate(vec.rows[passage_lang])}
            gold = [positions[q["index"]] for q in qs]
            for condition in conditions:
                s = vec.scores(condition, query_lang, passage_lang, qids, dual_weight)
                tops[(condition, query_lang, passage_lang)] = top_k(s, depth)
                frames.append(pd.DataFrame({"retriever": retriever, "condition": condition, "query_lang": query_lang,
                                            "passage_lang": passage_lang, "qid": qids, "split": split,
                                            "rank": gold_ranks(s, gold)}))
    return pd.concat(frames, ignore_index=True), tops


def with_measures(frame: pd.DataFrame) -> pd.DataFrame:
    """Recall@1, Recall@5 and MRR@10 (x 100) of each row's gold rank."""
    out = frame.copy()
    out["recall@1"] = 100.0 * (out["rank"] <= 1)
    out["recall@5"] = 100.0 * (out["rank"] <= 5)
    out["mrr@10"] = 100.0 * np.where(out["rank"] <= 10, 1.0 / out["rank"], 0.0)
    return out


def choose_dual_weight(cfg: Profile, vec: Vectors, questions: Sequence[dict[str, Any]], retriever: str) -> dict[str, float]:
    """MRR@10 of dual-index fusion on dev-article questions (every cell) for each weight of
    ``rq3.dual_weights``; the best weight is the one the test questions get."""
    found = {}
    for w in cfg.rq3.dual_weights:
        frame = retrieval_rows(cfg, vec, questions, retriever, "dev", w, conditions=["dual"])[0]
        found[w] = float(with_measures(frame)["mrr@10"].mean())
    return found


def reader_sample(cfg: Profile, questions: Sequence[dict[str, Any]]) -> list[str]:
    """The test questions the reader answers in every cell (seeded; the same in every cell)."""
    qids = sorted({q["qid"] for q in questions if q["split"] == "test"})
    if cfg.rq3.reader_questions is not None and cfg.rq3.reader_questions < len(qids):
        qids = sorted(random.Random(cfg.seed).sample(qids, cfg.rq3.reader_questions))
    return qids


def read_cells(cfg: Profile, rd: RunDir, tops: dict[tuple, np.ndarray], questions: Sequence[dict[str, Any]],
               corpus: Sequence[dict[str, Any]], answers: dict[tuple[str, str], list[str]]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """EM and F1 of the reader on the top-k passages of every condition and cell (k in
    ``rq3.reader_k``) and on the gold passage, for the sampled test questions. Every distinct
    (question, passage) is read once (:func:`_read`); the reads table and the reading's record come
    back with the scores."""
    sample = reader_sample(cfg, questions)
    test = [q for q in questions if q["split"] == "test"]
    by_q = question_index(questions)
    paragraphs = {lang: [corpus[i] for i in range(len(corpus)) if corpus[i]["lang"] == lang]
                  for lang in cfg.rq3.passage_languages}
    k_max = max(cfg.rq3.reader_k)
    plan: list[tuple[str, str, str, str, list[int], int]] = []  # condition, Q, P, qid, positions read, gold's
    for query_lang in cfg.rq3.query_languages:
        test_q = [q["qid"] for q in test if q["lang"] == query_lang]
        row = {qid: i for i, qid in enumerate(test_q)}
        for passage_lang in cfg.rq3.passage_languages:
            positions = {p["index"]: k for k, p in enumerate(paragraphs[passage_lang])}
            for qid in sample:
                gold = positions[by_q[(query_lang, qid)]["index"]]
                plan.append((GOLD, query_lang, passage_lang, qid, [gold], gold))
                for condition in CONDITIONS:
                    plan.append((condition, query_lang, passage_lang, qid,
                                 tops[(condition, query_lang, passage_lang)][row[qid]][:k_max].tolist(), gold))
    reads: dict[tuple[str, str, str, int], int] = {}
    for condition, query_lang, passage_lang, qid, found, _ in plan:
        asked = passage_lang if condition == "query-translated" else query_lang
        for k in found:
            reads.setdefault((asked, qid, passage_lang, k), len(reads))
    keys = list(reads)
    spans, record = _read(cfg, rd, keys, [by_q[(a, qid)]["question"] for a, qid, _, _ in keys],
                  [paragraphs[p][k]["text"] for _, _, p, k in keys])
    read_rows = pd.DataFrame([{"asked_lang": a, "qid": qid, "passage_lang": p, "position": k,
                               "answer": "" if s is None else s.text, "score": np.nan if s is None else s.score}
                              for (a, qid, p, k), s in zip(keys, spans)])
    rows = []
    for condition, query_lang, passage_lang, qid, found, gold_position in plan:
        asked = passage_lang if condition == "query-translated" else query_lang
        for k in ([1] if condition == GOLD else cfg.rq3.reader_k):
            best = best_over_passages([spans[reads[(asked, qid, passage_lang, pos)]] for pos in found[:k]])
            prediction = "" if best is None else best.text
            golds = answers[(passage_lang, qid)]
            rows.append({"condition": condition, "query_lang": query_lang, "passage_lang": passage_lang, "qid": qid,
                         "k": k, "em": 100 * best_over_golds(exact_match, prediction, golds, passage_lang),
                         "f1": 100 * best_over_golds(f1, prediction, golds, passage_lang),
                         "answer_in_top_k": 100.0 * (gold_position in found[:k])})
    return pd.DataFrame(rows), read_rows, record


def _read(cfg: Profile, rd: RunDir, keys: list[tuple[str, str, str, int]], questions: list[str],
          contexts: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """The reader's best span for every (question, passage) pair, and the record of that reading
    (its fingerprint and the seconds it took). Spans read earlier by the same reader weights, with
    the same windows, over the same questions and passages, are reused (the reads table and the
    record beside it, whose seconds are then the earlier reading's), so a rerun of stage 12 that
    changes only the analysis does not read again."""
    from .pipeline import weights_digest
    from .reading import READING_VERSION, Span

    model = rd.require(rd.reader_model(), "rq3-train")
    fingerprint = {"reader": weights_digest(model), "reading version": READING_VERSION,
                   "settings": cfg.select(["rq3.reader_max_len", "rq3.reader_stride"]),
                   "pairs": sha256_text(json.dumps([questions, contexts], ensure_ascii=False))}
    table, done = rd.eval_file("rq3_reads.parquet"), rd.eval_file("rq3_reads.fingerprint.json")
    record = read_json(done) if done.exists() else {}
    if table.exists() and {k: v for k, v in record.items() if k != "seconds"} == fingerprint:
        rows = pd.read_parquet(table)
        if [tuple(r) for r in rows[["asked_lang", "qid", "passage_lang", "position"]].itertuples(index=False)] == keys:
            print(f"reusing {table}: read earlier by the same reader from the same questions and passages")
            return [None if np.isnan(score) else Span(answer, float(score), 0, 0, 0)
                    for answer, score in zip(rows["answer"], rows["score"])], record
    done.unlink(missing_ok=True)
    started = time.perf_counter()
    spans = reader_of(cfg, str(model)).read(questions, contexts, 32, f"read ({len(keys)} passages)")
    return spans, {**fingerprint, "seconds": round(time.perf_counter() - started, 2)}


def evaluate_rq3(cfg: Profile, rd: RunDir) -> dict[str, Any]:
    """Stage 12: every retriever's retrieval in every cell and condition (test and dev questions),
    the reader on the reader retriever's passages, written as tidy tables."""
    corpus = read_jsonl(rd.require(rd.rq3_data("passages"), "rq3-train"))
    questions = read_jsonl(rd.rq3_data("questions"))
    answers = {(a["lang"], a["qid"]): a["answers"] for a in read_jsonl(rd.rq3_data("answers"))}
    frames, chosen, sweeps, reader_tops = [], {}, {}, None
    for name in cfg.rq3_retrievers:
        vec = Vectors(cfg, rd, name, corpus)
        sweeps[name] = choose_dual_weight(cfg, vec, questions, name)
        chosen[name] = max(sweeps[name], key=lambda w: (sweeps[name][w], -w))
        frame, tops = retrieval_rows(cfg, vec, questions, name, "test", chosen[name])
        frames.append(frame)
        if name == cfg.reader_retriever:
            reader_tops = tops
    retrieval = with_measures(pd.concat(frames, ignore_index=True))
    retrieval.to_parquet(rd.eval_file("rq3_retrieval.parquet"), index=False)
    reading, reads, reads_record = read_cells(cfg, rd, reader_tops, questions, corpus, answers)
    reading.insert(0, "retriever", cfg.reader_retriever)
    reading.to_parquet(rd.eval_file("rq3_reading.parquet"), index=False)
    reads.to_parquet(rd.eval_file("rq3_reads.parquet"), index=False)
    write_json(rd.eval_file("rq3_reads.fingerprint.json"), reads_record)  # after the table it describes
    summary = {"alpha": fusion_alpha(cfg), "queries per passage": queries_per_passage(cfg),
               "paragraphs per language": len(corpus) // len(cfg.rq3.passage_languages),
               "dual weight": chosen, "dual weight sweep (dev MRR@10)": {n: {str(w): v for w, v in s.items()}
                                                                       for n, s in sweeps.items()},
               "reads": len(reads), "reading seconds": reads_record["seconds"]}
    write_json(rd.eval_file("rq3_conditions.json"), summary)
    return summary


def load_rq3(rd: RunDir) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 12's tables: retrieval per question, reading per question, and the settings used."""
    return (pd.read_parquet(rd.require(rd.eval_file("rq3_retrieval.parquet"), "rq3-evaluate")),
            pd.read_parquet(rd.require(rd.eval_file("rq3_reading.parquet"), "rq3-evaluate")),
            read_json(rd.require(rd.eval_file("rq3_conditions.json"), "rq3-evaluate")))


# --------------------------------------------------------------------------------------------
# Analysis: cells, tests, language groups (pure functions of stage 12's tables)
# --------------------------------------------------------------------------------------------

CELL = ["query_lang", "passage_lang"]


def cell_table(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Mean of ``measure`` per cell: query languages as rows, passage languages as columns (MLQA's
    G-XLT layout)."""
    return frame.pivot_table(index="query_lang", columns="passage_lang", values=measure, aggfunc="mean")


def cell_tests(frame: pd.DataFrame, measure: str, baseline: str = "none") -> pd.DataFrame:
    """Every condition against ``baseline`` in every cell, paired over the cell's questions (t-test),
    Bonferroni-corrected over the cells of a condition (and retriever, and k where the frame has
    them): one row per condition and cell with the means, the difference and whether it is
    significant."""
    from scipy import stats

    from .significance import ALPHA

    groups = [c for c in ("retriever", "k") if c in frame.columns]
    base = frame[frame["condition"] == baseline].set_index([*groups, *CELL, "qid"])[measure]
    rows = []
    for keys, part in frame[frame["condition"] != baseline].groupby([*groups, "condition"]):
        keys = keys if isinstance(keys, tuple) else (keys,)
        cells = list(part.groupby(CELL))
        for (q, p), cell in cells:
            b = base.loc[[(*keys[:-1], q, p, qid) for qid in cell["qid"]]].to_numpy()
            a = cell[measure].to_numpy()
            d = a - b
            pvalue = 1.0 if not np.any(d) else float(stats.ttest_rel(a, b).pvalue)
            rows.append({**dict(zip([*groups, "condition"], keys)), "query_lang": q, "passage_lang": p,
                         "n": len(a), "baseline": float(b.mean()), "mean": float(a.mean()), "diff": float(d.mean()),
                         "p": pvalue, "p_corrected": min(1.0, pvalue * len(cells))})
    out = pd.DataFrame(rows)
    out["significant"] = out["p_corrected"] < ALPHA
    return out


def with_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each row's language groups: query and passage resource group
    (:func:`resource_group`) and whether the pair is same-language or cross-language."""
    out = frame.copy()
    out["query group"] = out["query_lang"].map(resource_group)
    out["passage group"] = out["passage_lang"].map(resource_group)
    out["pair"] = np.where(out["query_lang"] == out["passage_lang"], "same-language", "cross-language")
    return out


def group_table(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Mean of ``measure`` per condition (rows) for each language group (columns): low- and
    high-resource query languages, low- and high-resource passage languages, same- and
    cross-language pairs, and all cells."""
    g = with_groups(frame)
    columns = {}
    for label, column in (("query", "query group"), ("passage", "passage group")):
        for group in ("low", "high"):
            columns[f"{group}-resource {label}"] = g[g[column] == group].groupby("condition")[measure].mean()
    for pair in ("same-language", "cross-language"):
        columns[pair] = g[g["pair"] == pair].groupby("condition")[measure].mean()
    columns["all"] = g.groupby("condition")[measure].mean()
    table = pd.DataFrame(columns)
    return table.reindex([c for c in [*CONDITIONS, GOLD] if c in table.index])


def significance_counts(tests: pd.DataFrame) -> pd.DataFrame:
    """Per condition (and measure / retriever / k where the tests have them): cells significantly
    better and worse than the baseline."""
    groups = [c for c in ("measure", "retriever", "k") if c in tests.columns] + ["condition"]
    return tests.groupby(groups).apply(lambda t: pd.Series({
        "cells": len(t), "better": int((t["significant"] & (t["diff"] > 0)).sum()),
        "worse": int((t["significant"] & (t["diff"] < 0)).sum()), "mean difference": t["diff"].mean()}),
        include_groups=False)


def tests_for(frame: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """:func:`cell_tests` for several measures (a ``measure`` column tells them apart); the
    reader's gold-passage rows are not a system and are left out."""
    systems = frame[frame["condition"] != GOLD]
    return pd.concat([cell_tests(systems, m).assign(measure=m) for m in measures], ignore_index=True)


def marks(tests: pd.DataFrame, measure: str, conditions: Sequence[str], **where: Any) -> dict[str, pd.DataFrame]:
    """Per condition, the query x passage table of significant cells (for :func:`plot_matrix`)."""
    t = tests[tests["measure"] == measure]
    for column, value in where.items():
        t = t[t[column] == value]
    return {c: t[t["condition"] == c].pivot(index="query_lang", columns="passage_lang", values="significant")
            for c in conditions if c in set(t["condition"])}


def differences(frame: pd.DataFrame, measure: str, conditions: Sequence[str], baseline: str = "none") -> dict[str, pd.DataFrame]:
    """Per condition, its cell table minus the baseline's."""
    base = cell_table(frame[frame["condition"] == baseline], measure)
    return {c: cell_table(frame[frame["condition"] == c], measure) - base for c in conditions}
