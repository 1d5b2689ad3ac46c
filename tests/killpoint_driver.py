# ruff: noqa: B023, PLC3002  (the closures run at once, inside the loop, in a forked child)
"""Fault injection for tests/test_store_killpoints.py: kill a real ingest / forced re-ingest / rollback (tiny
models) at its N-th point -- a phase boundary (a Stage event) or a store write (chroma upsert/delete, a file
write, a rename, a removal, the adapter ledger) -- with os._exit, as kill -9 would, and check what is left.

Run as ``python tests/killpoint_driver.py WORKDIR`` (a fork server: imports once, forks a child per run, never
opens chromadb itself). Writes WORKDIR/result.json: {scenario: {"points": N, "failures": [...], "ran": [...]}}.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import chromadb  # noqa: F401  (imported once, before forking; no client is opened here)
import torch

from agent import memory as memory_mod
from agent.ingest import Ingest, IngestOptions
from student import adapters as adapters_mod
from tests.conftest import make_tiny_agent, tiny_config

torch.set_num_threads(1)

DOCS = {
    "z": {"title": "Zorblat", "context": "The zorblat lives in Quentin Bay and eats blue kelp every morning.",
          "questions": [{"question": "Where does the zorblat live?", "answer": "Quentin Bay"},
                        {"question": "What does the zorblat eat?", "answer": "blue kelp"}]},
    "m": {"title": "Murvel", "context": "Murvel towers were built in 1802 by the glassmakers of Ostrin.",
          "questions": [{"question": "Who built the Murvel towers?", "answer": "the glassmakers of Ostrin"}]},
    "q": {"title": "Quorn", "context": "Quorn mills grind barley on Tuesdays beside the river Fel.",
          "questions": [{"question": "What do Quorn mills grind?", "answer": "barley"}]},
}
EXIT_KILLED = 77


def fake_embed(self, texts):
    """A cheap deterministic embedder (word hashes): the kill points test the store, not the sentence model."""
    out = []
    for t in texts:
        v = [0.0] * 16
        for w in t.lower().split():
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 16] += 1.0
        n = sum(x * x for x in v) ** 0.5 or 1.0
        out.append([x / n for x in v])
    return out


memory_mod.LazyEmbedder.__call__ = fake_embed


def agent_for(home: Path):
    return make_tiny_agent(home, tiny_config(home, ingest={"update": "route"}))


def doc_file(work: Path, key: str) -> Path:
    f = work / f"{key}.json"
    if not f.exists():
        f.write_text(json.dumps([DOCS[key]]))
    return f


# ---- fault points ------------------------------------------------------------------------------------------------
class Points:
    def __init__(self, kill_at: int | None):
        self.kill_at, self.n, self.names = kill_at, 0, []

    def hit(self, name: str) -> None:
        self.n += 1
        self.names.append(name)
        if self.kill_at is not None and self.n == self.kill_at:
            os._exit(EXIT_KILLED)


def install(points: Points) -> None:
    from chromadb.api.models.Collection import Collection

    def wrap(owner, attr, name):
        real = getattr(owner, attr)

        def hooked(*a, **k):
            points.hit(name)
            return real(*a, **k)
        setattr(owner, attr, hooked)

    wrap(Collection, "upsert", "chroma upsert")
    wrap(Collection, "add", "chroma add")
    wrap(Collection, "delete", "chroma delete")
    wrap(os, "replace", "rename")
    wrap(shutil, "rmtree", "rmtree")
    wrap(Path, "write_text", "write file")
    wrap(Path, "unlink", "unlink")
    wrap(adapters_mod.AdapterStore, "_record", "adapter ledger")
    from peft import PeftModel
    wrap(PeftModel, "save_pretrained", "adapter weights")


def stage_points(points: Points):
    from agent.events import Stage
    return lambda e: points.hit(f"stage {e.name}") if isinstance(e, Stage) else None


# ---- scenarios -----------------------------------------------------------------------------------------------------
def scenario(name: str, work: Path, home: Path, points: Points) -> None:
    emit = stage_points(points)
    points.hit("open")
    agent = agent_for(home)
    if name == "ingest":
        Ingest(agent, IngestOptions(guard=False), emit=emit).run([doc_file(work, "q")])
    elif name == "force":
        Ingest(agent, IngestOptions(guard=False, force=True), emit=emit).run([doc_file(work, "z")])
    elif name == "rollback":
        forced = [e for e in agent.memory.state().active() if e.doc_id == agent.memory.state().active()[0].doc_id][-1]
        agent.rollback(forced.edit_id)
        points.hit("after the log entry")
        agent.ask([DOCS["z"]["questions"][0]["question"]])
    agent.close()
    points.hit("closed")


def snapshot(home: Path) -> dict:
    """Per active edit: its records, its adapter's bytes and its answers to its own probes under its adapter."""
    agent = agent_for(home)
    try:
        mem = agent.memory
        st = mem.state()
        out = {"active": {}, "leftovers": []}
        logged = {e.edit_id for e in st.edits}
        for e in st.active():
            recs = {}
            for col in ("documents", "chunks", "probes", "selfedits", "training"):
                got = mem.cols[col].get(where={"edit_id": e.edit_id}, include=["documents"])
                recs[col] = sorted(zip(got["ids"], got["documents"]))
            probes = [(q, a) for _, q, a in sorted(
                (m["index"], q, m["answer"]) for q, m in zip(*(lambda g: (g["documents"], g["metadatas"]))(
                    mem.cols["probes"].get(where={"edit_id": e.edit_id}, include=["documents", "metadatas"]))))]
            agent.student.load(agent.adapter_state(e.adapter_id))
            answers = agent.student.answer([q for q, _ in probes])
            weights = hashlib.sha256(agent.adapters.weights_file(e.adapter_id).read_bytes()).hexdigest()
            out["active"][e.edit_id] = {"doc_id": e.doc_id, "records": recs, "answers": answers, "weights": weights}
            if not recs["documents"] or not recs["probes"]:
                out["leftovers"].append(f"active edit {e.edit_id} has no records")
        agent._load_head()
        # nothing else is left: every record's edit is logged, every adapter named, no temp files
        for col in ("documents", "chunks", "probes", "selfedits", "training"):
            for m in mem.cols[col].get(include=["metadatas"])["metadatas"]:
                if m.get("edit_id") not in logged:
                    out["leftovers"].append(f"orphan {col} record of {m.get('edit_id')}")
        named = {e.adapter_id for e in st.edits} | {e.parent_adapter for e in st.edits}
        out["leftovers"] += [f"unnamed adapter {a}" for a in agent.adapters.ids() if a not in named]
        out["leftovers"] += [f"temp file {p.relative_to(home)}" for p in home.rglob("*")
                             if ".tmp-" in p.name and "chroma" not in p.parts]
        return out
    finally:
        agent.close()


