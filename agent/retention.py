"""The user's own forgetting history, built from the store's edit log.

Each committed ingest records a retention row (``Edit.retention``: doc_id -> probe accuracy after that edit, on
a capped subset of every earlier document's probes plus all of its own). Rows are the active commits in order;
columns are their documents in the same order, so the diagonal is "just learned" and the cells below it show
what later edits did to it. Cells for documents not yet learned, or without probes, are None. There is no row
before the first edit (the store never measured all documents on the untouched model).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .forgetting_metrics import Metrics, metrics, with_unknown_start


@dataclass
class StoreMatrix:
    edit_ids: list[str] = field(default_factory=list)      # one per row and per column (the commit that learned it)
    doc_ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    rows: list[list[Optional[float]]] = field(default_factory=list)  # rows[k][i]: after commit k+1, document i+1
    before: list[float] = field(default_factory=list)      # each document's probe accuracy just before its edit

    def metrics(self) -> Optional[Metrics]:
        """Metrics of the history (FWT is NaN: no row before the first edit); None with no commits."""
        return metrics(with_unknown_start(self.rows)) if self.rows else None

    def to_dict(self) -> dict:
        m = self.metrics()
        return {"edit_ids": self.edit_ids, "doc_ids": self.doc_ids, "titles": self.titles, "rows": self.rows,
                "before": self.before, "metrics": m.to_dict() if m else None}


def store_matrix(memory) -> StoreMatrix:
    """The forgetting matrix of the active commits of ``memory`` (an agent.memory.Memory)."""
    commits = memory.state().active()
    out = StoreMatrix(edit_ids=[e.edit_id for e in commits], doc_ids=[e.doc_id for e in commits],
                      titles=[e.title for e in commits], before=[e.before for e in commits])
    for k, edit in enumerate(commits):
        out.rows.append([_accuracy(edit.retention.get(d)) if i <= k else None for i, d in enumerate(out.doc_ids)])
    return out


def matrix_from_store(memory) -> tuple[list[str], list[list[Optional[float]]]]:
    """(document titles, R rows): row k = accuracies after the k-th active commit; None = not learned yet / unknown."""
    m = store_matrix(memory)
    return m.titles, m.rows


def _accuracy(x) -> Optional[float]:
    return None if x is None else float(x)
