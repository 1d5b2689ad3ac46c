#!/usr/bin/env bash
# Session 6, third machine (issue 5): is the teacher's sampling temperature a lever? The untrained teacher's
# self-edits at temperature 0.7 and 0.3 (every run so far sampled at 1.0) on the same 167 held-out passages, 3
# self-edits per passage, 1 seed: compare with the temperature-1.0 row of bench/results/restem-h200-session6
# (python3 bench/compare_engines.py A B --condition teacher:implications: a paired bootstrap over passages).
#   call 1: carry .stage1; call 2: carry .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs (.d_runs/heldout.json: the run's held-out passages):
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session6c.sh launch && bash .gpu_src/bench/gpu_session6c.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session6c.sh wait 540
# .gpu_src: `git archive HEAD` of agent, student, teacher, tui, pyproject.toml and bench/gpu_*.sh (the harness,
# bench/gpu_job.sh, included).
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs-c.log COUNTED="*/results.jsonl */selfedits.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # the settings it was measured with (lines mixed, weight 1)
before_launch() { cp .d_runs/heldout.json $R/heldout.json; }
gpu_job "$0" "$@"

echo "start $(date)"
for t in 0.7 0.3; do
  python3 -m agent.cli --set teacher.temperature=$t bench knowledge --device cuda --subset $R/heldout.json --seeds 1 \
    --k 3 --group 64 --conditions teacher --out $R/T$t >$R/T$t.log 2>&1 &
done
wait
echo "all done $(date)"
touch $R/ALL_DONE
