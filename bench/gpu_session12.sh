#!/usr/bin/env bash
# Session 12 (issue 5): T03F's recipe (session 10) on the rewrite prompt family, 3 --fresh rounds, with held-out
# rows; see bench/gpu_session9.sh (PART rewrite). It carries session 10's T03F folder for its split and held-out set.
#   calls 1-4: carry .stage1, .stage2, .stage3, .stage4 one by one (source bench/gpu_stage.sh in each)
#   call 5: carry .stage5 .d_runs (.d_runs/session10.tgz: see bench/gpu_session11.sh):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session12.sh launch && bash .gpu_src/bench/gpu_session12.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session12.sh wait 540
# Make the calls one at a time: a call refused for size (64 MiB) must not be followed by the launching one.
PART=rewrite source "$(dirname "$0")/gpu_session9.sh"
