"""Messages that worker threads post to the UI. Agent events travel wrapped, one class for all of them."""
from __future__ import annotations

from typing import Any

from textual.message import Message


class AgentEvent(Message):
    """An agent.events event (Stage, SelfEditToken, TrainStep, ProbeResult, EditCommitted, ...) from a job."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class AgentReady(Message):
    """The store is open (the models still load on first use)."""


class AgentFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class JobDone(Message):
    """A model job ended: ``result`` on success, ``error`` (one line) otherwise."""

    def __init__(self, kind: str, label: str, result: Any = None, error: str = "", cancelled: bool = False) -> None:
        super().__init__()
        self.kind, self.label, self.result, self.error, self.cancelled = kind, label, result, error, cancelled


class StoreChanged(Message):
    def __init__(self, view: Any) -> None:
        super().__init__()
        self.view = view


class Answer(Message):
    """One side of an Ask: who is "student" or "base"."""

    def __init__(self, who: str, question: str, text: str, via: str | None = None) -> None:
        """via (update = route): the title of the document whose adapter answered, "" for the base model."""
        super().__init__()
        self.who, self.question, self.text, self.via = who, question, text, via
