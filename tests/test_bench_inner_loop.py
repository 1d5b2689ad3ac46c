"""`seal-agent bench inner-loop` logic (agent/benchmarks/inner_loop.py) on the tiny random model."""

import math

import pytest

from agent.lab import inner_loop
from agent.lab.inner_loop import InnerLoopOptions, linear_params, parse_ks, run_inner_loop, workload
from agent.config import Config
from agent.errors import BadInput
from agent.events import Progress, Stage


def test_parse_ks():
    assert parse_ks("1, 4,8") == [1, 4, 8]
    for bad in ("", "a,b", "0,2"):
        with pytest.raises(BadInput):
            parse_ks(bad)


def test_workload_uses_reference_self_edits():
    cands = workload(Config(), InnerLoopOptions(ks=[3], questions=2, epochs=1))
    assert len(cands) == 3 and [c.tag for c in cands] == ["0:0", "0:1", "0:2"]
    assert all(len(c.questions) == 2 and len(c.texts) > 1 for c in cands)
    assert all(c.settings.batch_size == 1 and c.settings.epochs == 1 for c in cands)


def test_run_reports_both_engines(tiny_model, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(inner_loop, "measure_peak_flops", lambda device, dtype: inner_loop.Peak(1e9, 1e9))
    events = []
    cfg = Config()
    cfg.lora.r, cfg.lora.alpha = 4, 8
    cfg.train.max_len = 24  # byte-level tokenizer: keep sequences short
    opts = InnerLoopOptions(ks=[1, 2], samples=2, questions=1, epochs=1, max_new_tokens=2, warmup=True)
    doc = run_inner_loop(cfg, opts, emit=events.append, load_student=lambda: (tiny_model, tiny_tokenizer))
    seq = doc["sequential"]
    assert seq["candidates"] == 2 and seq["evals_per_s"] > 0 and seq["train_tokens"] > 0
    assert [row["k"] for row in doc["batched"]] == [1, 2]
    for row in doc["batched"]:
        assert row["ratio"] > 0 and 0 < row["mfu"] and row["mfu_cpu_time"] > 0 and not math.isnan(row["tokens_per_s"])
        assert row["train_tokens"] == seq["train_tokens"]
        assert row["agreement"]["max_loss_diff"] < 1e-3
    assert doc["model"]["params_touched"] == linear_params(tiny_model)
    assert any(isinstance(e, Progress) and e.task.startswith("inner-loop batched") for e in events)
    assert any(isinstance(e, Stage) and e.name == "sequential" for e in events)

    # the rich rendering of `seal-agent bench inner-loop`
    import io

    from rich.console import Console

    from agent.lab.commands.bench_inner import _human
    buf = io.StringIO()
    _human(doc)(Console(file=buf, width=200))
    text = buf.getvalue()
    assert "sequential" in text and "batched" in text and "max |loss diff|" in text
