"""Augmented prediction: greedy answers under the identity and each invertible augmentation, mapped back, voted.

For each test input and each augmentation, the whole task (demonstrations and query) is transformed, the student
completes the prompt greedily, the completion is parsed into a grid and mapped back with the inverse. The vote
counts identical grids; ties go to the grid the identity predicted, then to the first seen. The top two are the
pass@2 attempts. ``answer_fn(prompts, max_new_tokens) -> completions`` is any batched greedy generator (see
:mod:`agent.lab.arc.solve` for the Student and multi-LoRA ones), so one call serves every augmentation and test.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .augment import INVERTIBLE, Augmentation, augment_examples
from .tasks import Example, Grid, Task, grid_to_text, pass_at_2, prompt_text, shape, text_to_grid

AnswerFn = Callable[[list[str], int], list[str]]
"""answer_fn(prompts, max_new_tokens) -> greedy completions (new text only), one per prompt."""


@dataclass(frozen=True)
class Query:
    test_index: int
    augmentation: Augmentation
    prompt: str


@dataclass
class Prediction:
    """One test input's vote: candidates (grid, votes) best first, the pass@2 attempts, and the raw completions."""

    test_index: int
    candidates: list[tuple[Grid, int]]
    completions: list[tuple[str, str]] = field(default_factory=list)  # (augmentation name, completion)

    @property
    def attempts(self) -> list[Grid]:
        return [g for g, _ in self.candidates[:2]]


def queries(task: Task, augmentations: Sequence[Augmentation] = INVERTIBLE) -> list[Query]:
    """A prompt per (test input, augmentation): the augmented demonstrations and query (augmentations whose grids
    would exceed 30x30 are skipped)."""
    out = []
    for i, test in enumerate(task.test):
        for aug in augmentations:
            grids = augment_examples(aug, task.train + (Example(test.input),))
            if grids is not None:
                out.append(Query(i, aug, prompt_text(grids[:-1], grids[-1].input)))
    return out


def vote(candidates: Sequence[Optional[Grid]]) -> list[tuple[Grid, int]]:
    """Distinct valid grids with their counts, most votes first; ties by first appearance (put the identity's
    prediction first to let it win ties). None (unparseable) does not vote."""
    valid = [tuple(map(tuple, g)) for g in candidates if g is not None]
    counts = Counter(valid)
    first = {}
    for i, g in enumerate(valid):
        first.setdefault(g, i)
    return sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]]))


def decide(task: Task, qs: Sequence[Query], completions: Sequence[str]) -> list[Prediction]:
    """Parse, map back and vote the completions of :func:`queries` (in the same order); one Prediction per test."""
    per_test: dict[int, list[tuple[Query, str]]] = {i: [] for i in range(len(task.test))}
    for q, text in zip(qs, completions):
        per_test[q.test_index].append((q, text))
    out = []
    for i, pairs in per_test.items():
        # the identity's answer first: it wins ties
        pairs = sorted(pairs, key=lambda p: p[0].augmentation.name != "identity")
        grids = []
        for q, text in pairs:
            grid = text_to_grid(text)
            grids.append(None if grid is None else q.augmentation.invert(grid))
        out.append(Prediction(i, vote(grids), [(q.augmentation.name, text) for q, text in pairs]))
    return out


def max_new_tokens_for(task: Task, count_tokens: Optional[Callable[[str], int]] = None, slack: int = 8) -> int:
    """Generation budget for the task's answers: the tokens of a square grid as wide as the largest side among the
    demonstrations' outputs and the test inputs (a rotation may swap height and width), plus ``slack`` (eos).
    Without ``count_tokens``, two tokens a cell (digit, then space or newline): a 30x30 grid is ~1800 tokens."""
    side = max(max(shape(g)) for g in [ex.output for ex in task.train] + [ex.input for ex in task.test])
    square = tuple((0,) * side for _ in range(side))
    n = count_tokens(grid_to_text(square)) if count_tokens is not None else 2 * side * side
    return n + slack


def predict(task: Task, answer_fn: AnswerFn, augmentations: Sequence[Augmentation] = INVERTIBLE,
            max_new_tokens: Optional[int] = None) -> list[Prediction]:
    """Augmented greedy prediction and vote for every test input of ``task``, in one ``answer_fn`` call."""
    qs = queries(task, augmentations)
    budget = max_new_tokens or max_new_tokens_for(task)
    texts = answer_fn([q.prompt for q in qs], budget) if qs else []
    return decide(task, qs, list(texts) + [""] * (len(qs) - len(texts)))


def grade(task: Task, predictions: Sequence[Prediction]) -> Optional[list[bool]]:
    """pass@2 per test input; None when a test output is unknown."""
    if any(ex.output is None for ex in task.test):
        return None
    by_test = {p.test_index: p for p in predictions}
    return [pass_at_2(by_test[i].attempts if i in by_test else [], ex.output) for i, ex in enumerate(task.test)]
