#!/usr/bin/env bash
# The forgetting sweep of issue 6 on a GPU machine: one process per (update, replay) strategy, in parallel (each
# is host-bound, one small model each; they share the GPU) and all appending to the one resumable runs.jsonl of
# OUT_DIR; when every run is logged, one more invocation writes the report (tables, plots). Killed at LIMIT
# seconds, a re-run resumes.
#   bash bench/forgetting_gpu.sh OUT_DIR LIMIT "DOCS RUNS" [seal-agent global options, e.g. --set k=v]
out=$1; limit=$2; read -r docs runs <<<"$3"; shift 3
common=(--device "${DEVICE:-cuda}" --docs "$docs" --runs "$runs" --out "$out")
mkdir -p "$out"
for u in continue merge; do
  for r in none reservoir mixed; do
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} timeout "$limit" python3 -m agent.cli "$@" forgetting "${common[@]}" --update $u --replay $r \
      --json >"$out.$u-$r.log" 2>&1 &
  done
done
wait
want=$((6 * runs))
have=$(grep -c . "$out/runs.jsonl" 2>/dev/null || echo 0)
echo "$out: $have of $want runs logged"
if [ "$have" -ge "$want" ]; then
  python3 -m agent.cli "$@" forgetting "${common[@]}" --update continue,merge --replay none,reservoir,mixed
fi
