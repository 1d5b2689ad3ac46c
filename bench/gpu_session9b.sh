#!/usr/bin/env bash
# Session 9, second machine (issue 5): two branches of session 8's T03 after its round-1 rewards, policy.init=base
# and policy.epochs=2, 2 rounds each, with held-out rows; see bench/gpu_session9.sh.
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .d_runs (.d_runs/machine2-runs.tgz: bench/results/restem-h200-session8's):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session9b.sh launch && bash .gpu_src/bench/gpu_session9b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session9b.sh wait 540
PART=branch source "$(dirname "$0")/gpu_session9.sh"
