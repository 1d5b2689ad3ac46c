"""`seal-agent arc ...`: few-shot ARC (SEAL's second domain): solve a task with test-time training, the bench of
rows (in context, default configuration, the teacher's configurations, the oracle), and ReST-EM training of the
teacher's configurations. The jobs are in agent/lab/arc/jobs.py."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from rich.text import Text

from ...commands.common import emitter, output
from .run_flags import command_config

arc_app = typer.Typer(help="Few-shot ARC: test-time training configured by the teacher (SEAL's second domain).",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(arc_app, name="arc")


# The models, as loaders (tests replace these two).
def student_loader(cfg):
    from ...models import load_model
    return lambda: load_model(cfg.models.student, cfg.home, cfg.models, "student")


def teacher_loader(cfg):
    from ...models import load_teacher
    return lambda version: load_teacher(cfg.home, cfg.models, version)


def teacher_base_loader(cfg):
    from ...models import load_model
    return lambda: load_model(cfg.models.teacher, cfg.home, cfg.models, "teacher")


@arc_app.command("solve")
def solve(ctx: typer.Context,
          task_file: Path = typer.Argument(..., metavar="TASK.json", help="An ARC task ({\"train\": [...], \"test\": "
                                           "[...]}) or a file of tasks ({id: task}, ARC-AGI's layout; see --task)."),
          task_id: Optional[str] = typer.Option(None, "--task", help="The task to solve in a file of many."),
          solutions: Optional[Path] = typer.Option(None, "--solutions", help="Expected test outputs ({id: [grid, "
                                                   "...]} or, for a one-task file, [grid, ...]) when the task file "
                                                   "has none."),
          config_json: Optional[str] = typer.Option(None, "--config", help="The configuration as JSON (SEAL's "
                                                    "layout: data_generation, training); default: the fixed "
                                                    "default configuration."),
          config_file: Optional[Path] = typer.Option(None, "--config-file", help="The configuration from a file."),
          teacher: bool = typer.Option(False, "--teacher", help="The teacher writes --k configurations; all are "
                                       "tried (trained together) and the best shown."),
          version: Optional[str] = typer.Option(None, "--teacher-version", help="A trained teacher version (default: "
                                                "config models.teacher_adapter, else the untrained teacher)."),
          k: int = typer.Option(5, "--k", min=1, help="Configurations the teacher writes (with --teacher)."),
          seed: int = typer.Option(0, "--seed", help="Training seed (and the teacher's sampling seed)."),
          group: int = typer.Option(8, "--group", min=1, help="Adapters trained at once."),
          device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: config)."),
          json_out: bool = typer.Option(False, "--json", help="Print one JSON object.")):
    """Solve one ARC task: test-time training under a configuration, augmented prediction with a vote."""
    from ...errors import BadInput
    from ..arc.jobs import parse_config_option, solve_task
    from ..arc.tasks import read_task_file

    cfg = command_config(ctx, json_out, device)
    task = read_task_file(task_file, task_id, solutions)
    config = parse_config_option(config_json, config_file)
    if teacher and config is not None:
        raise BadInput("--teacher writes the configurations: leave out --config / --config-file")
    version = cfg.models.teacher_adapter if version is None else version
    with emitter(ctx) as emit:
        doc = solve_task(task, student_loader(cfg), config, teacher=teacher,
                         load_teacher=teacher_loader(cfg) if teacher else None, version=version or "", k=k,
                         seed=seed, group=group, emit=emit)
    best = doc["runs"][doc["best"]] if doc["runs"] else None
    doc["solved"] = None if best is None else best["solved"]
    doc["source"] = (f"teacher {version or '(untrained)'}, {k} configuration(s)" if teacher
                     else "--config" if config is not None else "default configuration")
    output(ctx, doc, lambda console: print_solve(console, doc))


def print_solve(console, doc: dict) -> None:
    from rich.text import Text

    from ..arc.render import task_view
    task, runs = doc["task"], doc["runs"]
    best = runs[doc["best"]] if runs else None
    attempts = best["attempts"][0] if best and best["attempts"] else []
    console.print(Text(f"task {task['id']}: {len(task['train'])} demonstration(s), {len(task['test'])} test "
                       f"input(s); {doc['source']}", style="bold"))
    console.print(task_view(task, attempts[0] if attempts else None))
    if len(runs) > 1:
        from rich.table import Table
        t = Table(title="configurations tried")
        for col in ("#", "configuration", "status", "examples", "steps", "loss", "solved"):
            t.add_column(col, no_wrap=col != "configuration")
        for i, r in enumerate(runs):
            t.add_row(Text(("> " if i == doc["best"] else "") + r["label"]), Text(str(r["config_key"])),
                      Text(str(r["status"] if not r["reason"] else f"{r['status']}: {r['reason']}")),
                      str(r["examples"]), str(r["steps"]), _loss(r), _solved(r["solved"]))
        console.print(t)
    if best is None:
        return
    console.print(Text("configuration: ", style="bold") + Text(
        json.dumps(best["config"]) if isinstance(best["config"], dict) else str(best["config"])))
    if best["status"] == "ok":
        console.print(Text(f"training: {best['examples']} examples, {best['steps']} steps, loss {_loss(best)}, "
                           f"{best['train_seconds']:.1f} s; prediction {best['predict_seconds']:.1f} s"))
    elif best["status"] != "in_context":
        console.print(Text(f"not trained: {best['status']} ({best['reason']})", style="yellow"))
    for i, (tries, votes) in enumerate(zip(best["attempts"], best["votes"]), 1):
        console.print(Text(f"test {i}: {len(tries)} attempt(s) (votes {votes[:2]} of {sum(votes)} valid answers)"
                           if tries else f"test {i}: no valid grid predicted"))
        if len(tries) > 1:
            from ..arc.render import grids_row
            console.print(grids_row([("attempt 2", tries[1])]))
    console.print(Text("solved: ", style="bold") + _solved(doc["solved"]))


def _loss(r: dict) -> str:
    if r.get("loss_first") is None:
        return "-"
    return f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}"


def _solved(value) -> "Text":
    from rich.text import Text
    if value is None:
        return Text("unknown (no expected output)", style="dim")
    return Text("yes", style="bold green") if value else Text("no", style="bold red")


@arc_app.command("bench")
def bench(ctx: typer.Context,
          tasks: str = typer.Option("seal-eval", "--tasks", help="seal-eval (SEAL's 10, shipped) | seal-train | "
                                    "eval-small (ARC-AGI-1 evaluation tasks with every grid <= 12x12; needs "
                                    "$SEAL_AGENT_ARC_DATA) | evaluation | task ids, comma-separated."),
          rows: str = typer.Option("in-context,default,teacher,oracle", "--rows",
                                   help="Comma-separated: in-context, default, teacher, teacher:VERSION, oracle."),
          k: int = typer.Option(5, "--k", min=1, help="Configurations the teacher writes per task (teacher rows)."),
          seeds: int = typer.Option(1, "--seeds", min=1, help="Training seeds per configuration."),
          out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default runs/arc-<time>); re-running "
                                             "with the same folder resumes."),
          group: int = typer.Option(8, "--group", min=1, help="Adapters trained at once (batched engine)."),
          device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: config)."),
          json_out: bool = typer.Option(False, "--json", help="Print the result JSON only.")):
    """The ARC table: rows x tasks solved (pass@2), 95% bootstrap intervals over tasks; resumable."""
    from ..arc.jobs import load_task_set, parse_rows, run_bench
    from ..arc.solve import ARC_LORA
    from ..runlog import check_run_file

    cfg = command_config(ctx, json_out, device)
    row_names = parse_rows(rows)
    task_set = load_task_set([tasks])
    out = out or Path("runs") / f"arc-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = {"student": cfg.models.student, "dtype": cfg.models.dtype, "teacher": cfg.models.teacher,
                "teacher_dtype": cfg.models.teacher_dtype, "lora": vars(ARC_LORA)}
    out.mkdir(parents=True, exist_ok=True)
    check_run_file(out / "run.json", settings, "ARC bench")
    with emitter(ctx) as emit:
        doc = run_bench(task_set, row_names, out, student_loader(cfg), teacher_loader(cfg), k=k, seeds=seeds,
                        group=group, emit=emit, settings={**settings, "tasks": tasks, "rows": row_names})

    def human(console):
        from rich.table import Table

        from ..arc.jobs import fmt_rate
        t = Table(title=f"ARC: {len(doc['tasks'])} task(s), solved = pass@2 on every test input")
        for col in ("row", "runs", "solved / tasks", "rate [95% CI]", "best of", "invalid", "refused"):
            t.add_column(col, no_wrap=True, justify="left" if col == "row" else "right")
        for r in doc["rows"]:
            t.add_row(r["row"], str(r["runs"]), f"{r['solved']:.1f} / {r['tasks']}", fmt_rate(r["rate"]),
                      str(r["best_of"]), str(r["invalid"]), str(r["refused"]))
        console.print(t)
        console.print(f"results: {doc['out']}/table.md, results.json, results.jsonl (one line per run)")
    output(ctx, doc, human)


@arc_app.command("train")
def train(ctx: typer.Context,
          tasks: str = typer.Option("seal-train", "--tasks", help="Training tasks: seal-train (SEAL's 12, shipped) "
                                    "or task ids, comma-separated."),
          rounds: int = typer.Option(1, "--rounds", min=1, help="ReST-EM rounds (a finished run can be extended)."),
          k: int = typer.Option(15, "--k", min=1, help="Configurations sampled per task and round (SEAL: 15)."),
          seed: int = typer.Option(0, "--seed", help="Sampling and training seed."),
          out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/arc-train-<time>); "
                                             "re-running with the same folder resumes."),
          group: int = typer.Option(8, "--group", min=1, help="Adapters trained at once (batched engine)."),
          device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: config)."),
          json_out: bool = typer.Option(False, "--json", help="Print the result JSON only.")):
    """ReST-EM over configurations: the teacher samples K per task, the solved ones are its SFT data; one new
    teacher version per round (bench it with --rows teacher:VERSION)."""
    from dataclasses import asdict

    from ...memory import check_home
    from ...models import teacher_versions
    from ..arc.jobs import load_task_set, train_rounds
    from ..arc.tasks import load_split
    from ..runlog import check_run_file

    cfg = command_config(ctx, json_out, device)
    task_set = load_task_set([tasks])
    overlap = sorted(set(task_set) & set(load_split("seal-evaluation")))
    out = out or Path("runs") / f"arc-train-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    check_run_file(out / "run.json", {"tasks": list(task_set), "k": k, "seed": seed, "student": cfg.models.student,
                                      "teacher": cfg.models.teacher, "policy": asdict(cfg.policy)}, "ARC training run")
    check_home(cfg.home, create=True)
    store = teacher_versions(cfg.home, create=True)
    with emitter(ctx) as emit:
        if overlap:
            from ...events import Message
            emit(Message("warning", f"training on SEAL's evaluation task(s) {', '.join(overlap)}: "
                                    "do not bench the result on them"))
        doc = train_rounds(task_set, student_loader(cfg), teacher_base_loader(cfg), store, cfg.policy, out,
                           rounds=rounds, k=k, seed=seed, group=group, emit=emit,
                           meta={"base_model": cfg.models.teacher})

    def human(console):
        from rich.table import Table
        t = Table(title=f"ARC ReST-EM ({doc['out']})")
        for col in ("round", "valid / sampled", "solved runs", "solved tasks", "teacher version"):
            t.add_column(col, no_wrap=True)
        for r in doc["rounds"]:
            t.add_row(str(r["round"]), f"{r['valid']} / {r['samples']}", str(r["solved_rows"]),
                      f"{r['solved_tasks']} / {r['tasks']}",
                      (r["adapter"] or "(untrained)") + ("" if r["trained"] else " (unchanged)"))
        console.print(t)
        if doc["teacher"]:
            console.print(f"bench it: seal-agent arc bench --rows in-context,default,teacher,"
                          f"teacher:{doc['teacher']},oracle")
    output(ctx, doc, human)
