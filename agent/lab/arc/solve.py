"""Solve ARC tasks with test-time training: one task under one or many configurations, and a resumable bench.

:func:`solve` builds each configuration's training data (:mod:`~agent.lab.arc.ttt`), trains one fresh LoRA per
configuration — K at once in the batched multi-LoRA (:mod:`student.multilora`, default) or one after another in
a peft Student — predicts with augmentations and a vote (:mod:`~agent.lab.arc.predict`) and grades pass@2.
A configuration may also be :data:`IN_CONTEXT` (no training: the base model's prediction) or None (the teacher
wrote no valid configuration: nothing runs, the task counts as unsolved). A refused configuration (over the step
cap, or no example fits) is not trained either and counts as unsolved.

:func:`bench` runs rows (task id x label x seed) into an append-only jsonl, one line per finished row; a rerun
skips the rows already there. It takes ``map_fn`` (the built-in ``map``, a process pool's, Ray's ...) so that the
same loop runs locally or spread out.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from student.config import AnswerSettings, LoraSettings, TrainSettings
from student.inference import generate_greedy
from student.innerloop import peft_student, preserved
from student.multilora import MultiLoRA, train_many
from teacher.arc_config import ArcConfig

from .augment import INVERTIBLE, Augmentation
from .predict import AnswerFn, Prediction, decide, grade, max_new_tokens_for, queries
from .tasks import Task
from .ttt import TTTData, ttt_data

IN_CONTEXT = "in_context"
ConfigLike = Union[ArcConfig, None, str]
ENGINES = ("batched", "sequential")

ARC_LORA = LoraSettings(r=32, alpha=64, target_modules="all-linear")
"""The student's adapter for test-time training (the project's default shape)."""


def token_counter(tokenizer) -> Callable[[str], int]:
    """text -> its training length in tokens (special tokens and the eos included)."""
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"]) + 1


def prompt_ids(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of raw prompts, as training tokenized them (the tokenizer's own special tokens)."""
    return [list(tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts]


def model_answer_fn(model, tokenizer, batch_size: int = 8) -> AnswerFn:
    """Batched greedy completions of raw prompts by ``model`` (a plain model, or a peft one with its adapter)."""
    def answer(prompts: list[str], max_new_tokens: int) -> list[str]:
        return generate_greedy(model, tokenizer, prompt_ids(tokenizer, prompts), max_new_tokens, batch_size)
    return answer


def multi_answer(multi: MultiLoRA, tokenizer, prompts: Sequence[Sequence[str]], max_new_tokens: int,
                 batch_size: int) -> list[list[str]]:
    """Greedy completions of adapter k to ``prompts[k]``, every adapter in the same generation passes."""
    flat, owner = [], []
    for k, ps in enumerate(prompts):
        flat.extend(ps)
        owner.extend([k] * len(ps))
    if not flat:
        return [[] for _ in prompts]
    multi.model.eval()
    try:
        texts = generate_greedy(multi.model, tokenizer, prompt_ids(tokenizer, flat), max_new_tokens, batch_size,
                                select=lambda rows: multi.route([owner[i] for i in rows]))
    finally:
        multi.route(None)
    out, i = [], 0
    for ps in prompts:
        out.append(texts[i : i + len(ps)])
        i += len(ps)
    return out


# ------------------------------------------------------------------ results
def _grid_json(g) -> list[list[int]]:
    return [list(r) for r in g]


def result_row(task: Task, label: str, seed: int, config: ConfigLike, status: str, reason: Optional[str] = None,
               data: Optional[TTTData] = None, losses: Sequence[float] = (), predictions: Sequence[Prediction] = (),
               train_seconds: float = 0.0, predict_seconds: float = 0.0) -> dict[str, Any]:
    """One bench line (JSON-ready): what ran, the attempts, pass@2 per test, solved = every test passed."""
    passed = grade(task, predictions) if status in ("ok", IN_CONTEXT) else (
        None if any(ex.output is None for ex in task.test) else [False] * len(task.test))
    return {
        "key": result_key(task.id, label, seed), "task_id": task.id, "label": label, "seed": seed,
        "config": config.to_json() if isinstance(config, ArcConfig) else config,
        "config_key": config.key() if isinstance(config, ArcConfig) else (config or "invalid"),
        "status": status, "reason": reason,
        "examples": len(data.texts) if data else 0, "steps": data.steps if data and status == "ok" else 0,
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
        "attempts": [[_grid_json(g) for g in p.attempts] for p in predictions],
        "votes": [[n for _, n in p.candidates] for p in predictions],
        "passed": passed, "solved": None if passed is None else all(passed),
        "score": None if passed is None else sum(passed) / len(passed),
        "train_seconds": round(train_seconds, 3), "predict_seconds": round(predict_seconds, 3),
    }


# ------------------------------------------------------------------ solve
def solve(model, tokenizer, task: Task, configs: Sequence[ConfigLike], labels: Optional[Sequence[str]] = None,
          seed: int = 0, engine: str = "batched", group: int = 8, lora: Optional[LoraSettings] = None,
          base: Optional[TrainSettings] = None, max_len: int = 8192, batch_size: int = 8,
          augmentations: Sequence[Augmentation] = INVERTIBLE, on_step: Optional[Callable] = None
          ) -> list[dict[str, Any]]:
    """Solve ``task`` once per configuration (fresh LoRA each, seeded by ``seed``); one result row per
    configuration, in order. ``model`` is a plain transformers model, handed back unchanged.

    engine: "batched" (``group`` adapters trained together, then answered in one routed generation) or
    "sequential" (one peft adapter, reset per configuration). ``batch_size``: generation rows per pass (per adapter
    in the batched engine). ``on_step``: the trainer's callback (sequential: (step, total, epoch, loss); batched:
    (step, total, {adapter: loss})).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    labels = list(labels) if labels is not None else [c.key() if isinstance(c, ArcConfig) else (c or "invalid")
                                                       for c in configs]
    if len(labels) != len(configs):
        raise ValueError(f"{len(configs)} configurations but {len(labels)} labels")
    lora = lora or ARC_LORA
    count = token_counter(tokenizer)
    budget = max_new_tokens_for(task, count)
    qs = queries(task, augmentations)
    prompts = [q.prompt for q in qs]
    rows: list[Optional[dict]] = [None] * len(configs)
    todo: list[tuple[int, ArcConfig, TTTData]] = []
    for i, (config, label) in enumerate(zip(configs, labels)):
        if config == IN_CONTEXT:
            start = time.perf_counter()
            with preserved(model):
                model.eval()
                texts = model_answer_fn(model, tokenizer, batch_size)(prompts, budget)
            rows[i] = result_row(task, label, seed, IN_CONTEXT, IN_CONTEXT, predictions=decide(task, qs, texts),
                                 predict_seconds=time.perf_counter() - start)
        elif not isinstance(config, ArcConfig):
            rows[i] = result_row(task, label, seed, None, "invalid", "no valid configuration")
        else:
            data = ttt_data(task, config, base, seed, count, max_len)
            if data.refused:
                rows[i] = result_row(task, label, seed, config, "refused", data.refused, data)
            else:
                todo.append((i, config, data))
    if todo and engine == "sequential":
        with peft_student(model, tokenizer, lora, AnswerSettings()) as student:
            for i, config, data in todo:
                start = time.perf_counter()
                student.reset(seed)
                train = student.absorb(data.texts, data.settings, on_step=on_step, prompt_chars=data.prompt_chars)
                mid = time.perf_counter()
                student.model.eval()
                texts = model_answer_fn(student.model, tokenizer, batch_size)(prompts, budget)
                rows[i] = result_row(task, labels[i], seed, config, "ok", data=data, losses=train.losses,
                                     predictions=decide(task, qs, texts), train_seconds=mid - start,
                                     predict_seconds=time.perf_counter() - mid)
    elif todo:
        slots = min(group, len(todo))
        with preserved(model), MultiLoRA(model, lora, slots) as multi:
            for first in range(0, len(todo), slots):
                chunk = todo[first : first + slots]
                start = time.perf_counter()
                for k, _ in enumerate(chunk):
                    multi.reset(k, seed)
                trains = train_many(multi, tokenizer, [d.texts for _, _, d in chunk], [d.settings for _, _, d in chunk],
                                    on_step=on_step, prompt_chars=[d.prompt_chars for _, _, d in chunk])
                mid = time.perf_counter()
                answers = multi_answer(multi, tokenizer, [prompts] * len(chunk), budget, batch_size * len(chunk))
                end = time.perf_counter()
                for k, (i, config, data) in enumerate(chunk):
                    rows[i] = result_row(task, labels[i], seed, config, "ok", data=data, losses=trains[k].losses,
                                         predictions=decide(task, qs, answers[k]),
                                         train_seconds=(mid - start) / len(chunk),
                                         predict_seconds=(end - mid) / len(chunk))
    return [r for r in rows if r is not None]


# ------------------------------------------------------------------ bench (resumable)
@dataclass(frozen=True)
class Row:
    """One bench row: solve ``task_id`` under ``config`` (labelled ``label``, e.g. "default", "teacher#3")."""

    task_id: str
    label: str
    config: ConfigLike
    seed: int = 0


def result_key(task_id: str, label: str, seed: int) -> str:
    return f"{task_id}|{label}|{seed}"


def read_results(path: Path | str) -> list[dict[str, Any]]:
    """The rows of a results jsonl; a torn or malformed line (a killed run) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("key"), str):
            out.append(row)
    return out


