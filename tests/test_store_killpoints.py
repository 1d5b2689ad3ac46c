"""Kill -9 at every point of an ingest, a forced re-ingest and a rollback (fault injection, not timing): after
each, every active edit keeps its records, its adapter's bytes and its answers to its probes, no edit is lost,
and nothing is left (no orphan records, no unnamed adapters, no temp files). Drives tests/killpoint_driver.py
in a subprocess (it forks a child per kill point, with tiny models and a cheap embedder)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    work = tmp_path_factory.mktemp("killpoints")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "killpoint_driver.py"), str(work)], env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((work / "result.json").read_text())


@pytest.mark.parametrize("scenario", ["ingest", "force", "rollback"])
def test_every_kill_point_keeps_every_active_edit_whole(results, scenario):
    res = results[scenario]
    assert res["points"] >= 8, res["names"]
    killed = [n for n, _name, code in res["ran"] if code == 77]
    assert len(killed) == res["points"]                # every point was reached and killed there
    assert res["failures"] == []
