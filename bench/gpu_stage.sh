#!/usr/bin/env bash
# On a GPU machine of the `device` tool: gather the embedded model from the parts carried in, call by call, then
# install the gguf wheel the GPU image lacks and convert the GGUF to safetensors once. Source it in every call
# (it exports the environment); each call carries one staging folder, made here by `bash bench/make_stage.sh`
# (a call carries at most 64 MiB including the tracked files, so the 98 MB model travels in five parts):
#   calls 1-4 (carry .stage1, .stage2, .stage3, .stage4): source bench/gpu_stage.sh
#   call 5 (carry .stage5 [+ the job's data]): source bench/gpu_stage.sh && <benchmarks>   (assembles, converts)
#   optional (carry .stage6): source bench/gpu_stage.sh          (all-MiniLM-L6-v2 for `route`, float16)
# (Sessions 4-9 carried three parts, .stage1-3, and MiniLM as .stage4; session 9's last machine and session 10's
# first two, four parts and MiniLM as .stage5.)
# Files outside the checkout survive between calls only while the machine is held: make the calls back to back.
mkdir -p /root/stage
for d in .stage1 .stage2 .stage3 .stage4 .stage5 .stage6; do
  [ -d "$d" ] && cp -a "$d"/. /root/stage/
done
parts=$(cat /root/stage/q.parts 2>/dev/null || echo none)  # the last part's folder says how many there are
if [ ! -f /root/stage/smol/model.safetensors ] && [ "$(ls /root/stage/q.part.* 2>/dev/null | wc -l)" = "$parts" ]; then
  cat /root/stage/q.part.* > /root/stage/model.gguf
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /root/stage/gguf-*.whl
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
ls /root/stage/smol/model.safetensors >/dev/null 2>&1 && echo "staged: /root/stage/smol" || echo "staged: $(ls /root/stage | tr '\n' ' ')"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export SEAL_AGENT_STUDENT_MODEL=/root/stage/smol SEAL_AGENT_TEACHER_MODEL=/root/stage/smol
export SEAL_AGENT_HOME=/root/home
[ -d /root/stage/minilm ] && export SEAL_AGENT_EMBEDDER=/root/stage/minilm
mkdir -p /root/runs
