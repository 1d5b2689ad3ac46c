#!/usr/bin/env bash
# Session 7, first machine (issue 5): ReST-EM with the self-edit's lines learned *beside* the passage
# (`--set absorb.lines=beside`: the passage keeps its own 10 steps, each step adds train.side_weight x the lines'
# mean NLL), where every earlier run mixed them into one batch plan and every self-edit row, GPT-4.1's included,
# left gold NLL above the passage alone.
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs (.d_runs/heldout.json: the 167 held-out passages of the split):
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session7.sh launch && bash .gpu_src/bench/gpu_session7.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session7.sh wait 540
# What runs side by side on the one GPU (memory: training at group 128 ~52 GB, each held-out process ~34 GB):
#   E:       ReST-EM, contains reward, keep best, M-step 6 epochs at lr 5e-4 (session 6's variant A), 100
#            training passages x 5 samples x 2 seeds, 2 rounds, lines beside the passage (side weight 1)
#   E-held:  the fixed held-out rows under the same absorption: base, passage, untrained teacher, GPT-4.1
#            (167 passages, 3 self-edits per passage and teacher row, 1 seed)
#   W03:     the untrained teacher and GPT-4.1 with side weight 0.3 (is a lighter side term better?)
# The trained teachers' rows run on a second machine (bench/gpu_session7b.sh), rebuilt from E's logs.
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs.log COUNTED="*/rewards.jsonl */evals.jsonl */results.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # as measured: each call sets absorb.lines; weight 1 unless it sets one
before_launch() { cp .d_runs/heldout.json $R/heldout.json; nvidia-smi --query-gpu=name,memory.total --format=csv; }
gpu_job "$0" "$@"

held() {  # OUT CONDITIONS [--set ...]
  local out=$1 cond=$2; shift 2
  seal --set absorb.lines=beside "$@" bench knowledge --device cuda --subset $R/heldout.json --seeds 1 --k 3 \
    --group 64 --conditions "$cond" --out $R/$out >$R/$out.log 2>&1
  echo "held-out $out done $(date)"
}
echo "start $(date)"
seal --set absorb.lines=beside --set policy.epochs=6 --set policy.lr=5e-4 teacher train --device cuda \
  --passages 100 --samples 5 --seeds 2 --rounds 2 --group 128 --reward contains --keep best --out $R/E >$R/E.log 2>&1 &
sleep 30
held E-held base,passage,teacher,ref:gpt4.1 &
sleep 20
held W03 teacher,ref:gpt4.1 --set train.side_weight=0.3 &
wait
echo "all done $(date)"
touch $R/ALL_DONE
