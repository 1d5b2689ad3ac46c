#!/usr/bin/env bash
# Rebuilds this folder's held-out tables from the run archives of sessions 6-12 (run from the repo root):
#   bash bench/results/restem-h200-session12/make_tables.sh
# Rows taken from earlier sessions, on the same 133 held-out passages (lines beside the passage at weight 0.3,
# teacher temperature 0.3, 256 tokens): passage-only at seed 0 (session 6's D-held); the untrained implications
# teacher at seed 0 (session 8's T03-held-0), seeds 1-2 (session 9's machine 1) and seeds 3-4 (session 10's
# machine 3); T03F's round-3 teacher at seed 0 (session 10's machine 2), seeds 1-2 (machine 1) and 3-4 (machine 3);
# GPT-4.1 at seed 0 (session 7's W03) and seeds 1-2 (session 11's machine 1). Session 12's machines: 1 `rewrite`
# (TRW trained, 3 rounds; its round-3 rows stopped at 112 passages when the machine was taken back), 2 `rewrite2`
# (TRW's teachers rebuilt from its logs; round 3 at seeds 0-2 on all 133 passages; seeds 3-4 of the rest).
set -eu
here=bench/results/restem-h200-session12
t=$(mktemp -d)
mkdir -p $t/s6 $t/s7 $t/s8 $t/s9 $t/s10m1 $t/s10m2 $t/s10m3 $t/s11 $t/m1 $t/m2
tar xzf bench/results/restem-h200-session6/logs.tar.gz -C $t/s6 D-held
tar xzf bench/results/restem-h200-session7/machine4-runs.tgz -C $t/s7 ./W03
tar xzf bench/results/restem-h200-session8/machine2-runs.tgz -C $t/s8 ./T03-held-0
tar xzf bench/results/restem-h200-session9/machine1-runs.tgz -C $t/s9 ./U-s1 ./U-s2
s10=bench/results/restem-h200-session10
tar xzf $s10/machine1-runs.tgz -C $t/s10m1 ./T03F ./T03Fr3-s1 ./T03Fr3-s2
tar xzf $s10/machine2-runs.tgz -C $t/s10m2 ./T03F ./T03Fr3-s0
tar xzf $s10/machine3-runs.tgz -C $t/s10m3 ./T03F ./U-s3 ./U-s4 ./T03Fr3-s3 ./T03Fr3-s4
tar xzf bench/results/restem-h200-session11/machine1-runs.tgz -C $t/s11 ./G-s1 ./G-s2
for m in 1 2; do tar xzf $here/machine$m-runs.tgz -C $t/m$m; done
table() { PYTHONPATH=.:bench ${PYTHON:-.venv/bin/python} bench/heldout_table.py "$@"; }
id() { python3 -c "import json; print(json.load(open('$1/round-$2.json'))['adapter'])"; }  # FOLDER ROUND
U=teacher:implications W=teacher:rewrite
a=teacher:$(id $t/s10m2/T03F 3) b=teacher:$(id $t/s10m1/T03F 3) c=teacher:$(id $t/s10m3/T03F 3)  # T03F round 3
r3=teacher:$(id $t/m2/TRW 3)  # TRW round 3 as machine 2 rebuilt it; rounds 1-2 as machine 1 trained them:
r1=teacher:$(id $t/m1/TRW 1) r2=teacher:$(id $t/m1/TRW 2) r3m1=teacher:$(id $t/m1/TRW 3)
P="passage=$t/s6/D-held:passage+$t/m1/P-s1:passage+$t/m1/P-s2:passage"
U012="untrained implications=$t/s8/T03-held-0:$U+$t/s9/U-s1:$U+$t/s9/U-s2:$U"
W012="untrained rewrite=$t/m1/URW-s0:$W+$t/m1/URW-s1:$W+$t/m1/URW-s2:$W"
F012="T03F round 3 (implications)=$t/s10m2/T03Fr3-s0:$a+$t/s10m1/T03Fr3-s1:$b+$t/s10m1/T03Fr3-s2:$b"
R012="TRW round 3 (rewrite)=$t/m2/TRWr3b-s0:$r3+$t/m2/TRWr3b-s1:$r3+$t/m2/TRWr3b-s2:$r3"
G012="GPT-4.1=$t/s7/W03:ref:gpt4.1+$t/s11/G-s1:ref:gpt4.1+$t/s11/G-s2:ref:gpt4.1"

# 1. seeds 0-2: the rewrite family, untrained and after 3 rounds, beside the implications teachers and GPT-4.1
table --nll --grounding --kept "$P" "$U012" "$W012" "$F012" "$R012" "$G012" \
  --vs "passage,untrained rewrite,GPT-4.1" >$here/heldout-table-rewrite.md

# 2. seed 0: TRW's rounds (rounds 1-2 on machine 1, round 3 rebuilt on machine 2)
table --nll --grounding "passage=$t/s6/D-held:passage" "untrained rewrite=$t/m1/URW-s0:$W" \
  "TRW round 1=$t/m1/TRWr1-s0:$r1" "TRW round 2=$t/m1/TRWr2-s0:$r2" "TRW round 3=$t/m2/TRWr3b-s0:$r3" \
  "GPT-4.1=$t/s7/W03:ref:gpt4.1" --vs "untrained rewrite,GPT-4.1" >$here/heldout-table-rounds.md

# 3. seeds 3-4, chosen before they were run, and seeds 0-4 pooled
P34="passage=$t/m2/P-s3:passage+$t/m2/P-s4:passage" W34="untrained rewrite=$t/m2/URW-s3:$W+$t/m2/URW-s4:$W"
G34="GPT-4.1=$t/m2/G-s3:ref:gpt4.1+$t/m2/G-s4:ref:gpt4.1"
table --nll "$P34" "untrained implications=$t/s10m3/U-s3:$U+$t/s10m3/U-s4:$U" "$W34" \
  "T03F round 3 (implications)=$t/s10m3/T03Fr3-s3:$c+$t/s10m3/T03Fr3-s4:$c" "$G34" \
  --vs "passage,untrained rewrite,GPT-4.1" >$here/heldout-table-seeds34.md
table "${P}+${P34#passage=}" "${W012}+${W34#untrained rewrite=}" "${G012}+${G34#GPT-4.1=}" \
  --vs "passage,untrained rewrite,GPT-4.1" >$here/heldout-table-seeds01234.md

# 4. machine 1's round-3 rows (cut at 112 passages) against machine 2's rebuilt teacher, on those passages
table "TRW round 3 on machine 1=$t/m1/TRWr3-s0:$r3m1+$t/m1/TRWr3-s1:$r3m1+$t/m1/TRWr3-s2:$r3m1" \
  "TRW round 3 rebuilt=$t/m2/TRWr3b-s0:$r3+$t/m2/TRWr3b-s1:$r3+$t/m2/TRWr3b-s2:$r3" \
  --vs "TRW round 3 on machine 1" >$here/heldout-table-rebuild.md
rm -rf $t
cat $here/heldout-table-rewrite.md $here/heldout-table-rounds.md $here/heldout-table-seeds34.md \
  $here/heldout-table-seeds01234.md $here/heldout-table-rebuild.md
