#!/usr/bin/env bash
# Session 3's GPU call (after staging call 1): the forgetting sweep of issue 6 (T=8 x 4 orders, 6 strategies, plus
# 'mixed' at anchor weight 20) and, beside it on the other cores, the knowledge benchmark of issue 3 resumed from
# the 25-passage H100 folder towards all 175 passages. Everything is resumable; what is done comes back in $OUT.
#   source bench/gpu_stage.sh && bash bench/gpu_issues_3_6.sh LIMIT
limit=${1:-480}
export OMP_NUM_THREADS=1
k=/root/runs/k175
mkdir -p $k
[ -f $k/run.json ] || cp bench/results/knowledge-h100-175/{run.json,results.jsonl,selfedits.jsonl} $k/
[ -d .runs ] && cp -rn .runs/* /root/runs/ 2>/dev/null   # a previous call's partial results, carried back
timeout "$limit" python3 -m agent.cli bench knowledge --device cuda --n 175 --seeds 2 --group 128 \
  --conditions base,passage,teacher:implications,teacher:rewrite,ref:gpt4.1,ref:qwen-base,ref:seal-rl \
  --out $k >$k.log 2>&1 &
bash bench/forgetting_gpu.sh /root/runs/f8 "$limit" "8 4" --set models.dtype=float32 &
for u in continue merge; do
  timeout "$limit" python3 -m agent.cli --set models.dtype=float32 --set train.anchor_weight=20 forgetting \
    --device cuda --docs 8 --runs 4 --update $u --replay mixed --out /root/runs/f8-a20 --json \
    >/root/runs/f8-a20.$u.log 2>&1 &
done
wait
nvidia-smi --query-gpu=name,memory.used --format=csv
for f in /root/runs/f8 /root/runs/f8-a20 $k; do echo "$f: $(grep -c . $f/runs.jsonl $f/results.jsonl 2>/dev/null | tr '\n' ' ')"; done
tail -3 $k.log
tar czf "$OUT/runs.tgz" -C /root/runs .
