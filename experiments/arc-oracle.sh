#!/usr/bin/env bash
# ARC on SEAL's 10 evaluation tasks (shipped in agent/data/arc): in context, test-time training with the default
# configuration, the untrained teacher's 5 configurations, and the oracle (the best of the 16 configurations of
# ORACLE_GRID per task): which tasks can the student solve at all with some configuration? Started by
# `experiments/device.sh start arc-oracle`; results in $RUNS/arc-seal-eval (table.md, results.json,
# results.jsonl: one line per task x configuration).
#
# The rows go in three passes into one resumable folder, cheapest first, so a run stopped early still has a table.
# --group 24: a pass's configurations of a task (the 5 teacher's, the 16 oracle's) train in one batched
# multi-LoRA call and answer in one generation. Estimate on one H100: ~75M training tokens in all (the oracle ~52M, of
# which 4 tasks with grids up to 16x16 and 2.5k-4k-token examples take most), compute-bound at ~3e14 FLOP/s for
# the 135M student: ~4-6 min of training, ~1-2 min of augmented greedy generation, ~1 min of loading: ~6-9 min.
set -u
seal() { python3 -m tui.main "$@"; }
out=$RUNS/arc-seal-eval
common=(arc bench --tasks seal-eval --k 5 --seeds 1 --device cuda --group 24 --out "$out")
pass() {  # ROWS
  local t0=$SECONDS
  seal "${common[@]}" --rows "$1" 2>>"$RUNS/arc-bench.log"
  echo "rows $1: exit $? in $((SECONDS - t0)) s"
}
pass in-context,default
pass in-context,default,teacher
pass in-context,default,teacher,oracle
cat "$out/table.md"
