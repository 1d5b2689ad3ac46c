"""ReST-EM over ARC configurations (a round's E-step; the M-step is the teacher's SFT on the winners).

Round r: the teacher samples K configurations per training task (SEAL: 15, temperature 0.8, 128 new tokens); each
is solved with test-time training (:func:`~agent.lab.arc.solve.bench`, resumable); a configuration whose adapted
student solves the task's test (pass@2 on every test input) has reward 1. The winners' (prompt, completion) pairs
are what the teacher's policy adapter is fine-tuned on (:func:`teacher.policy.train_policy`: loss on the
completion only; SEAL: LoRA r 16, 8 epochs, lr 5e-5). Everything a round writes is append-only jsonl in ``out``:
``samples-<r>.jsonl`` (the sampled completions, so a resumed round reuses them) and ``results-<r>.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

from teacher.arc_config import config_prompt, parse_config, propose_configs

from .solve import Row, SolveJob, append_result, bench, read_results
from .tasks import Task


def teacher_demos(task: Task) -> list[tuple[list[list[int]], list[list[int]]]]:
    """The task's demonstrations as the configuration prompt takes them."""
    return [([list(r) for r in ex.input], [list(r) for r in ex.output]) for ex in task.train]


def sample_configs(backend, tokenizer, tasks: dict[str, Task], k: int, path: Path | str, seed: int = 0,
                   temperature: float = 0.8, max_new_tokens: int = 128) -> dict[str, list[dict[str, Any]]]:
    """``k`` teacher completions per task ({"task_id", "index", "prompt", "completion"} rows), appended to ``path``;
    tasks already sampled there are not sampled again."""
    have: dict[str, list[dict[str, Any]]] = {}
    for row in read_results(path):
        have.setdefault(row["task_id"], []).append(row)
    missing = [t for t in tasks if len(have.get(t, [])) < k]
    if missing:
        outs = propose_configs(backend, tokenizer, [teacher_demos(tasks[t]) for t in missing], k, temperature,
                               max_new_tokens, seed=seed)
        for task_id, row in zip(missing, outs):
            prompt = config_prompt(tokenizer, teacher_demos(tasks[task_id]))
            have[task_id] = []
            for j, (completion, _) in enumerate(row):
                line = {"key": f"{task_id}|{j}", "task_id": task_id, "index": j, "prompt": prompt,
                        "completion": completion}
                append_result(path, line)
                have[task_id].append(line)
    return {t: sorted(have[t], key=lambda r: r["index"])[:k] for t in tasks}


def restem_round(backend, tokenizer, tasks: dict[str, Task], solve_job: SolveJob, out: Path | str, round_index: int,
                 k: int = 15, seed: int = 0, temperature: float = 0.8, map_fn: Callable = map,
                 on_result: Optional[Callable[[dict], None]] = None) -> dict[str, Any]:
    """One round's E-step: sample, solve, reward. Returns the SFT pairs of the winners and the round's counts."""
    out = Path(out)
    samples = sample_configs(backend, tokenizer, tasks, k, out / f"samples-{round_index}.jsonl",
                             seed=seed + 1000 * round_index, temperature=temperature)
    rows = [Row(t, f"teacher#{s['index']}", parse_config(s["completion"]), seed)
            for t, ss in samples.items() for s in ss]
    results = bench(rows, out / f"results-{round_index}.jsonl", solve_job, map_fn, on_result)
    by_key = {(s["task_id"], f"teacher#{s['index']}"): s for ss in samples.values() for s in ss}
    winners = [by_key[(r["task_id"], r["label"])] for r in results if r.get("solved")]
    summary = {
        "round": round_index, "tasks": len(tasks), "samples": len(rows),
        "valid": sum(r.config is not None for r in rows),
        "solved_rows": len(winners), "solved_tasks": len({w["task_id"] for w in winners}),
        "pairs": [(w["prompt"], w["completion"]) for w in winners],
    }
    (out / f"round-{round_index}.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "pairs"}))
    return summary
