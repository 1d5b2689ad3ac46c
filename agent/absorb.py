"""The one path by which a document becomes an adapter update, for every caller: ingest, the forgetting sweep,
the knowledge benchmark and the teacher's ReST-EM rewards.

A document gives one :class:`Material` per chunk: its context (title + chunk), the training texts (the
self-edit's texts and the passage) and, for context distillation, question–answer pairs about it. :func:`plan`
turns the material into the update — a :class:`student.innerloop.Candidate` — by ``[absorb] method``:

- ``sft``: next-token training on the texts. ``[absorb] lines``: ``mixed`` (SEAL) puts a self-edit's lines and
  its passage in one batch plan; ``beside`` keeps the passage's own schedule and learns the lines beside it (each
  step adds ``train.side_weight`` x their mean NLL).
- ``distill``: context distillation (Knowledge Modules, arXiv 2503.08727; Cartridges' self-study): every piece of
  study material is a :class:`student.distill.StudyItem` whose target is the base model reading it with the
  chunk in its context; the student, without the chunk, learns to predict what the base model predicts with it.
  ``[absorb] study`` picks the material: ``passage`` (the chunk's own text, read after the chunk), ``texts`` (the
  self-edit's lines, likewise), ``questions`` (questions the teacher writes, answered by the base model with the
  chunk in context) and ``cues`` (each sentence's first half as a question, its rest as the answer).

The student then trains the update alone (:func:`absorb`, into its in-memory adapter, with replay) or many at
once (:func:`student.innerloop.evaluate`, a fresh adapter per candidate).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

from student.distill import StudyItem, qa_study_item
from student.prompts import CONTEXT_SEPARATOR
from student.innerloop import Candidate
from student.student import Student
from student.trainer import StepCallback, TrainResult
from teacher.study import cue_questions

from .config import AbsorbSettings
from .replay import ReplayMix

AnswerFn = Callable[[list[str], list[str]], list[str]]  # (questions, contexts) -> open-book answers
# Study questions are sampled twice per chunk at temperature 0.7: at the teacher's 0.3 the embedded model often
# degenerates into an empty numbered list, and two samples give the parser more distinct questions to keep.
QUESTION_SAMPLES, QUESTION_TEMPERATURE = 2, 0.7


@dataclass
class Material:
    """What one chunk of a document gives its update."""
    context: str                                   # "{title}\n{chunk}": the passage text, read as context
    texts: list[str]                               # training texts (a self-edit's texts and the passage)
    qa: list[tuple[str, str]] = field(default_factory=list)  # (question, answer) pairs about the chunk (distill)


def split_update(texts: list[str], passages: Iterable[str], absorb: AbsorbSettings) -> tuple[list[str], list[str]]:
    """(planned texts, side texts) of an sft update on ``texts``; ``passages`` are the passage texts among them.

    ``beside`` plans the passages alone and moves every other text to the side; an update without a passage
    (``parse.append_passage`` off) stays as it is."""
    if absorb.lines == "mixed":
        return list(texts), []
    own = set(passages)
    planned = [t for t in texts if t in own]
    if not planned:
        return list(texts), []
    return planned, [t for t in texts if t not in own]


def study_pairs(chunk: str, questions: Sequence[str], answers: Sequence[str], absorb: AbsorbSettings
                ) -> list[tuple[str, str]]:
    """The question–answer material of a chunk: the teacher's questions with their open-book answers, then the
    sentence cues (as ``[absorb] study`` asks)."""
    pairs = [(q, a) for q, a in zip(questions, answers) if a.strip()] if "questions" in absorb.study_set else []
    if "cues" in absorb.study_set:
        pairs += cue_questions(chunk)
    return pairs


def write_questions(teacher, docs: Sequence[tuple[str, str]], absorb: AbsorbSettings,
                    seed: Optional[int] = None) -> list[list[str]]:
    """The teacher's study questions for each (title, chunk), in one batched generate call."""
    return teacher.write_questions_many(docs, n=absorb.questions, samples=QUESTION_SAMPLES,
                                        temperature=QUESTION_TEMPERATURE, seed=seed)


def write_material(teacher, answer: AnswerFn, docs: Sequence[tuple[str, str, str, list[str]]],
                   absorb: AbsorbSettings) -> list[Material]:
    """Material for each (title, chunk, context, texts): for distill with ``questions``, the teacher writes
    ``absorb.questions`` questions per chunk and ``answer`` (the base model, open-book) answers them in one batch."""
    questions: list[list[str]] = [[] for _ in docs]
    if absorb.method == "distill" and "questions" in absorb.study_set and absorb.questions > 0:
        questions = write_questions(teacher, [(title, chunk) for title, chunk, _, _ in docs], absorb)
    flat = [(i, q) for i, qs in enumerate(questions) for q in qs]
    answers = answer([q for _, q in flat], [docs[i][2] for i, _ in flat]) if flat else []
    per_doc: list[list[str]] = [[] for _ in docs]
    for (i, _), a in zip(flat, answers):
        per_doc[i].append(a)
    return [Material(context, list(texts),
                     study_pairs(chunk, questions[i], per_doc[i], absorb) if absorb.method == "distill" else [])
            for i, (_title, chunk, context, texts) in enumerate(docs)]


def needs_self_edits(absorb: AbsorbSettings) -> bool:
    """Whether the update learns the teacher's self-edits (sft, or distill with ``texts``)."""
    return absorb.method == "sft" or "texts" in absorb.study_set


def plan(material: Sequence[Material], absorb: AbsorbSettings, settings, tokenizer=None,
         questions: Sequence[str] = (), golds: Sequence[str] = (), tag: str = "", question_format: str = "chat"
         ) -> Candidate:
    """The update that learns ``material`` (one per chunk), measured on ``questions``."""
    if absorb.method == "sft":
        texts = list(dict.fromkeys(t for m in material for t in m.texts))
        planned, side = split_update(texts, [m.context for m in material], absorb)
        return Candidate(planned, list(questions), list(golds), settings, tag, side)
    items: list[StudyItem] = []
    for m in material:
        keep = {"passage": lambda t: t == m.context, "texts": lambda t: t != m.context}
        wanted = [keep[s] for s in ("passage", "texts") if s in absorb.study_set]
        items += [StudyItem("", m.context + CONTEXT_SEPARATOR, t) for t in m.texts if any(w(t) for w in wanted)]
        if {"questions", "cues"} & set(absorb.study_set):
            items += [qa_study_item(tokenizer, q, a, m.context, question_format) for q, a in m.qa]
    return Candidate([], list(questions), list(golds), settings, tag, study=list(dict.fromkeys(items)))


def absorb(student: Student, update: Candidate, replay: Optional[ReplayMix] = None,
           on_step: Optional[StepCallback] = None) -> TrainResult:
    """Train the student's in-memory adapter on ``update``, rehearsing ``replay`` (earlier texts, general anchor)."""
    replay = replay or ReplayMix()
    return student.absorb(update.texts, update.settings, replay=replay.texts, on_step=on_step, anchor=replay.anchor,
                          side=update.side, study=update.study)


def fingerprint(absorb: AbsorbSettings, side_weight: float) -> dict:
    """What a run folder records of the absorption settings."""
    return {"absorb": {**dataclasses.asdict(absorb), "side_weight": side_weight}}
