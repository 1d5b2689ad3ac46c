#!/usr/bin/env bash
# Session 9 (issue 5), on session 8's run T03 (bench/results/restem-h200-session8: 20 SQuAD dev titles, loglik
# reward, teacher sampling at temperature 0.3), carried in as .d_runs/T03. Its round-1 teacher beat the untrained
# one at the same temperature by +0.025 [+0.007, +0.042] on the 133 held-out passages, once, at seed 0.
# Its parts, one machine each:
#   replicate (this file): `teacher train` on the carried folder rebuilds both rounds' teachers from the logged
#     winners (the same pairs and seed); the untrained and round-1 rows again with teacher and student seeds 1
#     and 2 (other self-edits, other student inits), and the round-2 row at seed 0 on all 133 passages (session 8
#     was cut off at 88).
#   branch (bench/gpu_session9b.sh): two branches of T03 after its round-1 rewards (bench/restem_branch.py):
#     policy.init=base (round 2's M-step starts from the untrained policy, the ReST-EM paper's choice, against
#     T03's round-2 memorisation) and policy.epochs=2 (instead of 6: T03's round-1 M-step ended at loss 0.045);
#     2 rounds each, and held-out rows at seed 0 of each new teacher.
#   extend (bench/gpu_session9c.sh): from the T03 and T03B (init=base) folders the first two machines left
#     (.d_runs/session9.tgz), both rounds' teachers rebuilt; their round-2 rows at seeds 1 and 2, and T03B's
#     round 3 with its row at seed 0.
#   fresh (bench/gpu_session10.sh, session 10): T03 branched after round 1 with --fresh (its round 1 is the first
#     block of the same pool), rounds 2-3 on new passages; rows of round 2's teacher at seeds 0-2 and of round 3's
#     at seeds 1-2 (session 9's untrained and round-1 rows at those seeds pair with them).
#   fresh4 (bench/gpu_session10b.sh): session 10's T03F folder (.d_runs/session10.tgz), rounds 1-3's teachers
#     rebuilt and a fourth round on new passages; rows of round 3's teacher at seed 0 and round 4's at seeds 0-2.
#   confirm (bench/gpu_session10c.sh): the same folder, rounds 1-3's teachers rebuilt; round 3's teacher (the best
#     of seeds 0-2) and the untrained teacher at two new seeds, 3 and 4, chosen before they were run.
#   long (bench/gpu_session11.sh; prepared in session 10, run in session 11): the same folder, round 3's teacher
#     rebuilt; it and the untrained teacher at seeds 0-1 with teacher.max_new_tokens=512 (70-88 % of their
#     self-edits stop at the default 256), and GPT-4.1's self-edits at seeds 1-2.
#   longtrain (bench/gpu_session11b.sh; prepared, not run, see its header): a new --fresh run at
#     max_new_tokens=512 with policy.eos=ended, 2 rounds; rows of round 1 at seed 0 and round 2 at seeds 0-1, at 512.
#   ngram (bench/gpu_session11c.sh, session 11): the same folder, round 3's teacher rebuilt; it and the untrained
#     teacher at seeds 0-2 with teacher.no_repeat_ngram=10 (at 256 tokens; 43-58 % of their lines repeat an
#     earlier line of the same self-edit, and parsing keeps each line once).
#   refs (bench/gpu_session11d.sh, session 11): SEAL's Qwen2.5-7B self-edits, base and RL-trained (ref:qwen-base,
#     ref:seal-rl), at seeds 0-1 on the same held-out passages: where a 7B teacher's self-edits land beside GPT-4.1's.
#   rewrite (bench/gpu_session12.sh, session 12): a new --fresh run like T03F on the rewrite family (TRW, 3 rounds;
#     the untrained teacher's rewrites hold 0.61 of the gold answers against its implications' 0.21, on a CPU
#     screen); rows of the untrained rewrite teacher at seeds 0-2, passage-only at seeds 1-2 (session 6 has seed 0),
#     round 1 and 2 at seed 0 and round 3 at seeds 0-2.
#   rewrite2 (bench/gpu_session12b.sh, session 12): TRW carried in (.d_runs/session12.tgz) and its teachers rebuilt;
#     round 3 at seeds 0-2 again (machine 1 ran out of time at 112 of 133 passages), and the untrained rewrite
#     teacher, passage-only and GPT-4.1 at seeds 3 and 4, chosen before they were run.
# Held-out rows use --group 48 (session 8: 64) so that five fit beside each other, the two branches train at
# --group 80 (128) side by side; a student's result does not depend on which adapters share its group.
# Staging as session 9 ran it, in three parts; since then the model travels in four (bench/gpu_stage.sh): carry
# .stage1-3 in calls 1-3 and .stage4 with .d_runs in the launching call.
#   calls 1-2: carry .stage1, then .stage2 (source bench/gpu_stage.sh in both)
#   call 3: carry .stage3 .d_runs (.d_runs/machine2-runs.tgz: bench/results/restem-h200-session8's); the checkout
#     is the frozen code (tracked files + .stage3 + a separate .gpu_src would pass the 64 MiB a call carries):
#     source bench/gpu_stage.sh && mkdir .gpu_src && cp -a agent student teacher tui bench pyproject.toml .gpu_src/ &&
#     bash .gpu_src/bench/gpu_session9.sh launch && bash .gpu_src/bench/gpu_session9.sh wait 420
#   later calls:  bash /root/repo/bench/gpu_session9.sh wait 540
set -u
source "$(dirname "$0")/gpu_job.sh"  # launch / wait (R=/root/runs)
JOB_LOG=jobs.log COUNTED="*/rewards.jsonl */results.jsonl"
PART=${PART:-replicate}
before_launch() {  # each part's carried folders, and squad_dev.json
  case "$PART" in
    extend) tar xzf .d_runs/session9.tgz -C $R; return ;;  # T03, T03B
    fresh4|confirm|long|longtrain|ngram|refs|rewrite) tar xzf .d_runs/session10.tgz -C $R; return ;;  # T03F
    rewrite2) tar xzf .d_runs/session10.tgz -C $R && tar xzf .d_runs/session12.tgz -C $R; return ;;  # T03F, TRW
    fresh) tar xzf .d_runs/session9.tgz -C $R && python3 .gpu_src/bench/restem_branch.py $R/T03 $R/T03F fresh=true
      return ;;
  esac
  mkdir -p $R/s8 && tar xzf .d_runs/machine2-runs.tgz -C $R/s8 ./squad_dev.json ./T03 && mv $R/s8/squad_dev.json $R/
  if [ "$PART" = replicate ]; then mv $R/s8/T03 $R/T03; return; fi
  python3 .gpu_src/bench/restem_branch.py $R/s8/T03 $R/T03B init=base
  python3 .gpu_src/bench/restem_branch.py $R/s8/T03 $R/T03E2 epochs=2
}
gpu_job "$0" "$@"

