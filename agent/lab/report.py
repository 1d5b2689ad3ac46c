"""From per-passage records to rows, intervals, paired differences and a markdown table.

Per passage the unit values are sums over its questions (correct answers, F1, EM, recitation control), averaged
over self-edits and seeds; a row's metric is sum over passages / number of questions (mean over questions) with a
95% bootstrap interval that resamples passages. The recitation control (DESIGN.md §6) asks, for each question,
how often its gold answer appears in the answers to the *other* questions of the same passage (the expected
accuracy when answers are shuffled between questions): a student that recites its training text scores high on
it without knowing which fact answers which question.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Sequence

from student.grading import contains, extract_answer

from .conditions import Condition
from .runlog import atomic_write
from .squad import Passage
from .stats import Interval, paired_interval, ratio_interval
from ..util import nanmean

METRICS = ("accuracy", "control", "f1", "em")


@dataclass
class PassageStats:
    """Sums over one passage's questions, averaged over self-edits and seeds."""
    n: int
    correct: float
    f1: float
    em: float
    control: float
    control_n: int
    nll: float
    per_seed: dict[int, float]  # seed -> correct


def shuffled_control(answers: Sequence[str], golds: Sequence[str]) -> float:
    """Sum over questions j of the share of other questions' answers that contain gold j (needs >= 2 questions)."""
    n = len(golds)
    if n < 2:
        return 0.0
    extracted = [extract_answer(a) for a in answers]
    return sum(sum(contains(extracted[i], golds[j]) for i in range(n) if i != j) / (n - 1) for j in range(n))


def _edit_sums(answers: list[str], grades: list[list[float]], golds: list[str]) -> tuple[float, float, float, float]:
    return (sum(g[0] for g in grades), sum(g[1] for g in grades), sum(g[2] for g in grades),
            shuffled_control(answers, golds))




def _passage_stats(p: Passage, per_seed_edits: dict[int, list[tuple[list[str], list[list[float]], float]]]) -> PassageStats:
    """per_seed_edits: seed -> [(answers, grades, nll) per self-edit], restricted to this passage's questions."""
    seed_sums, nlls = {}, []
    for seed, edits in per_seed_edits.items():
        sums = [_edit_sums(a, g, p.golds) for a, g, _ in edits]
        seed_sums[seed] = [sum(s[k] for s in sums) / len(sums) for k in range(4)]
        nlls.extend(nll for _, _, nll in edits)
    seeds = list(seed_sums.values())
    avg = [sum(s[k] for s in seeds) / len(seeds) for k in range(4)]
    n = len(p.questions)
    return PassageStats(n, avg[0], avg[1], avg[2], avg[3], n if n >= 2 else 0, nanmean(nlls),
                        {s: v[0] for s, v in seed_sums.items()})


def _row_name(cond: Condition, fmt: str, formats: Sequence[str]) -> str:
    return cond.name if len(formats) == 1 else f"{cond.name} [{fmt}]"


def _collect(passages: list[Passage], cond: Condition, fmt: str, seeds: list[int], mode: str,
             records: dict[tuple, dict], cpt_key: str) -> tuple[dict[int, PassageStats], list[dict]]:
    """PassageStats per passage position (passages without results left out) and the records used."""
    used_seeds = seeds[:1] if cond.seed_invariant else seeds
    out: dict[int, PassageStats] = {}
    used: list[dict] = []
    if mode == "cpt":
        recs = {s: records.get((cond.name, fmt, cpt_key, s)) for s in used_seeds}
        recs = {s: r for s, r in recs.items() if r}
        used = list(recs.values())
        at = 0
        for i, p in enumerate(passages):
            n = len(p.questions)
            per_seed = {s: [(e["answers"][at: at + n], e["grades"][at: at + n], math.nan) for e in r["edits"]]
                        for s, r in recs.items()}
            at += n
            if per_seed:
                out[i] = _passage_stats(p, per_seed)
        return out, used
    for i, p in enumerate(passages):
        recs = {s: records.get((cond.name, fmt, p.index, s)) for s in used_seeds}
        recs = {s: r for s, r in recs.items() if r}
        if recs:
            used.extend(recs.values())
            out[i] = _passage_stats(p, {s: [(e["answers"], e["grades"], e["nll"]) for e in r["edits"]]
                                        for s, r in recs.items()})
    return out, used


