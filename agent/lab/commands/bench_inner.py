"""`seal-agent bench inner-loop`: sequential (SEAL-style) vs batched multi-LoRA inner loop (agent/benchmarks/inner_loop.py)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from .bench import bench_app
from ...commands.common import emitter, output, state


def _fmt(x: Optional[float], spec: str) -> str:
    return "–" if x is None or x != x else format(x, spec)


def _pct(row: dict, cpu: bool) -> str:
    value = row.get("mfu_cpu_time") if cpu else row.get("mfu")
    return "–" if value is None else f"{value * 100:.2f}%"


def _human(doc: dict):
    from rich.table import Table

    def show(console):
        m, w = doc["model"], doc["workload"]
        table = Table(title=f"Inner loop: {w['candidates']} self-edit evaluations ({w['reference']}), "
                            f"{m['spec']} on {m['device']} ({m['dtype']})")
        cpu = doc.get("peak_flops_per_cpu_s") is not None
        for col in ("engine", "K", "evals", "seconds", "evals/s", "ratio", "CPU s", "ratio (CPU time)", "train tok/s",
                    "MFU (CPU time)" if cpu else "MFU", "accuracy"):
            table.add_column(col, justify="left" if col == "engine" else "right")
        seq = doc["sequential"]
        if seq:
            table.add_row("sequential", "1", str(seq["candidates"]), _fmt(seq["seconds"], ".1f"),
                          _fmt(seq["evals_per_s"], ".4f"), "1.00", _fmt(seq["cpu_seconds"], ".1f"), "1.00",
                          _fmt(seq["tokens_per_s"], ".0f"),
                          _pct(seq, cpu), _fmt(seq["accuracy"], ".3f"))
        for row in doc["batched"]:
            table.add_row("batched", str(row["k"]), str(row["candidates"]), _fmt(row["seconds"], ".1f"),
                          _fmt(row["evals_per_s"], ".4f"), _fmt(row.get("ratio"), ".2f"),
                          _fmt(row["cpu_seconds"], ".1f"), _fmt(row.get("ratio_cpu"), ".2f"),
                          _fmt(row["tokens_per_s"], ".0f"), _pct(row, cpu),
                          _fmt(row["accuracy"], ".3f"))
        console.print(table)
        t = w["train"]
        console.print(f"training: lr {t['lr']}, {t['epochs']} epochs, batch {t['batch_size']} per adapter, "
                      f"{w['texts_per_candidate']:.1f} texts per self-edit, {w['questions_per_candidate']} questions; "
                      f"peak {doc['peak_flops'] / 1e12:.3f} TFLOP/s ({m['dtype']} matmul"
                      + (f", {doc['peak_flops_per_cpu_s'] / 1e12:.3f} per CPU second" if cpu else "") + "); "
                      f"params touched {m['params_touched'] / 1e6:.1f}M")
        for row in doc["batched"]:
            a = row.get("agreement")
            if a:
                console.print(f"K={row['k']} vs sequential on {a['candidates']}: max |loss diff| {a['max_loss_diff']:.2e}, "
                              f"max |nll diff| {a['max_nll_diff']:.2e}, answers equal {a['answers_equal']:.0%}")
        mach = doc["machine"]
        console.print(f"load average {mach.get('load_average_start')} -> {mach.get('load_average_end')} on "
                      f"{mach.get('cpus')} cpus, torch threads {mach.get('torch_threads')}")
    return show


@bench_app.command("inner-loop")
def inner_loop(ctx: typer.Context,
               k: int = typer.Option(8, "--k", min=1, help="Adapters trained at once by the batched engine."),
               sweep: Optional[str] = typer.Option(None, "--sweep", help="Comma-separated K values (e.g. 1,4,8,16); "
                                                   "overrides --k."),
               device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: config)."),
               dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 | bfloat16 | auto (default: config)."),
               samples: Optional[int] = typer.Option(None, "--samples", min=1,
                                                     help="Self-edit evaluations in the workload (default: the largest K)."),
               seq_samples: Optional[int] = typer.Option(None, "--seq-samples", min=0,
                                                         help="How many of them the sequential engine runs "
                                                              "(default all; 0 skips it)."),
               questions: int = typer.Option(3, "--questions", min=1, help="Questions per self-edit."),
               epochs: int = typer.Option(2, "--epochs", min=1, help="Training epochs per self-edit."),
               batch_size: int = typer.Option(1, "--batch-size", min=1, help="Sequences per step per adapter (SEAL: 1)."),
               lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: config train.lr)."),
               max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1,
                                                            help="Answer length (default: config answer.max_new_tokens)."),
               reference: str = typer.Option("gpt4.1", "--reference", help="Reference self-edits: gpt4.1 | qwen-base | "
                                             "seal-rl | PATH."),
               threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                                     help="torch CPU threads (default: torch's; 1 on a busy CPU)."),
               json_out: bool = typer.Option(False, "--json", help="Print the result JSON only."),
               out: Optional[Path] = typer.Option(None, "--out", help="Also write the result JSON into this folder.")):
    """Self-edit evaluations per second: sequential (SEAL-style) vs batched multi-LoRA, with tokens/s and MFU."""
    from ..inner_loop import InnerLoopOptions, parse_ks, run_inner_loop
    from ..runlog import atomic_write

    if threads:
        import torch
        torch.set_num_threads(threads)
    st = state(ctx)
    st.json = st.json or json_out
    cfg = st.config()
    if device:
        cfg.models.device = device
    if dtype:
        cfg.models.dtype = dtype
    opts = InnerLoopOptions(ks=parse_ks(sweep) if sweep else [k], samples=samples, seq_samples=seq_samples,
                            questions=questions, epochs=epochs, batch_size=batch_size, lr=lr,
                            max_new_tokens=max_new_tokens, reference=reference)
    with emitter(ctx) as emit:
        doc = run_inner_loop(cfg, opts, emit=emit)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"inner-loop-{time.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write(path, json.dumps(doc, indent=2, default=str) + "\n")
        doc["written_to"] = str(path)
    output(ctx, doc, _human(doc))
