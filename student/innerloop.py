"""The inner loop: absorb each candidate self-edit into a fresh LoRA, then answer its questions.

One API, two engines:

- ``"sequential"``: the SEAL-style reference. One peft LoRA (wrapped once through :class:`Student`), reset to a
  fresh seeded zero-init adapter per candidate, trained with :func:`student.trainer.train_adapter`, then batched
  greedy answers and gold-answer NLL with the same code the Student uses.
- ``"batched"``: the hand-written multi-LoRA of :mod:`student.multilora` — ``group`` candidates trained in the
  same forward/backward passes, each in its own adapter, then answered in one routed generation pass.

Each candidate starts from a fresh LoRA seeded by ``settings.seed``, so results do not depend on the order of
the candidates nor on the engine (within float tolerance). ``model`` is a plain (non-peft) model; it is handed
back unchanged (same modules, requires_grad flags and train/eval mode).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

from peft import PeftModel

from .config import AnswerSettings, LoraSettings, TrainSettings
from .distill import StudyItem, TargetCache
from .grading import Grade, grade, mean_grade
from .batching import model_device
from .multilora import MultiLoRA, answer_many, answer_nll_many, train_many
from .student import Student
from .trainer import TrainResult

ENGINES = ("auto", "sequential", "batched")
ProgressCallback = Callable[[int, int], None]
"""on_progress(done, total): candidates evaluated so far."""


@dataclass
class Candidate:
    """One self-edit evaluation: train a fresh adapter on ``texts``, then ask ``questions``."""

    texts: list[str]  # training texts (self-edit lines + passage); [] = no update ("base" row)
    questions: list[str]
    golds: list[str]
    settings: TrainSettings = field(default_factory=TrainSettings)  # lr / epochs / seed ... per candidate
    tag: str = ""  # caller's label (e.g. "passage:12:seed0")
    side: list[str] = field(default_factory=list)  # learned beside ``texts``: each step adds settings.side_weight
                                                   # x their mean NLL (a self-edit's lines beside its passage)
    study: list[StudyItem] = field(default_factory=list)  # planned with ``texts``, learned by context distillation

    def __post_init__(self) -> None:
        if len(self.questions) != len(self.golds):
            raise ValueError(f"{len(self.questions)} questions but {len(self.golds)} gold answers")

    @property
    def n_texts(self) -> int:
        """Every text the update learns: planned and beside (study items not counted)."""
        return len(self.texts) + len(self.side)

    @property
    def trains(self) -> bool:
        """Whether the candidate updates the adapter at all (texts or study items)."""
        return bool(self.texts or self.study)


@dataclass
class CandidateResult:
    """Answers, grades and training record of one candidate.

    ``seconds`` is the candidate's own wall time in the sequential engine and its share of the group's wall
    time (group time / group size) in the batched engine.
    """

    tag: str
    answers: list[str]
    grades: list[Grade]
    accuracy: float  # mean 'contains'
    f1: float
    em: float
    nll: float  # mean gold-answer NLL per token after the update (dense reward)
    losses: list[float]
    steps: int
    tokens: int
    seconds: float


def make_result(
    candidate: Candidate, answers: list[str], nlls: list[float], train: TrainResult, seconds: float
) -> CandidateResult:
    """Grade ``answers`` against the candidate's golds and pack everything into a :class:`CandidateResult`."""
    grades = [grade(a, g) for a, g in zip(answers, candidate.golds)]
    mean = mean_grade(grades)
    finite = [x for x in nlls if not math.isnan(x)]
    return CandidateResult(
        tag=candidate.tag,
        answers=answers,
        grades=grades,
        accuracy=mean.contains,
        f1=mean.f1,
        em=mean.em,
        nll=sum(finite) / len(finite) if finite else math.nan,
        losses=list(train.losses),
        steps=train.steps,
        tokens=train.tokens,
        seconds=seconds,
    )


