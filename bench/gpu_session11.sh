#!/usr/bin/env bash
# Prepared in session 10 (issue 5), run in session 11 (bench/results/restem-h200-session11): the T03F folder
# session 10 left, round 3's teacher rebuilt; it and the untrained teacher at seeds 0-1 with
# teacher.max_new_tokens=512, and GPT-4.1's self-edits at seeds 1-2; see bench/gpu_session9.sh (PART long).
#   calls 1-4: carry .stage1, .stage2, .stage3, .stage4 one by one (source bench/gpu_stage.sh in each)
#   call 5: carry .stage5 .d_runs, where .d_runs/session10.tgz holds squad_dev.json and the T03F folder:
#     t=$(mktemp -d) && tar xzf bench/results/restem-h200-session10/machine1-runs.tgz -C $t ./T03F &&
#     cp ../shared/data/squad/squad_dev.json $t/ && mkdir -p .d_runs && tar czf .d_runs/session10.tgz -C $t .
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session11.sh launch && bash .gpu_src/bench/gpu_session11.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session11.sh wait 540
# Make the calls one at a time: a call refused for size (64 MiB) must not be followed by the launching one.
PART=long source "$(dirname "$0")/gpu_session9.sh"
