"""The memory in a chroma server (``memory.url``) behaves exactly as the embedded store: ingest, ask, history,
probe and rollback on tiny models give the same records and answers."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agent.errors import StoreError
from agent.ingest import Ingest, IngestOptions
from agent.memory import Memory

from .conftest import make_tiny_agent, tiny_config
from .test_agent_ingest import DOC, DOC2, GENERAL_Q

CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    pytest.importorskip("chromadb")
    if not CHROMA.is_file():
        pytest.skip(f"no chroma command beside {sys.executable} (the chromadb package installs it)")
    tmp = tmp_path_factory.mktemp("chroma")
    port = free_port()
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen([str(CHROMA), "run", "--path", str(tmp / "db"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"chroma server exited: {(tmp / 'server.log').read_text()[-500:]}")
                time.sleep(0.25)
        else:
            pytest.fail("chroma server did not answer its heartbeat within 30 s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def colours(texts: list[str]) -> list[list[float]]:
    """A fake sentence embedder (no MiniLM in tests): letter counts of a few distinguishing words."""
    return [[t.lower().count(w) + 0.1 for w in ("zorblat", "murvel", "kelp", "glass", "water")] for t in texts]


def scenario(tmp: Path, url: str) -> dict:
    """Two ingests, questions, a probe, a rollback, the history: everything a user sees, ids made positional."""
    home = tmp / "home"
    cfg = tiny_config(home)
    cfg.memory.url = url
    agent = make_tiny_agent(home, cfg)
    agent.memory.embed = colours
    files = []
    for name, doc in (("z.json", DOC), ("m.json", DOC2)):
        files.append(tmp / name)
        files[-1].write_text(json.dumps([doc]))
    [a] = Ingest(agent, IngestOptions(guard=False)).run([files[0]])
    [b] = Ingest(agent, IngestOptions(guard=False)).run([files[1]])
    zq = [q["question"] for q in DOC["questions"]]
    seen = {"ask": agent.ask(zq + [DOC2["questions"][0]["question"], GENERAL_Q]),
            "routes": agent.routes(zq + [GENERAL_Q]),
            "probe": [{k: v for k, v in row.items() if k not in ("doc_id", "edit_id")} for row in agent.probe()],
            "documents": [(d["title"], d["text"], d["status"]) for d in agent.memory.documents()],
            "stream": agent.memory.training_stream()}
    seen["rollback"] = agent.rollback(b.edit_id)
    seen["after_rollback"] = agent.ask(zq + [DOC2["questions"][0]["question"]])
    seen["history"] = agent.history()
    seen["search"] = [(h["title"], h["text"]) for h in agent.memory.search("zorblat kelp", n=2)]
    agent.close()
    # positional names for the random edit, document and adapter ids
    ids: dict[str, str] = {}
    for key in ("edit_id", "doc_id", "adapter_id", "target"):
        for row in seen["history"]:
            if row[key]:
                ids.setdefault(row[key], f"{key}{len(ids)}")
    for row in seen["history"]:
        for key in ("edit_id", "doc_id", "adapter_id", "target"):
            row[key] = ids.get(row[key], row[key])
        row.pop("created"), row.pop("seconds")
    rb = seen["rollback"]
    seen["rollback"] = {"rollback": ids.get(rb["rollback"]), "undone": [ids.get(x) for x in rb["undone"]],
                        "head": ids.get(rb["head"], rb["head"])}
    seen["reason"] = [r.pop("reason").startswith("undid ") for r in seen["history"]]
    seen["edits"] = (a.status, b.status)
    return seen


def test_server_store_behaves_as_the_embedded_one(tmp_path, chroma_url):
    embedded = scenario(tmp_path / "embedded", "")
    served = scenario(tmp_path / "server", chroma_url)
    assert served == embedded
    assert [r["kind"] for r in served["history"]] == ["commit", "commit", "rollback"]
    assert [r["status"] for r in served["history"]] == ["active", "rolled_back", "rollback"]
    assert served["documents"] == [("Zorblat", DOC["context"], "active"), ("Murvel", DOC2["context"], "active")]
    assert served["routes"] == ["Zorblat", "Zorblat", ""]
    assert served["search"][0][0] == "Zorblat"
    assert not (tmp_path / "server" / "home" / "chroma").exists()  # the records went to the server


def test_unreachable_server_is_one_line(tmp_path):
    pytest.importorskip("chromadb")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError, match="no chroma server answers.*chroma run"):
        Memory(tmp_path / "home", url=url)
    with pytest.raises(StoreError, match="not an http"):
        Memory(tmp_path / "home2", url="ftp://somewhere")
