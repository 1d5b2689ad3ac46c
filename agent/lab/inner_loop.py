"""The inner-loop speed benchmark: the same self-edits and questions, sequential (SEAL-style) vs batched multi-LoRA.

Workload: SEAL's reference self-edits (default GPT-4.1's, shipped in ``agent/data/squad``) on the first passages,
one candidate per (passage, completion): its parsed lines + the passage, its passage's first questions. Both
engines run :func:`student.innerloop.evaluate` with the same settings (batch size 1 per adapter by default, as
SEAL); the batched engine trains ``K`` adapters at once.

Reported per engine: self-edit evaluations per second, training tokens per second, and model FLOPs utilisation:
training FLOPs ≈ 6 · params_touched · training tokens (params_touched = the weights of every linear layer a token
passes through, lm_head included; attention-score FLOPs and the answer generation are not counted, so this is a
lower bound) over the whole wall time (training + answering), against the peak measured with a large matmul in
the model's dtype on the same device. On a shared CPU the wall-time figures move with the other processes' load;
the CPU-time ratio and MFU (this process's CPU seconds, against the matmul's FLOP per CPU second) are reported
beside them and are the ones to compare.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from student.config import AnswerSettings
from student.innerloop import Candidate, CandidateResult, evaluate
from teacher.parsing import parse_completion

from ..config import Config
from ..errors import BadInput
from ..events import Emit, Progress, Stage, ignore
from .report import machine_info
from .squad import DEFAULT_DATA, load_passages, load_reference

Loader = Callable[[], tuple[Any, Any]]  # () -> (model, tokenizer)


@dataclass
class InnerLoopOptions:
    ks: list[int] = field(default_factory=lambda: [8])  # batched group sizes to measure (the K sweep)
    samples: Optional[int] = None      # self-edit evaluations in the workload (default: the largest K)
    seq_samples: Optional[int] = None  # how many of them the sequential engine runs (default: all)
    questions: int = 3                 # questions per candidate (its passage's first ones)
    epochs: int = 2
    batch_size: int = 1                # per adapter; 1 = SEAL
    lr: Optional[float] = None         # default: config train.lr
    max_new_tokens: Optional[int] = None  # default: config answer.max_new_tokens
    reference: str = "gpt4.1"
    warmup: bool = True

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise BadInput("K must be a list of positive integers")
        if self.samples is not None and self.samples < 1 or self.seq_samples is not None and self.seq_samples < 0:
            raise BadInput("--samples must be positive and --seq-samples non-negative")
        if self.questions < 1 or self.epochs < 1 or self.batch_size < 1:
            raise BadInput("--questions, --epochs and --batch-size must be positive")

    @property
    def n(self) -> int:
        return self.samples or max(self.ks)


def parse_ks(text: str) -> list[int]:
    """"1,4,8" -> [1, 4, 8]."""
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"--sweep {text!r}: expected comma-separated integers like 1,4,8") from None
    if not ks or any(k < 1 for k in ks):
        raise BadInput(f"--sweep {text!r}: expected positive integers")
    return ks


def workload(cfg: Config, opts: InnerLoopOptions) -> list[Candidate]:
    """``opts.n`` candidates: the reference self-edits of the first passages, in order (passage, completion)."""
    passages = load_passages(DEFAULT_DATA)
    completions, family = load_reference(opts.reference, passages)
    settings = dataclasses.replace(cfg.train, epochs=opts.epochs, batch_size=opts.batch_size,
                                   lr=cfg.train.lr if opts.lr is None else opts.lr, seed=0)
    out: list[Candidate] = []
    for p, comps in zip(passages, completions):
        for j, completion in enumerate(comps):
            if len(out) == opts.n:
                return out
            texts = parse_completion(completion, p.title, p.context, family, cfg.parse)
            out.append(Candidate(texts, p.questions[: opts.questions], p.golds[: opts.questions], settings,
                                 tag=f"{p.index}:{j}"))
    if len(out) < opts.n:
        raise BadInput(f"only {len(out)} reference self-edits available, {opts.n} asked for")
    return out


def linear_params(model: nn.Module) -> int:
    """Weights of all linear layers (lm_head included, counted once even when tied to the embeddings)."""
    seen: set[int] = set()
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear) and id(m.weight) not in seen:
            seen.add(id(m.weight))
            total += m.weight.numel()
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Peak:
    """Matmul FLOP/s per wall second, and per CPU second of this process (CPU devices only)."""
    wall: float
    cpu: Optional[float] = None


def measure_peak_flops(device: torch.device, dtype: torch.dtype, seconds: float = 1.0) -> Peak:
    """FLOP/s of a large square matmul in ``dtype`` on ``device`` (the achievable peak for MFU).

    On a CPU the rate per CPU second of this process is measured too: it does not depend on how much of
    the machine other processes take, so it stays comparable with the run's CPU time.
    """
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        a @ b
        reps += 1
        if reps % 4 == 0:
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                flops = 2 * n**3 * reps
                cpu = time.process_time() - cpu_start
                return Peak(flops / elapsed, flops / cpu if device.type == "cpu" and cpu > 0 else None)


def _run(model, tok, cands: list[Candidate], cfg: Config, answer: AnswerSettings, engine: str, k: int,
         emit: Emit, task: str) -> tuple[list[CandidateResult], float, float]:
    """Results, wall seconds and this process's CPU seconds (less sensitive to other processes on a shared CPU)."""
    device = next(model.parameters()).device
    _sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = evaluate(model, tok, cands, cfg.lora, answer, engine=engine, group=k,
                       on_progress=lambda d, t: emit(Progress(task, d, t)))
    _sync(device)
    return results, time.perf_counter() - start, time.process_time() - cpu_start


