#!/usr/bin/env bash
# The guard's accept rate on plain-text paragraphs, with ingest's defaults on this machine's CPU: N SQuAD
# paragraphs written as .txt files (a title line, then the paragraph; no questions, so the teacher writes the
# probes), each learned into a fresh home; prints committed / N and the wall time per paragraph.
#   bash experiments/guard-accept.sh OUT [N=30] [PROCESSES=2]
set -u
out=${1:?output folder}; n=${2:-30}; procs=${3:-2}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out/docs"
$py - "$out/docs" "$n" <<'PY'
import json, sys
from pathlib import Path
from agent.lab.squad import DEFAULT_DATA, load_passages
out, n = Path(sys.argv[1]), int(sys.argv[2])
for p in load_passages(DEFAULT_DATA)[:n]:
    (out / f"p{p.index:03d}.txt").write_text(f"{p.title}\n\n{p.context}\n", encoding="utf-8")
PY
one() {  # FILE
  local f=$1 name; name=$(basename "$f" .txt)
  local t0; t0=$(date +%s.%N)
  SEAL_AGENT_THREADS=1 $py -m tui.main --home "$out/homes/$name" --json ingest "$f" >"$out/$name.json" 2>"$out/$name.err"
  echo "$name exit $? $(echo "$(date +%s.%N) - $t0" | bc) s" >>"$out/times.txt"
}
export -f one; export out py
ls "$out"/docs/*.txt | xargs -P "$procs" -I{} bash -c 'one {}'
$py - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = []
for line in (out / "times.txt").read_text().splitlines():
    name, _, code, secs, _ = line.split()
    doc = json.loads((out / f"{name}.json").read_text() or "{}") if (out / f"{name}.json").stat().st_size else {}
    edit = (doc.get("edits") or [{}])[0]
    rows.append((name, int(code), float(secs), edit.get("status"), edit.get("before"), edit.get("after"), edit.get("reason", "")))
ok = sum(r[3] == "committed" for r in rows)
print(f"committed {ok} of {len(rows)} ({ok / max(1, len(rows)):.2f}); median wall {sorted(r[2] for r in rows)[len(rows) // 2]:.0f} s per paragraph")
for r in sorted(rows):
    print(*r, sep="\t")
PY
