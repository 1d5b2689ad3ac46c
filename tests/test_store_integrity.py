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


def learned_home(tmp_path, *docs):
    home = tmp_path / "home"
    agent = make_tiny_agent(home)
    for i, d in enumerate(docs or (DOC,)):
        Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, f"d{i}.json", d)])
    agent.close()
    return home


def files(home):
    return sorted((str(p.relative_to(home)), p.stat().st_size) for p in home.rglob("*")
                  if p.is_file() and "chroma" not in p.parts and p.name != ".lock")


@pytest.mark.parametrize("damage", ["empty", "missing-db", "missing-folder"])
def test_a_store_that_lost_its_database_is_corrupt_not_fresh(tmp_path, damage):
    import shutil
    home = learned_home(tmp_path)
    db = home / "chroma" / "chroma.sqlite3"
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "missing-db":
        db.unlink()
    else:
        shutil.rmtree(home / "chroma")
    before = files(home)
    with pytest.raises(StoreError, match="store is corrupt"):
        make_tiny_agent(home)
    assert files(home) == before                                  # no adapter deleted


def test_nothing_is_deleted_on_the_strength_of_a_lost_log(tmp_path):
    """Two adapters no log entry names (a log lost another way than an empty file): refused, nothing deleted."""
    home = learned_home(tmp_path, DOC, DOC2)
    agent = make_tiny_agent(home)
    for e in agent.memory.state().edits:
        agent.memory.cols["edits"].delete(ids=[e.edit_id])
    agent.close()
    before = files(home)
    with pytest.raises(StoreError, match="edit log looks lost"):
        make_tiny_agent(home)
    assert files(home) == before


def test_a_fresh_home_still_opens(tmp_path):
    agent = make_tiny_agent(tmp_path / "new")
    assert agent.history() == []
    agent.close()


def _damage(folder, how):
    import torch
    weights = next(folder.rglob("adapter_model.safetensors"))
    if how == "middle":
        data = bytearray(weights.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 64] = bytes(64)
        weights.write_bytes(bytes(data))
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif how == "garbage":
        weights.write_bytes(b"\x07garbage" * 50)
    elif how == "bin":
        weights.unlink()
        torch.save({"w": torch.zeros(1)}, folder / "adapter_model.bin")
    elif how == "meta":
        (folder / "seal_meta.json").write_text("{nope")
    elif how == "no-meta":
        (folder / "seal_meta.json").unlink()
    elif how == "folder":
        import shutil
        shutil.rmtree(folder)


@pytest.mark.parametrize("how", ["middle", "truncated", "garbage", "bin", "meta", "no-meta", "folder"])
def test_a_damaged_adapter_is_an_error_naming_it_never_an_answer(tmp_path, how):
    home = learned_home(tmp_path)
    agent = make_tiny_agent(home)
    [edit] = agent.memory.state().active()
    agent.close()
    _damage(home / "adapters" / "student" / edit.adapter_id, how)
    with pytest.raises(StoreError, match=f"adapter {edit.adapter_id}"):
        agent = make_tiny_agent(home)
        try:
            agent.ask([DOC["questions"][0]["question"]])
        finally:
            agent.close()


def test_readers_do_not_wait_for_a_writer(tmp_path, capsys):
    """While a writer holds the home, ask/history/probe read the last committed state (the snapshot)."""
    from agent.cli import main
    from agent.memory import reading
    home = learned_home(tmp_path)
    writer = make_tiny_agent(home)                    # holds the home, as an ingest does
    questions = [q["question"] for q in DOC["questions"]]
    try:
        expected, hist = writer.ask(questions), writer.history()
        with pytest.raises(StoreError, match="in use"):
            make_tiny_agent(home)                     # a second writer is refused
        with reading():
            reader = make_tiny_agent(home)
        assert reader.memory.read_only and reader.history() == hist
        assert reader.ask(questions) == expected and reader.routes(questions) == ["Zorblat", "Zorblat"]
        assert [r["title"] for r in reader.probe()] == ["Zorblat"]
        with pytest.raises(StoreError, match="read-only"):
            reader.rollback(hist[0]["edit_id"])
        reader.close()
        with pytest.raises(SystemExit) as e:
            main(["--home", str(home), "history", "--json"])
        out, err = capsys.readouterr()
        assert e.value.code == 0, err
        assert [r["edit_id"] for r in json.loads(out)] == [r["edit_id"] for r in hist]
        # a commit while readers read: the snapshot follows it
        Ingest(writer, IngestOptions(guard=False)).run([write(tmp_path, "m.json", DOC2)])
        with reading():
            reader = make_tiny_agent(home)
        assert len(reader.history()) == 2
        reader.close()
    finally:
        writer.close()
