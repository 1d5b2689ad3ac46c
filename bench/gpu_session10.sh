#!/usr/bin/env bash
# Session 10 (issue 5): session 8's T03 branched after round 1 with --fresh,
# rounds 2-3 on new passages of the same pool, rows at seeds 0-2 (round 2) and 1-2 (round 3); see bench/gpu_session9.sh (PART fresh).
#   as it ran, in four staging parts (bench/make_stage.sh now makes five: carry .stage1-4 in calls 1-4, and
#   .stage5 with .d_runs in the launching call):
#   calls 1-3: carry .stage1, .stage2, .stage3 (source bench/gpu_stage.sh in each)
#   call 4: carry .stage4 .d_runs, where .d_runs/session9.tgz holds squad_dev.json and session 9's T03 folder:
#     t=$(mktemp -d) && tar xzf bench/results/restem-h200-session9/machine1-runs.tgz -C $t ./T03 &&
#     cp ../shared/data/squad/squad_dev.json $t/ && mkdir -p .d_runs && tar czf .d_runs/session9.tgz -C $t .
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session10.sh launch && bash .gpu_src/bench/gpu_session10.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session10.sh wait 540
PART=fresh source "$(dirname "$0")/gpu_session9.sh"
