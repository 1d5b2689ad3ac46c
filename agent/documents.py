"""Reading the user's files into documents (every check before anything is written) and chunking them."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import BadInput

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text"}
JSON_SUFFIXES = {".json"}


@dataclass
class Document:
    title: str
    text: str
    source: str
    probes: list[tuple[str, str]] = field(default_factory=list)  # (question, gold answer) pairs given with it

    @property
    def doc_id(self) -> str:
        """Content identity: the same text under another file name or title is the same document."""
        return "d-" + hashlib.sha256(" ".join(self.text.split()).encode()).hexdigest()[:12]


def _read_text(path: Path, max_bytes: int) -> str:
    _check_exists(path)
    if not path.is_file():
        raise BadInput(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise BadInput(f"{path}: {size} bytes, over the {max_bytes}-byte limit (ingest.max_file_bytes)")
    data = path.read_bytes()
    if b"\x00" in data:
        raise BadInput(f"{path}: binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise BadInput(f"{path}: empty file")
    return text


def _check_exists(path: Path) -> None:
    """A missing path, a dangling symlink and a symlink loop, each said as such."""
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise BadInput(f"{path}: a symlink to a missing file ({os.readlink(path)})") from None
        raise BadInput(f"{path}: no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadInput(f"{path}: a symlink loop (too many levels of symbolic links)") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise BadInput(f"{path}: permission denied") from None
        raise BadInput(f"{path}: {e.strerror or e}") from None


def _title_and_body(text: str, fallback: str) -> tuple[str, str]:
    """A first line that looks like a heading (markdown '#', or short and followed by a blank line) is the title."""
    lines = text.strip().splitlines()
    first = lines[0].strip()
    rest = "\n".join(lines[1:]).strip()
    if first.startswith("#"):
        return first.lstrip("#").strip() or fallback, rest or first
    if len(lines) > 2 and len(first) <= 80 and not lines[1].strip() and not first.endswith("."):
        return first, rest
    return fallback, text.strip()


def _squad_documents(path: Path, text: str) -> list[Document]:
    """SEAL's SQuAD format: a list (or one object) of {title, context, questions: [{question, answer}]}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = _official_squad(path, data["data"])
    items = data if isinstance(data, list) else [data]
    docs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("context"), str) or not item["context"].strip():
            raise BadInput(f"{path}: entry {i} has no 'context' text (expected SEAL's SQuAD format "
                           "[{title, context, questions: [{question, answer}]}] or the official SQuAD v1.1 layout "
                           "{data: [{title, paragraphs: [{context, qas: [{question, answers: [{text}]}]}]}]})")
        probes = []
        for q in item.get("questions") or []:
            if not isinstance(q, dict) or not q.get("question") or not q.get("answer"):
                raise BadInput(f"{path}: entry {i} has a question without 'question' and 'answer'")
            probes.append((str(q["question"]), str(q["answer"])))
        docs.append(Document(str(item.get("title") or path.stem), item["context"].strip(), f"{path}#{i}", probes))
    if not docs:
        raise BadInput(f"{path}: no documents in the file")
    return docs


def _official_squad(path: Path, articles: list) -> list[dict]:
    """The official SQuAD v1.1 layout -> SEAL's entries: one per paragraph, titled by its article; a question's
    gold answer is its first answer text (v2's unanswerable questions are skipped)."""
    out = []
    for a, article in enumerate(articles):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise BadInput(f"{path}: data[{a}] has no 'paragraphs' list (official SQuAD layout)")
        for p in article["paragraphs"]:
            if not isinstance(p, dict):
                raise BadInput(f"{path}: data[{a}] has a paragraph that is not an object")
            questions = []
            for qa in p.get("qas") or []:
                answers = [x.get("text") for x in (qa.get("answers") or []) if isinstance(x, dict)] if isinstance(qa, dict) else []
                answers = [x for x in answers if isinstance(x, str) and x.strip()]
                if isinstance(qa, dict) and qa.get("question") and answers:
                    questions.append({"question": qa["question"], "answer": answers[0]})
            out.append({"title": article.get("title") or path.stem, "context": p.get("context"), "questions": questions})
    return out


def read_path(path: Path, max_bytes: int) -> list[Document]:
    """One file -> documents (a JSON file may hold many). Raises BadInput naming the file."""
    text = _read_text(path, max_bytes)
    if path.suffix.lower() in JSON_SUFFIXES:
        return _squad_documents(path, text)
    title, body = _title_and_body(text, path.stem.replace("_", " ").replace("-", " "))
    return [Document(title, body, str(path))]


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for the text and JSON files directly inside it."""
    out = []
    for p in paths:
        _check_exists(p)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES | JSON_SUFFIXES)
            if not files:
                raise BadInput(f"{p}: directory has no text files ({', '.join(sorted(TEXT_SUFFIXES | JSON_SUFFIXES))})")
            out.extend(files)
        else:
            out.append(p)
    return out


def read_documents(paths: list[Path], max_bytes: int) -> list[Document]:
    """Every path read and checked; the same document twice in one call is an error."""
    if not paths:
        raise BadInput("no input files given")
    docs: list[Document] = []
    seen: dict[str, str] = {}
    for path in expand(paths):
        for doc in read_path(path, max_bytes):
            if doc.doc_id in seen:
                raise BadInput(f"{doc.source}: duplicate of {seen[doc.doc_id]}")
            seen[doc.doc_id] = doc.source
            docs.append(doc)
    return docs


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def chunk_text(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """Split on paragraphs, pack them up to max_tokens; split long paragraphs by sentences, long sentences by words."""
    pieces: list[tuple[str, str]] = []  # (text, separator that joins it to the previous piece)
    for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        if count_tokens(para) <= max_tokens:
            pieces.append((para, "\n\n"))
            continue
        sep = "\n\n"
        for sent in _SENTENCE.split(para):
            words, cur = sent.split(), []
            for w in words:
                if cur and count_tokens(" ".join(cur + [w])) > max_tokens:
                    pieces.append((" ".join(cur), sep))
                    cur, sep = [], " "
                cur.append(w)
            if cur:
                pieces.append((" ".join(cur), sep))
                sep = " "
    chunks: list[str] = []
    for piece, sep in pieces:
        if chunks and count_tokens(chunks[-1] + sep + piece) <= max_tokens:
            chunks[-1] = chunks[-1] + sep + piece
        else:
            chunks.append(piece)
    return chunks
