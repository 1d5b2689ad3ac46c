#!/usr/bin/env bash
# Session 9, third machine (issue 5): T03's and T03B's (policy.init=base) round-2 teachers at seeds 1 and 2, and
# T03B's round 3; see bench/gpu_session9.sh.
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .d_runs (.d_runs/session9.tgz: squad_dev.json and the T03 and T03B folders of the
#     first two machines, bench/results/restem-h200-session9):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session9c.sh launch && bash .gpu_src/bench/gpu_session9c.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session9c.sh wait 540
PART=extend source "$(dirname "$0")/gpu_session9.sh"
