"""Data layer: loaders for the public files and the B1 benchmark built from them.

Files are read from the data directory (``$XQG_DATA_DIR``; see :func:`xqglib.paths.data_dir`).
A file that is absent there is downloaded once from its canonical public URL and checked against
its SHA-256; if that is impossible (offline), the error says which file is missing and where it is
published. A file that is there is checked against the same SHA-256 whenever it is loaded. Nothing from the data directory is ever written into the project.

Benchmark B1 ("XQuAD -> English Wikipedia", the XOR-Retrieve analogue): questions in the non-English
XQuAD languages are answered from the English paragraphs of SQuAD v1.1 dev (with their titles). The
48 articles that XQuAD and SQuAD dev share are split, seeded, into train / dev / test; generator and
retrievers learn only from train-article questions, and every paragraph stays in the corpus.
"""

from __future__ import annotations

import itertools
import json
import random
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .progress import progress

from .paths import cache_dir, data_dir
from .settings import Profile
from .errors import UserError
from .formats import atomic_open, read_jsonl, sha256_file, write_json

_XQUAD_URL = "https://raw.githubusercontent.com/google-deepmind/xquad/master/xquad.{}.json"
_XQUADR_URL = "https://raw.githubusercontent.com/google-research-datasets/lareqa/master/xquad-r/{}.json"
_XOR_URL = "https://nlp.cs.washington.edu/xorqa/XORQA_site/data/{}"

#: relative path -> (canonical URL, SHA-256). Checksums are those of ../shared/data/MANIFEST.json.
KNOWN_FILES: dict[str, tuple[str, str]] = {
    "squad/dev-v1.1.json": (
        "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
        "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9"),
    "xor-tydi/xor_dev_retrieve_eng_span_v1_1.jsonl": (
        _XOR_URL.format("xor_dev_retrieve_eng_span_v1_1.jsonl"),
        "cfe569e4c6d3539c2111d97249f900318f9273b246a61fff95216ce2a2e1505c"),
    "xor-tydi/xor_train_retrieve_eng_span.jsonl": (
        _XOR_URL.format("xor_train_retrieve_eng_span.jsonl"),
        "f0c8202eebcef9fc129c9bb8e7a12fae1a7648163b249dc0a06df4318923f70b"),
}
_XQUAD_SHA = {
    "ar": "abdabd7afed5c635d99cca0f3f0d0c9d9ed0bc77451e963c2e4e0638c29e486d",
    "de": "990b5d746746ed65ed4702ea5f35f99ffa4e2f1c390c07d003642acd937916f9",
    "el": "821cf0f88e73fa258fd2f548b19b6ec39f7025059e16f6f9fc8cd797c9c3663e",
    "en": "e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29",
    "es": "dcbae93ec3a9f4b9e78fd834a171d6f96c1a875e10e15b7530b7e4ef4971e37e",
    "hi": "df2cce3532b37e9beb8979704b5c9a4bf874358f105395a298b89427b43b9d24",
    "ro": "94f8d54e93ad2b7dd2e76dd921a666b5b8eff2d4379df9f179c42b445f09643f",
    "ru": "208d5b1aa154c52b1b5c5eda16281e455e8fd198cdb9af3f469f0d6037d973bf",
    "th": "5cdda11d0e1e075f7872abf4e6ae830388ce7f617964d542308e9ae4257e0f43",
    "tr": "92179a564774b7696100d144c1e10870d0a966b6fccbdd254a65b9d2ab1971cc",
    "vi": "f619a1eb11fb42d3ab0834259e488a65f585447ef6154437bfb7199d85161a04",
    "zh": "691d0b3359bc6b8faa8de931dfdfe21d50a65861ae348e32a0d1a0190b0c8835",
}
_XQUADR_SHA = {
    "ar": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
    "de": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
    "el": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
    "en": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
    "es": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
    "hi": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
    "ru": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
    "th": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
    "tr": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
    "vi": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
    "zh": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
}
XQUAD_LANGUAGES: tuple[str, ...] = tuple(sorted(_XQUAD_SHA))
#: XOR-Retrieve's question files by split (benchmark B3).
XOR_FILES = {"dev": "xor_dev_retrieve_eng_span_v1_1.jsonl", "train": "xor_train_retrieve_eng_span.jsonl"}
KNOWN_FILES.update({f"xquad/xquad.{l}.json": (_XQUAD_URL.format(l), s) for l, s in _XQUAD_SHA.items()})
KNOWN_FILES.update({f"xquad-r/{l}.json": (_XQUADR_URL.format(l), s) for l, s in _XQUADR_SHA.items()})


