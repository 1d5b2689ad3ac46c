#!/usr/bin/env bash
# Prepared in session 10 (issue 5), not run: a new --fresh run sampled at teacher.max_new_tokens=512 with
# policy.eos=ended, 2 rounds; rows of round 1 at seed 0 and round 2 at seeds 0-1, at 512; see bench/gpu_session9.sh
# (PART longtrain). Session 11 left it: round 3's teacher at 512 tokens gained nothing over 256
# (bench/results/restem-h200-session11), and 2 rounds at 512 would not fit one machine's 30 minutes held.
#   calls 1-4: carry .stage1, .stage2, .stage3, .stage4 one by one (source bench/gpu_stage.sh in each)
#   call 5: carry .stage5 .d_runs, where .d_runs/session10.tgz holds squad_dev.json and the T03F folder:
#     t=$(mktemp -d) && tar xzf bench/results/restem-h200-session10/machine1-runs.tgz -C $t ./T03F &&
#     cp ../shared/data/squad/squad_dev.json $t/ && mkdir -p .d_runs && tar czf .d_runs/session10.tgz -C $t .
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session11b.sh launch && bash .gpu_src/bench/gpu_session11b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session11b.sh wait 540
# Make the calls one at a time: a call refused for size (64 MiB) must not be followed by the launching one.
PART=longtrain source "$(dirname "$0")/gpu_session9.sh"
