"""Reading user files into documents, every refusal, and chunking."""
import json

import pytest

from agent.documents import chunk_text, read_documents
from agent.errors import BadInput

LIMIT = 10_000


def test_text_file_with_heading_becomes_titled_document(tmp_path):
    f = tmp_path / "notes.md"
    f.write_text("# Zorblat facts\n\nThe zorblat lives in Quentin Bay.\n\nIt eats kelp.\n")
    [doc] = read_documents([f], LIMIT)
    assert doc.title == "Zorblat facts"
    assert doc.text == "The zorblat lives in Quentin Bay.\n\nIt eats kelp."
    assert doc.probes == []
    assert doc.doc_id.startswith("d-") and len(doc.doc_id) == 14


def test_plain_text_without_heading_uses_file_name(tmp_path):
    f = tmp_path / "quentin_bay.txt"
    f.write_text("The zorblat lives in Quentin Bay. It eats kelp.")
    [doc] = read_documents([f], LIMIT)
    assert doc.title == "quentin bay"
    assert doc.text == "The zorblat lives in Quentin Bay. It eats kelp."


def test_squad_json_gives_documents_with_probes(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"title": "A", "context": "Alpha is first.", "questions": [{"question": "What is first?", "answer": "Alpha"}]},
                             {"title": "B", "context": "Beta is second.", "questions": []}]))
    docs = read_documents([f], LIMIT)
    assert [d.title for d in docs] == ["A", "B"]
    assert docs[0].probes == [("What is first?", "Alpha")]
    assert docs[0].source.endswith("d.json#0")


def test_directory_reads_text_files_sorted(tmp_path):
    (tmp_path / "b.txt").write_text("Bee text here.")
    (tmp_path / "a.md").write_text("Ay text here.")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\x00\x00")
    docs = read_documents([tmp_path], LIMIT)
    assert [d.text for d in docs] == ["Ay text here.", "Bee text here."]


@pytest.mark.parametrize("name,content,message", [
    ("empty.txt", b"  \n\n ", "empty file"),
    ("bin.txt", b"abc\x00def", "binary file"),
    ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
    ("big.txt", b"x" * (LIMIT + 1), "over the 10000-byte limit"),
    ("bad.json", b"[{", "not valid JSON"),
    ("noctx.json", b'[{"title": "x"}]', "no 'context'"),
    ("badq.json", b'[{"title": "x", "context": "c", "questions": [{"question": "q"}]}]', "without 'question' and 'answer'"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(BadInput) as e:
        read_documents([f], LIMIT)
    assert message in str(e.value) and name in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_path_empty_dir_and_duplicates(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        read_documents([tmp_path / "nope.txt"], LIMIT)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"1")
    with pytest.raises(BadInput, match="directory has no text files"):
        read_documents([tmp_path / "d"], LIMIT)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Same words.")
    b.write_text("Same words.")
    with pytest.raises(BadInput, match="duplicate of"):
        read_documents([a, b], LIMIT)


def words(s):
    return len(s.split())


def test_chunks_respect_paragraphs_and_the_token_bound():
    paras = ["one two three four", "five six seven", "eight nine ten eleven twelve"]
    text = "\n\n".join(paras)
    assert chunk_text(text, words, 100) == [text]
    assert chunk_text(text, words, 8) == ["one two three four\n\nfive six seven", "eight nine ten eleven twelve"]
    assert chunk_text(text, words, 5) == paras


def test_long_paragraph_splits_by_sentence_then_words():
    text = "Alpha beta gamma. Delta epsilon zeta eta theta iota kappa lambda."
    chunks = chunk_text(text, words, 4)
    assert all(words(c) <= 4 for c in chunks)
    assert " ".join(chunks).split() == text.split()  # nothing lost, order kept
    assert chunks[0] == "Alpha beta gamma."