def append_result(path: Path | str, row: dict[str, Any]) -> None:
    """Append one row (flushed and synced: a kill loses at most the rows still running)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        if f.tell() > 0:  # a line torn by a kill must not swallow the next one
            with path.open("rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    f.write("\n")
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pending_jobs(rows: Iterable[Row], done: set[str]) -> list[list[Row]]:
    """Rows not yet done, grouped per (task, seed) in first-seen order (one job trains its adapters together)."""
    jobs: dict[tuple[str, int], list[Row]] = {}
    seen = set(done)
    for row in rows:
        key = result_key(row.task_id, row.label, row.seed)
        if key in seen:
            continue
        seen.add(key)
        jobs.setdefault((row.task_id, row.seed), []).append(row)
    return list(jobs.values())


SolveJob = Callable[[list[Row]], list[dict[str, Any]]]


def bench(rows: Sequence[Row], path: Path | str, solve_job: SolveJob, map_fn: Callable = map,
          on_result: Optional[Callable[[dict], None]] = None) -> list[dict[str, Any]]:
    """Run every row not yet in ``path`` (jobs of one task and seed, through ``map_fn(solve_job, jobs)``), append
    each result as its job finishes, and return the results of ``rows`` (earlier and new), in the order of
    ``rows``."""
    rows = list(rows)
    done = {r["key"]: r for r in read_results(path)}
    for results in map_fn(solve_job, pending_jobs(rows, set(done))):
        for result in results:
            append_result(path, result)
            done[result["key"]] = result
            if on_result is not None:
                on_result(result)
    return [done[k] for k in dict.fromkeys(result_key(r.task_id, r.label, r.seed) for r in rows) if k in done]


def local_solver(model, tokenizer, tasks: dict[str, Task], **solve_kwargs) -> SolveJob:
    """A :data:`SolveJob` running :func:`solve` in this process on ``model``."""
    def run(job: list[Row]) -> list[dict[str, Any]]:
        task = tasks[job[0].task_id]
        return solve(model, tokenizer, task, [r.config for r in job], [r.label for r in job], seed=job[0].seed,
                     **solve_kwargs)
    return run


def summarize(results: Iterable[dict[str, Any]], group: Callable[[str], str] = lambda label: label.split("#")[0]
              ) -> dict[str, dict[str, Any]]:
    """Per group of labels (default: the label up to "#", so "teacher#0".."teacher#4" pool): rows, rows solved
    (pass@2 on every test), the solved fraction and invalid/refused counts."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        s = out.setdefault(group(r["label"]), {"rows": 0, "solved": 0, "invalid": 0, "refused": 0})
        s["rows"] += 1
        s["solved"] += int(bool(r.get("solved")))
        s["invalid"] += int(r.get("status") == "invalid")
        s["refused"] += int(r.get("status") == "refused")
    for s in out.values():
        s["fraction"] = s["solved"] / s["rows"] if s["rows"] else 0.0
    return out
