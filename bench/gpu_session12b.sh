#!/usr/bin/env bash
# Session 12 (issue 5), machine 2: TRW (machine 1's rewrite run) carried in, its teachers rebuilt; round 3 again at
# seeds 0-2 and the untrained rewrite teacher, passage-only and GPT-4.1 at seeds 3-4; bench/gpu_session9.sh (PART rewrite2).
#   calls 1-4: carry .stage1, .stage2, .stage3, .stage4 one by one (source bench/gpu_stage.sh in each)
#   call 5: carry .stage5 .d_runs (session10.tgz: see bench/gpu_session11.sh; session12.tgz: tar czf of TRW):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session12b.sh launch && bash .gpu_src/bench/gpu_session12b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session12b.sh wait 540
# Make the calls one at a time: a call refused for size (64 MiB) must not be followed by the launching one.
PART=rewrite2 source "$(dirname "$0")/gpu_session9.sh"
