#!/usr/bin/env bash
# Session 6, second machine (issue 5). The first machine (bench/gpu_session6.sh) was taken back at the 30-minute
# hold limit with the run's logs saved but its teacher versions lost, and two of its held-out jobs killed by
# CUDA OOM beside the group-256 training process. This job carries the logs back (.d_runs/runs.tgz), lets
# `teacher train` rebuild rounds 1-2's teachers from the logged kept self-edits (agent/restem.py: Restem.rebuild),
# and then computes the missing held-out rows with no training process beside them:
#   the fixed rows' second shard (base, passage, untrained teacher, GPT-4.1; its first shard came back), and the
#   rebuilt round-1 and round-2 teachers on all 167 held-out passages (3 self-edits per passage, 1 seed).
#   call 1: carry .stage1; call 2: carry .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs:
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session6b.sh launch && bash .gpu_src/bench/gpu_session6b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session6b.sh wait 540
# .gpu_src: `git archive HEAD` of agent, student, teacher, tui, pyproject.toml and bench/gpu_*.sh (the harness,
# bench/gpu_job.sh, included).
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs-b.log COUNTED="D/rewards.jsonl D-held/results.jsonl D-held/selfedits.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # the settings it was measured with (lines mixed, weight 1)
before_launch() { tar xzf .d_runs/runs.tgz -C $R && rm -f $R/ALL_DONE; }
gpu_job "$0" "$@"

held() {  # LOG CONDITIONS [--shard I/N]
  local log=$1 cond=$2; shift 2
  seal bench knowledge --device cuda --subset $R/D/heldout.json --seeds 1 --k 3 --group 64 --conditions "$cond" \
    --out $R/D-held "$@" >$R/$log.log 2>&1
  echo "held-out $log done $(date)"
}
echo "start $(date)"
held fixed-b base,passage,teacher,ref:gpt4.1 --shard 1/2 &
seal --set policy.epochs=6 --set policy.lr=5e-4 teacher train --device cuda --passages 193 --samples 5 --seeds 2 \
  --rounds 2 --group 256 --reward contains --keep best --out $R/D >$R/D-rebuild.log 2>&1
echo "rebuilt $(date)"
for r in 1 2; do
  a=$(python3 -c "import json; print(json.load(open('$R/D/round-$r.json')).get('adapter', ''))")
  echo "round $r teacher $a (rebuilt from $(python3 -c "import json; print(json.load(open('$R/D/round-$r.json')).get('rebuilt_from'))"))"
  echo "$a" >>$R/D-rebuilt.ids
  held R$r-rebuilt "teacher:$a" &
done
wait
echo "all done $(date)"
touch $R/ALL_DONE
