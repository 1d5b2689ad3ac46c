#!/usr/bin/env bash
# Session 4's GPU work on a 4-GPU machine of the `device` tool, run as a background job that outlives the 10-minute
# calls (setsid): one call launches it, later calls wait and bring back what is done. Everything is resumable.
#   call 1 (carry .stage1):  mkdir -p /root/stage && cp .stage1/* /root/stage/
#   call 2 (carry .stage2):  source bench/gpu_stage.sh && bash bench/gpu_session4.sh launch && bash bench/gpu_session4.sh wait 480
#   call 3, 4:               bash bench/gpu_session4.sh wait 560
# GPU 0: ReST-EM (issue 5), 2 rounds x 50 passages x 5 samples x 2 seeds; then the trained teachers' held-out rows
# GPU 1: knowledge benchmark (issue 3), shards 0,1 of 4, resumed from bench/results/knowledge-175; then cpt
# GPU 2: knowledge shards 2,3 of 4, beside the forgetting sweep's 'mixed' at anchor weight 20 (issue 6)
# GPU 3: the forgetting sweep (issue 6), T=8 x 4 orders x 6 strategies; then the held-out rows' second shard
set -u
R=/root/runs
cmd=${1:-}
if [ "$cmd" = launch ]; then
  mkdir -p $R /root/repo
  cp -a agent student teacher tui bench pyproject.toml /root/repo/
  nvidia-smi --query-gpu=index,name,memory.total --format=csv
  (cd /root/repo && setsid nohup bash bench/gpu_session4.sh jobs >$R/jobs.log 2>&1 < /dev/null &)
  sleep 2; echo launched; exit 0
fi
env_setup() {  # the harness's job environment, with the settings this job was measured with (lines mixed)
  source /root/repo/bench/gpu_job.sh && JOB_CONFIG=$SETTINGS_BEFORE_SESSION7 job_env
}
KCOND=base,passage,teacher:implications,teacher:rewrite,ref:gpt4.1,ref:qwen-base,ref:seal-rl
reports() {  # tables from whatever is logged so far (--report-only computes nothing)
  env_setup; cd /root/repo
  python3 -m agent.cli bench knowledge --n 175 --seeds 2 --conditions $KCOND --out $R/k175 --report-only >/dev/null 2>&1
  [ -f $R/kcpt/run.json ] && python3 -m agent.cli --set train.epochs=3 bench knowledge --mode cpt --n 175 --seeds 2 \
    --k 1 --conditions $KCOND --out $R/kcpt --report-only >/dev/null 2>&1
  if [ -s $R/restem.ids ] && [ -f $R/kheld/results.jsonl ]; then  # issue 5: k175's rows + the trained teachers'
    mkdir -p $R/k5 && cp $R/k175/run.json $R/k175/machine.json $R/k5/
    python3 - <<PY  # whole lines only: the logs may be mid-append
for name in ("results.jsonl", "selfedits.jsonl"):
    with open("$R/k5/" + name, "w") as out:
        for src in ("$R/k175/", "$R/kheld/"):
            try:
                raw = open(src + name).read()
            except FileNotFoundError:
                continue
            out.write(raw[: raw.rfind("\n") + 1])
PY
    python3 -m agent.cli bench knowledge --subset $R/restem/heldout.json --seeds 2 --out $R/k5 --report-only \
      --conditions base,passage,teacher:implications,$(cat $R/restem.ids),ref:gpt4.1 >/dev/null 2>&1
  fi
  cd - >/dev/null
}
if [ "$cmd" = wait ]; then
  end=$((SECONDS + ${2:-500}))
  while [ $SECONDS -lt $end ] && [ ! -f $R/ALL_DONE ]; do sleep 5; done
  cd $R
  for f in restem/evals.jsonl restem/rewards.jsonl k175/results.jsonl kheld/results.jsonl kcpt/results.jsonl \
           f8b/runs.jsonl f8b-a20/runs.jsonl; do echo "$f: $(grep -c . $f 2>/dev/null || echo 0)"; done
  ls restem 2>/dev/null | tr '\n' ' '; echo
  tail -n 4 jobs.log; [ -f ALL_DONE ] && echo ALL_DONE
  reports; for t in k175 k5 kcpt; do [ -f $R/$t/table.md ] && { echo "== $t"; head -n 14 $R/$t/table.md; }; done
  tar czf "$OUT/runs.tgz" --exclude='*.safetensors' -C $R .
  # teacher versions without their weights (80 MB each: over what comes back); enough for --report-only here
  [ -d /root/home/adapters/teacher ] && tar czf "$OUT/teacher.tgz" --exclude='*.safetensors' -C /root/home/adapters teacher
  ls -la "$OUT"; exit 0
