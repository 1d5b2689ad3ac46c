"""One held-out table from rows of several `bench knowledge` run folders (rows measured by different machines
or absorption settings), on the passage-seeds every row has: accuracy with its 95 % bootstrap interval, gold
NLL, and each row's paired difference from the `--vs` rows (paired bootstrap over passages).

    python -m agent.lab.heldout_table LABEL=FOLDER:CONDITION[+FOLDER:CONDITION...] [...] --vs LABEL[,LABEL] [--out F]

e.g. `passage=runs/E-held:passage "teacher r1=runs/E-held:teacher:t-..." --vs passage`. A row joined with `+`
pools runs of other seeds (a seed's teacher version may have another id); its passages are resampled whole, with
all their seeds, so the interval does not count one passage's seeds as independent.

`--nll` adds the paired gold-NLL differences; `--grounding` adds, per row, the share of its self-edits' words found
in their passage and their mean length in words (the runs' passages are read from `--data`, checked against the
digest each run recorded); `--kept` (with `--grounding`) also the lines and words the student trains on per
self-edit: what parsing keeps with the run's settings, each line once (the embedded teacher repeats lines).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

from agent.lab.runlog import read_records
from agent.lab.squad import data_digest, load_passages, load_reference
from agent.lab.stats import mean_interval, paired_interval, ratio_interval
from agent.lab.compare_engines import rows  # (passage, seed, format) -> (correct, answers, mean gold NLL, self-edits)
from teacher.config import ParseSettings
from teacher.parsing import parse_completion
from teacher.selfedit import passage_share

DATA = Path(__file__).resolve().parents[1] / "agent" / "data" / "squad" / "passages.json"


Spec = tuple[str, list[tuple[Path, str]]]  # label, its (folder, condition) runs


def spec(text: str) -> Spec:
    label, _, rest = text.partition("=")
    runs = []
    for part in rest.split("+"):
        folder, _, condition = part.partition(":")
        if not folder or not condition:
            raise argparse.ArgumentTypeError(f"want LABEL=FOLDER:CONDITION[+FOLDER:CONDITION...], got {text!r}")
        runs.append((Path(folder), condition))
    if not label:
        raise argparse.ArgumentTypeError(f"want LABEL=FOLDER:CONDITION[+FOLDER:CONDITION...], got {text!r}")
    return label, runs


def pooled(runs: list[tuple[Path, str]]) -> dict:
    out = {}
    for folder, condition in runs:
        found = rows(folder, condition)
        if set(found) & set(out):
            raise SystemExit(f"{folder}: passage-seeds that another run of the same row already has")
        out.update(found)
    return out


def selfedits(folder: Path, condition: str, texts: list, passages: Optional[set[int]] = None) -> list[tuple]:
    """(passage index, its self-edits) of one run's row, on ``passages`` (default: every passage the run measured
    the row on). ``texts``: the passage file's passages, which must be the run's (checked by its data digest).
    A ``ref:NAME`` row's self-edits are the stored ones, the first k of each passage's as the run took them."""
    if condition in ("base", "passage"):  # rows without self-edits (a run of them alone has no selfedits.jsonl)
        return []
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    if run.get("data") != data_digest(texts):
        raise SystemExit(f"{folder}: measured on other passages than the passage file's (digest {run.get('data')})")
    if condition.startswith("ref:"):
        if passages is None:
            passages = {r["passage"] for r in read_records(folder / "results.jsonl") if r["condition"] == condition}
        chosen = sorted(passages)
        comps, _ = load_reference(condition[4:], [texts[i] for i in chosen])
        return [(i, c[: run["k"]] if run.get("k") else c) for i, c in zip(chosen, comps)]
    return [(r["passage"], r["completions"]) for r in read_records(folder / "selfedits.jsonl")
            if r["condition"] == condition and (passages is None or r["passage"] in passages)]


def grounding(runs: list[tuple[Path, str]], passages: set[int], texts: list, kept: bool = False) -> list[str]:
    """Two cells: the mean share of the runs' self-edit words found in their passage, and their mean length in
    words, over ``passages``; with ``kept``, two more: the mean number of lines and of their words that parsing
    keeps (the student's training texts, without the appended passage and the title each line is given; parsed as
    a lines family, so not for self-qa rows). Empty for a row without self-edits (base, passage)."""
    shares, words, lines, line_words = [], [], [], []
    for folder, condition in runs:
        if kept:  # the run's parse settings, without what parsing adds around the lines
            parse = ParseSettings(**json.loads((folder / "run.json").read_text(encoding="utf-8"))["parse"])
            parse.append_passage, parse.title_prefix = False, False
        for i, completions in selfedits(folder, condition, texts, passages):
            shares += [passage_share(c, texts[i].context) for c in completions]
            words += [len(c.split()) for c in completions]
            for c in completions if kept else []:
                units = parse_completion(c, texts[i].title, texts[i].context, "implications", parse)
                lines.append(len(units))
                line_words.append(sum(len(u.split()) for u in units))
    if not shares:
        return ["", "", "", ""] if kept else ["", ""]
    cells = [f"{sum(shares) / len(shares):.3f}", f"{sum(words) / len(words):.0f}"]
    return cells + ([f"{sum(lines) / len(lines):.1f}", f"{sum(line_words) / len(line_words):.0f}"] if kept else [])


def table(specs: list[Spec], vs: list[str], nll_vs: bool = False, passage_file: Path | None = None,
          kept: bool = False) -> str:
    """The table; with ``passage_file`` (the runs' passages), also each row's self-edit grounding and length, and
    with ``kept`` the lines and words parsing keeps of them."""
    data = {label: pooled(runs) for label, runs in specs}
    texts = load_passages(passage_file) if passage_file else []
    for label, found in data.items():
        if not found:
            raise SystemExit(f"{label}: no results for that condition")
    keys = sorted(set.intersection(*(set(d) for d in data.values())))  # (passage, seed, format)
    groups: dict = {}  # passage -> its (passage, seed, format) keys: the unit the bootstrap resamples
    for k in keys:
        groups.setdefault(k[0], []).append(k)
    passages = sorted(groups)
    # a row with k self-edits per passage grades its questions k times: weigh every row to the questions once
    first = next(iter(data.values()))
    questions = {k: first[k][1] // first[k][3] for k in keys}
    den = [sum(questions[k] for k in groups[p]) for p in passages]
    correct = {label: [sum(d[k][0] * questions[k] / d[k][1] for k in groups[p]) for p in passages]
               for label, d in data.items()}
    # gold NLL per passage: the mean over its seeds (each already the mean over the row's self-edits)
    nll = {label: [sum(d[k][2] for k in groups[p]) / len(groups[p]) for p in passages] for label, d in data.items()}
    seeds = len({k[1:] for k in keys})
    what = f"{len(keys)} passage-seeds, {sum(den)} questions" if seeds == 1 else \
        f"{len(passages)} passages, {len(keys)} passage-seeds, {sum(den)} question-seeds"
    head = ["row", "accuracy [95% CI]", "gold NLL"] + [f"− {v} [95% CI]" for v in vs] + \
        ([f"gold NLL − {v} [95% CI]" for v in vs] if nll_vs else []) + \
        (["words in passage", "words"] if passage_file else []) + \
        (["lines kept", "words kept"] if passage_file and kept else [])
    out = [f"{what} (the passages every row has)", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    shown = set(passages)
    for label, runs in specs:
        d = data[label]
        acc = ratio_interval(correct[label], den)
        mean_nll = sum(d[k][2] for k in keys) / len(keys)
        cells = [label, f"{acc.value:.3f} [{acc.lo:.3f}, {acc.hi:.3f}]", f"{mean_nll:.3f}"]
        for v in vs:
            cells.append("" if v == label else cell(paired_interval(correct[label], correct[v], den), 3))
        for v in vs if nll_vs else []:
            cells.append("" if v == label else cell(mean_interval([a - b for a, b in zip(nll[label], nll[v])]), 3))
        if passage_file:
            cells += grounding(runs, shown, texts, kept)
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "✱ = outside the error bars (95 % paired bootstrap over passages)"]
    return "\n".join(out)


def cell(diff, digits: int) -> str:
    mark = " ✱" if diff.lo > 0 or diff.hi < 0 else ""
    return f"{diff.value:+.{digits}f} [{diff.lo:+.{digits}f}, {diff.hi:+.{digits}f}]{mark}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", nargs="+", type=spec)
    ap.add_argument("--vs", default="", help="comma-separated labels to take paired differences from")
    ap.add_argument("--nll", action="store_true", help="also the paired differences in gold NLL (mean per passage)")
    ap.add_argument("--grounding", action="store_true",
                    help="also each row's self-edits' share of words found in their passage, and their length")
    ap.add_argument("--kept", action="store_true",
                    help="with --grounding: also the lines and words of each self-edit that parsing keeps")
    ap.add_argument("--data", type=Path, default=DATA, help="the passages the runs were measured on (--grounding)")
    ap.add_argument("--out", type=Path)
    o = ap.parse_args()
    vs = [v for v in o.vs.split(",") if v]
    unknown = set(vs) - {label for label, _ in o.rows}
    if unknown:
        raise SystemExit(f"--vs names no row: {', '.join(sorted(unknown))}")
    if o.kept and not o.grounding:
        raise SystemExit("--kept goes with --grounding")
    text = table(o.rows, vs, o.nll, o.data if o.grounding else None, o.kept)
    print(text)
    if o.out:
        o.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