def _row(name: str, cond: Condition, fmt: str, stats: dict[int, PassageStats], used: list[dict], mode: str,
         n_passages: int) -> dict:
    ps = list(stats.values())
    den = [s.n for s in ps]
    edits = [e for r in used for e in r["edits"]]
    seeds = sorted({s for p in ps for s in p.per_seed})
    per_seed = {s: sum(p.per_seed.get(s, 0.0) for p in ps) / max(1, sum(den)) for s in seeds}
    if mode == "cpt":
        nll = Interval(nanmean([e["nll"] for e in edits]), math.nan, math.nan)
    else:
        have = [p for p in ps if not math.isnan(p.nll)]
        nll = ratio_interval([p.nll * p.n for p in have], [p.n for p in have])
    wall = sum(r["wall_seconds"] for r in used)
    sd = (math.sqrt(sum((v - nanmean(list(per_seed.values()))) ** 2 for v in per_seed.values()) / (len(per_seed) - 1))
          if len(per_seed) > 1 else math.nan)
    return {
        "row": name, "condition": cond.name, "kind": cond.kind, "family": cond.family, "adapter": cond.adapter,
        "format": fmt, "passages": len(ps), "questions": sum(den),
        "accuracy": ratio_interval([p.correct for p in ps], den).to_dict(),
        "control": ratio_interval([p.control for p in ps], [p.control_n for p in ps]).to_dict(),
        "f1": ratio_interval([p.f1 for p in ps], den).to_dict(),
        "em": ratio_interval([p.em for p in ps], den).to_dict(),
        "nll": nll.to_dict(),
        "accuracy_per_seed": {str(s): v for s, v in per_seed.items()}, "accuracy_seed_sd": sd,
        "self_edits_per_passage": (len(edits) / max(1, len(used))) if mode == "single" else None,
        "train": {"texts": nanmean([e["texts"] for e in edits]), "steps": nanmean([e["steps"] for e in edits]),
                  "tokens": nanmean([e["tokens"] for e in edits]),
                  "final_loss": nanmean([e["loss_last"] for e in edits if e["loss_last"] is not None])},
        "timing": {"seconds_per_passage": (wall / len(used) if mode == "single" else wall / len(used) / max(1, n_passages))
                   if used else math.nan,
                   "seconds_per_self_edit": wall / len(edits) if edits else math.nan, "seconds_total": wall},
    }


def _differences(rows: list[dict], stats: dict[str, dict[int, PassageStats]]) -> list[dict]:
    out = []
    for a, b in combinations(rows, 2):
        sa, sb = stats[a["row"]], stats[b["row"]]
        common = sorted(set(sa) & set(sb))
        den = [sa[i].n for i in common]
        entry: dict[str, Any] = {"a": a["row"], "b": b["row"], "passages": len(common)}
        for metric in ("accuracy", "control", "f1"):
            if metric == "control":
                iv = paired_interval([sa[i].control for i in common], [sb[i].control for i in common],
                                     [sa[i].control_n for i in common])
            else:
                attr = "correct" if metric == "accuracy" else metric
                iv = paired_interval([getattr(sa[i], attr) for i in common], [getattr(sb[i], attr) for i in common], den)
            entry[metric] = {**iv.to_dict(), "outside_error_bars": iv.excludes(0.0)}
        out.append(entry)
    return out