SETS="--set teacher.temperature=0.3"
for f in T03 T03B T03F; do [ -f $R/$f/split.json ] && break; done  # every part's runs share session 8's split
EVAL_TITLES=$(python3 -c "import json; print(','.join(json.load(open('$R/$f/split.json'))['heldout_titles']))")
train() {  # FOLDER GROUP POLICY_SETTINGS...: session 8's T03 command (--rounds ROUNDS, default 2) into FOLDER
  local out=$1 group=$2; shift 2
  seal $SETS --set policy.lr=5e-4 "$@" teacher train ${TRAIN_FLAGS:-} --device cuda --data $R/squad_dev.json \
    --eval-titles "$EVAL_TITLES" --passages 80 --samples 5 --seeds 2 --rounds ${ROUNDS:-2} --group $group --reward loglik \
    --keep best --out $R/$out >$R/$out.log 2>&1
}
held() {  # NAME CONDITION SEED [--set K=V ...]: one held-out row (teacher and student seed SEED) into $R/NAME
  local name=$1 cond=$2 seed=$3; shift 3
  seal $SETS "$@" --set teacher.seed=$seed --set train.seed=$seed bench knowledge --device cuda \
    --subset $R/heldout.json --seeds 1 --k 3 --group 48 --conditions "$cond" --out $R/$name >$R/$name.log 2>&1
}
ready() {  # FOLDER ROUND: the round's teacher version once it is in this machine's store (a carried manifest
  # names a version that exists only on session 8's machine until the rebuild replaces it)
  local a; a=$(round_adapter $R/$1 $2)
  [ -n "$a" ] && [ -d "$SEAL_AGENT_HOME/adapters/teacher/$a" ] && echo "$a"
}
after() {  # FOLDER ROUND NAME SEED [--set K=V ...]: wait for the round's teacher while FOLDER trains, then its row
  local a
  while [ -z "$(ready $1 $2)" ] && kill -0 ${trainers[$1]} 2>/dev/null; do sleep 10; done
  a=$(ready $1 $2); [ -n "$a" ] || { echo "$1 round $2: no teacher"; return; }
  echo "$1 round $2 teacher $a $(date)"
  held $3 "teacher:$a" $4 "${@:5}"
}
echo "start $PART $(date)"
declare -A trainers
if [ "$PART" = replicate ]; then
  cp $R/T03/heldout.json $R/heldout.json
  train T03 128 --set policy.epochs=6 & trainers[T03]=$!
  held U-s1 teacher 1 &
  held U-s2 teacher 2 &
  after T03 1 T03r1-s1 1 &
  after T03 1 T03r1-s2 2 &
  after T03 2 T03r2-s0 0 &
elif [ "$PART" = extend ]; then
  cp $R/T03B/heldout.json $R/heldout.json
  train T03 128 --set policy.epochs=6 & trainers[T03]=$!
  ROUNDS=3 train T03B 64 --set policy.epochs=6 --set policy.init=base & trainers[T03B]=$!
  after T03B 2 T03Br2-s1 1 &
  after T03B 2 T03Br2-s2 2 &
  after T03 2 T03r2-s1 1 &
  after T03 2 T03r2-s2 2 &
  after T03B 3 T03Br3-s0 0 &
