#!/usr/bin/env bash
# Session 7, third machine (issue 5): ReST-EM with the lines beside the passage at side weight 0.3. On the first
# machine (bench/gpu_session7.sh) weight 0.3 gave the best held-out rows so far: the untrained teacher 0.167
# (0.112 at weight 1, 0.107 mixed) and GPT-4.1 0.204 (passage alone 0.179). Same run settings as E otherwise,
# on 60 training passages (time); each round's teacher goes to the held-out rows as soon as it is trained.
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs (.d_runs/heldout.json: the 167 held-out passages of the split):
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session7c.sh launch && bash .gpu_src/bench/gpu_session7c.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session7c.sh wait 540
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs-c.log COUNTED="*/rewards.jsonl */results.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # as measured: each call sets absorb.lines; weight 1 unless it sets one
before_launch() { cp .d_runs/heldout.json $R/heldout.json; }
gpu_job "$0" "$@"

seal() { python3 -m agent.cli --set absorb.lines=beside --set train.side_weight=0.3 "$@"; }
adapter() { round_adapter $R/F "$1"; }
echo "start $(date)"
seal --set policy.epochs=6 --set policy.lr=5e-4 teacher train --device cuda --passages 60 --samples 5 --seeds 2 \
  --rounds 2 --group 128 --reward contains --keep best --out $R/F >$R/F.log 2>&1 &
train=$!
for r in 1 2; do
  while [ -z "$(adapter $r)" ] && kill -0 $train 2>/dev/null; do sleep 10; done
  a=$(adapter $r); [ -n "$a" ] || { echo "round $r: no trained teacher"; break; }
  echo "round $r teacher $a $(date)"
  seal bench knowledge --device cuda --subset $R/heldout.json --seeds 1 --k 3 --group 64 --conditions "teacher:$a" \
    --out $R/F-held >$R/F-R$r.log 2>&1 &
done
wait
echo "all done $(date)"
touch $R/ALL_DONE