def files_used(profile: Profile) -> list[str]:
    """The data files (relative paths) a profile's benchmark reads (B3's collection is not one of
    them: it has no published checksum; see :mod:`xqglib.b3`)."""
    if profile.data.benchmark != "b1":
        return [f"xor-tydi/{name}" for name in XOR_FILES.values()]
    languages = sorted(set(profile.data.query_languages) | set(profile.generation.languages) | {"en"})
    return ["squad/dev-v1.1.json"] + [f"xquad/xquad.{lang}.json" for lang in languages]


def download(url: str, dest: Path, sha256: str | None) -> Path:
    """Download ``url`` to ``dest`` (temp file, checksum, then rename); ``sha256`` None: a file
    with no published checksum (its digest is then recorded by the caller)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(f"could not download {url} ({exc}); put the file at {dest} by hand, or point "
                        "XQG_DATA_DIR at a directory that holds it") from None
    if sha256 is None:
        return dest
    actual = sha256_file(dest)
    if actual != sha256:
        dest.unlink()
        raise UserError(f"{url} downloaded with SHA-256 {actual}, expected {sha256}; the published "
                        "file changed or the download was corrupted")
    return dest


def verify(path: Path, relpath: str) -> Path:
    """``path`` if its SHA-256 is the published file's; otherwise a :class:`UserError` saying so.

    Digests are cached by (path, size, modification time), so a run start costs a stat per file.
    """
    expected = KNOWN_FILES[relpath][1]
    cache_file = cache_dir() / "data-digests.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    actual = cache.get(key) or sha256_file(path)
    if actual != expected:
        raise UserError(f"{path} is not the published {relpath} (SHA-256 {actual[:12]}…, expected "
                        f"{expected[:12]}…): replace it with the published file, or delete it so that "
                        "it is downloaded again")
    if key not in cache:
        cache[key] = actual
        try:
            write_json(cache_file, cache)
        except OSError:
            pass  # a read-only cache only costs time
    return path


def data_file(relpath: str, root: Path | None = None) -> Path:
    """Path of a data file, checked against its published SHA-256, downloading it from its
    canonical URL if it is absent."""
    root = root or data_dir()
    path = root / relpath
    if path.exists():
        return verify(path, relpath) if relpath in KNOWN_FILES else path
    if relpath not in KNOWN_FILES:
        raise UserError(f"{path} is missing and has no known public source; see the data README")
    url, sha = KNOWN_FILES[relpath]
    try:
        return download(url, path, sha)
    except PermissionError:
        raise UserError(f"{path} is missing and {root} is not writable; download {url} "
                        "there, or set XQG_DATA_DIR to a writable directory") from None


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); the file is "
                        "damaged: delete it so that it is downloaded again, or replace it") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); the file is damaged: delete it "
                        "so that it is downloaded again, or replace it") from None


def _squad_articles(path: Path) -> list[dict[str, Any]]:
    obj = _load_json(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise UserError(f"{path} is not in SQuAD v1.1 format (no top-level 'data' list)")
    for article in obj["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                missing = [k for k in ("id", "question", "answers") if k not in qa]
                if missing:
                    raise UserError(f"{path}: question {qa.get('id', '?')} has no {', '.join(missing)}; "
                                    "the file is not in SQuAD v1.1 format")
    return obj["data"]


def load_squad_dev(root: Path | None = None) -> list[dict[str, Any]]:
    """SQuAD v1.1 dev: 48 articles, each ``{"title", "paragraphs": [{"context", "qas"}]}``."""
    return _squad_articles(data_file("squad/dev-v1.1.json", root))


def load_xquad(lang: str, root: Path | None = None) -> list[dict[str, Any]]:
    """XQuAD in one language, SQuAD v1.1 format (48 articles, 240 paragraphs, 1,190 questions)."""
    if f"xquad/xquad.{lang}.json" not in KNOWN_FILES:
        raise UserError(f"XQuAD has no language {lang!r}; it has {sorted(_XQUAD_SHA)}")
    return _squad_articles(data_file(f"xquad/xquad.{lang}.json", root))


def load_xquad_r(lang: str, root: Path | None = None) -> list[dict[str, Any]]:
    """XQuAD-R (LAReQA) in one language: XQuAD plus ``sentences`` / ``sentence_breaks``."""
    if f"xquad-r/{lang}.json" not in KNOWN_FILES:
        raise UserError(f"XQuAD-R has no language {lang!r}; it has {sorted(_XQUADR_SHA)}")
    return _squad_articles(data_file(f"xquad-r/{lang}.json", root))


XQUADR_LANGUAGES: tuple[str, ...] = tuple(sorted(_XQUADR_SHA))
XOR_LANGUAGES = ("ar", "bn", "fi", "ja", "ko", "ru", "te")


def load_xor_retrieve(split: str, root: Path | None = None) -> list[dict[str, Any]]:
    """XOR-Retrieve questions ``{id, question, answers, lang}`` (``lang`` stripped: train has " ar")."""
    if split not in XOR_FILES:
        raise UserError(f"XOR-Retrieve split must be one of {sorted(XOR_FILES)}, not {split!r}")
    path = data_file(f"xor-tydi/{XOR_FILES[split]}", root)
    rows = read_jsonl(path)
    for lineno, row in enumerate(rows, 1):
        try:
            row["lang"] = row["lang"].strip()
            row["id"], row["question"], row["answers"]  # noqa: B018 (presence check)
        except (KeyError, AttributeError, TypeError) as exc:
            raise UserError(f"{path}, record {lineno}: not an XOR-Retrieve record ({exc!r})") from None
    return rows


def xor_counted_questions(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Questions the official scorer counts, per language: those with an answer other than yes/no."""
    counts: dict[str, int] = {}
    for row in rows:
        if any(a not in ("yes", "no") for a in row["answers"]):
            counts[row["lang"]] = counts.get(row["lang"], 0) + 1
    return counts


