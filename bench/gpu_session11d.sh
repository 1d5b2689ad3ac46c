#!/usr/bin/env bash
# Session 11 (issue 5): SEAL's Qwen2.5-7B self-edits, base and RL-trained, at seeds 0-1 on the 133 held-out
# passages of the T03F folder (which carries them and squad_dev.json); see bench/gpu_session9.sh (PART refs).
#   calls 1-4: carry .stage1, .stage2, .stage3, .stage4 one by one (source bench/gpu_stage.sh in each)
#   call 5: carry .stage5 .d_runs (.d_runs/session10.tgz: see bench/gpu_session11.sh):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session11d.sh launch && bash .gpu_src/bench/gpu_session11d.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session11d.sh wait 540
# Make the calls one at a time: a call refused for size (64 MiB) must not be followed by the launching one.
PART=refs source "$(dirname "$0")/gpu_session9.sh"
