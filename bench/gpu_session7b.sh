#!/usr/bin/env bash
# Session 7, second machine (issue 5): the trained teachers' held-out rows. The first machine's run folder
# (bench/gpu_session7.sh, E) is carried back (.d_runs/runs.tgz); `teacher train` rebuilds rounds 1-2's teachers
# from the logged kept self-edits (Restem.rebuild: same pairs, same seed, new ids), then both rows run side by
# side on the 167 held-out passages, into the first machine's E-held folder (same settings: lines beside).
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs:
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session7b.sh launch && bash .gpu_src/bench/gpu_session7b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session7b.sh wait 540
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs-b.log COUNTED="E/rewards.jsonl E-held/results.jsonl E-held/selfedits.jsonl"
JOB_CONFIG=$SETTINGS_BEFORE_SESSION7  # as measured: each call sets absorb.lines; weight 1 unless it sets one
before_launch() { tar xzf .d_runs/runs.tgz -C $R && rm -f $R/ALL_DONE; }
gpu_job "$0" "$@"

echo "start $(date)"
seal --set absorb.lines=beside --set policy.epochs=6 --set policy.lr=5e-4 teacher train --device cuda \
  --passages 100 --samples 5 --seeds 2 --rounds 2 --group 128 --reward contains --keep best --out $R/E >$R/E-rebuild.log 2>&1
echo "rebuilt $(date)"
for r in 1 2; do
  a=$(python3 -c "import json; print(json.load(open('$R/E/round-$r.json')).get('adapter', ''))")
  echo "round $r teacher $a (rebuilt from $(python3 -c "import json; print(json.load(open('$R/E/round-$r.json')).get('rebuilt_from'))"))"
  echo "$a" >>$R/E-rebuilt.ids
  seal --set absorb.lines=beside bench knowledge --device cuda --subset $R/heldout.json --seeds 1 --k 3 --group 64 \
    --conditions "teacher:$a" --out $R/E-held >$R/R$r.log 2>&1 &
  sleep 20
done
wait
echo "all done $(date)"
touch $R/ALL_DONE
