"""Answering through per-document adapters (``ingest.update = route``).

Every committed document has its own LoRA, trained from the base model on that document alone, so a later
document cannot overwrite it and general text never meets a trained adapter. A question goes to the adapter of
the document owning the stored chunk most similar to it (the memory's chromadb embeddings, cosine), or to the
untouched base model when no chunk reaches the threshold. During an ingest the document being learned takes
part as a pending entry (its chunk embeddings and adapter weights, not yet committed).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from .router import K, Router, grouped

if TYPE_CHECKING:
    from .memory import Memory

PENDING = "(pending)"


@dataclass
class Pending:
    """The document an ingest is learning: its id, its chunks' embeddings and its adapter weights."""
    doc_id: str
    vectors: list
    state: dict


class DocumentRouting:
    def __init__(self, memory: "Memory", load: Callable[[str], dict], threshold: float, cache: int = 8):
        """load: adapter id -> its weights (the agent's, which checks the LoRA settings)."""
        self.memory, self.load, self.threshold, self.cache = memory, load, threshold, cache
        self._states: OrderedDict[str, dict] = OrderedDict()  # adapter id -> weights, the last few used

    def targets(self, texts: Sequence[str], pending: Optional[Pending] = None) -> list[Optional[str]]:
        """For each text: the adapter id it is routed to, PENDING, or None (the base model)."""
        adapter_of = {e.doc_id: e.adapter_id for e in self.memory.state().active()}  # a re-learned doc: the latest
        keys = [(adapter_of[d], v) for d, v in self.memory.chunk_vectors()
                if d in adapter_of and not (pending and d == pending.doc_id)]
        if pending:
            keys += [(PENDING, v) for v in pending.vectors]
        if not keys or not texts:
            return [None] * len(texts)
        router = Router(self.memory.embed, [], self.threshold, vectors=[v for _, v in keys])
        picks = router.pick(router.vectors(texts), range(len(keys)))
        return [keys[p][0] if p is not None else None for p in picks]

    def _state(self, adapter_id: str) -> dict:
        if adapter_id not in self._states:
            self._states[adapter_id] = self.load(adapter_id)
            while len(self._states) > self.cache:
                self._states.popitem(last=False)
        self._states.move_to_end(adapter_id)
        return self._states[adapter_id]

    def run(self, student, texts: Sequence[str], work: Callable[[list[int], bool], list],
            pending: Optional[Pending] = None) -> tuple[list, list[Optional[str]]]:
        """Route ``texts``, then call ``work(positions, base)`` once per adapter with that adapter
        loaded; returns the results in input order and the targets. The student is back at the base after."""
        targets = self.targets(texts, pending)
        state_of = lambda t: pending.state if t == PENDING else self._state(t)  # noqa: E731
        return run_routed(student, targets, state_of, work), targets


def run_routed(student, targets: Sequence[Optional[K]], state_of: Callable[[K], dict],
               work: Callable[[list[int], bool], list]) -> list:
    """Call ``work(positions, base)`` once per routing target with that target's adapter loaded into the student
    (``state_of(target)``; None = the base model); the results in input order. The student is reset after."""
    out: list = [None] * len(targets)
    try:
        for target, idx in grouped(targets):
            if target is not None:
                student.load(state_of(target))
            for i, r in zip(idx, work(idx, target is None)):
                out[i] = r
    finally:
        student.reset()
    return out
