"""The public files the study reads, and their digests.

Files are read from the data directory (``$XQG_DATA_DIR``; see :func:`xqglib.core.paths.data_dir`).
A file absent there is downloaded once from its canonical public URL and checked against its
SHA-256; offline, the error says which file is missing and where it is published. A file that is
there is checked against the same SHA-256 whenever it is loaded; nothing is ever written into the
data directory.
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqglib.config.settings import Profile
from xqglib.core.errors import UserError
from xqglib.core.formats import atomic_open, read_jsonl, sha256_file, write_json
from xqglib.core.paths import cache_dir, data_dir
from xqglib.core.progress import progress

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
KNOWN_FILES.update({f"xquad/xquad.{lang}.json": (_XQUAD_URL.format(lang), sha) for lang, sha in _XQUAD_SHA.items()})
KNOWN_FILES.update({f"xquad-r/{lang}.json": (_XQUADR_URL.format(lang), sha) for lang, sha in _XQUADR_SHA.items()})
#: XOR-Retrieve's question files by split (benchmark B3).
XOR_FILES = {"dev": "xor_dev_retrieve_eng_span_v1_1.jsonl", "train": "xor_train_retrieve_eng_span.jsonl"}


def files_used(profile: Profile) -> list[str]:
    """The data files (relative paths) a profile's benchmark reads (B3's collection is not one of
    them: it has no published checksum; see :mod:`xqglib.data.b3`)."""
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


def load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); the file is "
                        "damaged: delete it so that it is downloaded again, or replace it") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); the file is damaged: delete it "
                        "so that it is downloaded again, or replace it") from None


def squad_articles(path: Path) -> list[dict[str, Any]]:
    obj = load_json(path)
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
    return squad_articles(data_file("squad/dev-v1.1.json", root))


def load_xquad(lang: str, root: Path | None = None) -> list[dict[str, Any]]:
    """XQuAD in one language, SQuAD v1.1 format (48 articles, 240 paragraphs, 1,190 questions)."""
    if f"xquad/xquad.{lang}.json" not in KNOWN_FILES:
        raise UserError(f"XQuAD has no language {lang!r}; it has {sorted(_XQUAD_SHA)}")
    return squad_articles(data_file(f"xquad/xquad.{lang}.json", root))


def load_xquad_r(lang: str, root: Path | None = None) -> list[dict[str, Any]]:
    """XQuAD-R (LAReQA) in one language: XQuAD plus ``sentences`` / ``sentence_breaks``."""
    if f"xquad-r/{lang}.json" not in KNOWN_FILES:
        raise UserError(f"XQuAD-R has no language {lang!r}; it has {sorted(_XQUADR_SHA)}")
    return squad_articles(data_file(f"xquad-r/{lang}.json", root))


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
# A passage of a collection
# --------------------------------------------------------------------------------------------

@dataclass
class Passage:
    docid: str
    title: str
    text: str
    article: str

    def as_tevatron(self) -> dict[str, str]:
        return {"docid": self.docid, "title": self.title, "text": self.text}
