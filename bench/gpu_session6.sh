#!/usr/bin/env bash
# Session 6's GPU work (issue 5) on one GPU of the `device` tool: a background job (setsid) that outlives the
# 10-minute calls; later calls wait and bring back what is logged (tables are rebuilt here with --report-only).
#   staging (bench/gpu_stage.sh, folders made by bench/make_stage.sh); the third staging call also carries .gpu_src:
#     bash .gpu_src/bench/gpu_session6.sh launch && bash .gpu_src/bench/gpu_session6.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session6.sh wait 560
# .gpu_src: `git archive HEAD` of the code (bench/gpu_job.sh included), so a half-edited working tree never
# reaches the job.
#
# What runs, side by side on the one GPU (the inner loop is launch-bound, so processes overlap well):
#   D:      ReST-EM variant A of session 5 (contains reward, keep best, M-step 6 epochs at lr 5e-4) on the whole
#           training pool (193 passages of 6 titles, against 50 before), 5 samples x 2 seeds, 3 rounds
#   D-held: `bench knowledge` on the 167 held-out passages with 3 self-edits per passage and teacher row (session
#           5: 1), 1 seed (the seed-to-seed spread was <= 0.012 there; the self-edit draw is the noise to cut):
#           base, passage, the untrained teacher and GPT-4.1 at once; each trained teacher as soon as its round
#           has finished (two shards each).
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs.log COUNTED="*/rewards.jsonl */evals.jsonl */results.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # the settings it was measured with (lines mixed, weight 1)
before_launch() { nvidia-smi --query-gpu=index,name,memory.total --format=csv; }
gpu_job "$0" "$@"

# ---- the jobs (run from /root/repo, detached) -------------------------------------------------------------------
ROUNDS=3
held() {  # NAME CONDITIONS [GROUP]: the held-out rows, two shards side by side
  for s in 0 1; do
    sleep $((s * 20)); seal bench knowledge --device cuda --subset $R/D/heldout.json --seeds 1 --k 3 \
      --group ${3:-64} --conditions "$2" --out $R/D-held --shard $s/2 >$R/held-$1.shard$s.log 2>&1 &
  done
  wait; echo "held-out $1 done $(date)"
}
adapter() { round_adapter $R/D "$1"; }
echo "start $(date)"
seal --set policy.epochs=6 --set policy.lr=5e-4 teacher train --device cuda --passages 193 --samples 5 --seeds 2 \
  --rounds $ROUNDS --group 256 --reward contains --keep best --out $R/D >$R/D.log 2>&1 &
train=$!
# the held-out split is written when the run starts
while [ ! -f $R/D/heldout.json ]; do sleep 5; kill -0 $train 2>/dev/null || break; done
held fixed base,passage,teacher,ref:gpt4.1 &
for r in $(seq 1 $ROUNDS); do
  while [ -z "$(adapter $r)" ] && kill -0 $train 2>/dev/null; do sleep 10; done
  a=$(adapter $r); [ -n "$a" ] || { echo "round $r: no trained teacher"; break; }
  echo "round $r teacher $a $(date)"; echo "$a" >>$R/D.ids
  held R$r "teacher:$a" &
done
wait
echo "all done $(date)"
touch $R/ALL_DONE
