"""Branch a ReST-EM run folder after its round-1 rewards, with other M-step (policy) settings or --fresh.

    python -m agent.lab.restem_branch SRC DST KEY=VALUE [KEY=VALUE ...]   (keys of [policy]: init, epochs, lr, ...;
                                                                         or fresh=true: new passages from round 2)

Round 1 samples from the untrained teacher, so its self-edits and rewards do not depend on the policy settings:
DST gets SRC's round-1 records (samples, evals, rewards, the round-0/1 manifests, the split) and a run.json whose
policy is SRC's with the given changes; not the quick held-out evaluation of SRC's round-1 teacher, which the
rebuild measures again for its own. `seal-agent --set policy.KEY=VALUE ... teacher train --out DST` with the
SRC run's other flags then finds round 1 done, its teacher version missing, and rebuilds it from the logged
winners under the new settings (Restem.rebuild); later rounds are sampled and rewarded anew. Two M-step settings
are so compared on one round-1 reward pool, paired, at the cost of an M-step instead of a round. With
fresh=true (run with `teacher train --fresh`), round 1's passages are the first block of the same seeded pool, so
the branch is the --fresh run that SRC's first round would have begun.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

KEEP = ("split.json", "heldout.json", "round-0.json")  # round-0.json: the untrained teacher's quick held-out
LOGS = ("samples.jsonl", "evals.jsonl", "rewards.jsonl")


def keep(record: dict) -> bool:
    """Round 1's training records and the passage-only baselines (round -1); of the quick held-out evaluation
    only the untrained teacher's (round 0)."""
    if record.get("set") == "heldout":
        return record["round"] <= 0
    return record["round"] <= 1


def value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text  # a bare word: init=base


def branch(src: Path, dst: Path, changes: dict) -> dict:
    if not (src / "run.json").is_file() or not (src / "round-1.json").is_file():
        raise SystemExit(f"error: {src} is not a ReST-EM run folder with a finished round 1")
    if json.loads((src / "round-1.json").read_text())["status"] != "done":
        raise SystemExit(f"error: {src}: round 1 is not done")
    if dst.exists():
        raise SystemExit(f"error: {dst} exists")
    run = json.loads((src / "run.json").read_text())
    unknown = [k for k in changes if k not in run["policy"] and k != "fresh"]
    if unknown:
        raise SystemExit(f"error: not a policy setting: {', '.join(unknown)}")
    run["fresh"] = changes.pop("fresh", run.get("fresh", False)) is True
    run["policy"] = {**run["policy"], **changes}
    tmp = dst.with_name(dst.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KEEP:
        if (src / name).exists():
            shutil.copy2(src / name, tmp / name)
    doc = json.loads((src / "round-1.json").read_text())
    doc.pop("heldout", None)
    (tmp / "round-1.json").write_text(json.dumps(doc, indent=2) + "\n")
    kept = {}
    for name in LOGS:
        lines = [line for line in (src / name).read_text().splitlines() if line.strip() and keep(json.loads(line))]
        (tmp / name).write_text("".join(line + "\n" for line in lines))
        kept[name] = len(lines)
    (tmp / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    tmp.rename(dst)
    return {"branch": str(dst), "from": str(src), "policy": run["policy"], "records": kept}


def main(argv: list[str]) -> None:
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    changes = {k: value(v) for k, v in (a.split("=", 1) for a in argv[2:])}
    print(json.dumps(branch(Path(argv[0]), Path(argv[1]), changes)))


if __name__ == "__main__":
    main(sys.argv[1:])
