"""Benchmark B1 ("XQuAD -> English Wikipedia", the XOR-Retrieve analogue) and its training data.

Questions in the non-English XQuAD languages are answered from the English paragraphs of SQuAD
v1.1 dev (with their titles). The 48 articles that XQuAD and SQuAD dev share are split, seeded,
into train / dev / test; generator, retrievers and reader learn only from train-article
questions, and every paragraph stays in the corpus.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xqglib.config.settings import Profile
from xqglib.core.errors import UserError
from xqglib.data.sources import Passage, load_squad_dev, load_xquad


@dataclass
class B1:
    """Everything the pipeline needs from benchmark B1, built deterministically from a profile."""

    split: dict[str, str]                       # article title -> "train" | "dev" | "test"
    corpus: list[Passage]                       # the retrieval collection
    passages: dict[str, Passage]                # every SQuAD dev paragraph by docid
    qid_to_docid: dict[str, str]                # SQuAD/XQuAD question id -> gold paragraph
    answers: dict[str, list[str]]               # question id -> English reference answers
    xquad_questions: dict[str, dict[str, str]]  # lang -> question id -> question text
    english_questions: dict[str, str]           # every SQuAD dev question id -> English question
    test_qids: list[str] = field(default_factory=list)

    def articles(self, split: str) -> list[str]:
        return sorted(t for t, s in self.split.items() if s == split)

    def qids_of(self, split: str, source: dict[str, str]) -> list[str]:
        wanted = set(self.articles(split))
        return [q for q in source if self.passages[self.qid_to_docid[q]].article in wanted]


def _docid(title: str, index: int) -> str:
    return f"{title}#{index}"


def build_b1(profile: Profile, root: Path | None = None) -> B1:
    """Build B1 for ``profile``: split, corpus, queries, gold paragraphs and answers."""
    squad = load_squad_dev(root)
    passages: dict[str, Passage] = {}
    qid_to_docid: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    english: dict[str, str] = {}
    context_to_docid: dict[str, str] = {}
    for article in squad:
        title = article["title"]
        if any(ch.isspace() for ch in title):
            raise UserError(f"SQuAD title {title!r} contains whitespace; docids would break TREC files")
        for p_index, paragraph in enumerate(article["paragraphs"]):
            docid = _docid(title, p_index)
            passages[docid] = Passage(docid, title.replace("_", " "), paragraph["context"], title)
            context_to_docid.setdefault(paragraph["context"], docid)
            for qa in paragraph["qas"]:
                qid_to_docid[qa["id"]] = docid
                english[qa["id"]] = qa["question"]
                answers[qa["id"]] = list(dict.fromkeys(a["text"] for a in qa["answers"]))

    languages = sorted(set(profile.data.query_languages) | set(profile.generation.languages) - {"en"})
    xquad_questions: dict[str, dict[str, str]] = {}
    xquad_titles: set[str] = set()
    for lang in languages + ["en"]:
        questions: dict[str, str] = {}
        for article in load_xquad(lang, root):
            xquad_titles.add(article["title"])
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    if qa["id"] not in qid_to_docid:
                        raise UserError(f"XQuAD question {qa['id']} ({lang}) is not in SQuAD v1.1 dev; "
                                        "the data files do not match")
                    questions[qa["id"]] = qa["question"]
        xquad_questions[lang] = questions

    titles = sorted(xquad_titles)
    n_train, n_dev, n_test = profile.data.split_articles
    if n_train + n_dev + n_test != len(titles):
        raise UserError(f"data.split_articles {list(profile.data.split_articles)} must add up to the "
                        f"{len(titles)} XQuAD articles")
    random.Random(profile.seed).shuffle(titles)
    split = {t: "train" for t in titles[:n_train]}
    split.update({t: "dev" for t in titles[n_train:n_train + n_dev]})
    split.update({t: "test" for t in titles[n_train + n_dev:]})

    b1 = B1(split, [], passages, qid_to_docid, answers, xquad_questions, english)
    # The same question ids in every language keep the languages parallel.
    test_qids = b1.qids_of("test", xquad_questions["en"])
    if profile.data.max_test_questions is not None:
        test_qids = sorted(test_qids)
        random.Random(profile.seed).shuffle(test_qids)
        test_qids = test_qids[: profile.data.max_test_questions]
    b1.test_qids = sorted(test_qids)

    gold = {qid_to_docid[q] for q in b1.test_qids}
    max_corpus = profile.data.max_corpus
    if max_corpus is None or max_corpus >= len(passages):
        corpus_ids = list(passages)
    else:
        if max_corpus < len(gold):
            raise UserError(f"data.max_corpus = {max_corpus} is smaller than the {len(gold)} gold "
                            "paragraphs of the test questions")
        others = sorted(set(passages) - gold)
        random.Random(profile.seed).shuffle(others)
        keep = gold | set(others[: max_corpus - len(gold)])
        corpus_ids = [d for d in passages if d in keep]  # SQuAD order
    b1.corpus = [passages[d] for d in corpus_ids]
    return b1


def test_queries(b1: B1, languages: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
    """Test queries, one per (question, language): ``{"query_id": "<qid>-<lang>", "query", "lang", "qid"}``."""
    return [{"query_id": f"{qid}-{lang}", "query": b1.xquad_questions[lang][qid], "lang": lang, "qid": qid}
            for lang in languages for qid in b1.test_qids]


def qrels_for(b1: B1, queries: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    return {q["query_id"]: {b1.qid_to_docid[q["qid"]]: 1} for q in queries}


def generator_pairs(b1: B1, split: str, languages: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
    """(English paragraph -> its question in language L) pairs of one article split."""
    pairs = []
    for lang in languages:
        for qid in b1.qids_of(split, b1.xquad_questions[lang]):
            p = b1.passages[b1.qid_to_docid[qid]]
            pairs.append({"qid": qid, "lang": lang, "docid": p.docid, "title": p.title,
                          "text": p.text, "question": b1.xquad_questions[lang][qid]})
    return pairs


def xquad_texts(b1: B1, splits: Sequence[str], languages: Sequence[str],
                root: Path | None = None) -> list[str]:
    """The XQuAD paragraphs and questions, in ``languages``, of the articles in ``splits``."""
    wanted = {title for split in splits for title in b1.articles(split)}
    texts: list[str] = []
    for lang in languages:
        for article in load_xquad(lang, root):
            if article["title"] in wanted:
                for paragraph in article["paragraphs"]:
                    texts.append(paragraph["context"])
                    texts.extend(qa["question"] for qa in paragraph["qas"])
    return texts


def retriever_training_rows(b1: B1, training: str, languages: list[str] | tuple[str, ...],
                            n_negatives: int, seed: int, pool_size: int = 0, split: str = "train") -> list[dict[str, Any]]:
    """Tevatron-style training rows from the questions of one article split (train; dev for the
    dev loss of training to convergence).

    Each row's ``negative_passages`` is its pool of max(``pool_size``, ``n_negatives``) hard
    negatives: other paragraphs of the gold paragraph's own article (same topic, so hard), drawn
    with the seed; an article with too few others is topped up with paragraphs of other articles
    of the split. Training draws ``n_negatives`` of the pool anew each epoch, as Tevatron does.
    Paragraphs of the other splits are never used as negatives.
    """
    if training == "english":
        sources = [("en", b1.english_questions)]
    elif training == "crosslingual":
        sources = [(lang, b1.xquad_questions[lang]) for lang in languages]
    else:
        raise UserError(f"no training data for retriever training {training!r}")
    by_article: dict[str, list[str]] = defaultdict(list)
    for docid, p in b1.passages.items():
        if b1.split.get(p.article) == split:
            by_article[p.article].append(docid)
    train_docids = sorted(d for ds in by_article.values() for d in ds)
    rng = random.Random(seed)
    rows = []
    for lang, questions in sources:
        for qid in b1.qids_of(split, questions):
            gold = b1.qid_to_docid[qid]
            size = max(pool_size, n_negatives)
            same = [d for d in by_article[b1.passages[gold].article] if d != gold]
            pool = rng.sample(same, min(size, len(same)))
            while len(pool) < size:
                d = rng.choice(train_docids)
                if d != gold and d not in pool:
                    pool.append(d)
            rows.append({"query_id": f"{qid}-{lang}", "query": questions[qid],
                         "positive_passages": [b1.passages[gold].as_tevatron()],
                         "negative_passages": [b1.passages[d].as_tevatron() for d in pool]})
    return rows


# --------------------------------------------------------------------------------------------
# Training data of the second research question's contrastive arms
# --------------------------------------------------------------------------------------------

def alignment_rows(b1: B1, languages: Sequence[str], n_negatives: int, seed: int,
                   pool_size: int = 0) -> list[dict[str, Any]]:
    """The cross-lingual xDR's training rows (:func:`retriever_training_rows`, same seed, so the
    same rows and negatives), each with ``translations``: the same question in every other
    language of ``languages`` and English (XQuAD's parallel questions)."""
    rows = retriever_training_rows(b1, "crosslingual", languages, n_negatives, seed, pool_size)
    parallel = list(dict.fromkeys([*languages, "en"]))
    for row in rows:
        qid, lang = row["query_id"].rsplit("-", 1)
        row["translations"] = {other: b1.xquad_questions[other][qid] for other in parallel if other != lang}
    return rows


def parallel_items(b1: B1, split: str, languages: Sequence[str], root: Path | None = None) -> list[dict[str, Any]]:
    """XQuAD's parallel questions of one article split, for hybrid batches: per question its text
    in every language, its paragraph in every language, and as hard negatives the other
    paragraphs of its article in every language (``{"id", "questions", "passages", "negatives"}``).
    XQuAD's files are parallel: the same articles and paragraphs in the same order everywhere."""
    wanted = set(b1.articles(split))
    per_language = {lang: [a for a in load_xquad(lang, root) if a["title"] in wanted] for lang in languages}
    reference = per_language[languages[0]]
    items = []
    for a_index, article in enumerate(reference):
        title = article["title"].replace("_", " ")
        paragraphs = {lang: [p["context"] for p in per_language[lang][a_index]["paragraphs"]] for lang in languages}
        for p_index, paragraph in enumerate(article["paragraphs"]):
            for q_index, qa in enumerate(paragraph["qas"]):
                questions = {}
                for lang in languages:
                    other = per_language[lang][a_index]["paragraphs"][p_index]["qas"][q_index]
                    if other["id"] != qa["id"]:
                        raise UserError(f"XQuAD files are not parallel at question {qa['id']} ({lang})")
                    questions[lang] = other["question"]
                items.append({
                    "id": qa["id"], "questions": questions,
                    "passages": {lang: {"title": title, "text": paragraphs[lang][p_index]} for lang in languages},
                    "negatives": {lang: [{"title": title, "text": t} for k, t in enumerate(paragraphs[lang]) if k != p_index]
                                  for lang in languages}})
    return items


# --------------------------------------------------------------------------------------------
# The third research question: the reader's training data
# --------------------------------------------------------------------------------------------

def reader_examples(b1: B1, split: str, languages: Sequence[str], with_squad: bool = True,
                    root: Path | None = None) -> list[dict[str, Any]]:
    """Extractive QA examples of one article split: XQuAD's questions in ``languages`` with their
    paragraph in the same language, and (``with_squad``) every SQuAD v1.1 dev question of those
    articles in English (SQuAD has more questions per paragraph than XQuAD took). One example per
    question, with its first answer: ``{"id", "lang", "question", "context", "answer", "answer_start"}``."""
    wanted = set(b1.articles(split))
    examples: list[dict[str, Any]] = []

    def add(articles: list[dict[str, Any]], lang: str) -> None:
        for article in articles:
            if article["title"] not in wanted:
                continue
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    answer = qa["answers"][0]
                    examples.append({"id": qa["id"], "lang": lang, "question": qa["question"],
                                     "context": paragraph["context"], "answer": answer["text"],
                                     "answer_start": answer["answer_start"]})

    for lang in languages:
        add(load_xquad(lang, root), lang)
    if with_squad:
        xquad_ids = {e["id"] for e in examples if e["lang"] == "en"}
        before = len(examples)
        add(load_squad_dev(root), "en")
        examples[before:] = [e for e in examples[before:] if e["id"] not in xquad_ids]
    return examples
