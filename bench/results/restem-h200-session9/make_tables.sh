#!/usr/bin/env bash
# Rebuilds this folder's held-out tables from the run archives of sessions 6-9 (run from the repo root):
#   bash bench/results/restem-h200-session9/make_tables.sh
# Rows taken from earlier sessions, all on the same 133 held-out passages at seed 0: base and passage (session 6's
# D-held), GPT-4.1 (session 7's W03, lines beside the passage at weight 0.3), the untrained teacher at
# temperature 0.3 and T03's round-1 teacher (session 8's T03-held-0 / -1).
set -eu
here=bench/results/restem-h200-session9
t=$(mktemp -d)
mkdir -p $t/s6 $t/s7 $t/s8 $t/m1 $t/m2 $t/m3
tar xzf bench/results/restem-h200-session6/logs.tar.gz -C $t/s6 D-held
tar xzf bench/results/restem-h200-session7/machine4-runs.tgz -C $t/s7 ./W03
tar xzf bench/results/restem-h200-session8/machine2-runs.tgz -C $t/s8 ./T03-held-0 ./T03-held-1
for m in 1 2 3; do [ -f $here/machine$m-runs.tgz ] && tar xzf $here/machine$m-runs.tgz -C $t/m$m; done
table() { PYTHONPATH=.:bench ${PYTHON:-.venv/bin/python} bench/heldout_table.py "$@"; }
id() { python3 -c "import json; print(json.load(open('$1/round-$2.json'))['adapter'])"; }  # FOLDER ROUND
U0="$t/s8/T03-held-0:teacher:implications" R1S8="$t/s8/T03-held-1:teacher:t-20261122-032714-532fe140"
r1=teacher:$(id $t/m1/T03 1) r2=teacher:$(id $t/m1/T03 2)
base="base=$t/s6/D-held:base" passage="passage=$t/s6/D-held:passage" gpt="GPT-4.1=$t/s7/W03:ref:gpt4.1"

# 1. T03's round 1 against the untrained teacher, seed by seed and pooled
{
  for s in 1 2; do
    table --nll "untrained T0.3 seed $s=$t/m1/U-s$s:teacher:implications" \
      "T03 round 1 seed $s=$t/m1/T03r1-s$s:$r1" --vs "untrained T0.3 seed $s"; echo; echo
  done
  table --nll "untrained T0.3 seeds 1-2=$t/m1/U-s1:teacher:implications+$t/m1/U-s2:teacher:implications" \
    "T03 round 1 seeds 1-2=$t/m1/T03r1-s1:$r1+$t/m1/T03r1-s2:$r1" --vs "untrained T0.3 seeds 1-2"; echo; echo
  table --nll "untrained T0.3 seeds 0-2=$U0+$t/m1/U-s1:teacher:implications+$t/m1/U-s2:teacher:implications" \
    "T03 round 1 seeds 0-2=$R1S8+$t/m1/T03r1-s1:$r1+$t/m1/T03r1-s2:$r1" --vs "untrained T0.3 seeds 0-2"
} >$here/heldout-table-replication.md

# 2. every teacher of this session at seed 0, with the reference rows
b2=teacher:$(id $t/m2/T03B 2) e1=teacher:$(id $t/m2/T03E2 1) e2=teacher:$(id $t/m2/T03E2 2)
table --nll "$base" "$passage" "untrained T0.3=$U0" "T03 round 1=$R1S8" "T03 round 2=$t/m1/T03r2-s0:$r2" \
  "T03B (init base) round 2=$t/m2/T03Br2-s0:$b2" "T03E2 (2 epochs) round 1=$t/m2/T03E2r1-s0:$e1" \
  "T03E2 (2 epochs) round 2=$t/m2/T03E2r2-s0:$e2" "$gpt" --vs "untrained T0.3,T03 round 1,GPT-4.1" \
  >$here/heldout-table-seed0.md

# 3. the round-2 teachers (policy.init previous / base) at seeds 0-2 and 1-2, and T03B's round 3 at seed 0
# (machine 3 rebuilt both runs' teachers: the ids differ from machines 1-2's; same kept pairs, same seed)
c2=teacher:$(id $t/m3/T03 2) cb2=teacher:$(id $t/m3/T03B 2) cb3=teacher:$(id $t/m3/T03B 3)
U12="$t/m1/U-s1:teacher:implications+$t/m1/U-s2:teacher:implications"
{
  table --nll "untrained T0.3=$U0+$U12" "T03 round 1=$R1S8+$t/m1/T03r1-s1:$r1+$t/m1/T03r1-s2:$r1" \
    "T03 round 2=$t/m1/T03r2-s0:$r2+$t/m3/T03r2-s1:$c2+$t/m3/T03r2-s2:$c2" \
    "T03B (init base) round 2=$t/m2/T03Br2-s0:$b2+$t/m3/T03Br2-s1:$cb2+$t/m3/T03Br2-s2:$cb2" \
    --vs "untrained T0.3,T03 round 2"; echo; echo
  table --nll "untrained T0.3=$U12" "T03 round 1=$t/m1/T03r1-s1:$r1+$t/m1/T03r1-s2:$r1" \
    "T03 round 2=$t/m3/T03r2-s1:$c2+$t/m3/T03r2-s2:$c2" "T03B (init base) round 2=$t/m3/T03Br2-s1:$cb2+$t/m3/T03Br2-s2:$cb2" \
    --vs "untrained T0.3,T03 round 2"; echo; echo
  table --nll "untrained T0.3=$U0" "T03 round 1=$R1S8" "T03B (init base) round 2=$t/m2/T03Br2-s0:$b2" \
    "T03B (init base) round 3=$t/m3/T03Br3-s0:$cb3" "$gpt" --vs "untrained T0.3,GPT-4.1"
} >$here/heldout-table-rounds.md
rm -rf $t
cat $here/heldout-table-replication.md $here/heldout-table-seed0.md $here/heldout-table-rounds.md