fi
[ "$cmd" = jobs ] || { echo "usage: gpu_session4.sh launch | wait SECONDS | jobs"; exit 2; }

# ---- the jobs (run from /root/repo, detached) -------------------------------------------------------------------
env_setup
k=$R/k175
mkdir -p $k
[ -f $k/run.json ] || { cp bench/results/knowledge-175/{run.json,selfedits.jsonl} $k/; gunzip -c bench/results/knowledge-175/results.jsonl.gz >$k/results.jsonl; }
knowledge_shard() {  # GPU, shard
  CUDA_VISIBLE_DEVICES=$1 seal bench knowledge --device cuda --n 175 --seeds 2 --group 128 --conditions $KCOND \
    --out $k --shard $2/4 >$k.shard$2.log 2>&1
}
heldout_rows() {  # GPU, shard: the trained teachers on the held-out passages (their own folder: no two writers
  # start on one log); merged with k175's rows of the same passages afterwards
  while [ ! -f $R/restem.done ]; do sleep 10; done
  ids=$(python3 -c "
import json; ids = []
for r in (1, 2):
    a = json.load(open('$R/restem/round-%d.json' % r)).get('adapter', '')
    if a and a not in ids: ids.append(a)
print(','.join('teacher:' + a for a in ids))")
  [ -n "$ids" ] || { echo "no trained teacher"; return; }
  echo "$ids" >$R/restem.ids
  CUDA_VISIBLE_DEVICES=$1 seal bench knowledge --device cuda --subset $R/restem/heldout.json --seeds 2 --group 128 \
    --conditions "$ids" --out $R/kheld --shard $2/2 >$R/kheld.shard$2.log 2>&1
}
echo "start $(date)"
( CUDA_VISIBLE_DEVICES=0 seal teacher train --device cuda --passages 50 --samples 5 --seeds 2 --rounds 2 --group 128 \
    --out $R/restem >$R/restem.log 2>&1 && touch $R/restem.done; echo "restem done $(date)"; heldout_rows 0 0 ) &
( knowledge_shard 1 0 & knowledge_shard 1 1 & wait; echo "k175 0,1 done $(date)"
  mkdir -p $R/kcpt; [ -f $R/kcpt/selfedits.jsonl ] || cp $k/selfedits.jsonl $R/kcpt/
  CUDA_VISIBLE_DEVICES=1 seal --set train.epochs=3 bench knowledge --device cuda --mode cpt --n 175 --seeds 2 --k 1 \
    --group 16 --conditions $KCOND --out $R/kcpt >$R/kcpt.log 2>&1; echo "cpt done $(date)" ) &
( knowledge_shard 2 2 & knowledge_shard 2 3 &
  for u in continue merge; do
    CUDA_VISIBLE_DEVICES=2 seal --set models.dtype=float32 --set train.anchor_weight=20 forgetting --device cuda \
      --docs 8 --runs 4 --update $u --replay mixed --out $R/f8b-a20 --json >$R/f8b-a20.$u.log 2>&1 &
  done; wait; echo "k175 2,3 + a20 done $(date)" ) &
( CUDA_VISIBLE_DEVICES=3 bash bench/forgetting_gpu.sh $R/f8b 1700 "8 4" --set models.dtype=float32; echo "f8b done $(date)"
  heldout_rows 3 1 ) &
wait
echo "all done $(date)"
touch $R/ALL_DONE
