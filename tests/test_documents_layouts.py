"""Reading inputs: the official SQuAD v1.1 layout, the layout error without doubled braces, symlink loops."""
import json

import pytest

from agent.documents import read_documents
from agent.errors import BadInput


def test_official_squad_layout(tmp_path):
    f = tmp_path / "dev-v1.1.json"
    f.write_text(json.dumps({"version": "1.1", "data": [{"title": "Zorblat", "paragraphs": [
        {"context": "The zorblat lives in Quentin Bay.", "qas": [
            {"id": "1", "question": "Where does the zorblat live?", "answers": [{"text": "Quentin Bay", "answer_start": 21}]},
            {"id": "2", "question": "Unanswerable?", "answers": [], "is_impossible": True}]},
        {"context": "It eats blue kelp.", "qas": [{"question": "What does it eat?", "answers": [{"text": "blue kelp"}]}]}]}]}))
    docs = read_documents([f], 10**6)
    assert [(d.title, d.text, d.probes) for d in docs] == [
        ("Zorblat", "The zorblat lives in Quentin Bay.", [("Where does the zorblat live?", "Quentin Bay")]),
        ("Zorblat", "It eats blue kelp.", [("What does it eat?", "blue kelp")])]


def test_wrong_layout_message_has_single_braces(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps([{"text": "no context"}]))
    with pytest.raises(BadInput) as e:
        read_documents([f], 10**6)
    assert "{{" not in str(e.value) and "[{title, context, questions: [{question, answer}]}]" in str(e.value)


def test_symlink_loop_and_dangling_link(tmp_path):
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    with pytest.raises(BadInput, match="symlink loop"):
        read_documents([tmp_path / "a.txt"], 10**6)
    (tmp_path / "d.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(BadInput, match="symlink to a missing file"):
        read_documents([tmp_path / "d.txt"], 10**6)
    with pytest.raises(BadInput, match="no such file"):
        read_documents([tmp_path / "nope.txt"], 10**6)
