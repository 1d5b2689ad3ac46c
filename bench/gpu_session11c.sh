#!/usr/bin/env bash
# Session 11 (issue 5): the T03F folder session 10 left, round 3's teacher rebuilt; it and the untrained teacher at
# seeds 0-2 with teacher.no_repeat_ngram=10; see bench/gpu_session9.sh (PART ngram).
#   calls 1-4: carry .stage1, .stage2, .stage3, .stage4 one by one (source bench/gpu_stage.sh in each)
#   call 5: carry .stage5 .d_runs (.d_runs/session10.tgz: see bench/gpu_session11.sh):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session11c.sh launch && bash .gpu_src/bench/gpu_session11c.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session11c.sh wait 540
# Make the calls one at a time: a call refused for size (64 MiB) must not be followed by the launching one.
PART=ngram source "$(dirname "$0")/gpu_session9.sh"
