"""The ARC commands' jobs, without the command line: solve one task, the bench (rows x tasks, a table with
bootstrap intervals), and ReST-EM rounds that train the teacher's configuration policy.

Models come through loaders (``load_student() -> (model, tokenizer)``, ``load_teacher(version) -> (model,
tokenizer)``, version "" = the untrained teacher), so tests inject tiny ones. Progress is reported as typed events
(:mod:`agent.events`: Stage, TrainStep, Progress, Message).

Rows of the bench (SEAL's few-shot table):

- ``in-context``: no training, the base student's augmented prediction and vote;
- ``default``: test-time training with :data:`~teacher.arc_config.DEFAULT_CONFIG`;
- ``teacher``: K configurations sampled from the untrained teacher, each tried (a task's value is the share of its
  configurations that solve it);
- ``teacher:VERSION``: the same with a trained teacher version (``seal-agent arc train``);
- ``oracle``: the best configuration of :data:`ORACLE_GRID` per task (solved when any solves it).

"Solved" is ARC Prize's pass@2 on every test input of the task.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from teacher.arc_config import DEFAULT_CONFIG, ArcConfig, parse_config

from ...errors import BadInput
from ...events import Emit, Message, Progress, Stage, TrainStep, ignore
from ...util import atomic_write
from ..stats import mean_interval
from .restem import sample_configs
from .solve import IN_CONTEXT, ConfigLike, Row, bench, local_solver, read_results, solve
from .tasks import Task, load_split, small_task_ids, task_json

Loader = Callable[[], tuple[Any, Any]]
TeacherLoader = Callable[[str], tuple[Any, Any]]

# ------------------------------------------------------------------ the oracle's grid
_FAMILIES = ((True, False, False, False),   # basic (rotations, flips, transposes)
             (True, True, True, True))      # every family: basic, size, chain, repeat
ORACLE_GRID: tuple[ArcConfig, ...] = tuple(
    ArcConfig(*flags, strategy=strategy, learning_rate=lr, num_train_epochs=epochs)
    for flags, strategy, lr, epochs in itertools.product(
        _FAMILIES, ("train_using_all_tokens", "train_using_output_tokens"), (1e-4, 3e-4), (2, 4)))
"""The oracle row's configurations (16): augmentations basic only or all four families x loss on all tokens or on
the output grid x learning rate 1e-4 or 3e-4 x 2 or 4 epochs. SEAL's oracle is the best of its sampled
configurations; a fixed grid makes the row the same for every teacher. Configurations over the step cap are
refused (cheap: nothing trains)."""

TASK_SETS = {
    "seal-eval": "SEAL's 10 ARC-AGI-1 evaluation tasks (shipped)",
    "seal-train": "SEAL's 12 ARC-AGI-1 training tasks (shipped)",
    "eval-small": "ARC-AGI-1 evaluation tasks whose grids are all <= 12x12 (114; needs the full ARC-AGI-1 files)",
    "evaluation": "all 400 ARC-AGI-1 evaluation tasks (needs the full files)",
}
ROW_KINDS = ("in-context", "default", "teacher", "oracle")


def load_task_set(spec: Sequence[str]) -> dict[str, Task]:
    """Tasks by set name (:data:`TASK_SETS`) or by ARC-AGI-1 ids (looked up in SEAL's sets, then in the full
    evaluation and training files)."""
    spec = [s for part in spec for s in part.split(",") if s]
    if not spec:
        raise BadInput("--tasks: name a task set or task ids")
    if len(spec) == 1 and spec[0] in TASK_SETS:
        name = spec[0]
        if name == "seal-eval":
            return load_split("seal-evaluation")
        if name == "seal-train":
            return load_split("seal-training")
        tasks = load_split("evaluation")
        return tasks if name == "evaluation" else {i: tasks[i] for i in small_task_ids(tasks)}
    pool: dict[str, Task] = {**load_split("seal-evaluation"), **load_split("seal-training")}
    if any(i not in pool for i in spec):
        for name in ("evaluation", "training"):
            pool = {**load_split(name), **pool}
    missing = [i for i in spec if i not in pool]
    if missing:
        raise BadInput(f"--tasks: no ARC task {', '.join(missing)} (task sets: {', '.join(TASK_SETS)})")
    return {i: pool[i] for i in dict.fromkeys(spec)}


def parse_rows(text: str) -> list[str]:
    """Row names from "in-context,default,teacher,teacher:VERSION,oracle" (order kept, duplicates dropped)."""
    rows = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROW_KINDS and not (r.startswith("teacher:") and len(r) > len("teacher:"))]
    if bad or not rows:
        raise BadInput(f"--rows {text!r}: choose from {', '.join(ROW_KINDS)}, teacher:VERSION")
    return list(dict.fromkeys(rows))


def parse_config_option(text: Optional[str], file: Optional[Path]) -> Optional[ArcConfig]:
    """--config JSON / --config-file F as a configuration (None when neither is given)."""
    if text is not None and file is not None:
        raise BadInput("give --config or --config-file, not both")
    if file is not None:
        try:
            text = Path(file).read_text()
        except OSError as e:
            raise BadInput(f"--config-file {file}: {e.strerror or e}") from None
    if text is None:
        return None
    config = parse_config(text)
    if config is None:
        raise BadInput("--config: not a usable configuration (JSON with data_generation.use_*_augmentations, "
                       "training.strategy, learning_rate, num_train_epochs)")
    return config


def train_events(emit: Emit) -> Callable[..., None]:
    """The trainers' step callback (sequential: step, total, epoch, loss; batched: step, total, {adapter: loss})
    as TrainStep events (batched: the mean loss of the adapters that trained in the step)."""
    def on_step(step: int, total: int, *rest) -> None:
        if len(rest) == 1 and isinstance(rest[0], dict):
            losses = list(rest[0].values())
            epoch, loss = 0, (sum(losses) / len(losses) if losses else math.nan)
        else:
            epoch, loss = rest
        emit(TrainStep(int(step), int(total), int(epoch), float(loss)))
    return on_step


def teacher_label(version: str) -> str:
    return f"teacher:{version}" if version else "teacher"


def teacher_configs(load_teacher: TeacherLoader, version: str, tasks: dict[str, Task], k: int, path: Path,
                    seed: int = 0, emit: Emit = ignore) -> dict[str, list[dict[str, Any]]]:
    """``k`` sampled configurations per task from teacher ``version`` (persisted in ``path``: a rerun reuses them
    and loads no teacher); rows {"index", "completion", "config" (ArcConfig or None)}."""
    have: dict[str, int] = {}
    for r in read_results(path):
        have[r["task_id"]] = have.get(r["task_id"], 0) + 1
    backend = tokenizer = None
    if any(have.get(t, 0) < k for t in tasks):
        from teacher.backend import TransformersBackend
        emit(Stage("load", f"teacher {version or '(untrained)'}"))
        model, tokenizer = load_teacher(version)
        backend = TransformersBackend(model, tokenizer)
        emit(Stage("generate", f"{k} configurations x {len(tasks)} task(s)"))
    samples = sample_configs(backend, tokenizer, tasks, k, path, seed=seed)
    return {t: [{**s, "config": parse_config(s["completion"])} for s in ss] for t, ss in samples.items()}


# ------------------------------------------------------------------ solve one task
def solve_task(task: Task, load_student: Loader, config: Optional[ArcConfig] = None, teacher: bool = False,
               load_teacher: Optional[TeacherLoader] = None, version: str = "", k: int = 5, seed: int = 0,
               group: int = 8, emit: Emit = ignore, samples_path: Optional[Path] = None,
               **solve_kwargs) -> dict[str, Any]:
    """Solve ``task`` with ``config`` (default :data:`DEFAULT_CONFIG`) or, with ``teacher``, with the teacher's
    ``k`` configurations (trained together by the batched engine). Returns {"task", "runs": [result rows],
    "best": index of the first solved run (else the lowest final loss)}."""
    configs: list[ConfigLike]
    completions: list[Optional[str]]
    if teacher:
        if load_teacher is None:
            raise BadInput("--teacher needs a teacher model")
        import tempfile
        with tempfile.TemporaryDirectory(prefix="arc-samples-") as tmp:
            path = samples_path or Path(tmp) / "samples.jsonl"
            samples = teacher_configs(load_teacher, version, {task.id: task}, k, path, seed, emit)[task.id]
        configs = [s["config"] for s in samples]
        completions = [s["completion"] for s in samples]
        labels = [f"{teacher_label(version)}#{s['index']}" for s in samples]
        valid = sum(c is not None for c in configs)
        emit(Message("info", f"the teacher wrote {valid} valid configuration(s) of {len(configs)}"))
    else:
        configs, completions, labels = [config or DEFAULT_CONFIG], [None], ["config"]
    emit(Stage("load", "student model"))
    model, tokenizer = load_student()
    emit(Stage("train", f"{task.id}: {len(configs)} configuration(s)"))
    t0 = time.perf_counter()
    runs = solve(model, tokenizer, task, configs, labels, seed=seed, group=group, on_step=train_events(emit),
                 **solve_kwargs)
    for run, completion in zip(runs, completions):
        run["completion"] = completion
    return {"task": task_json(task), "runs": runs, "best": best_run(runs), "seconds": time.perf_counter() - t0}


def best_run(runs: Sequence[dict]) -> Optional[int]:
    """The run to show: the first solved one, else the trained one with the lowest final loss, else the first."""
    if not runs:
        return None
    for i, r in enumerate(runs):
        if r.get("solved"):
            return i
    trained = [(r["loss_last"], i) for i, r in enumerate(runs) if r.get("loss_last") is not None]
    return min(trained)[1] if trained else 0


# ------------------------------------------------------------------ the bench
def bench_rows(tasks: dict[str, Task], rows: Sequence[str], seeds: int,
               samples: dict[str, dict[str, list[dict]]]) -> list[Row]:
    """The bench's rows: per task, per row kind, per configuration, per seed (in-context: seed 0 only; greedy
    decoding does not depend on the seed). ``samples``: teacher label -> task -> sampled configurations."""
    out = []
    for t in tasks:
        for name in rows:
            if name == "in-context":
                out.append(Row(t, "in-context", IN_CONTEXT, 0))
                continue
            for s in range(seeds):
                if name == "default":
                    out.append(Row(t, "default", DEFAULT_CONFIG, s))
                elif name == "oracle":
                    out.extend(Row(t, f"oracle#{c.key()}", c, s) for c in ORACLE_GRID)
                else:
                    out.extend(Row(t, f"{name}#{x['index']}", x["config"], s) for x in samples[name][t])
    return out


def table(results: Sequence[dict], task_ids: Sequence[str], rows: Sequence[str]) -> list[dict[str, Any]]:
    """One line per row: per task, each configuration's solved rate over seeds; the task's value is their mean
    (the oracle: their best); solved = sum over tasks, rate with a 95 % bootstrap interval over tasks; "best of"
    counts the tasks some configuration of the row solves."""
    out = []
    for name in rows:
        per: dict[str, dict[str, list[float]]] = {t: {} for t in task_ids}
        invalid = refused = n = 0
        for r in results:
            if r["label"].split("#")[0] != name or r["task_id"] not in per or r.get("solved") is None:
                continue
            per[r["task_id"]].setdefault(r["label"], []).append(float(bool(r["solved"])))
            invalid += r.get("status") == "invalid"
            refused += r.get("status") == "refused"
            n += 1
        values, best, counted = [], 0, 0
        for t in task_ids:
            rates = [sum(v) / len(v) for v in per[t].values()]
            if not rates:
                continue
            counted += 1
            values.append(max(rates) if name == "oracle" else sum(rates) / len(rates))
            best += max(rates) > 0
        ci = mean_interval(values)
        out.append({"row": name, "tasks": counted, "runs": n, "solved": sum(values), "rate": ci.to_dict(),
                    "best_of": best, "invalid": invalid, "refused": refused,
                    "per_task": {t: v for t, v in zip([t for t in task_ids if per[t]], values)}})
    return out


def table_markdown(lines: Sequence[dict], title: str) -> str:
    head = ("| row | tasks | runs | solved / tasks | rate [95% CI] | best of (tasks) | invalid | refused |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    body = "".join(f"| {r['row']} | {r['tasks']} | {r['runs']} | {r['solved']:.1f} / {r['tasks']} | "
                   f"{fmt_rate(r['rate'])} | {r['best_of']} | {r['invalid']} | {r['refused']} |\n" for r in lines)
    note = ("\nsolved: pass@2 on every test input. A task's value is the share of the row's configurations (and "
            "seeds) that solve it; the oracle's is its best configuration. Intervals: bootstrap over tasks.\n")
    return f"# {title}\n\n{head}{body}{note}"


def fmt_rate(ci: dict) -> str:
    if ci["value"] is None or (isinstance(ci["value"], float) and math.isnan(ci["value"])):
        return "-"
    return f"{ci['value']:.1%} [{ci['lo']:.1%}, {ci['hi']:.1%}]"


def run_bench(tasks: dict[str, Task], rows: Sequence[str], out: Path, load_student: Loader,
              load_teacher: Optional[TeacherLoader] = None, k: int = 5, seeds: int = 1, group: int = 8,
              emit: Emit = ignore, settings: Optional[dict] = None, **solve_kwargs) -> dict[str, Any]:
    """Run (or resume) the bench into ``out``: results.jsonl (one line per task x configuration x seed),
    samples-<teacher>.jsonl (the teachers' configurations), table.md and results.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples: dict[str, dict[str, list[dict]]] = {}
    for name in rows:
        if name.startswith("teacher"):
            version = name.split(":", 1)[1] if ":" in name else ""
            if load_teacher is None:
                raise BadInput(f"--rows {name}: no teacher model")
            samples[name] = teacher_configs(load_teacher, version, tasks, k, out / f"samples-{name.replace(':', '-')}"
                                            ".jsonl", seed=0, emit=emit)
    plan = bench_rows(tasks, rows, seeds, samples)
    done = {r["key"] for r in read_results(out / "results.jsonl")}
    todo = sum(1 for r in plan if f"{r.task_id}|{r.label}|{r.seed}" not in done)
    if done and todo < len(plan):
        emit(Message("info", f"{len(plan) - todo} of {len(plan)} runs already in {out} (resumed)"))
    model = tokenizer = None
    if todo:
        emit(Stage("load", "student model"))
        model, tokenizer = load_student()
    finished = len(plan) - todo
    emit(Progress("arc bench", finished, len(plan)))
    solver = local_solver(model, tokenizer, tasks, group=group, on_step=train_events(emit), **solve_kwargs)

    def job(j: list[Row]) -> list[dict]:
        emit(Stage("train", f"{j[0].task_id}: {len(j)} run(s)"))
        return solver(j)

    def on_result(_r: dict) -> None:
        nonlocal finished
        finished += 1
        emit(Progress("arc bench", finished, len(plan)))

    t0 = time.perf_counter()
    results = bench(plan, out / "results.jsonl", job, on_result=on_result)
    lines = table(results, list(tasks), rows)
    title = f"ARC: {len(tasks)} task(s), rows x configurations, seeds {seeds}"
    doc = {"benchmark": "arc", "tasks": list(tasks), "rows": lines, "k": k, "seeds": seeds,
           "oracle_grid": [c.key() for c in ORACLE_GRID], "settings": settings or {}, "out": str(out),
           "seconds_this_invocation": time.perf_counter() - t0}
    atomic_write(out / "results.json", json.dumps(doc, indent=2, default=str) + "\n")
    atomic_write(out / "table.md", table_markdown(lines, title))
    return doc


# ------------------------------------------------------------------ ReST-EM over configurations
def train_rounds(tasks: dict[str, Task], load_student: Loader, load_teacher_base: Loader, store, policy,
                 out: Path, rounds: int = 1, k: int = 15, seed: int = 0, group: int = 8, emit: Emit = ignore,
                 meta: Optional[dict] = None, **solve_kwargs) -> dict[str, Any]:
    """ReST-EM rounds: round r samples ``k`` configurations per task from round r-1's teacher version (the
    untrained teacher first), solves them (:func:`~agent.lab.arc.restem.restem_round`, resumable), and fine-tunes
    the teacher's policy adapter on the winners (:func:`teacher.policy.train_policy`, continuing the previous
    version), saved in ``store`` as a new version with a unique id. ``round-<r>.json`` (E-step counts) and
    ``teacher-<r>.json`` (the M-step: status, version) make a killed run continue where it stopped."""
    from teacher.backend import TransformersBackend
    from teacher.policy import train_policy

    from ..restem import TeacherModel
    from .restem import restem_round

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = TeacherModel(load_teacher_base, store, policy, emit)
    student: dict[str, Any] = {}

    def solve_job(job: list[Row]) -> list[dict]:
        if not student:
            emit(Stage("load", "student model"))
            student["model"], student["tok"] = load_student()
        emit(Stage("train", f"{job[0].task_id}: {len(job)} configuration(s)"))
        return local_solver(student["model"], student["tok"], tasks, group=group, on_step=train_events(emit),
                            **solve_kwargs)(job)

    prev, summaries = "", []
    for rnd in range(1, rounds + 1):
        manifest_path = out / f"teacher-{rnd}.json"
        doc = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"round": rnd, "parent": prev}
        if doc.get("status") == "done" and (not doc.get("trained") or doc["adapter"] in store):
            summaries.append(doc)
            prev = doc["adapter"]
            continue
        emit(Stage("round", f"{rnd} of {rounds}: {k} configurations x {len(tasks)} task(s) from teacher "
                            f"{prev or '(untrained)'}"))
        generator = teacher.generator(prev)
        count = {"done": 0}

        def on_result(r: dict, rnd: int = rnd) -> None:
            count["done"] += 1
            emit(Progress(f"round {rnd}", count["done"], len(tasks) * k,
                          f"{r['task_id']} {'solved' if r.get('solved') else r.get('status')}"))

        summary = restem_round(TransformersBackend(generator, teacher.tokenizer), teacher.tokenizer, tasks,
                               solve_job, out, rnd, k=k, seed=seed, on_result=on_result)
        pairs = summary.pop("pairs")
        doc.update(summary)
        if not pairs:
            doc.update(status="done", adapter=prev, trained=False,
                       note="no configuration solved its task: the teacher is unchanged this round")
        else:
            adapter = doc.get("adapter_pending") or store.new_id("t")
            if adapter not in store:
                doc.update(status="training", adapter_pending=adapter)
                atomic_write(manifest_path, json.dumps(doc, indent=2) + "\n")
                model = teacher.attach(prev if getattr(policy, "init", "previous") == "previous" else "")
                emit(Stage("train", f"round {rnd}: teacher policy on {len(pairs)} winning configuration(s)"))
                result = train_policy(model, teacher.tokenizer, pairs, policy,
                                      on_step=lambda s, t, e, loss: emit(TrainStep(s, t, e, loss)), cap=128)
                store.save(model, adapter, {
                    "kind": "teacher-policy", "domain": "arc", "round": rnd, "parent": prev or None,
                    "policy": asdict(policy), "pairs": result.pairs, "losses": result.losses,
                    "solved_rows": summary["solved_rows"], "solved_tasks": summary["solved_tasks"],
                    "kept": len(pairs), "reward": "arc-solved", "run": str(out), "train_tasks": list(tasks),
                    **(meta or {})})
                teacher.version = adapter
                doc["policy_train"] = {"steps": result.steps, "pairs": result.pairs,
                                       "loss_first": result.losses[0] if result.losses else None,
                                       "loss_last": result.losses[-1] if result.losses else None,
                                       "seconds": result.seconds}
            doc.pop("adapter_pending", None)
            doc.update(status="done", adapter=adapter, trained=True)
        atomic_write(manifest_path, json.dumps(doc, indent=2) + "\n")
        emit(Message("info", f"round {rnd}: {doc['valid']} valid of {doc['samples']} configurations, "
                              f"{doc['solved_rows']} solved ({doc['solved_tasks']}/{doc['tasks']} tasks); "
                              f"teacher {doc['adapter'] or '(untrained)'}{'' if doc['trained'] else ' (unchanged)'}"))
        summaries.append(doc)
        prev = doc["adapter"]
    teacher.detach()
    result = {"out": str(out), "teacher": prev, "rounds": summaries, "tasks": list(tasks), "k": k}
    atomic_write(out / "results.json", json.dumps(result, indent=2, default=str) + "\n")
    return result
