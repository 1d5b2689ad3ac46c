"""The store: the edit log as the source of truth, and refusing foreign, corrupt or busy homes."""
import json

import pytest

from agent.errors import StoreError
from agent.memory import Edit, Memory, derive_state


def test_log_derivation_commit_reject_rollback():
    edits = [Edit("e1", 1, "commit", adapter_id="k1"), Edit("e2", 2, "reject"),
             Edit("e3", 3, "commit", adapter_id="k3", parent_adapter="k1"),
             Edit("e4", 4, "commit", adapter_id="k4", parent_adapter="k3"),
             Edit("r1", 5, "rollback", target="e3", adapter_id="k1")]
    st = derive_state(edits)
    assert st.head == "k1"
    assert st.status == {"e1": "active", "e2": "rejected", "e3": "rolled_back", "e4": "rolled_back", "r1": "rollback"}
    st = derive_state(edits + [Edit("e5", 6, "commit", adapter_id="k5", parent_adapter="k1")])
    assert st.head == "k5" and [e.edit_id for e in st.active()] == ["e1", "e5"]


def test_new_home_is_created_and_reopened(tmp_path):
    m = Memory(tmp_path / "h")
    m.log(Edit("e1", 1, "commit", adapter_id="k1", retention={"d": 0.5}))
    m.close()
    m = Memory(tmp_path / "h")
    [e] = m.state().edits
    assert e.retention == {"d": 0.5} and m.state().head == "k1"
    m.close()


def test_foreign_directory_is_refused_and_untouched(tmp_path):
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a seal-agent home"):
        Memory(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_corrupt_marker_and_corrupt_database(tmp_path):
    m = Memory(tmp_path / "h")
    m.close()
    db = tmp_path / "h" / "chroma" / "chroma.sqlite3"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="corrupt or unreadable"):
        Memory(tmp_path / "h")
    (tmp_path / "h" / "seal-agent.json").write_text("{nope")
    with pytest.raises(StoreError, match="corrupt store marker"):
        Memory(tmp_path / "h")


def test_a_busy_home_is_refused(tmp_path):
    m = Memory(tmp_path / "h")
    with pytest.raises(StoreError, match="in use"):
        Memory(tmp_path / "h")
    m.close()


def test_other_store_format_is_refused(tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "seal-agent.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StoreError, match="format 99"):
        Memory(tmp_path / "h")


def test_home_can_be_claimed_without_chromadb_and_memory_says_what_is_missing(tmp_path, monkeypatch):
    """ReST-EM on a GPU machine without chromadb claims its home by the marker alone; the store then opens
    normally where chromadb exists, and where it does not, the error names the missing package (not 'corrupt')."""
    import sys
    from agent.memory import check_home

    home = tmp_path / "h"
    monkeypatch.setitem(sys.modules, "chromadb", None)  # import chromadb -> ImportError
    check_home(home, create=True)
    check_home(home, create=False)  # now a seal-agent home
    with pytest.raises(StoreError, match="chromadb is not installed"):
        Memory(home)
    monkeypatch.undo()
    m = Memory(home, create=False)
    assert m.state().edits == []
    m.close()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("x")
    with pytest.raises(StoreError, match="not a seal-agent home"):
        check_home(tmp_path / "foreign")
