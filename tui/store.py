"""What the panes show, read from the agent's store in a worker thread (no textual here, no models loaded)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class DocRow:
    doc_id: str
    title: str
    status: str                    # active | rolled_back (committed ones) | rejected (by the guard, never learned)
    probes: int
    learned: Optional[float]       # probe accuracy just after it was learned
    latest: Optional[float]        # the current student's accuracy, from the head commit's retention row
    edit_id: str = ""
    reason: str = ""               # the edit's reason: the guard's verdict (why it was kept or rejected)
    before: Optional[float] = None  # probe accuracy before the edit
    after: Optional[float] = None   # and after it (for a rejected edit: what the guard saw)


@dataclass
class StoreView:
    history: list[dict] = field(default_factory=list)
    documents: list[DocRow] = field(default_factory=list)
    matrix: Any = None             # agent.retention.StoreMatrix
    metrics: Any = None            # agent.forgetting_metrics.Metrics or None
    head: str = ""
    mode: str = "continue"         # the store's update mode (agent.update_mode)


def read_store(agent) -> StoreView:
    """History, documents with their accuracies, and the forgetting matrix of the active commits."""
    from agent.retention import store_matrix

    memory = agent.memory
    st = memory.state()
    commits = {e.edit_id: e for e in st.edits if e.kind == "commit"}
    active = st.active()
    head_row = active[-1].retention if active else {}
    counts = {d: len(p) for d, p in memory.probes(set(commits)).items()} if commits else {}
    docs = []
    for d in memory.documents(include_inactive=True):
        edit = commits.get(d["edit_id"])
        n = counts.get(d["doc_id"], 0)
        latest = head_row.get(d["doc_id"]) if d["status"] == "active" and n else None
        docs.append(DocRow(d["doc_id"], d["title"], d["status"], n, edit.after if edit and n else None, latest,
                           d["edit_id"], edit.reason if edit else "", edit.before if edit else None,
                           edit.after if edit else None))
    docs = with_rejections(docs, st.edits)
    matrix = store_matrix(memory)
    return StoreView(agent.history(), docs, matrix, matrix.metrics(), st.head, agent.update_mode)


def with_rejections(docs: list[DocRow], edits) -> list[DocRow]:
    """The documents plus one "rejected" row for each document whose latest attempt the guard rejected and that
    is not learned now (a rejected re-learn of an active document leaves its row alone; a rolled-back one is
    replaced), in log order."""
    seq = {e.edit_id: e.seq for e in edits}
    latest: dict[str, Any] = {}
    for e in edits:
        if e.kind in ("commit", "reject"):
            latest[e.doc_id] = e
    active = {d.doc_id for d in docs if d.status == "active"}
    rejected = [e for e in latest.values() if e.kind == "reject" and e.doc_id not in active]
    if not rejected:
        return docs
    gone = {e.doc_id for e in rejected}
    rows = [(seq.get(d.edit_id, 0), d) for d in docs if d.doc_id not in gone]
    rows += [(e.seq, DocRow(e.doc_id, e.title, "rejected", 0, None, None, e.edit_id, e.reason, e.before, e.after))
             for e in rejected]
    return [d for _, d in sorted(rows, key=lambda r: r[0])]


def write_inbox(home: Path, text: str) -> Path:
    """Pasted text -> ``<home>/inbox/<slug>-<hash>.md`` (written atomically), titled by its first line."""
    from agent.errors import BadInput
    from agent.util import atomic_write

    lines = text.strip().splitlines()
    if not lines:
        raise BadInput("the pasted text is empty")
    title = lines[0].strip().lstrip("#").strip()[:120] or "Pasted text"
    body = "\n".join(lines[1:]).strip() or title
    content = f"# {title}\n\n{body}\n"
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "pasted"
    path = Path(home) / "inbox" / f"{slug}-{hashlib.sha256(content.encode()).hexdigest()[:8]}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, content)
    return path


def printable(text: str, limit: int | None = None) -> str:
    """Document text or model output made safe to show: escape sequences (ANSI, OSC links and titles) removed,
    control characters replaced, optionally cut to ``limit`` characters (show it as a Text, never as markup)."""
    from agent.render import safe_text
    return safe_text(str(text).replace("\t", " "), limit=limit)


def one_line(text: str, limit: int | None = None) -> str:
    return printable(" ".join(str(text).split()), limit)


def fmt_acc(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:.2f}"