@contextlib.contextmanager
def preserved(model) -> Iterator[None]:
    """Restore ``model``'s requires_grad flags and train/eval mode on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


@contextlib.contextmanager
def peft_student(model, tokenizer, lora: LoraSettings, answer: AnswerSettings) -> Iterator[Student]:
    """A :class:`Student` on ``model`` for the duration of the block; the LoRA layers are removed afterwards."""
    with preserved(model):
        student = Student(model, tokenizer, lora, answer)
        try:
            yield student
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                student.model.unload()  # puts the original nn.Linear modules back into ``model``
            if hasattr(model, "peft_config"):
                del model.peft_config


def evaluate_sequential(
    model,
    tokenizer,
    candidates: Sequence[Candidate],
    lora: LoraSettings,
    answer: AnswerSettings,
    on_progress: Optional[ProgressCallback] = None,
    targets: Optional[TargetCache] = None,
) -> list[CandidateResult]:
    """SEAL-style reference: one candidate at a time in one peft LoRA, reset to a fresh seeded adapter each time."""
    results: list[CandidateResult] = []
    targets = TargetCache() if targets is None else targets
    with peft_student(model, tokenizer, lora, answer) as student:
        for done, cand in enumerate(candidates, 1):
            start = time.perf_counter()
            student.reset(cand.settings.seed)
            train = (student.absorb(cand.texts, cand.settings, side=cand.side, study=cand.study, targets=targets)
                     if cand.trains else TrainResult())
            answers = student.answer(cand.questions) if cand.questions else []
            nlls = student.answer_nll(cand.questions, cand.golds) if cand.questions else []
            results.append(make_result(cand, answers, nlls, train, time.perf_counter() - start))
            if on_progress is not None:
                on_progress(done, len(candidates))
    return results


def evaluate_batched(
    model,
    tokenizer,
    candidates: Sequence[Candidate],
    lora: LoraSettings,
    answer: AnswerSettings,
    group: int = 8,
    on_progress: Optional[ProgressCallback] = None,
    max_tokens: Optional[int] = None,
    targets: Optional[TargetCache] = None,
) -> list[CandidateResult]:
    """``group`` candidates at a time in one :class:`MultiLoRA`: joint training, then one routed answer pass.

    Groups are formed longest schedule first (results still come back in the order of ``candidates``).

    Generation batches hold ``answer.batch_size`` rows per adapter of the group, so a group whose candidates
    have at most ``answer.batch_size`` questions each is answered in one generation pass. Gold-answer NLL
    batches (full logits: memory grows with rows) do the same on a GPU and hold ``answer.batch_size`` rows
    on a CPU, as in the sequential engine. Training micro-batches: :func:`student.multilora.train_many`.
    """
    # longest schedules first: a group runs as many steps as its longest member, so similar ones go together
    order = sorted(range(len(candidates)), key=lambda i: -estimated_steps(candidates[i]))
    results: list[Optional[CandidateResult]] = [None] * len(candidates)
    slots = min(group, len(candidates))
    done = 0
    targets = TargetCache() if targets is None else targets
    with preserved(model), MultiLoRA(model, lora, slots) as multi:
        for first in range(0, len(order), slots):
            start = time.perf_counter()
            chunk = [candidates[i] for i in order[first : first + slots]]
            for k, cand in enumerate(chunk):
                multi.reset(k, cand.settings.seed)
            trains = train_many(
                multi, tokenizer, [c.texts for c in chunk], [c.settings for c in chunk], max_tokens=max_tokens,
                side=[c.side for c in chunk], study=[c.study for c in chunk], targets=targets)
            rows = answer.batch_size * len(chunk)
            nll_rows = rows if model_device(model).type == "cuda" else answer.batch_size
            questions = [c.questions for c in chunk]
            answers = answer_many(multi, tokenizer, questions, answer, rows)
            nlls = answer_nll_many(multi, tokenizer, questions, [c.golds for c in chunk], answer, nll_rows)
            share = (time.perf_counter() - start) / len(chunk)
            for k, (i, cand) in enumerate(zip(order[first : first + slots], chunk)):
                results[i] = make_result(cand, answers[k], nlls[k], trains[k], share)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, len(candidates))
    return [r for r in results if r is not None]


def estimated_steps(candidate: Candidate) -> int:
    """Optimizer steps the candidate's update takes (one text or study item per sequence)."""
    s = candidate.settings
    return math.ceil((len(candidate.texts) + len(candidate.study)) / s.batch_size) * s.epochs


def evaluate(
    model,
    tokenizer,
    candidates: Sequence[Candidate],
    lora: LoraSettings,
    answer: AnswerSettings,
    engine: str = "auto",
    group: int = 8,
    on_progress: Optional[ProgressCallback] = None,
    targets: Optional[TargetCache] = None,
) -> list[CandidateResult]:
    """Evaluate every candidate from a fresh LoRA; results in the order of ``candidates``.

    Candidates' ``study`` items are distilled against the base model's targets, computed once per distinct item
    for the whole call (or taken from ``targets``, a :class:`~student.distill.TargetCache` of this base model that
    the caller keeps across calls).

    engine: "sequential" (SEAL-style reference), "batched" (multi-LoRA, ``group`` candidates at a time) or
    "auto" (= batched: on a CPU too, since its training passes are capped at 1024 tokens — a batched group
    of 8 at batch 8 on the 135M model peaks at 5.7 GB, the sequential engine at 5.8 GB; with the earlier
    16k-token cap it reached ~20 GB).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if isinstance(model, PeftModel):
        raise TypeError("evaluate takes a plain transformers model; got a PeftModel")
    if group <= 0:
        raise ValueError(f"group must be positive, got {group}")
    candidates = list(candidates)
    if not candidates:
        return []
    if engine == "sequential":
        return evaluate_sequential(model, tokenizer, candidates, lora, answer, on_progress, targets)
    return evaluate_batched(model, tokenizer, candidates, lora, answer, group, on_progress, targets=targets)
