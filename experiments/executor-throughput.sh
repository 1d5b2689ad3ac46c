#!/usr/bin/env bash
# Self-edit evaluations per second on one GPU: the same knowledge-bench workload (40 passages, passage-only and
# GPT-4.1's five self-edits, one seed) in one process (local executor, K = 64) and on Ray workers sharing the GPU
# (4 workers x 0.25 GPU, K = 64 each). Candidates / wall seconds come from each run's results.json.
set -u
seal() { python3 -m agent.lab.cli "$@"; }
work=(bench knowledge --device cuda --n "${N:-40}" --seeds 1 --conditions passage,ref:gpt4.1 --k 5 --group 64)
/usr/bin/time -v -o "$RUNS/local.time" seal "${work[@]}" --executor local --out "$RUNS/local" --json >"$RUNS/local.json" 2>"$RUNS/local.log"
echo "local: exit $?"
/usr/bin/time -v -o "$RUNS/ray.time" seal --set run.gpus_per_worker=0.25 --set run.k_per_worker=64 "${work[@]}" \
  --executor ray --out "$RUNS/ray" --json >"$RUNS/ray.json" 2>"$RUNS/ray.log"
echo "ray: exit $?"
python3 - "$RUNS" <<'PY'
import json, sys
from pathlib import Path
runs = Path(sys.argv[1])
for name in ("local", "ray"):
    try:
        doc = json.loads((runs / name / "results.json").read_text())
    except (OSError, ValueError) as e:
        print(name, "no results:", e); continue
    recs = [json.loads(l) for l in (runs / name / "results.jsonl").read_text().splitlines() if l.strip()]
    cands = sum(len(r["edits"]) for r in recs)
    secs = doc["timing"]["seconds_this_invocation"]
    print(f"{name}: {cands} evaluations in {secs:.1f} s = {cands / secs:.2f} evaluations/s")
PY
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
