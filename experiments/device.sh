#!/usr/bin/env bash
# The GPU runner: stage the embedded model (and any extra wheels) on a GPU machine, start a study detached, wait
# for it and bring back its summaries. A study is a script in experiments/ (a list of seal-agent commands that
# write under $RUNS); the machine keeps files between calls only while it is held, so make the calls back to back.
#
# Here:   bash experiments/device.sh pack            -> .device/part1, .device/part2 (the GGUF in two halves, the
#                                                      gguf wheel) and .device/wheels (the wheels in experiments/
#                                                      wheels.txt, if any, for Python 3.12 manylinux)
# There (one call each, carrying one of the folders):
#         bash experiments/device.sh setup            -> gathers what was carried (part1, part2, then wheels1 and
#                                                      wheels2 + wheels where experiments/wheels.txt lists any);
#                                                      once every part is there,
#                                                      installs the wheels and converts the model (idempotent)
#         bash experiments/device.sh start STUDY      -> runs experiments/STUDY.sh detached (setsid), on a frozen
#                                                      copy of the code, logging to /root/runs/STUDY/log
#         bash experiments/device.sh wait STUDY SECS  -> waits up to SECS for it, prints the log's tail, and puts
#                                                      the study's summaries (no weights) in $OUT/STUDY.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=/root/stage
RUNS_ROOT=/root/runs

env_for_jobs() {
  export PYTHONPATH=/tmp/site:${CODE:-$PWD} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
  export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True NCCL_NVLS_ENABLE=0 RAY_AUTH_MODE=disabled
  export SEAL_AGENT_STUDENT_MODEL=$STAGE/smol SEAL_AGENT_TEACHER_MODEL=$STAGE/smol SEAL_AGENT_HOME=/root/home
  [ -d $STAGE/minilm ] && export SEAL_AGENT_EMBEDDER=$STAGE/minilm
  mkdir -p "$SEAL_AGENT_HOME"
}

case "${1:-}" in
pack)
  py=${PYTHON:-.venv/bin/python}
  gguf=$($py -c "from agent.models import embedded_gguf; print(embedded_gguf())")
  rm -rf .device && mkdir -p .device/part1 .device/part2 .device/wheels .device/wheels1 .device/wheels2
  split -n 2 -d "$gguf" .device/q.part.
  mv .device/q.part.00 .device/part1/ && mv .device/q.part.01 .device/part2/
  $py -m pip download -q --no-deps -d .device/part2 gguf
  if [ -s experiments/wheels.txt ]; then
    grep -v '^#' experiments/wheels.txt | xargs -r $py -m pip download -q --no-deps --only-binary=:all: \
      --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .device/wheels
    # a call carries 64 MiB with the tracked tree: a wheel over 30 MB travels in two pieces, joined by `setup`
    for w in .device/wheels/*.whl; do
      if [ "$(stat -c %s "$w")" -gt 30000000 ]; then
        split -n 2 -d "$w" "$w." && mv "$w.00" .device/wheels1/ && mv "$w.01" .device/wheels2/ && rm "$w"
      fi
    done
  fi
  du -sh .device/*
  ;;
setup)
  mkdir -p $STAGE
  for d in .device/part1 .device/part2 .device/wheels .device/wheels1 .device/wheels2; do
    [ -d "$d" ] && cp -a "$d"/. $STAGE/
  done
  # a wheel carried in pieces (split -b) is joined here: NAME.whl.00, NAME.whl.01, ...
  for first in $STAGE/*.whl.00; do
    [ -e "$first" ] && [ -e "${first%.00}.01" ] || continue  # both halves (pack splits in two)
    whole=${first%.00}; cat "$whole".[0-9][0-9] >"$whole.tmp" && mv "$whole.tmp" "$whole" && rm -f "$whole".[0-9][0-9]
  done
  if [ ! -f $STAGE/smol/model.safetensors ] && [ -f $STAGE/q.part.00 ] && [ -f $STAGE/q.part.01 ]; then
    cat $STAGE/q.part.00 $STAGE/q.part.01 >$STAGE/model.gguf
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $STAGE/gguf-*.whl
    PYTHONPATH=/tmp/site python3 - <<'PY'
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("/root/stage", gguf_file="model.gguf")
m = AutoModelForCausalLM.from_pretrained("/root/stage", gguf_file="model.gguf", dtype=torch.float32)
m.hf_quantizer = None
if hasattr(m.config, "quantization_config"):
    del m.config.quantization_config
m.save_pretrained("/root/stage/smol"); tok.save_pretrained("/root/stage/smol")
print("converted", sum(p.numel() for p in m.parameters()), "parameters")
PY
  fi
  # the other wheels (Ray and what it needs), once they are all there
  others=$(ls $STAGE/*.whl 2>/dev/null | grep -v '/gguf-' || true)
  if [ -n "$others" ] && ! ls $STAGE/*.whl.[0-9][0-9] >/dev/null 2>&1 && [ ! -f $STAGE/.wheels-installed ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $others && touch $STAGE/.wheels-installed
  fi
  [ -f $STAGE/smol/model.safetensors ] && echo "staged: $STAGE/smol" || echo "staged so far: $(ls $STAGE | tr '\n' ' ')"
  ;;
start)
  study=${2:?study name}; [ -f "experiments/$study.sh" ] || { echo "no experiments/$study.sh"; exit 2; }
  [ -f $STAGE/smol/model.safetensors ] || { echo "the model is not staged: run setup first"; exit 2; }
  export CODE=/root/code-$study RUNS=$RUNS_ROOT/$study
  rm -rf "$CODE" && mkdir -p "$CODE" "$RUNS" && cp -a agent teacher student tui experiments "$CODE"/
  env_for_jobs
  (cd "$CODE" && setsid nohup bash -c "bash experiments/$study.sh; echo \$? >$RUNS/EXIT" >"$RUNS/log" 2>&1 &)
  echo "started $study: log $RUNS/log"
  ;;
wait)
  study=${2:?study name}; secs=${3:-540}; RUNS=$RUNS_ROOT/$study
  for _ in $(seq "$secs"); do [ -f "$RUNS/EXIT" ] && break; sleep 1; done
  tail -n 40 "$RUNS/log" || true
  [ -f "$RUNS/EXIT" ] && echo "finished: exit $(cat "$RUNS/EXIT")" || echo "still running"
  if [ -n "${OUT:-}" ]; then
    (cd $RUNS_ROOT && find "$study" -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name 'log' \
      -o -name '*.txt' -o -name '*.csv' \) -size -20M -print0 | tar -czf "$OUT/$study.tar.gz" --null -T -)
    ls -la "$OUT"
  fi
  ;;
*)
  sed -n '2,17p' "$0"; exit 2
  ;;
esac
