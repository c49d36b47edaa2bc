"""The query-language x passage-language matrix of XQuAD (the third research question).

XQuAD gives each of its 240 paragraphs and 1,190 questions in 12 languages, human-translated and
aligned: the same article, paragraph and question id in every language. A *cell* (Q, P) of the
matrix has the paragraphs in language P as its corpus, the questions in Q as its queries, the
paragraph (in P) that holds a question as its gold passage, and the answer of the parallel
question in P as its gold answer (what a reader must extract from the passage in P);
:func:`matrix_rows` writes every cell's parts once, for all languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xqglib.core.artifacts import RunDir
from xqglib.core.errors import UserError
from xqglib.core.formats import read_jsonl


def paragraph_docid(lang: str, article: int, paragraph: int) -> str:
    return f"xquad-{lang}-{article}-{paragraph}"


def check_parallel(parallel: dict[str, list[dict[str, Any]]]) -> None:
    """Every language must hold the same articles, paragraphs and question ids, in the same order."""
    def shape(articles: list[dict[str, Any]]) -> list[list[list[str]]]:
        return [[[qa["id"] for qa in p["qas"]] for p in a["paragraphs"]] for a in articles]

    languages = sorted(parallel)
    reference = shape(parallel[languages[0]])
    for lang in languages[1:]:
        if shape(parallel[lang]) != reference:
            raise UserError(f"XQuAD in {lang!r} is not aligned with {languages[0]!r} (articles, paragraphs "
                            "or question ids differ): is it the published file?")


# --------------------------------------------------------------------------------------------
# The matrix's rows, from XQuAD's parallel files
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
                            question = question_of(parallel[gen_lang][a]["paragraphs"][p], qa["id"])
                            out[f"generator_{part}"].append({"qid": qa["id"], "lang": gen_lang, "docid": docid,
                                                             "title": "", "text": par["context"], "question": question})
            for lang in query_languages:
                for qa in parallel[lang][a]["paragraphs"][p]["qas"]:
                    if part == "dev" or (part == "test" and (keep is None or qa["id"] in keep)):
                        out["questions"].append({"qid": qa["id"], "lang": lang, "question": qa["question"],
                                                 "index": index, "split": part})
            index += 1
    return out


def question_of(paragraph: dict[str, Any], qid: str) -> str:
    for qa in paragraph["qas"]:
        if qa["id"] == qid:
            return qa["question"]
    raise UserError(f"XQuAD files are not parallel at question {qid}")


def matrix_vocabulary_texts(rd: RunDir, corpus: Sequence[dict[str, Any]]) -> list[str]:
    """The texts whose tokens the generator may write for the matrix's passages: the passages and
    the train- and dev-article questions it was trained towards."""
    pairs = read_jsonl(rd.rq3_data("generator_train")) + read_jsonl(rd.rq3_data("generator_dev"))
    return [p["text"] for p in corpus] + [p["question"] for p in pairs]
