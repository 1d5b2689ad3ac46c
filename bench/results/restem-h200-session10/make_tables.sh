#!/usr/bin/env bash
# Rebuilds this folder's held-out tables from the run archives of sessions 6-10 (run from the repo root):
#   bash bench/results/restem-h200-session10/make_tables.sh
# Rows taken from earlier sessions, on the same 133 held-out passages: the untrained teacher at temperature 0.3
# and T03's round-1 teacher at seed 0 (session 8's T03-held-0 / -1) and at seeds 1-2 (session 9's machine 1);
# base, passage (session 6's D-held) and GPT-4.1 (session 7's W03) at seed 0.
set -eu
here=bench/results/restem-h200-session10
s9=bench/results/restem-h200-session9
t=$(mktemp -d)
mkdir -p $t/s6 $t/s7 $t/s8 $t/s9 $t/m1 $t/m2 $t/m3
tar xzf bench/results/restem-h200-session6/logs.tar.gz -C $t/s6 D-held
tar xzf bench/results/restem-h200-session7/machine4-runs.tgz -C $t/s7 ./W03
tar xzf bench/results/restem-h200-session8/machine2-runs.tgz -C $t/s8 ./T03-held-0 ./T03-held-1
tar xzf $s9/machine1-runs.tgz -C $t/s9 ./T03 ./U-s1 ./U-s2 ./T03r1-s1 ./T03r1-s2
for m in 1 2 3; do [ -f $here/machine$m-runs.tgz ] && tar xzf $here/machine$m-runs.tgz -C $t/m$m; done
table() { PYTHONPATH=.:bench ${PYTHON:-.venv/bin/python} bench/heldout_table.py "$@"; }
id() { python3 -c "import json; print(json.load(open('$1/round-$2.json'))['adapter'])"; }  # FOLDER ROUND
U0="$t/s8/T03-held-0:teacher:implications" R1S8="$t/s8/T03-held-1:teacher:t-20261122-032714-532fe140"
U12="$t/s9/U-s1:teacher:implications+$t/s9/U-s2:teacher:implications"
r1=teacher:$(id $t/s9/T03 1) f2=teacher:$(id $t/m1/T03F 2) f3=teacher:$(id $t/m1/T03F 3)
R112="$t/s9/T03r1-s1:$r1+$t/s9/T03r1-s2:$r1"
base="base=$t/s6/D-held:base" passage="passage=$t/s6/D-held:passage" gpt="GPT-4.1=$t/s7/W03:ref:gpt4.1"

# machine 2 rebuilt rounds 1-3's teachers from the logged winners (same pairs and seed, other ids) and trained round 4
g3=teacher:$(id $t/m2/T03F 3) g4=teacher:$(id $t/m2/T03F 4)
F2="$t/m1/T03Fr2-s0:$f2+$t/m1/T03Fr2-s1:$f2+$t/m1/T03Fr2-s2:$f2"
F3="$t/m2/T03Fr3-s0:$g3+$t/m1/T03Fr3-s1:$f3+$t/m1/T03Fr3-s2:$f3"
F4="$t/m2/T03Fr4-s0:$g4+$t/m2/T03Fr4-s1:$g4+$t/m2/T03Fr4-s2:$g4"

# 1. T03F (--fresh): every round at seeds 0-2, against the untrained and round-1 teachers
table --nll --grounding "untrained T0.3=$U0+$U12" "T03 round 1=$R1S8+$R112" "T03F round 2=$F2" "T03F round 3=$F3" \
  "T03F round 4=$F4" --vs "untrained T0.3,T03 round 1" >$here/heldout-table-fresh-seeds012.md

# 2. seed 0 alone, with the reference rows
table --nll --grounding "$base" "$passage" "untrained T0.3=$U0" "T03 round 1=$R1S8" "T03F round 2=$t/m1/T03Fr2-s0:$f2" \
  "T03F round 3=$t/m2/T03Fr3-s0:$g3" "T03F round 4=$t/m2/T03Fr4-s0:$g4" "$gpt" --vs "untrained T0.3,GPT-4.1" \
  >$here/heldout-table-fresh-seed0.md

# 3. the confirmation (machine 3, seeds 3 and 4 chosen before they ran; round 3's teacher rebuilt once more),
#    then every seed 0-4
h3=teacher:$(id $t/m3/T03F 3)
U34="$t/m3/U-s3:teacher:implications+$t/m3/U-s4:teacher:implications" F34="$t/m3/T03Fr3-s3:$h3+$t/m3/T03Fr3-s4:$h3"
{
  table --nll "untrained T0.3 seeds 3-4=$U34" "T03F round 3 seeds 3-4=$F34" --vs "untrained T0.3 seeds 3-4"; echo; echo
  table --nll "untrained T0.3 seeds 0-4=$U0+$U12+$U34" "T03F round 3 seeds 0-4=$F3+$F34" --vs "untrained T0.3 seeds 0-4"
} >$here/heldout-table-confirm.md

# 4. how long the self-edits are, against the teacher's 256-token cap (the embedded model's tokenizer)
PYTHONPATH=.:bench ${PYTHON:-.venv/bin/python} bench/selfedit_lengths.py "untrained T0.3 seeds 0-4=$U0+$U12+$U34" \
  "T03 round 1 seeds 0-2=$R1S8+$R112" "T03F round 2 seeds 0-2=$F2" "T03F round 3 seeds 0-4=$F3+$F34" \
  "T03F round 4 seeds 0-2=$F4" "GPT-4.1 (its 167 passages)=$t/s7/W03:ref:gpt4.1" >$here/selfedit-lengths.md

# 5. machine 1's rows alone: rounds 2-3 at seeds 1-2 (the teachers it trained), round 2 at seeds 0-2
{
  table --nll "untrained T0.3 seeds 1-2=$U12" "T03 round 1 seeds 1-2=$R112" \
    "T03F round 2 seeds 1-2=$t/m1/T03Fr2-s1:$f2+$t/m1/T03Fr2-s2:$f2" \
    "T03F round 3 seeds 1-2=$t/m1/T03Fr3-s1:$f3+$t/m1/T03Fr3-s2:$f3" \
    --vs "untrained T0.3 seeds 1-2,T03 round 1 seeds 1-2"; echo; echo
  table --nll "untrained T0.3 seeds 0-2=$U0+$U12" "T03 round 1 seeds 0-2=$R1S8+$R112" \
    "T03F round 2 seeds 0-2=$t/m1/T03Fr2-s0:$f2+$t/m1/T03Fr2-s1:$f2+$t/m1/T03Fr2-s2:$f2" \
    --vs "untrained T0.3 seeds 0-2,T03 round 1 seeds 0-2"
} >$here/heldout-table-fresh.md
rm -rf $t
cat $here/heldout-table-fresh-seeds012.md $here/heldout-table-fresh-seed0.md $here/heldout-table-confirm.md \
  $here/selfedit-lengths.md $here/heldout-table-fresh.md
