"""Typed events emitted by every long job; the CLI (rich) and the TUI (textual) render the same types.

A job takes an ``emit`` callable; the agent turns the plain callbacks of teacher/ and student/ into these.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Union


@dataclass(frozen=True)
class Stage:
    """A named phase of a job started ("load", "generate", "train", "probe", "commit", ...)."""
    name: str
    detail: str = ""
    total: int | None = None


@dataclass(frozen=True)
class DocumentsQueued:
    """The documents an ingest will learn, in order, as (doc_id, title) pairs (before the first one starts)."""
    documents: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DocumentRead:
    doc_id: str
    title: str
    path: str
    chunks: int
    probes: int


@dataclass(frozen=True)
class SelfEditToken:
    """Text of a self-edit as it is being generated (text_so_far grows)."""
    chunk: int
    sample: int
    text_so_far: str


@dataclass(frozen=True)
class SelfEditProposed:
    chunk: int
    sample: int
    family: str
    texts: tuple[str, ...]
    directives: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainStep:
    step: int
    total: int
    epoch: int
    loss: float


@dataclass(frozen=True)
class ProbeResult:
    """One probe question answered by the student; phase is "before" or "after"."""
    phase: str
    doc_id: str
    question: str
    gold: str
    answer: str
    correct: bool
    f1: float


@dataclass(frozen=True)
class ProbeSummary:
    phase: str
    doc_id: str
    accuracy: float
    f1: float
    nll: float
    n: int


@dataclass(frozen=True)
class EditCommitted:
    edit_id: str
    doc_id: str
    adapter_id: str
    before: float
    after: float
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class EditRejected:
    edit_id: str
    doc_id: str
    before: float
    after: float
    reason: str


@dataclass(frozen=True)
class RetentionRow:
    """Accuracy on every stored document's probes after an edit (one row of the forgetting matrix)."""
    edit_id: str
    accuracies: dict


@dataclass(frozen=True)
class Progress:
    """Generic progress for benchmarks and sweeps."""
    task: str
    done: int
    total: int
    detail: str = ""


@dataclass(frozen=True)
class Message:
    level: str  # "info" | "warning"
    text: str


Event = Union[Stage, DocumentsQueued, DocumentRead, SelfEditToken, SelfEditProposed, TrainStep, ProbeResult, ProbeSummary,
              EditCommitted, EditRejected, RetentionRow, Progress, Message]
Emit = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The do-nothing emitter."""


def to_dict(event: Event) -> dict:
    return {"type": type(event).__name__, **asdict(event)}
