#!/usr/bin/env bash
# Rebuilds this folder's held-out tables from the run archives of sessions 6-11 (run from the repo root):
#   bash bench/results/restem-h200-session11/make_tables.sh
# Rows taken from earlier sessions, on the same 133 held-out passages, all at teacher.max_new_tokens=256 without
# an n-gram ban: the untrained teacher at temperature 0.3 at seed 0 (session 8's T03-held-0) and seeds 1-2
# (session 9's machine 1); T03F's round-3 teacher at seed 0 (session 10's machine 2) and seeds 1-2 (machine 1);
# GPT-4.1 at seed 0 (session 7's W03). Session 11's machines: 1 `long` (512 tokens; GPT-4.1 at seeds 1-2),
# 2 `ngram` (teacher.no_repeat_ngram=10), 3 `refs` (SEAL's Qwen2.5-7B self-edits, base and RL-trained).
set -eu
here=bench/results/restem-h200-session11
s10=bench/results/restem-h200-session10
t=$(mktemp -d)
mkdir -p $t/s7 $t/s8 $t/s9 $t/s10m1 $t/s10m2 $t/m1 $t/m2 $t/m3
tar xzf bench/results/restem-h200-session7/machine4-runs.tgz -C $t/s7 ./W03
tar xzf bench/results/restem-h200-session8/machine2-runs.tgz -C $t/s8 ./T03-held-0
tar xzf bench/results/restem-h200-session9/machine1-runs.tgz -C $t/s9 ./U-s1 ./U-s2
tar xzf $s10/machine1-runs.tgz -C $t/s10m1 ./T03F ./T03Fr3-s1 ./T03Fr3-s2
tar xzf $s10/machine2-runs.tgz -C $t/s10m2 ./T03F ./T03Fr3-s0
for m in 1 2 3; do tar xzf $here/machine$m-runs.tgz -C $t/m$m; done
table() { PYTHONPATH=.:bench ${PYTHON:-.venv/bin/python} bench/heldout_table.py "$@"; }
id() { python3 -c "import json; print(json.load(open('$1/round-$2.json'))['adapter'])"; }  # FOLDER ROUND
U=teacher:implications
a=teacher:$(id $t/s10m2/T03F 3) b=teacher:$(id $t/s10m1/T03F 3)  # round 3's teacher as session 10 rebuilt it
U0="$t/s8/T03-held-0:$U" U1="$t/s9/U-s1:$U" U2="$t/s9/U-s2:$U"
F0="$t/s10m2/T03Fr3-s0:$a" F1="$t/s10m1/T03Fr3-s1:$b" F2="$t/s10m1/T03Fr3-s2:$b"
G0="$t/s7/W03:ref:gpt4.1" G1="$t/m1/G-s1:ref:gpt4.1" G2="$t/m1/G-s2:ref:gpt4.1"

# 1. the 256-token cap: the same teachers let run to 512 tokens (machine 1), seeds 0-1
l=teacher:$(id $t/m1/T03F 3)
table --nll --grounding --kept "untrained=$U0+$U1" "untrained 512=$t/m1/U512-s0:$U+$t/m1/U512-s1:$U" \
  "T03F round 3=$F0+$F1" "T03F round 3, 512=$t/m1/T03Fr3-512-s0:$l+$t/m1/T03Fr3-512-s1:$l" "GPT-4.1=$G0+$G1" \
  --vs "untrained,T03F round 3,GPT-4.1" >$here/heldout-table-512.md
PYTHONPATH=.:bench ${PYTHON:-.venv/bin/python} bench/selfedit_lengths.py \
  "untrained 512 seeds 0-1=$t/m1/U512-s0:$U+$t/m1/U512-s1:$U" \
  "T03F round 3, 512, seeds 0-1=$t/m1/T03Fr3-512-s0:$l+$t/m1/T03Fr3-512-s1:$l" >$here/selfedit-lengths-512.md

# 2. repeated lines: the same teachers with teacher.no_repeat_ngram=10 (machine 2), seeds 0-2
n=teacher:$(id $t/m2/T03F 3)
table --nll --grounding --kept "untrained=$U0+$U1+$U2" \
  "untrained, n-gram ban 10=$t/m2/U-ng10-s0:$U+$t/m2/U-ng10-s1:$U+$t/m2/U-ng10-s2:$U" \
  "T03F round 3=$F0+$F1+$F2" \
  "T03F round 3, n-gram ban 10=$t/m2/T03Fr3-ng10-s0:$n+$t/m2/T03Fr3-ng10-s1:$n+$t/m2/T03Fr3-ng10-s2:$n" \
  "GPT-4.1=$G0+$G1+$G2" --vs "untrained,T03F round 3,GPT-4.1" >$here/heldout-table-ngram.md

# 3. where 7B teachers' self-edits land with the same student (machine 3), seeds 0-1
table --nll --grounding --kept "untrained=$U0+$U1" "T03F round 3=$F0+$F1" "GPT-4.1=$G0+$G1" \
  "Qwen2.5-7B base=$t/m3/Q-s0:ref:qwen-base+$t/m3/Q-s1:ref:qwen-base" \
  "SEAL-RL (Qwen2.5-7B)=$t/m3/S-s0:ref:seal-rl+$t/m3/S-s1:ref:seal-rl" \
  --vs "GPT-4.1,T03F round 3" >$here/heldout-table-7b.md
rm -rf $t
cat $here/heldout-table-512.md $here/selfedit-lengths-512.md $here/heldout-table-ngram.md $here/heldout-table-7b.md
