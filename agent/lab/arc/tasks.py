"""ARC tasks: loading, grids as text for the student's tokenizer, parsing a predicted grid, grading.

A grid is a tuple of rows, each a tuple of colours 0-9 (hashable, so predictions can be counted in a vote).
As text, a grid is one row per line, colours as digits separated by spaces. A prompt shows the demonstrations
as "Input:\\n<grid>\\nOutput:\\n<grid>" blocks separated by a blank line, then the query's input, and ends at
"Output:\\n"; the completion is the output grid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

Grid = tuple[tuple[int, ...], ...]
MAX_SIDE = 30

DATA_ENV = "SEAL_AGENT_ARC_DATA"
SPLITS = {
    # name: (challenges file, solutions file)
    "training": ("arc-agi_training_challenges.json", "arc-agi_training_solutions.json"),
    "evaluation": ("arc-agi_evaluation_challenges.json", "arc-agi_evaluation_solutions.json"),
    "seal-training": ("arc-agi_training_challenges_filtered_1B_training_set.json",
                      "arc-agi_training_solutions_filtered_1B_training_set.json"),
    "seal-evaluation": ("arc-agi_evaluation_challenges_filtered_1B_eval_set.json",
                        "arc-agi_evaluation_solutions_filtered_1B_eval_set.json"),
}
SHIPPED = ("seal-training", "seal-evaluation")
"""Splits shipped with the package (agent/data/arc: SEAL's 12 training and 10 evaluation tasks); the others are
read from :func:`default_data_dir`."""
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "data" / "arc"


@dataclass(frozen=True)
class Example:
    input: Grid
    output: Optional[Grid] = None  # None: unknown (a test without its solution)


@dataclass(frozen=True)
class Task:
    id: str
    train: tuple[Example, ...]  # the demonstrations
    test: tuple[Example, ...]  # the queries (outputs from the solutions file, when given)

    def grids(self) -> list[Grid]:
        """Every grid of the task: demonstrations' inputs and outputs, test inputs and known test outputs."""
        out = []
        for ex in self.train + self.test:
            out.append(ex.input)
            if ex.output is not None:
                out.append(ex.output)
        return out


# ------------------------------------------------------------------ grids
def as_grid(obj: Any) -> Optional[Grid]:
    """A grid from nested lists of ints 0-9 (non-empty, rectangular, at most 30x30), else None."""
    if not isinstance(obj, (list, tuple)) or not obj or len(obj) > MAX_SIDE:
        return None
    rows = []
    for row in obj:
        if not isinstance(row, (list, tuple)) or not row or len(row) > MAX_SIDE:
            return None
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 9 for c in row):
            return None
        rows.append(tuple(row))
    if len({len(r) for r in rows}) != 1:
        return None
    return tuple(rows)


def shape(grid: Grid) -> tuple[int, int]:
    return len(grid), len(grid[0])


def grid_to_text(grid: Grid) -> str:
    """One row per line, colours separated by spaces."""
    return "\n".join(" ".join(str(c) for c in row) for row in grid)


def text_to_grid(text: str) -> Optional[Grid]:
    """The grid at the start of ``text`` (leading blank lines skipped; it ends at the first blank line or at a line
    that is not a row of digits, e.g. a following "Input:"). None when there is none, a row has a token that is not
    one digit, the rows are ragged, or the grid exceeds 30x30."""
    if not isinstance(text, str):
        return None
    lines = text.replace("\r", "").split("\n")
    rows: list[tuple[int, ...]] = []
    for line in lines:
        tokens = line.split()
        if not tokens:
            if rows:
                break
            continue
        if not all(len(t) == 1 and t.isdigit() for t in tokens):
            if rows and not any(ch.isdigit() for ch in line):
                break  # the grid ended; the model went on with other text
            return None
        rows.append(tuple(int(t) for t in tokens))
    return as_grid(rows)


def example_text(example: Example) -> str:
    out = "" if example.output is None else grid_to_text(example.output)
    return f"Input:\n{grid_to_text(example.input)}\nOutput:\n{out}"


