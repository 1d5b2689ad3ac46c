"""What does ReST-EM teach the teacher? Per round of a `teacher train` run folder: the sampled self-edits' reward,
length and faithfulness (the share of their words that occur in the passage), for all samples and for the kept
ones, and the reward by faithfulness band. A teacher that learns from its rewards should drift toward the kept
samples' profile from one round's samples to the next.

    python -m agent.lab.restem_faithfulness RUN_FOLDER [RUN_FOLDER ...] [--data agent/data/squad/restem_train.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

from agent.lab.runlog import read_records
from agent.lab.squad import load_passages
from agent.lab.restem_split import TRAIN_DATA
from teacher.selfedit import passage_share

BANDS = ((0.0, 0.4), (0.4, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 1.01))


def rows(run: Path, data: Path) -> list[dict]:
    """One row per scored training self-edit: round, reward, words, faithfulness, kept."""
    passages = load_passages(data)
    rewards = {(r["round"], r["passage"], r["sample"]): r["reward"] for r in read_records(run / "rewards.jsonl")}
    kept = set()
    for f in run.glob("round-*.json"):
        info = json.loads(f.read_text(encoding="utf-8"))
        kept |= {(info["round"], p["passage"], p["sample"]) for p in info.get("picks", [])}
    out = []
    for s in read_records(run / "samples.jsonl"):
        if s["set"] != "train":
            continue
        context = passages[s["passage"]].context
        for j, c in enumerate(s["completions"]):
            key = (s["round"], s["passage"], j)
            if key in rewards:
                out.append({"round": s["round"], "reward": rewards[key], "words": len(c.split()),
                            "faithful": passage_share(c, context), "kept": key in kept})
    return out


def report(run: Path, data: Path) -> str:
    table = rows(run, data)
    lines = [f"## {run}", "", "| round | samples | reward mean | > 0 | words | faithful (all) | faithful (kept) |",
             "|---|---|---|---|---|---|---|"]
    for rnd in sorted({r["round"] for r in table}):
        rs = [r for r in table if r["round"] == rnd]
        ks = [r for r in rs if r["kept"]]
        lines.append(f"| {rnd} | {len(rs)} | {mean(r['reward'] for r in rs):+.3f} | "
                     f"{sum(r['reward'] > 0 for r in rs) / len(rs):.0%} | {mean(r['words'] for r in rs):.0f} | "
                     f"{mean(r['faithful'] for r in rs):.3f} | "
                     f"{mean(r['faithful'] for r in ks) if ks else float('nan'):.3f} |")
    lines += ["", "| faithfulness | samples | reward mean |", "|---|---|---|"]
    for lo, hi in BANDS:
        band = [r["reward"] for r in table if lo <= r["faithful"] < hi]
        if band:
            lines.append(f"| {lo:.1f}–{min(hi, 1.0):.1f} | {len(band)} | {mean(band):+.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=TRAIN_DATA)
    args = ap.parse_args()
    print("\n".join(report(run, args.data) for run in args.runs))


if __name__ == "__main__":
    main()