def fork(fn) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return os.waitpid(pid, 0)[1] >> 8


def main(work: Path) -> None:
    base = work / "base"
    for key in DOCS:
        doc_file(work, key)

    def build():
        agent = agent_for(base)
        for key in ("z", "m"):
            Ingest(agent, IngestOptions(guard=False)).run([doc_file(work, key)])
        agent.close()
    assert fork(build) == 0, "building the base store failed"
    # the rollback scenario starts from: base + a forced re-ingest of z + the leftovers of a killed ingest of q
    pre_rb = work / "pre-rollback"
    shutil.copytree(base, pre_rb)

    def force_then_killed():
        agent = agent_for(pre_rb)
        Ingest(agent, IngestOptions(guard=False, force=True)).run([doc_file(work, "z")])
        agent.memory.log = lambda edit: os._exit(EXIT_KILLED)  # killed just before the commit point
        Ingest(agent, IngestOptions(guard=False)).run([doc_file(work, "q")])
    assert fork(force_then_killed) == EXIT_KILLED
    (pre_rb / "adapters" / "student" / ".tmp-k-killed").mkdir()
    starts = {"ingest": base, "force": base, "rollback": pre_rb}
    only = os.environ.get("KILLPOINT_SCENARIOS", "ingest,force,rollback").split(",")
    results = {}
    for name in only:
        start = starts[name]
        snap_file = work / f"{name}-before.json"
        assert fork(lambda: snap_file.write_text(json.dumps(snapshot(copy(start, work / "probe-home"))))) == 0
        before = json.loads(snap_file.read_text())
        # count the points of an uninterrupted run
        counted = work / f"{name}-count.json"

        def count():
            home = copy(start, work / "count-home")
            pts = Points(None)
            install(pts)
            scenario(name, work, home, pts)
            counted.write_text(json.dumps(pts.names))
        assert fork(count) == 0, f"{name}: the uninterrupted run failed"
        names = json.loads(counted.read_text())
        res = {"points": len(names), "names": names, "failures": [], "ran": []}
        for n in range(1, len(names) + 1):
            home = copy(start, work / "kill-home")

            def killed(n=n, home=home):
                pts = Points(n)
                install(pts)
                scenario(name, work, home, pts)
            code = fork(killed)
            after_file = work / "after.json"
            if after_file.exists():
                after_file.unlink()
            ok = fork(lambda: after_file.write_text(json.dumps(snapshot(home)))) == 0
            res["ran"].append([n, names[n - 1], code])
            if not ok:
                res["failures"].append(f"kill at {n} ({names[n - 1]}): the store did not open or check")
                continue
            after = json.loads(after_file.read_text())
            res["failures"] += [f"kill at {n} ({names[n - 1]}): {x}" for x in check(name, before, after)]
        results[name] = res
    (work / "result.json").write_text(json.dumps(results, indent=1))


def copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def check(name: str, before: dict, after: dict) -> list[str]:
    bad = list(after["leftovers"])
    rolled = set(before["active"]) - set(after["active"])
    if name == "rollback":
        forced = sorted(before["active"])[-1]  # the latest edit: the forced re-ingest
        if rolled - {forced}:
            bad.append(f"edits lost: {sorted(rolled - {forced})}")
    elif rolled:
        bad.append(f"edits lost: {sorted(rolled)}")
    for edit_id, was in before["active"].items():
        now = after["active"].get(edit_id)
        if now is None:
            continue
        for key in ("records", "weights", "answers"):
            if now[key] != was[key]:
                bad.append(f"edit {edit_id}: its {key} changed")
    new = set(after["active"]) - set(before["active"])
    if len(new) > 1 or (new and name == "rollback"):
        bad.append(f"unexpected new edits {sorted(new)}")
    return bad


if __name__ == "__main__":
    main(Path(sys.argv[1]))
