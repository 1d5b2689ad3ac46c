"""Where a training step's time goes: torch.profiler over a few steps of both inner-loop engines.

Usage (GPU machine, after `source bench/gpu_stage.sh`):  python -m agent.lab.profile_step --k 64 --out $OUT
Prints per-step wall time of the sequential engine (one adapter, batch 1) and of the batched engine at K, then
the top operators by self CPU time and by self device time; writes the tables to OUT/profile-k<K>.txt.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from agent.lab.inner_loop import InnerLoopOptions, workload
from agent.config import load_config
from agent.models import load_model
from student.multilora import MultiLoRA, train_many
from student.student import Student
from student.trainer import train_adapter


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("."))
    a = ap.parse_args()
    cfg = load_config()
    model, tok = load_model(cfg.models.student, cfg.home, cfg.models)
    device = next(model.parameters()).device
    cands = workload(cfg, InnerLoopOptions(ks=[a.k], samples=a.k, epochs=a.epochs))
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    lines = [f"model on {device}, {next(model.parameters()).dtype}, K={a.k}, epochs={a.epochs}"]

    # sequential: one adapter, SEAL's batch 1
    student = Student(model, tok, cfg.lora, cfg.answer)
    c = cands[0]
    train_adapter(student.model, tok, c.texts[:2], dataclasses.replace(c.settings, epochs=1))  # warm-up
    sync(device)
    t = time.perf_counter()
    r = train_adapter(student.model, tok, c.texts, c.settings)
    sync(device)
    lines.append(f"sequential: {r.steps} steps, {1000 * (time.perf_counter() - t) / r.steps:.1f} ms/step")
    with profile(activities=acts) as prof:
        train_adapter(student.model, tok, c.texts[:4], dataclasses.replace(c.settings, epochs=1))
        sync(device)
    for key in ("self_cpu_time_total", "self_device_time_total" if device.type == "cuda" else "cpu_time_total"):
        lines += [f"--- sequential, by {key}", prof.key_averages().table(sort_by=key, row_limit=25)]
    base = student.model.unload() if hasattr(student.model, "unload") else model

    # batched: K adapters at once
    with MultiLoRA(base, cfg.lora, a.k) as multi:
        for k in range(a.k):
            multi.reset(k, k)
        texts = [x.texts for x in cands]
        settings = [x.settings for x in cands]
        train_many(multi, tok, [t[:2] for t in texts], [dataclasses.replace(s, epochs=1) for s in settings])
        sync(device)
        t = time.perf_counter()
        res = train_many(multi, tok, texts, settings)
        sync(device)
        steps = max(x.steps for x in res)
        lines.append(f"batched K={a.k}: {steps} joint steps, {1000 * (time.perf_counter() - t) / steps:.1f} ms/step")
        with profile(activities=acts) as prof:
            train_many(multi, tok, [t[:4] for t in texts], [dataclasses.replace(s, epochs=1) for s in settings])
            sync(device)
        for key in ("self_cpu_time_total", "self_device_time_total" if device.type == "cuda" else "cpu_time_total"):
            lines += [f"--- batched K={a.k}, by {key}", prof.key_averages().table(sort_by=key, row_limit=25)]
    text = "\n".join(lines)
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"profile-k{a.k}.txt").write_text(text)


if __name__ == "__main__":
    main()