def _summary(results: list[CandidateResult], seconds: float, cpu_seconds: float, params: int, peak: Peak) -> dict:
    tokens = sum(r.tokens for r in results)
    flops = 6 * params * tokens
    return {
        "candidates": len(results),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "evals_per_cpu_s": len(results) / cpu_seconds if cpu_seconds > 0 else math.nan,
        "evals_per_s": len(results) / seconds if seconds > 0 else math.nan,
        "train_tokens": tokens,
        "steps": sum(r.steps for r in results),
        "tokens_per_s": tokens / seconds if seconds > 0 else math.nan,
        "mfu": flops / seconds / peak.wall if seconds > 0 and peak.wall > 0 else math.nan,
        "mfu_cpu_time": flops / cpu_seconds / peak.cpu if peak.cpu and cpu_seconds > 0 else None,
        "accuracy": sum(r.accuracy for r in results) / len(results) if results else math.nan,
    }


def _agreement(seq: list[CandidateResult], bat: list[CandidateResult]) -> dict:
    """How close the batched results are to their sequential twins (same candidates)."""
    pairs = list(zip(seq, bat))
    loss_diffs = [abs(a - b) for s, b in pairs for a, b in zip(s.losses, b.losses)]
    answers = [x == y for s, b in pairs for x, y in zip(s.answers, b.answers)]
    return {
        "candidates": len(pairs),
        "max_loss_diff": max(loss_diffs, default=0.0),
        "max_nll_diff": max((abs(s.nll - b.nll) for s, b in pairs), default=0.0),
        "answers_equal": sum(answers) / len(answers) if answers else math.nan,
        "accuracy_sequential": sum(s.accuracy for s, _ in pairs) / len(pairs) if pairs else math.nan,
        "accuracy_batched": sum(b.accuracy for _, b in pairs) / len(pairs) if pairs else math.nan,
    }


def run_inner_loop(cfg: Config, opts: InnerLoopOptions, emit: Emit = ignore,
                   load_student: Optional[Loader] = None) -> dict:
    """Run the benchmark; returns the result document (also what --json prints)."""
    machine = machine_info("")  # at the start: the commit that runs, the load before
    cands = workload(cfg, opts)
    emit(Stage("load", f"student model ({cfg.models.student})"))
    if load_student is None:
        from ..models import load_model
        model, tok = load_model(cfg.models.student, cfg.home, cfg.models)
    else:
        model, tok = load_student()
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    answer = dataclasses.replace(cfg.answer, max_new_tokens=opts.max_new_tokens or cfg.answer.max_new_tokens)
    emit(Stage("peak", f"measuring the {dtype} matmul peak on {device}"))
    peak = measure_peak_flops(device, dtype)
    params = linear_params(model)

    if opts.warmup:  # one-time costs (kernels, allocator, caches) stay out of both timings
        emit(Stage("warmup"))
        tiny = dataclasses.replace(cands[0], texts=cands[0].texts[:1], questions=cands[0].questions[:1],
                                   golds=cands[0].golds[:1], settings=dataclasses.replace(cands[0].settings, epochs=1))
        short = dataclasses.replace(answer, max_new_tokens=2)
        for engine in ("sequential", "batched"):
            evaluate(model, tok, [tiny], cfg.lora, short, engine=engine, group=1)

    n_seq = len(cands) if opts.seq_samples is None else min(opts.seq_samples, len(cands))
    doc: dict[str, Any] = {
        "benchmark": "inner-loop",
        "workload": {
            "reference": opts.reference, "candidates": len(cands), "sequential_candidates": n_seq,
            "questions_per_candidate": opts.questions, "texts_per_candidate": sum(len(c.texts) for c in cands) / len(cands),
            "train": dataclasses.asdict(cands[0].settings), "lora": dataclasses.asdict(cfg.lora),
            "answer": dataclasses.asdict(answer),
        },
        "model": {"spec": cfg.models.student, "device": str(device), "dtype": str(dtype).replace("torch.", ""),
                  "params": sum(p.numel() for p in model.parameters()), "params_touched": params},
        "peak_flops": peak.wall,
        "peak_flops_per_cpu_s": peak.cpu,
        "sequential": None,
        "batched": [],
    }
    seq_results: list[CandidateResult] = []
    if n_seq:
        emit(Stage("sequential", f"{n_seq} self-edits, one adapter at a time"))
        seq_results, seconds, cpu = _run(model, tok, cands[:n_seq], cfg, answer, "sequential", 1, emit,
                                         "inner-loop sequential")
        doc["sequential"] = _summary(seq_results, seconds, cpu, params, peak)
    for k in opts.ks:
        emit(Stage("batched", f"{len(cands)} self-edits, K={k} adapters at a time"))
        results, seconds, cpu = _run(model, tok, cands, cfg, answer, "batched", k, emit, f"inner-loop batched K={k}")
        row = {"k": k, **_summary(results, seconds, cpu, params, peak)}
        if doc["sequential"]:
            row["ratio"] = row["evals_per_s"] / doc["sequential"]["evals_per_s"]
            row["ratio_cpu"] = row["evals_per_cpu_s"] / doc["sequential"]["evals_per_cpu_s"]
            row["agreement"] = _agreement(seq_results, results[:n_seq])
        doc["batched"].append(row)
    end_load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    doc["machine"] = {**machine, "device": str(device), "load_average_start": machine.get("load_average"),
                      "load_average_end": end_load}
    return doc
