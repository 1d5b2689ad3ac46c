"""Does the batched inner loop learn what the sequential one learns? Compare one row of two `bench knowledge`
runs that differ only in --engine (same passages, seeds, self-edits): paired bootstrap over passages.

    python -m agent.lab.compare_engines RUN_SEQUENTIAL RUN_BATCHED [--condition teacher:implications]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from agent.lab.runlog import read_records
from agent.lab.stats import mean_interval, paired_interval


def rows(folder: Path, condition: str) -> dict:
    """(passage, seed, format) -> (correct, graded answers over all self-edits, mean gold NLL, self-edits)."""
    out = {}
    for r in read_records(folder / "results.jsonl"):
        if r["condition"] == condition:
            correct = sum(g[0] for e in r["edits"] for g in e["grades"])
            questions = sum(len(e["grades"]) for e in r["edits"])
            nll = sum(e["nll"] for e in r["edits"]) / len(r["edits"])
            out[(r["passage"], r["seed"], r["format"])] = (correct, questions, nll, len(r["edits"]))
    return out


def completions(folder: Path) -> list:
    return [(r["condition"], r["passage"], r["completions"]) for r in
            read_records(folder / "selfedits.jsonl")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--condition", default="teacher:implications")
    o = ap.parse_args()
    same_edits = completions(o.a) == completions(o.b)
    a, b = rows(o.a, o.condition), rows(o.b, o.condition)
    keys = sorted(set(a) & set(b))
    acc = paired_interval([a[k][0] for k in keys], [b[k][0] for k in keys], [a[k][1] for k in keys])
    nll = mean_interval([a[k][2] - b[k][2] for k in keys])
    ca, cb = sum(a[k][0] for k in keys), sum(b[k][0] for k in keys)
    q = sum(a[k][1] for k in keys)
    print(f"{o.condition}: {len(keys)} passage-seeds, {q} questions; identical self-edits in both runs: {same_edits}")
    print(f"  accuracy {o.a.name} {ca / q:.3f} vs {o.b.name} {cb / q:.3f}; a - b = {acc.value:+.3f} "
          f"[{acc.lo:+.3f}, {acc.hi:+.3f}] (95% paired bootstrap)")
    print(f"  gold NLL a - b = {nll.value:+.4f} [{nll.lo:+.4f}, {nll.hi:+.4f}]")
    inside = acc.lo <= 0 <= acc.hi and nll.lo <= 0 <= nll.hi
    print("  the engines agree within the error bars" if inside else "  the engines DIFFER outside the error bars")


if __name__ == "__main__":
    main()
