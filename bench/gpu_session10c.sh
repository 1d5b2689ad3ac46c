#!/usr/bin/env bash
# Session 10 (issue 5), third machine: the T03F folder the first left (bench/results/restem-h200-session10's
# machine1-runs.tgz), rounds 1-3's teachers rebuilt from the logged winners, and rows of round 3's teacher and the
# untrained teacher at new seeds 3 and 4; see bench/gpu_session9.sh (PART confirm).
#   calls 1-4: carry .stage1-4 one by one (source bench/gpu_stage.sh in each; session 10's first two machines
#     staged four parts, the last with .d_runs)
#   call 5: carry .stage5 .d_runs, where .d_runs/session10.tgz holds squad_dev.json and the T03F folder:
#     t=$(mktemp -d) && tar xzf bench/results/restem-h200-session10/machine1-runs.tgz -C $t ./T03F &&
#     cp ../shared/data/squad/squad_dev.json $t/ && mkdir -p .d_runs && tar czf .d_runs/session10.tgz -C $t .
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session10c.sh launch && bash .gpu_src/bench/gpu_session10c.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session10c.sh wait 540
PART=confirm source "$(dirname "$0")/gpu_session9.sh"
