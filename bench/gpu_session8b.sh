#!/usr/bin/env bash
# Session 8, second machine (issue 5): run G again (bench/gpu_session8.sh: 20 SQuAD dev titles, loglik reward,
# the same split), with the teacher sampling at temperature 0.3 in training and in every held-out row, the
# untrained one included. G's round-1 winners were mostly invented detail ("Hurricane Love in 2022"), and on the
# passages where the teacher was fine-tuned on a winner its round-2 samples earned less than in round 1
# (-0.037 nats), so ReST-EM filtered a pool of hallucinations; at 0.3 the pool is closer to the passage.
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs (.d_runs/squad_dev.json: ../shared/data/squad/squad_dev.json):
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session8b.sh launch && bash .gpu_src/bench/gpu_session8b.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session8b.sh wait 540
RUN=T03 SETS="--set teacher.temperature=0.3" source "$(dirname "$0")/gpu_session8.sh"
