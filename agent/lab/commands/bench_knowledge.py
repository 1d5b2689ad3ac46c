"""`seal-agent bench knowledge`: SEAL's knowledge-incorporation table on our student (agent/benchmarks/knowledge.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..conditions import DEFAULT_CONDITIONS
from ..squad import DEFAULT_DATA
from .bench import bench_app
from .run_flags import command_config, executor_option, ray_address_option
from ...commands.common import emitter, output


@bench_app.command("knowledge")
def knowledge(ctx: typer.Context,
              data: Path = typer.Option(DEFAULT_DATA, "--data", help="SQuAD-format JSON: [{title, context, questions: "
                                        "[{question, answer}], completions?}] (default: SEAL's 175 reference passages)."),
              n: Optional[int] = typer.Option(None, "--n", min=1, help="Use the first N passages (default all)."),
              mode: str = typer.Option("single", "--mode", help="single: a fresh adapter per passage and self-edit; "
                                       "cpt: one update over all N passages, then all questions."),
              conditions: str = typer.Option(",".join(DEFAULT_CONDITIONS), "--conditions",
                                             help="Comma-separated rows: base, passage, teacher[:FAMILY|:ADAPTER], "
                                                  "ref[:gpt4.1|:qwen-base|:seal-rl|:PATH]."),
              seeds: int = typer.Option(1, "--seeds", min=1, help="Training seeds per self-edit."),
              k: Optional[int] = typer.Option(None, "--k", min=1, help="Self-edits per passage (teacher: config "
                                              "teacher.samples; ref: all five)."),
              out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default runs/knowledge-<time>); "
                                                 "re-running with the same folder resumes."),
              json_out: bool = typer.Option(False, "--json", help="Print the result JSON only."),
              device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: config)."),
              engine: str = typer.Option("auto", "--engine", help="Inner loop: sequential | batched | auto."),
              group: int = typer.Option(8, "--group", min=1, help="Adapters trained at once by the batched engine."),
              question_format: Optional[str] = typer.Option(None, "--question-format",
                                                            help="chat | raw | both (default: config answer.question_format)."),
              subset: Optional[Path] = typer.Option(None, "--subset", help="Only the passages of --data that are also "
                                                    "in this SQuAD file (e.g. a ReST-EM run's heldout.json); --n counts "
                                                    "within them. Results share the --data run folder."),
              shard: str = typer.Option("0/1", "--shard", help="I/N: do the I-th of N shares of the passages (whole "
                                        "generation chunks), for N processes or GPUs appending to one --out; a run "
                                        "without --shard then writes the full table."),
              report_only: bool = typer.Option(False, "--report-only", help="Write the table from the results "
                                               "already in --out (rows over the passages they have); compute nothing."),
              executor: Optional[str] = executor_option(), ray_address: Optional[str] = ray_address_option()):
    """Knowledge incorporation (SEAL's Table 2): accuracy with 95% intervals, recitation control, paired differences."""
    from ..knowledge import BenchOptions, KnowledgeBench

    cfg = command_config(ctx, json_out, device, executor, ray_address)
    opts = BenchOptions(data=data, n=n, mode=mode, conditions=(conditions,), seeds=seeds, out=out, engine=engine,
                        question_format=question_format, k=k, group=group, subset=subset, shard=parse_shard(shard),
                        report_only=report_only)
    with emitter(ctx) as emit:
        bench = KnowledgeBench(cfg, opts, emit=emit).prepare()
        doc = bench.run()

    def human(console):
        console.print(summary_table(doc))
        if doc["differences"]:
            console.print(differences_table(doc))
        console.print(f"[dim]{doc['config']['question_format_note']}[/]")
        console.print(f"results: {doc['config']['out']}/results.json, table.md (markdown), results.jsonl (per passage)")
    output(ctx, doc, human)


def parse_shard(text: str) -> tuple[int, int]:
    from ...errors import BadInput
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BadInput(f"--shard {text!r}: I/N, e.g. 0/2") from None
    return i, n


def summary_table(doc: dict):
    from rich.table import Table

    from ..report import fmt_ci, fmt_num
    c = doc["config"]
    qs = doc["rows"][0]["questions"] if doc["rows"] else 0
    t = Table(title=f"knowledge, {c['mode']}: {c['n']} passages, {qs} questions, seeds {c['seeds']}")
    t.add_column("row", overflow="fold")
    for col in ("accuracy [95% CI]", "control", "F1", "EM", "NLL", "s/psg"):
        t.add_column(col, no_wrap=True, justify="right")
    for r in doc["rows"]:
        t.add_row(r["row"], fmt_ci(r["accuracy"], 2), fmt_ci(r["control"], 2), fmt_num(r["f1"]["value"], 2),
                  fmt_num(r["em"]["value"], 2), fmt_num(r["nll"]["value"], 2),
                  fmt_num(r["timing"]["seconds_per_passage"], 0))
    return t


def differences_table(doc: dict):
    from rich.table import Table

    from ..report import fmt_ci
    t = Table(title="paired differences a − b (✱ outside the 95% error bars)")
    t.add_column("a − b", overflow="fold")
    for col in ("Δ accuracy", "Δ control", "Δ F1"):
        t.add_column(col, no_wrap=True, justify="right")
    for d in doc["differences"]:
        cell = lambda k: fmt_ci(d[k], 2) + (" ✱" if d[k]["outside_error_bars"] else "")  # noqa: E731
        t.add_row(f"{d['a']} − {d['b']}", cell("accuracy"), cell("control"), cell("f1"))
    return t
