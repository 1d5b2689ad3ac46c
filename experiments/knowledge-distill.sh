#!/usr/bin/env bash
# Knowledge incorporation, 175 SEAL passages, 2 seeds, single-passage mode: next-token training (sft) against
# context distillation (distill) with several kinds of study material, each variant a process of its own on the
# one GPU (the inner loop is host-bound, so processes side by side add throughput). Started by
# `experiments/device.sh start knowledge-distill`; results under $RUNS/<variant>/ (table.md, results.json).
set -u
seal() { python3 -m agent.lab.cli --set answer.batch_size=64 "$@"; }
common=(bench knowledge --device cuda --n "${N:-175}" --seeds 2 --group 128 --k 2)
variant() {  # NAME CONDITIONS [--set ...]
  local name=$1 conds=$2; shift 2
  seal "$@" "${common[@]}" --conditions "$conds" --out "$RUNS/$name" --json >"$RUNS/$name.json" 2>"$RUNS/$name.log"
  echo "$name: exit $?"
}
variant sft base,open-book,passage,teacher,ref:gpt4.1,ref:seal-rl &
variant distill passage,teacher,ref:gpt4.1,ref:seal-rl --set absorb.method=distill &
variant distill-texts passage --set absorb.method=distill --set absorb.study=texts &
variant distill-qa passage --set absorb.method=distill --set absorb.study=questions,cues &
variant distill-cues passage --set absorb.method=distill --set absorb.study=texts,cues &
variant distill-lr3e-3 passage --set absorb.method=distill --set train.lr=3e-3 &
wait
for f in "$RUNS"/*/table.md; do echo "== $f"; cat "$f"; done