def aggregate(passages: list[Passage], conditions: list[Condition], formats: list[str], seeds: list[int],
              mode: str, records: list[dict], cpt_key: Optional[str] = None) -> dict:
    """rows, paired differences and per-passage results from the result records (``cpt_key``: the passage key
    of the cpt records, default ``cpt:<number of passages>``)."""
    cpt_key = cpt_key or f"cpt:{len(passages)}"
    index = {(r["condition"], r["format"], r["passage"], r["seed"]): r for r in records}
    rows, stats = [], {}
    for fmt in formats:
        for cond in conditions:
            name = _row_name(cond, fmt, formats)
            st, used = _collect(passages, cond, fmt, seeds, mode, index, cpt_key)
            stats[name] = st
            rows.append(_row(name, cond, fmt, st, used, mode, len(passages)))
    per_passage = []
    for i, p in enumerate(passages):
        res = {}
        for name, st in stats.items():
            if i in st:
                s = st[i]
                res[name] = {"accuracy": s.correct / s.n, "control": s.control / s.control_n if s.control_n else None,
                             "f1": s.f1 / s.n, "em": s.em / s.n, "nll": s.nll}
        per_passage.append({"index": p.index, "title": p.title, "questions": len(p.questions), "results": res})
    return {"rows": rows, "differences": _differences(rows, stats), "per_passage": per_passage}


def sanitize(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tuples -> lists, paths -> strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def machine_info(device: str) -> dict:
    import peft
    import torch
    import transformers
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "host": platform.node(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": device, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                            timeout=5, cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def record_machine(out: Path, device: str) -> None:
    """Write ``out``/machine.json: where a run's results are being computed (call when a run computes any)."""
    atomic_write(Path(out) / "machine.json", json.dumps(machine_info(device), indent=2) + "\n")


def recorded_machine(out: Path, device: str) -> dict:
    """The machine of the last invocation that computed results in ``out`` (its machine.json), else this one:
    a report-only re-run (a table rebuilt on a CPU from a GPU run's log) names where the results came from."""
    try:
        return json.loads((Path(out) / "machine.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return machine_info(device)


# ---- markdown ---------------------------------------------------------------------------------------------------

def fmt_num(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_ci(iv: dict, digits: int = 3) -> str:
    if iv.get("value") is None:
        return "–"
    if iv.get("lo") is None:
        return fmt_num(iv["value"], digits)
    return f"{fmt_num(iv['value'], digits)} [{fmt_num(iv['lo'], digits)}, {fmt_num(iv['hi'], digits)}]"


def markdown(doc: dict) -> str:
    c, m = doc["config"], doc["machine"]
    qs = doc["rows"][0]["questions"] if doc["rows"] else 0
    lines = [
        f"# Knowledge incorporation: mode {c['mode']}, {c['n']} passages ({qs} questions), seeds {c['seeds']}",
        "",
        f"- data: `{c['data']}`; student: {c['settings']['models']['student']}; engine: {c['engine']}; "
        f"{c['question_format_note']}",
        f"- machine: {m['host']}, {m['device']}{' (' + m['gpu'] + ')' if m.get('gpu') else ''}, {m['cpus']} CPUs, "
        f"torch {m['torch']}; {m['date']}",
        "- accuracy = 'contains' on the extracted answer, mean over questions, 95% bootstrap interval over passages; "
        "control = the same gold answers sought in the answers to the passage's *other* questions (recitation).",
        "",
        "| row | accuracy [95% CI] | shuffled control | F1 | EM | gold NLL | seed sd | self-edits | steps | s/passage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        lines.append(f"| {r['row']} | {fmt_ci(r['accuracy'])} | {fmt_ci(r['control'])} | {fmt_num(r['f1']['value'])} | "
                     f"{fmt_num(r['em']['value'])} | {fmt_num(r['nll']['value'])} | {fmt_num(r['accuracy_seed_sd'])} | "
                     f"{fmt_num(r['self_edits_per_passage'], 1)} | {fmt_num(r['train']['steps'], 1)} | "
                     f"{fmt_num(r['timing']['seconds_per_passage'], 1)} |")
    if doc["differences"]:
        lines += ["", "Paired differences (a − b; 95% paired bootstrap over passages; ✱ = outside the error bars)", "",
                  "| a − b | Δ accuracy [95% CI] | Δ control [95% CI] | Δ F1 [95% CI] |", "|---|---|---|---|"]
        for d in doc["differences"]:
            cell = lambda k: fmt_ci(d[k]) + (" ✱" if d[k]["outside_error_bars"] else "")  # noqa: E731
            lines.append(f"| {d['a']} − {d['b']} | {cell('accuracy')} | {cell('control')} | {cell('f1')} |")
    return "\n".join(lines) + "\n"
