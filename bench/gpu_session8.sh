#!/usr/bin/env bash
# Session 8, first machine (issue 5): ReST-EM on training titles drawn from the whole SQuAD dev set, rewarded by
# the gold answers' NLL drop. Two levers not tried before, from session 7's logs of run F (lines beside the
# passage at weight 0.3, the default since): within a passage the loglik gain repeats across seeds (r 0.97, the
# contains gain 0.44-0.53) and follows the share of gold answers a self-edit holds (r +0.14 / +0.29), and over the
# held-out rows gold NLL ranks the rows as accuracy does (GPT-4.1 4.35, passage 4.43, untrained teacher 4.52,
# F's teachers 4.57). And every earlier run trained on 6 titles, where what was learned never carried over.
# Held-out: the 22 reference titles with at least 4 reference passages (133 passages); the other 20 titles of
# the SQuAD dev set are the training pool. The untrained teacher's row runs on the same held-out passages beside
# the training; each round's teacher goes to the held-out rows as soon as it is trained.
# A variant sets RUN (its folder names, default G) and SETS (config flags for every command) and sources this
# file (bench/gpu_session8b.sh).
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .gpu_src .d_runs (.d_runs/squad_dev.json: ../shared/data/squad/squad_dev.json):
#     source bench/gpu_stage.sh && bash .gpu_src/bench/gpu_session8.sh launch && bash .gpu_src/bench/gpu_session8.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session8.sh wait 540
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs.log COUNTED="*/rewards.jsonl */results.jsonl"
before_launch() { cp .d_runs/squad_dev.json $R/squad_dev.json; }
gpu_job "$0" "$@"
RUN=${RUN:-G} SETS=${SETS:-}

EVAL_TITLES="Martin Luther,Kenya,Doctor Who,Nikola Tesla,United Methodist Church,Apollo program,Genghis Khan,\
American Broadcasting Company,Victoria and Albert Museum,French and Indian War,Yuan dynasty,University of Chicago,\
Islamism,Computational complexity theory,Private school,European Union law,Immune system,Newcastle upon Tyne,\
Fresno, California,Super Bowl 50,Warsaw,Steam engine"
held() {  # LABEL CONDITION: one held-out row into its own folder
  seal $SETS bench knowledge --device cuda --subset $R/$RUN/heldout.json --seeds 1 --k 3 --group 64 \
    --conditions "$2" --out $R/$RUN-held-$1 >$R/$RUN-held-$1.log 2>&1
}
adapter() { round_adapter $R/$RUN "$1"; }
echo "start $(date)"
seal $SETS --set policy.epochs=6 --set policy.lr=5e-4 teacher train --device cuda --data $R/squad_dev.json \
  --eval-titles "$EVAL_TITLES" --passages 80 --samples 5 --seeds 2 --rounds 2 --group 128 --reward loglik \
  --keep best --out $R/$RUN >$R/$RUN.log 2>&1 &
train=$!
while [ ! -f $R/$RUN/heldout.json ] && kill -0 $train 2>/dev/null; do sleep 5; done
held 0 teacher &
for r in 1 2; do
  while [ -z "$(adapter $r)" ] && kill -0 $train 2>/dev/null; do sleep 10; done
  a=$(adapter $r); [ -n "$a" ] || { echo "round $r: no trained teacher"; break; }
  echo "round $r teacher $a $(date)"
  held $r "teacher:$a" &
done
wait
echo "all done $(date)"
touch $R/ALL_DONE
