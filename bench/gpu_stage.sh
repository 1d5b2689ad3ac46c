#!/usr/bin/env bash
# On a GPU machine of the `device` tool: assemble the embedded model from the two carried halves, install the
# few wheels the GPU image lacks, convert the GGUF to safetensors once. Source it: it exports the environment.
#   call 1 (carry .stage1):  mkdir -p /root/stage && cp .stage1/* /root/stage/
#   call 2 (carry .stage2):  source bench/gpu_stage.sh && <benchmarks>
set -e
mkdir -p /root/stage
if [ ! -f /root/stage/smol/model.safetensors ]; then
  cat /root/stage/gguf.part.aa .stage2/gguf.part.ab > /root/stage/model.gguf
  # the GPU image has typer, rich, numpy, pyyaml, tqdm; only gguf is missing
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .stage2/whl/gguf-*.whl
  PYTHONPATH=/tmp/site python3 - <<'PY'
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("/root/stage", gguf_file="model.gguf")
m = AutoModelForCausalLM.from_pretrained("/root/stage", gguf_file="model.gguf", dtype=torch.float32)
m.hf_quantizer = None
if hasattr(m.config, "quantization_config"):
    del m.config.quantization_config
m.save_pretrained("/root/stage/smol"); tok.save_pretrained("/root/stage/smol")
print("converted", sum(p.numel() for p in m.parameters()))
PY
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export SEAL_AGENT_STUDENT_MODEL=/root/stage/smol SEAL_AGENT_TEACHER_MODEL=/root/stage/smol
export SEAL_AGENT_HOME=/root/home
mkdir -p /root/runs
set +e
