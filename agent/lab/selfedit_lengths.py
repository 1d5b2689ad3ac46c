"""How long are a held-out row's self-edits, in the teacher's tokens, and how many stopped at the generation cap
(`teacher.max_new_tokens`, from each run's run.json) instead of ending on their own? Rows are `bench knowledge`
folders and conditions, as in heldout_table.py. `ref:NAME` rows count the stored self-edits the run took, which no
cap cut: their column says how many are as long as the teacher's cap or longer.

    python -m agent.lab.selfedit_lengths LABEL=FOLDER:CONDITION[+FOLDER:CONDITION...] [...] [--model embedded]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import median

from transformers import AutoTokenizer

from agent.lab.squad import load_passages
from agent.config import default_home
from agent.models import resolve
from agent.lab.heldout_table import DATA, selfedits, spec
from teacher.policy import CAP_SLACK


def lengths(runs: list[tuple[Path, str]], tokenizer, texts: list) -> tuple[list[int], int]:
    """Token counts of the runs' self-edits, and the runs' generation cap (0 where they differ)."""
    out, caps = [], set()
    for folder, condition in runs:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        caps.add(run.get("teacher", {}).get("max_new_tokens", 0))
        out += [len(tokenizer(c, add_special_tokens=False)["input_ids"])
                for _, completions in selfedits(folder, condition, texts) for c in completions]
    return out, caps.pop() if len(caps) == 1 else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", nargs="+", type=spec)
    ap.add_argument("--model", default="embedded", help="whose tokenizer counts (the teacher's)")
    ap.add_argument("--data", type=Path, default=DATA, help="the passages of ref:NAME rows")
    o = ap.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(resolve(o.model, default_home()))
    texts = load_passages(o.data)
    print("| row | self-edits | median tokens | at or past the cap (teacher.max_new_tokens) |\n|---|---|---|---|")
    for label, runs in o.rows:
        n, cap = lengths(runs, tokenizer, texts)
        if not n:
            raise SystemExit(f"{label}: no self-edits for that condition")
        # a decoded completion re-encodes to about the number of tokens it was generated in (a few either way)
        at_cap = f"{sum(x >= cap - CAP_SLACK for x in n) / len(n):.2f} (cap {cap})" if cap else "runs differ"
        print(f"| {label} | {len(n)} | {median(n):.0f} | {at_cap} |")


if __name__ == "__main__":
    main()
