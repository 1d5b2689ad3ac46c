#!/usr/bin/env bash
# Session 5's GPU work on a 4-GPU machine of the `device` tool: a background job (setsid) that outlives the
# 10-minute calls; later calls wait and bring back what is logged (tables are rebuilt here with --report-only).
#   staging (bench/gpu_stage.sh, folders made by bench/make_stage.sh), then (carry .gpu_src):
#     bash .gpu_src/bench/gpu_session5.sh launch && bash .gpu_src/bench/gpu_session5.sh wait 500
#   later calls:  bash /root/repo/bench/gpu_session5.sh wait 540
# .gpu_src: `git archive HEAD` of the code (bench/gpu_job.sh included), so a half-edited working tree never
# reaches the job.
# (Session 5 staged the model as two halves and all-MiniLM-L6-v2 beside .gpu_src; the tracked files have grown
# since, so the model now travels in three parts.)
# GPUs 0-2: ReST-EM variants (issue 5), 2 rounds x 50 passages x 2 seeds each, then both trained teachers on the
#           167 held-out passages (bench knowledge --subset heldout.json, two shards side by side)
#   A: contains reward, keep best, a stronger M-step (6 epochs, lr 5e-4; session 4: 2 epochs, lr 3e-4)
#   B: loglik reward (gold-answer NLL drop), keep best, the same M-step as A
#   C: contains reward, keep every positive self-edit, 8 samples per passage, the same M-step as A
# GPU 3: the forgetting sweep (issue 6), T=8 x 4 orders, update route and continue, no replay
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs.log COUNTED="*/rewards.jsonl */results.jsonl */runs.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # the settings it was measured with (lines mixed, weight 1)
before_launch() {
  mkdir -p /root/stage
  [ -d /root/stage/minilm ] || cp -a .stage3/minilm /root/stage/
  nvidia-smi --query-gpu=index,name,memory.total --format=csv
}
gpu_job "$0" "$@"

# ---- the jobs (run from /root/repo, detached) -------------------------------------------------------------------
MSTEP=(--set policy.epochs=6 --set policy.lr=5e-4)
variant() {  # GPU NAME [teacher train options]: train, then both rounds' teachers on the held-out passages
  local gpu=$1 name=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu seal "${MSTEP[@]}" teacher train --device cuda --passages 50 --seeds 2 --rounds 2 \
    --group 128 --out $R/$name "$@" >$R/$name.log 2>&1
  echo "$name trained $(date)"
  ids=$(python3 -c "
import json; ids = []
for r in (1, 2):
    try: a = json.load(open('$R/$name/round-%d.json' % r)).get('adapter', '')
    except FileNotFoundError: a = ''
    if a and a not in ids: ids.append(a)
print(','.join('teacher:' + a for a in ids))")
  [ -n "$ids" ] || { echo "$name: no trained teacher"; return; }
  echo "$ids" >$R/$name.ids
  for s in 0 1; do
    sleep $((s * 20)); CUDA_VISIBLE_DEVICES=$gpu seal bench knowledge --device cuda --subset $R/$name/heldout.json --seeds 2 \
      --group 128 --conditions "$ids" --out $R/$name-held --shard $s/2 >$R/$name-held.shard$s.log 2>&1 &
  done
  wait; echo "$name held-out done $(date)"
}
echo "start $(date)"
variant 0 A --reward contains --keep best --samples 5 &
variant 1 B --reward loglik --keep best --samples 5 &
variant 2 C --reward contains --keep positive --samples 8 &
( for u in route continue; do
    CUDA_VISIBLE_DEVICES=3 seal --set models.dtype=float32 --set models.embedder=/root/stage/minilm forgetting \
      --device cuda --docs 8 --runs 4 --update $u --replay none --out $R/f8-route --json >$R/f8-route.$u.log 2>&1 &
  done; wait
  seal --set models.dtype=float32 --set models.embedder=/root/stage/minilm forgetting --device cuda --docs 8 --runs 4 \
    --update continue,route --replay none --out $R/f8-route >$R/f8-route.report.log 2>&1
  echo "f8-route done $(date)" ) &
wait
echo "all done $(date)"
touch $R/ALL_DONE
