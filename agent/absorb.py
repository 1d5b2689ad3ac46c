"""The one path by which a document's texts become an adapter update, for every caller: ingest, the forgetting
sweep, the knowledge benchmark and the teacher's ReST-EM rewards.

:func:`plan` decides what an update learns and how (``[absorb]`` settings); the update is a
:class:`student.innerloop.Candidate`, which the student trains either alone (:func:`absorb`, into its in-memory
adapter, with replay) or many at once (:func:`student.innerloop.evaluate`, a fresh adapter per candidate).

``[absorb] lines``: ``mixed`` (SEAL) puts a self-edit's lines and its passage in one batch plan; ``beside`` keeps
the passage's own schedule and learns the lines beside it (each step adds ``train.side_weight`` x their mean
NLL), so lines can add to what the passage teaches but cannot take its steps.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Sequence

from student.innerloop import Candidate
from student.student import Student
from student.trainer import StepCallback, TrainResult

from .config import AbsorbSettings
from .replay import ReplayMix


def split_update(texts: list[str], passages: Iterable[str], absorb: AbsorbSettings) -> tuple[list[str], list[str]]:
    """(planned texts, side texts) of an update on ``texts``; ``passages`` are the passage texts among them.

    ``beside`` plans the passages alone and moves every other text to the side; an update without a passage
    (``parse.append_passage`` off) stays as it is."""
    if absorb.lines == "mixed":
        return list(texts), []
    own = set(passages)
    planned = [t for t in texts if t in own]
    if not planned:
        return list(texts), []
    return planned, [t for t in texts if t not in own]


def plan(texts: Sequence[str], passages: Iterable[str], absorb: AbsorbSettings, settings,
         questions: Sequence[str] = (), golds: Sequence[str] = (), tag: str = "") -> Candidate:
    """The update that learns ``texts`` (``passages``: the document's own passage texts among them), with the
    ``questions`` it is measured on."""
    planned, side = split_update(list(texts), passages, absorb)
    return Candidate(planned, list(questions), list(golds), settings, tag, side)


def absorb(student: Student, update: Candidate, replay: Optional[ReplayMix] = None,
           on_step: Optional[StepCallback] = None) -> TrainResult:
    """Train the student's in-memory adapter on ``update``, rehearsing ``replay`` (earlier texts, general anchor)."""
    replay = replay or ReplayMix()
    return student.absorb(update.texts, update.settings, replay=replay.texts, on_step=on_step, anchor=replay.anchor,
                          side=update.side)


def fingerprint(absorb: AbsorbSettings, side_weight: float) -> dict:
    """What a run folder records of the absorption settings."""
    return {"absorb": {**dataclasses.asdict(absorb), "side_weight": side_weight}}
