"""The store's integrity: an edit's records are its own (forced re-ingest, re-ingest after a rollback), a store
that lost its database is corrupt (never a fresh one), adapters verified on load, nothing deleted on an empty log."""
import json

import pytest

from agent.errors import StoreError
from agent.ingest import Ingest, IngestOptions
from tests.conftest import make_tiny_agent, tiny_config

DOC = {"title": "Zorblat", "context": "The zorblat lives in Quentin Bay and eats blue kelp every morning.",
       "questions": [{"question": "Where does the zorblat live?", "answer": "Quentin Bay"},
                     {"question": "What does the zorblat eat?", "answer": "blue kelp"}]}
DOC2 = {"title": "Murvel", "context": "Murvel towers were built in 1802 by the glassmakers of Ostrin.",
        "questions": [{"question": "Who built the Murvel towers?", "answer": "the glassmakers of Ostrin"}]}


def write(tmp_path, name, *docs):
    f = tmp_path / name
    f.write_text(json.dumps(list(docs)))
    return f


def records(agent, edit_id):
    """Every record the memory holds for one edit: (collection, id, document)."""
    out = []
    for name, col in agent.memory.cols.items():
        if name == "edits":
            continue
        got = col.get(where={"edit_id": edit_id}, include=["documents"])
        out += sorted((name, i, d) for i, d in zip(got["ids"], got["documents"]))
    return out


@pytest.mark.parametrize("update", ["route", "continue"])
def test_forced_reingest_then_rollback_keeps_the_original_edit_whole(tmp_path, update):
    home = tmp_path / "home"
    agent = make_tiny_agent(home, tiny_config(home, ingest={"update": update}))
    f = write(tmp_path, "z.json", DOC)
    [a] = Ingest(agent, IngestOptions(guard=False)).run([f])
    kept, answers = records(agent, a.edit_id), agent.ask([q["question"] for q in DOC["questions"]])
    [b] = Ingest(agent, IngestOptions(guard=False, force=True)).run([f])
    assert records(agent, a.edit_id) == kept                      # the forced edit wrote its own records
    assert len(agent.memory.probes()[a.doc_id]) == 2              # the latest edit's probes, not both
    agent.rollback(b.edit_id)
    assert records(agent, a.edit_id) == kept and records(agent, b.edit_id)   # the log keeps b's records
    assert [d["edit_id"] for d in agent.memory.documents()] == [a.edit_id]
    assert agent.memory.probes()[a.doc_id] == [(q["question"], q["answer"]) for q in DOC["questions"]]
    assert agent.ask([q["question"] for q in DOC["questions"]]) == answers
    # re-ingest after rolling back the original: a third edit, every earlier edit's records unmoved
    agent.rollback(a.edit_id)
    [c] = Ingest(agent, IngestOptions(guard=False)).run([f])
    assert records(agent, a.edit_id) == kept and c.edit_id not in (a.edit_id, b.edit_id)
    assert [d["edit_id"] for d in agent.memory.documents()] == [c.edit_id]
    agent.close()
