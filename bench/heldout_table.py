"""One held-out table from rows of several `bench knowledge` run folders (rows measured by different machines
or absorption settings), on the passages every row has: accuracy with its 95 % bootstrap interval, gold NLL,
and each row's paired difference from the `--vs` rows (paired bootstrap over passages).

    python3 bench/heldout_table.py LABEL=FOLDER:CONDITION [...] --vs LABEL[,LABEL] [--out table.md]

e.g. `passage=runs/E-held:passage "teacher r1=runs/E-held:teacher:t-..." --vs passage`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from agent.benchmarks.stats import paired_interval, ratio_interval
from compare_engines import rows  # (passage, seed, format) -> (correct, answers, mean gold NLL, self-edits)


def spec(text: str) -> tuple[str, Path, str]:
    label, _, rest = text.partition("=")
    folder, _, condition = rest.partition(":")
    if not label or not folder or not condition:
        raise argparse.ArgumentTypeError(f"want LABEL=FOLDER:CONDITION, got {text!r}")
    return label, Path(folder), condition


def table(specs: list[tuple[str, Path, str]], vs: list[str]) -> str:
    data = {label: rows(folder, cond) for label, folder, cond in specs}
    for label, found in data.items():
        if not found:
            raise SystemExit(f"{label}: no results for that condition")
    keys = sorted(set.intersection(*(set(d) for d in data.values())))
    # a row with k self-edits per passage grades its questions k times: weigh every row to the questions once
    first = next(iter(data.values()))
    den = [first[k][1] // first[k][3] for k in keys]
    correct = {label: [d[k][0] * q / d[k][1] for k, q in zip(keys, den)] for label, d in data.items()}
    head = ["row", "accuracy [95% CI]", "gold NLL"] + [f"− {v} [95% CI]" for v in vs]
    out = [f"{len(keys)} passage-seeds, {sum(den)} questions (the passages every row has)", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, _, _ in specs:
        d = data[label]
        acc = ratio_interval(correct[label], den)
        nll = sum(d[k][2] for k in keys) / len(keys)
        cells = [label, f"{acc.value:.3f} [{acc.lo:.3f}, {acc.hi:.3f}]", f"{nll:.3f}"]
        for v in vs:
            if v == label:
                cells.append("")
                continue
            diff = paired_interval(correct[label], correct[v], den)
            mark = " ✱" if diff.lo > 0 or diff.hi < 0 else ""
            cells.append(f"{diff.value:+.3f} [{diff.lo:+.3f}, {diff.hi:+.3f}]{mark}")
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "✱ = outside the error bars (95 % paired bootstrap over passages)"]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", nargs="+", type=spec)
    ap.add_argument("--vs", default="", help="comma-separated labels to take paired differences from")
    ap.add_argument("--out", type=Path)
    o = ap.parse_args()
    vs = [v for v in o.vs.split(",") if v]
    unknown = set(vs) - {label for label, _, _ in o.rows}
    if unknown:
        raise SystemExit(f"--vs names no row: {', '.join(sorted(unknown))}")
    text = table(o.rows, vs)
    print(text)
    if o.out:
        o.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