XOR_CORPUS = "xor-tydi/enwiki_20190201_w100.tsv"


def load_xor_corpus(path: Path | None = None, limit: int | None = None) -> list[Passage]:
    """XOR-Retrieve's English Wikipedia passages, DPR tsv format (``id, text, title``, header line),
    as a list (``limit``: the first ones only). :func:`iter_xor_corpus` streams them."""
    return list(itertools.islice(iter_xor_corpus(path), limit))


def iter_xor_corpus(path: Path | None = None) -> Iterator[Passage]:
    """XOR-Retrieve's passages one by one, never the whole collection in memory.

    The ~18M-passage collection is not in the data directory and cannot be fetched offline; it is
    looked for at ``$XQG_DATA_DIR/xor-tydi/enwiki_20190201_w100.tsv`` (or ``path``).
    """
    import csv

    path = path or data_dir() / XOR_CORPUS
    if not path.exists():
        raise UserError(f"the XOR-Retrieve passage collection is missing: {path}. It is English Wikipedia "
                        "of 2019-02-01 in 100-word passages, as a DPR-style tsv (id, text, title); the "
                        "XOR QA README (github.com/AkariAsai/XORQA) says how it is made and published. "
                        "Benchmark B3 runs only where it can be had (the paper profile).")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:3]] != ["id", "text", "title"]:
            raise UserError(f"{path}: expected a header line 'id<TAB>text<TAB>title', found {header!r}")
        for row in reader:
            if len(row) < 3:
                raise UserError(f"{path}, line {reader.line_num}: expected 3 tab-separated fields")
            yield Passage(row[0], row[2], row[1], row[2])


# --------------------------------------------------------------------------------------------
# Benchmark B1
# --------------------------------------------------------------------------------------------

@dataclass
class Passage:
    docid: str
    title: str
    text: str
    article: str

    def as_tevatron(self) -> dict[str, str]:
        return {"docid": self.docid, "title": self.title, "text": self.text}


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
                            n_negatives: int, seed: int, pool_size: int = 0) -> list[dict[str, Any]]:
    """Tevatron-style training rows from train-article questions.

    Each row's ``negative_passages`` is its pool of max(``pool_size``, ``n_negatives``) hard
    negatives: other paragraphs of the gold paragraph's own article (same topic, so hard), drawn
    with the seed; an article with too few others is topped up with paragraphs of other train
    articles. Training draws ``n_negatives`` of the pool anew each epoch, as Tevatron does. Test- and
    dev-article paragraphs are never used as negatives.
    """
    if training == "english":
        sources = [("en", b1.english_questions)]
    elif training == "crosslingual":
        sources = [(lang, b1.xquad_questions[lang]) for lang in languages]
    else:
        raise UserError(f"no training data for retriever training {training!r}")
    by_article: dict[str, list[str]] = defaultdict(list)
    for docid, p in b1.passages.items():
        if b1.split.get(p.article) == "train":
            by_article[p.article].append(docid)
    train_docids = sorted(d for ds in by_article.values() for d in ds)
    rng = random.Random(seed)
    rows = []
    for lang, questions in sources:
        for qid in b1.qids_of("train", questions):
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