def prompt_text(demos: Sequence[Example], query: Grid) -> str:
    """The demonstrations, then the query's input; ends at "Output:\\n" (the model writes the output grid)."""
    blocks = [example_text(d) for d in demos]
    blocks.append(f"Input:\n{grid_to_text(query)}\nOutput:\n")
    return "\n\n".join(blocks)


def task_prompt(task: Task, test_index: int = 0) -> str:
    return prompt_text(task.train, task.test[test_index].input)


def task_json(task: Task) -> dict[str, Any]:
    """A task as plain JSON ({"id", "train": [{"input", "output"}], "test": [...]}, unknown outputs None)."""
    g = lambda grid: None if grid is None else [list(r) for r in grid]  # noqa: E731
    return {"id": task.id, "train": [{"input": g(e.input), "output": g(e.output)} for e in task.train],
            "test": [{"input": g(e.input), "output": g(e.output)} for e in task.test]}


# ------------------------------------------------------------------ grading
def exact_match(prediction: Optional[Grid], gold: Optional[Grid]) -> bool:
    return prediction is not None and gold is not None and tuple(map(tuple, prediction)) == tuple(map(tuple, gold))


def pass_at_2(candidates: Sequence[Optional[Grid]], gold: Optional[Grid]) -> bool:
    """ARC Prize scoring: a test output is solved when one of (at most) two attempts equals it."""
    return any(exact_match(c, gold) for c in list(candidates)[:2])


