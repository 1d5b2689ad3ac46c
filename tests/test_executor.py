"""The lab's executors on a local Ray (2 CPUs): the same records as in-process runs; a killed worker is retried with
nothing lost or written twice."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.config import RunSettings
from agent.lab.executor import LocalExecutor, RayExecutor, auto_k, batches

from .conftest import make_tiny_model, make_tiny_tokenizer
from .test_bench_knowledge import PASSAGES, strip_timing, tiny_config as bench_config
from .test_forgetting import DOCS, _tiny_cfg as sweep_config

TIMING = ("wall_seconds", "seconds", "device")


def load_tiny():
    """A worker's student: built where it is called (each Ray worker builds its own; same seed, same weights)."""
    tok = make_tiny_tokenizer()
    return make_tiny_model(tok, seed=0), tok


class ExitOnce:
    """Ends the worker process on the first task any worker starts (a marker file makes it happen once)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __call__(self) -> None:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(1)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.9')")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def records(path: Path) -> list[dict]:
    """A JSONL log's records in file order, without timing and device fields."""
    lines = [json.loads(x) for x in path.read_text().split("\n") if x.strip()]
    strip = lambda r: {k: strip(v) if isinstance(v, dict) else v for k, v in r.items() if k not in TIMING}  # noqa: E731
    return [{**strip(r), "edits": [strip(e) for e in r["edits"]]} if "edits" in r else strip(r) for r in lines]


# ---- the knowledge bench ----------------------------------------------------------------------------------------

def bench(tmp: Path, out: str, executor) -> dict:
    from agent.lab.knowledge import BenchOptions, KnowledgeBench
    data = tmp / "two.json"
    data.write_text(json.dumps(PASSAGES))
    opts = BenchOptions(data=data, conditions=("base", "passage", "ref"), seeds=2, out=tmp / out, engine="batched",
                        group=2)
    return KnowledgeBench(bench_config(tmp / "home"), opts, load_student=load_tiny, executor=executor).prepare().run()


@pytest.fixture(scope="module")
def local_bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    return tmp, bench(tmp, "out", LocalExecutor())


def test_ray_bench_equals_local_with_a_worker_killed(ray_local, local_bench, tmp_path):
    tmp, local = local_bench
    marker = tmp_path / "killed"
    executor = RayExecutor(RunSettings(executor="ray", workers=2), before_task=ExitOnce(marker))
    remote = bench(tmp_path, "out", executor)
    assert marker.exists()  # a worker did die on its first item, which Ray ran again on the restarted worker
    assert remote["config"]["executor"] == "ray" and local["config"]["executor"] == "local"
    assert strip_timing(remote) == strip_timing(local)
    mine, theirs = records(tmp_path / "out" / "results.jsonl"), records(tmp / "out" / "results.jsonl")
    keys = [(r["condition"], r["passage"], r["seed"]) for r in mine]
    assert len(keys) == len(set(keys)) == 2 * (1 + 2 + 2)  # nothing lost, nothing twice (base once, the rest per seed)
    assert mine == theirs  # the same records in the same order
    assert table_cells(tmp_path / "out") == table_cells(tmp / "out") and len(table_cells(tmp / "out")) > 6


def table_cells(out: Path) -> list[str]:
    """table.md's table rows without their last cell (seconds per passage)."""
    return [line.rsplit("|", 2)[0] for line in (out / "table.md").read_text().splitlines() if line.startswith("| ")]


# ---- the forgetting sweep ---------------------------------------------------------------------------------------

def sweep(tmp: Path, executor, monkeypatch) -> dict:
    import agent.lab.forgetting as fg
    short = fg.general_eval_texts()[:1]
    monkeypatch.setattr(fg, "general_eval_texts", lambda: short)
    tmp.mkdir(exist_ok=True)
    data = tmp / "docs.json"
    data.write_text(json.dumps(DOCS))
    opts = fg.SweepOptions(data=data, docs=2, runs=1, update="continue", replay="none,reservoir", out=tmp / "out",
                           seed=3)
    return fg.ForgettingSweep(sweep_config(tmp / "home"), opts, load_student=load_tiny, executor=executor).prepare().run()


def test_ray_sweep_equals_local(ray_local, tmp_path, monkeypatch):
    local = sweep(tmp_path / "local", LocalExecutor(), monkeypatch)
    remote = sweep(tmp_path / "ray", RayExecutor(RunSettings(executor="ray", workers=2)), monkeypatch)
    a, b = records(tmp_path / "local" / "out" / "runs.jsonl"), records(tmp_path / "ray" / "out" / "runs.jsonl")
    assert [(r["update"], r["replay"], r["run"]) for r in a] == [("continue", "none", 0), ("continue", "reservoir", 0)]
    assert a == b
    assert len(a[1]["R"]) == 3 and a[1]["replayed"] == [0, 1]
    same = lambda doc: json.dumps(untimed(doc["strategies"]), sort_keys=True)  # noqa: E731  (NaN == NaN here)
    assert same(remote) == same(local)


def untimed(x):
    """``x`` without timing fields, at any depth."""
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if k not in TIMING}
    if isinstance(x, list):
        return [untimed(v) for v in x]
    return x


# ---- small parts ------------------------------------------------------------------------------------------------

def test_batches_and_auto_k():
    assert batches([1, 1, 3, 1, 1], 2) == [[0, 1], [2], [3, 4]]
    assert batches([5], 2) == [[0]] and batches([], 2) == []
    gib = 2**30
    assert auto_k(80 * gib, 0.25, 8) == 56  # a quarter of a free H100: 0.9 x 20 GiB / 0.32 GiB
    assert auto_k(0, 0.25, 8) == 8 and auto_k(10**15, 1.0, 8) == 256 and auto_k(gib // 10, 1.0, 8) == 1
    assert LocalExecutor(RunSettings(k_per_worker=16)).group(8) == 16 and LocalExecutor().group(8) == 8


def test_run_settings_are_checked():
    from agent.config import load_config
    from agent.errors import BadInput
    with pytest.raises(BadInput, match="run.executor"):
        load_config(Path("/nonexistent-home"), ["run.executor=spark"])
    with pytest.raises(BadInput, match="gpus_per_worker"):
        load_config(Path("/nonexistent-home"), ["run.gpus_per_worker=1.5"])
    cfg = load_config(Path("/nonexistent-home"), ["run.executor=ray", "run.gpus_per_worker=0.5", "run.workers=3"])
    assert (cfg.run.executor, cfg.run.gpus_per_worker, cfg.run.workers) == ("ray", 0.5, 3)
