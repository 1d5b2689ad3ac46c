"""Summaries, the markdown table and the PNG plots of a forgetting sweep (and of a store's history)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

from .report import recorded_machine, sanitize
from .runlog import atomic_write
from ..forgetting_metrics import NAMES, mean_matrix, mean_std, metrics, perplexity_drift

GOAL_BWT = -0.02          # the replay goal: BWT >= -0.02 ...
GOAL_JUST_LEARNED = 0.02  # ... just-learned accuracy within 2 points of no replay ...
GOAL_DRIFT = 0.03         # ... and general-text perplexity drift <= 3%
LABELS = {"acc": "ACC", "bwt": "BWT", "fwt": "FWT", "forgetting": "forgetting", "just_learned": "just-learned"}


def strategy_key(update: str, replay: str) -> str:
    return f"{update}-{replay}"


def run_metrics(run) -> dict:
    m = metrics(run.R).to_dict()
    m["ppl_drift"] = perplexity_drift(run.ppl[0], run.ppl[-1])
    nll = metrics(run.NLL)
    m["nll_bwt"] = nll.bwt          # positive = gold answers of earlier documents got less likely
    m["first_doc_final"] = run.R[-1][0]
    return m


def summarize(runs: list, order: Sequence[str]) -> dict:
    """Per strategy: its runs with metrics, the mean matrices, metrics mean/std over runs; then the goal check
    and paired differences against no replay (same update mode, same run = same order and training seeds)."""
    by: dict[str, list] = {}
    for r in sorted(runs, key=lambda r: r.run):
        by.setdefault(strategy_key(r.update, r.replay), []).append(r)
    out = {}
    for key in [k for k in order if k in by]:
        rs = by[key]
        per = [run_metrics(r) for r in rs]
        names = list(per[0])
        out[key] = {
            "update": rs[0].update, "replay": rs[0].replay, "runs": len(rs),
            "metrics": {n: mean_std([p[n] for p in per]) for n in names},
            "mean_R": mean_matrix([r.R for r in rs]), "mean_F1": mean_matrix([r.F1 for r in rs]),
            "mean_NLL": mean_matrix([r.NLL for r in rs]),
            "ppl": [mean_std([r.ppl[k] for r in rs]) for k in range(len(rs[0].ppl))],
            "seconds": sum(r.seconds for r in rs),
            "per_run": [{"run": r.run, "order": r.order, "metrics": p, "R": r.R, "F1": r.F1, "NLL": r.NLL,
                         "ppl": r.ppl, "steps": r.steps, "replayed": r.replayed, "seconds": r.seconds,
                         **({"routed_own": r.routed_own, "general_to_base": r.general_to_base}
                            if r.update == "route" else {})}
                        for r, p in zip(rs, per)],
        }
    for key, s in out.items():
        ref = "continue-none" if s["update"] == "route" else f"{s['update']}-none"  # route vs one adapter, no replay
        none = out.get(ref)
        if key == ref or none is None:
            continue
        base = {p["run"]: p["metrics"] for p in none["per_run"]}
        paired = [(p["metrics"], base[p["run"]]) for p in s["per_run"] if p["run"] in base]
        diffs = {n: mean_std([a[n] - b[n] for a, b in paired]) for n in ("acc", "bwt", "just_learned", "ppl_drift")}
        m = s["metrics"]
        s["vs_none"] = diffs
        s["goal"] = {"bwt": _ge(m["bwt"]["mean"], GOAL_BWT),
                     "just_learned": _ge(diffs["just_learned"]["mean"], -GOAL_JUST_LEARNED),
                     "ppl_drift": _ge(-m["ppl_drift"]["mean"], -GOAL_DRIFT)}
    return out


def _ge(x: float, bound: float) -> Optional[bool]:
    return None if x is None or math.isnan(x) else bool(x >= bound - 1e-12)


# ---- markdown ------------------------------------------------------------------------------------------------------

def _f(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _ms(d: dict, digits: int = 3) -> str:
    if d["n"] == 0:
        return "–"
    return _f(d["mean"], digits) if d["n"] == 1 else f"{_f(d['mean'], digits)} ± {_f(d['std'], digits)}"


def matrix_table(R: Sequence[Sequence], row_names: Sequence[str], col_names: Sequence[str]) -> str:
    lines = ["| | " + " | ".join(col_names) + " |", "|---|" + "---|" * len(col_names)]
    for name, row in zip(row_names, R):
        lines.append(f"| {name} | " + " | ".join(_f(x, 2) for x in row) + " |")
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    c, summ = doc["config"], doc["strategies"]
    T = c["docs"]
    out = [f"# Forgetting sweep: T = {T} documents, {c['runs']} order(s)", "",
           f"data `{c['data']}` · texts `{c['texts']}` · replay ratio {c['ratio']} · capacity {c['capacity']} · "
           f"lr {c['train']['lr']} · epochs {c['train']['epochs']} · LoRA r {c['lora']['r']} · "
           f"anchor weight {c['train'].get('anchor_weight', 0)} ('mixed') · "
           f"{doc['machine']['device']} · {doc['run_seconds']:.0f} s in runs ({doc['seconds']:.0f} s this invocation)", "",
           "Accuracy = 'contains' on the extracted answer, per document; R[k][i] = accuracy on the i-th learned "
           "document after k edits. BWT < 0 is forgetting; FWT = what earlier edits taught about later documents; "
           "'mixed' = reservoir replay + a KL anchor to the base model on shipped general text; "
           "ppl drift = general-text perplexity after T edits / before − 1; NLL BWT > 0 = gold answers of earlier "
           "documents became less likely (dense). 'route' = an adapter per document, each text answered by the "
           "adapter of the most similar learned document or by the base model; compared with continue-none.", "",
           "| strategy | runs | " + " | ".join(LABELS.values()) + " | ppl drift | NLL BWT | goal (BWT ≥ −0.02, "
           "just-learned ≥ none − 0.02, drift ≤ 3%) |",
           "|---|---|" + "---|" * (len(LABELS) + 3)]
    for key, s in summ.items():
        m = s["metrics"]
        goal = s.get("goal")
        g = "–" if not goal else " ".join(f"{k} {'✓' if v else ('✗' if v is False else '?')}" for k, v in goal.items())
        out.append(f"| {key} | {s['runs']} | " + " | ".join(_ms(m[n]) for n in NAMES) +
                   f" | {_ms(m['ppl_drift'])} | {_ms(m['nll_bwt'])} | {g} |")
    rows = ["before"] + [f"after {k}" for k in range(1, T + 1)]
    cols = [f"doc {i}" for i in range(1, T + 1)]
    for key, s in summ.items():
        out += ["", f"## {key} (mean R over {s['runs']} run(s))", "", matrix_table(s["mean_R"], rows, cols), "",
                "general-text perplexity: " + " → ".join(_f(p["mean"], 2) for p in s["ppl"])]
        if s["update"] == "route":
            own = [x for p in s["per_run"] for x in p.get("routed_own", []) if x == x]
            base = [x for p in s["per_run"] for x in p.get("general_to_base", []) if x == x]
            out.append(f"routing: {_f(sum(own) / len(own) if own else None)} of learned documents' questions to "
                       f"their own adapter, {_f(sum(base) / len(base) if base else None)} of general paragraphs to "
                       "the base model (mean over steps and runs)")
        if "vs_none" in s:
            d = s["vs_none"]
            ref = "one adapter without replay (continue-none)" if s["update"] == "route" else "no replay"
            out.append(f"paired vs {ref}: ACC {_ms(d['acc'])}, BWT {_ms(d['bwt'])}, "
                       f"just-learned {_ms(d['just_learned'])}, ppl drift {_ms(d['ppl_drift'])}")
    return "\n".join(out) + "\n"


# ---- plots -----------------------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def heatmap(R: Sequence[Sequence], path: Path, title: str, row_names: Sequence[str], col_names: Sequence[str]) -> None:
    """R as a heatmap (0..1, unknown cells blank), values written in the cells."""
    import numpy as np
    plt = _pyplot()
    a = np.array([[np.nan if x is None else float(x) for x in row] for row in R], dtype=float)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 0.7 * a.shape[1]), max(3.0, 1.2 + 0.5 * a.shape[0])))
    im = ax.imshow(np.ma.masked_invalid(a), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(a.shape[1]), [str(c)[:14] for c in col_names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(a.shape[0]), [str(r)[:24] for r in row_names], fontsize=8)
    if a.size <= 400:
        for (k, i), v in np.ndenumerate(a):
            if not np.isnan(v):
                ax.text(i, k, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lines(series: dict[str, list[dict]], path: Path, title: str, ylabel: str) -> None:
    """One line per strategy over steps 0..T (mean, with a ±std band)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = {"none": "tab:red", "reservoir": "tab:blue", "mixed": "tab:green"}
    for name, pts in series.items():
        update, _, replay = name.partition("-")
        style = {"color": colours.get(replay) if update != "route" else "tab:purple",
                 "linestyle": {"merge": "--", "route": ":"}.get(update, "-"),
                 "marker": {"merge": "s", "route": "^"}.get(update, "o")}
        xs = list(range(len(pts)))
        ys = [p["mean"] for p in pts]
        sd = [p["std"] if p["std"] == p["std"] else 0.0 for p in pts]
        ax.plot(xs, ys, label=name, **style)
        ax.fill_between(xs, [y - s for y, s in zip(ys, sd)], [y + s for y, s in zip(ys, sd)], alpha=0.12,
                        color=style["color"])
    ax.set_xlabel("edits (documents learned)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(max((len(p) for p in series.values()), default=1)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(sweep, runs: list, seconds: float) -> dict:
    """results.json, table.md and the plots of a finished (or resumed) sweep; returns the results document."""
    o, out = sweep.opts, sweep.out
    T = len(sweep.docs)
    order = [f"{u}-{r}" for u, r in o.strategies()]
    summ = summarize([r for r in runs if (r.update, r.replay) in set(o.strategies())], order)
    import dataclasses
    doc = sanitize({
        "config": {"data": str(sweep.data), "docs": T, "runs": o.runs, "replay": list(o.replay),
                   "update": list(o.update), "texts": o.texts, "seed": o.seed, "ratio": sweep.ratio,
                   "capacity": sweep.capacity, "train": dataclasses.asdict(sweep.cfg.train),
                   "lora": dataclasses.asdict(sweep.cfg.lora), "answer": dataclasses.asdict(sweep.cfg.answer),
                   "out": str(out)},
        "machine": recorded_machine(sweep.out, sweep.device), "seconds": round(seconds, 1),
        "run_seconds": round(sum(s["seconds"] for s in summ.values()), 1),
        "documents": [{"index": d.index, "title": d.title, "questions": len(d.questions), "texts": len(d.texts)}
                      for d in sweep.docs],
        "strategies": summ,
        "files": {"json": "results.json", "table": "table.md", "runs": "runs.jsonl",
                  "heatmaps": {k: f"heatmap-{k}.png" for k in summ}, "first_doc": "first-doc.png",
                  "perplexity": "perplexity.png"},
    })
    atomic_write(out / "results.json", json.dumps(doc, indent=2) + "\n")
    atomic_write(out / "table.md", markdown(doc))
    rows = ["before"] + [f"after {k}" for k in range(1, T + 1)]
    cols = [f"doc {i}" for i in range(1, T + 1)]
    for key, s in summ.items():
        heatmap(s["mean_R"], out / f"heatmap-{key}.png", f"{key}: accuracy R[k][i], mean of {s['runs']} run(s)",
                rows, cols)
    lines({k: [mean_std([p["R"][step][0] for p in s["per_run"]]) for step in range(T + 1)] for k, s in summ.items()},
          out / "first-doc.png", "accuracy on the first document learned (SEAL fig. 6)", "accuracy on document 1")
    lines({k: s["ppl"] for k, s in summ.items()}, out / "perplexity.png",
          "general-text perplexity (never trained on)", "perplexity")
    return doc


def store_outputs(matrix, out: Path) -> dict:
    """store-forgetting.json and store-heatmap.png for `forgetting --from-store --out DIR`."""
    out.mkdir(parents=True, exist_ok=True)
    doc = sanitize(matrix.to_dict())
    atomic_write(out / "store-forgetting.json", json.dumps(doc, indent=2) + "\n")
    if matrix.rows:
        heatmap(matrix.rows, out / "store-heatmap.png", "your forgetting history: accuracy after each edit",
                [f"after {k + 1}: {t[:16]}" for k, t in enumerate(matrix.titles)], matrix.titles)
    return doc