# ------------------------------------------------------------------ loading
def default_data_dir() -> Path:
    """Where the full ARC-AGI-1 files are: ``$SEAL_AGENT_ARC_DATA``, else ``../shared/data/arc`` beside the
    repository."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "arc"


def _examples(items: Any, solutions: Optional[list] = None) -> Optional[tuple[Example, ...]]:
    if not isinstance(items, list):
        return None
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return None
        inp = as_grid(item.get("input"))
        raw_out = item.get("output")
        if raw_out is None and solutions is not None and i < len(solutions):
            raw_out = solutions[i]
        outp = as_grid(raw_out) if raw_out is not None else None
        if inp is None or (raw_out is not None and outp is None):
            return None
        out.append(Example(inp, outp))
    return tuple(out)


def tasks_from_json(challenges: dict, solutions: Optional[dict] = None) -> dict[str, Task]:
    """Tasks from ARC-AGI's JSON layout ({id: {"train": [...], "test": [...]}}, solutions {id: [grid, ...]}).
    A malformed task is skipped."""
    tasks = {}
    for task_id, body in (challenges or {}).items():
        if not isinstance(body, dict):
            continue
        sol = (solutions or {}).get(task_id)
        train = _examples(body.get("train"))
        test = _examples(body.get("test"), sol if isinstance(sol, list) else None)
        if train and test:
            tasks[str(task_id)] = Task(str(task_id), train, test)
    return tasks


def load_tasks(challenges: Path | str, solutions: Path | str | None = None,
               ids: Optional[Iterable[str]] = None) -> dict[str, Task]:
    """Tasks of a challenges file (with the solutions file's test outputs), optionally only ``ids`` (in order)."""
    chal = json.loads(Path(challenges).read_text())
    sol = json.loads(Path(solutions).read_text()) if solutions is not None else None
    tasks = tasks_from_json(chal, sol)
    if ids is None:
        return tasks
    return {i: tasks[i] for i in ids if i in tasks}


def load_split(name: str, data_dir: Path | str | None = None) -> dict[str, Task]:
    """One of :data:`SPLITS`: ARC-AGI-1 training / evaluation, or SEAL's filtered 12 training / 10 evaluation.
    Without ``data_dir``, SEAL's two come from the package (:data:`SHIPPED_DIR`), the full sets from
    :func:`default_data_dir`; missing files raise :class:`~agent.errors.BadInput` saying where to put them."""
    from ...errors import BadInput

    if name not in SPLITS:
        raise BadInput(f"unknown ARC task set {name!r}; one of {', '.join(sorted(SPLITS))}")
    if data_dir is not None:
        folder = Path(data_dir)
    else:
        folder = SHIPPED_DIR if name in SHIPPED else default_data_dir()
    chal, sol = SPLITS[name]
    if not (folder / chal).is_file():
        raise BadInput(f"ARC task set {name!r} needs {folder / chal} (ARC-AGI-1 from github.com/fchollet/ARC-AGI, "
                       f"arc-agi_*_challenges.json and _solutions.json): set ${DATA_ENV} to the folder holding them "
                       f"(only {' and '.join(SHIPPED)} ship with seal-agent)")
    try:
        return load_tasks(folder / chal, folder / sol if (folder / sol).is_file() else None)
    except ValueError as e:
        raise BadInput(f"{folder / chal}: not ARC JSON ({e})") from None


def load_task_file(path: Path | str) -> Optional[Task]:
    """One task from a single-task JSON file ({"train": [...], "test": [...]}, outputs optional), else None."""
    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return tasks_from_json({Path(path).stem: body}).get(Path(path).stem)


def read_task_file(path: Path | str, task_id: Optional[str] = None,
                   solutions: Path | str | None = None) -> Task:
    """The task of an ARC JSON file: a single task ({"train", "test"}, named after the file) or many ({id: task},
    ARC-AGI's challenges layout; ``task_id`` picks one, and may be left out when the file holds one). Test outputs
    come from the file, else from ``solutions`` ({id: [grid, ...]}, or a list of grids for a single task).
    Anything wrong raises :class:`~agent.errors.BadInput` with a one-line reason."""
    from ...errors import BadInput

    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise BadInput(f"{path}: not JSON ({e})") from None
    sol: Any = None
    if solutions is not None:
        try:
            sol = json.loads(Path(solutions).read_text())
        except (OSError, ValueError) as e:
            raise BadInput(f"--solutions {solutions}: cannot read it as JSON ({e})") from None
    if isinstance(body, dict) and "train" in body and "test" in body:
        if task_id is not None and task_id != path.stem:
            raise BadInput(f"{path} holds one task ({path.stem}), not {task_id!r}")
        body = {path.stem: body}
        if isinstance(sol, list):
            sol = {path.stem: sol}
    if not isinstance(body, dict) or not body:
        raise BadInput(f"{path}: not an ARC task ({{\"train\": [...], \"test\": [...]}}) nor a file of tasks "
                       "({id: task})")
    if task_id is None:
        if len(body) != 1:
            shown = ", ".join(sorted(map(str, body))[:5])
            raise BadInput(f"{path} holds {len(body)} tasks ({shown}{', ...' if len(body) > 5 else ''}): "
                           "pick one with --task ID")
        task_id = str(next(iter(body)))
    if task_id not in body:
        raise BadInput(f"{path} has no task {task_id!r}")
    tasks = tasks_from_json({task_id: body[task_id]}, sol if isinstance(sol, dict) else None)
    if task_id not in tasks:
        raise BadInput(f"{path}: task {task_id!r} is malformed (it needs demonstrations and test inputs, grids of "
                       "colours 0-9, rectangular, at most 30x30)")
    return tasks[task_id]


LARGER_EVAL_MAX_SIDE = 12
"""ARC-AGI-1 evaluation has 77 tasks with every grid <= 10x10 and 114 with every grid <= 12x12 (>= 100 needed)."""


def small_task_ids(tasks: dict[str, Task], max_side: int = LARGER_EVAL_MAX_SIDE) -> list[str]:
    """The selection rule of the larger evaluation set: every task all of whose grids (demonstrations, test inputs
    and test outputs) fit in ``max_side`` x ``max_side``; sorted ids."""
    return sorted(t.id for t in tasks.values() if all(max(shape(g)) <= max_side for g in t.grids()))


def larger_eval_ids(data_dir: Path | str | None = None, max_side: int = LARGER_EVAL_MAX_SIDE) -> list[str]:
    """ARC-AGI-1 evaluation tasks selected by :func:`small_task_ids` (every grid <= 12x12 by default: 114 tasks)."""
    return small_task_ids(load_split("evaluation", data_dir), max_side)
