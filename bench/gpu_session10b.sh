#!/usr/bin/env bash
# Session 10 (issue 5), second machine: the T03F folder the first left (bench/results/restem-h200-session10's
# machine1-runs.tgz), its teachers rebuilt from the logged winners, a fourth --fresh round, and rows of round 3's
# teacher at seed 0 and round 4's at seeds 0-2; see bench/gpu_session9.sh (PART fresh4).
#   as it ran, in four staging parts (bench/make_stage.sh now makes five: carry .stage1-4 in calls 1-4, and
#   .stage5 with .d_runs in the launching call):
#   calls 1-3: carry .stage1, .stage2, .stage3 (source bench/gpu_stage.sh in each)
#   call 4: carry .stage4 .d_runs, where .d_runs/session10.tgz holds squad_dev.json and the T03F folder:
#     t=$(mktemp -d) && tar xzf bench/results/restem-h200-session10/machine1-runs.tgz -C $t ./T03F &&
#     cp ../shared/data/squad/squad_dev.json $t/ && mkdir -p .d_runs && tar czf .d_runs/session10.tgz -C $t .
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session10b.sh launch && bash .gpu_src/bench/gpu_session10b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session10b.sh wait 540
PART=fresh4 source "$(dirname "$0")/gpu_session9.sh"