elif [ "$PART" = fresh ]; then  # round 2's rows start while round 3 trains (session 9's machines: 5 rows and
  # a training run side by side fit one H200 within 22 minutes held)
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=3 TRAIN_FLAGS=--fresh train T03F 128 --set policy.epochs=6 & trainers[T03F]=$!
  for s in 0 1 2; do after T03F 2 T03Fr2-s$s $s & done
  for s in 1 2; do after T03F 3 T03Fr3-s$s $s & done
elif [ "$PART" = fresh4 ]; then  # the teachers of rounds 1-3 rebuilt from the logged winners, round 4
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=4 TRAIN_FLAGS=--fresh train T03F 128 --set policy.epochs=6 & trainers[T03F]=$!
  after T03F 3 T03Fr3-s0 0 &
  for s in 0 1 2; do after T03F 4 T03Fr4-s$s $s & done
elif [ "$PART" = confirm ]; then  # rounds 1-3's teachers rebuilt; round 3 and the untrained teacher at new seeds
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=3 TRAIN_FLAGS=--fresh train T03F 128 --set policy.epochs=6 & trainers[T03F]=$!
  for s in 3 4; do held U-s$s teacher $s & after T03F 3 T03Fr3-s$s $s & done
elif [ "$PART" = long ]; then  # the 256-token cap: round 3's and the untrained teacher's self-edits let run to 512
  # (the same seeds sample the same first 256 tokens), and GPT-4.1 at seeds 1-2 to pool with seed 0's
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=3 TRAIN_FLAGS=--fresh train T03F 128 --set policy.epochs=6 & trainers[T03F]=$!
  L="--set teacher.max_new_tokens=512"
  for s in 0 1; do held U512-s$s teacher $s $L & after T03F 3 T03Fr3-512-s$s $s $L & done
  for s in 1 2; do held G-s$s ref:gpt4.1 $s & done
elif [ "$PART" = ngram ]; then  # the same teachers as at seeds 0-2 before, with lines that cannot repeat
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=3 TRAIN_FLAGS=--fresh train T03F 128 --set policy.epochs=6 & trainers[T03F]=$!
  N="--set teacher.no_repeat_ngram=10"
  for s in 0 1 2; do held U-ng10-s$s teacher $s $N & after T03F 3 T03Fr3-ng10-s$s $s $N & done
elif [ "$PART" = refs ]; then  # no teacher to train: reference self-edits only
  cp $R/T03F/heldout.json $R/heldout.json
  for s in 0 1; do held Q-s$s ref:qwen-base $s & held S-s$s ref:seal-rl $s & done
elif [ "$PART" = rewrite ]; then  # T03F's recipe on the rewrite family; the untrained rows start beside it
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=3 TRAIN_FLAGS="--fresh --family rewrite" train TRW 128 --set policy.epochs=6 & trainers[TRW]=$!
  for s in 0 1 2; do held URW-s$s teacher:rewrite $s & done
  for s in 1 2; do held P-s$s passage $s & done
  for r in 1 2; do after TRW $r TRWr$r-s0 0 & done
  for s in 0 1 2; do after TRW 3 TRWr3-s$s $s & done
elif [ "$PART" = rewrite2 ]; then  # TRW's teachers rebuilt from its logs; the replication rows start beside it
  cp $R/T03F/heldout.json $R/heldout.json
  ROUNDS=3 TRAIN_FLAGS="--fresh --family rewrite" train TRW 128 --set policy.epochs=6 & trainers[TRW]=$!
  for s in 3 4; do held URW-s$s teacher:rewrite $s & held P-s$s passage $s & held G-s$s ref:gpt4.1 $s & done
  for s in 0 1 2; do after TRW 3 TRWr3b-s$s $s & done
elif [ "$PART" = longtrain ]; then  # a new --fresh run sampled at 512 tokens, cut self-edits trained without eos
  cp $R/T03F/heldout.json $R/heldout.json
  L="--set teacher.max_new_tokens=512"
  ROUNDS=2 TRAIN_FLAGS=--fresh train T512 128 --set policy.epochs=6 --set policy.eos=ended $L & trainers[T512]=$!
  after T512 1 T512r1-s0 0 $L &
  for s in 0 1; do after T512 2 T512r2-s$s $s $L & done
else
  cp $R/T03B/heldout.json $R/heldout.json
  train T03B 80 --set policy.epochs=6 --set policy.init=base & trainers[T03B]=$!
  train T03E2 80 --set policy.epochs=2 & trainers[T03E2]=$!
  after T03B 2 T03Br2-s0 0 &
  after T03E2 1 T03E2r1-s0 0 &
  after T03E2 2 T03E2r2-s0 0 &
fi
wait
echo "all done $(date)"
touch $R/ALL_DONE
