"""`seal-agent teacher ...`: train the teacher with ReST-EM (agent/restem.py) and list its versions."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

import typer

from ...commands.common import emitter, output, state
from .run_flags import command_config, executor_option, ray_address_option

teacher_app = typer.Typer(help="The teacher: ReST-EM training (SEAL's RL outer loop) and its versions.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(teacher_app, name="teacher")


@teacher_app.command("train")
def train(ctx: typer.Context,
          data: Optional[Path] = typer.Option(None, "--data", help="SQuAD-format training passages (default: the "
                                              "shipped restem_train.json, 6 titles disjoint from the held-out set)."),
          rounds: int = typer.Option(2, "--rounds", min=1, help="ReST-EM rounds (a finished run can be extended)."),
          passages: int = typer.Option(50, "--passages", min=1, help="Training passages (per round with --fresh)."),
          fresh: bool = typer.Option(False, "--fresh", help="New training passages each round (the next block of "
                                     "--passages from the shuffled pool): a round's reward then tests what the last "
                                     "M-step taught, not how well the teacher recalls winners it was trained on."),
          samples: int = typer.Option(5, "--samples", "-k", min=1, help="Self-edits sampled per passage and round."),
          seeds: int = typer.Option(2, "--seeds", min=1, help="Student training seeds per reward."),
          reward: str = typer.Option("contains", "--reward", help="contains | f1 | loglik (gold-answer NLL drop); "
                                     "always relative to passage-only with the same seed."),
          keep: str = typer.Option("best", "--keep", help="best: the best self-edit per passage if its reward > 0; "
                                   "positive: every self-edit with reward > 0."),
          self_mode: bool = typer.Option(False, "--self", help="SEAL's single-model setting: the student is the "
                                         "teacher itself (its policy merged)."),
          family: Optional[str] = typer.Option(None, "--family", help="Self-edit prompt family (default: config)."),
          eval_titles: Optional[str] = typer.Option(None, "--eval-titles", help="Comma-separated titles kept for "
                                                    "evaluation (removed from training); a title with a comma in "
                                                    "it is matched whole."),
          eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Held-out pool (default: the 175 "
                                                   "reference passages minus training titles)."),
          eval_passages: int = typer.Option(0, "--eval-passages", min=0, help="Quick held-out evaluation of each "
                                            "round's teacher on N held-out passages."),
          out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/restem-<time>); "
                                             "re-running with the same folder resumes."),
          json_out: bool = typer.Option(False, "--json", help="Print the result JSON only."),
          engine: str = typer.Option("auto", "--engine", help="Inner loop: sequential | batched | auto."),
          group: int = typer.Option(8, "--group", min=1, help="Candidates per inner-loop call (adapters at once)."),
          gen_batch: int = typer.Option(256, "--gen-batch", min=1, help="Sequences per teacher generate call."),
          device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: config)."),
          executor: Optional[str] = executor_option(), ray_address: Optional[str] = ray_address_option()):
    """ReST-EM: sample self-edits, reward them by the student's gain over passage-only, SFT the teacher's policy
    adapter on the winners; one new teacher version per round."""
    from ...memory import check_home
    from ..restem import Restem, RestemOptions
    from ..restem_split import HELDOUT_DATA, TRAIN_DATA

    cfg = command_config(ctx, json_out, device, executor, ray_address)
    opts = RestemOptions(data=data or TRAIN_DATA, eval_data=eval_data or HELDOUT_DATA, rounds=rounds,
                         passages=passages, samples=samples, seeds=seeds, reward=reward, keep=keep,
                         self_mode=self_mode, family=family, eval_titles=(eval_titles,) if eval_titles else (),
                         eval_passages=eval_passages, out=out, engine=engine, group=group, gen_batch=gen_batch,
                         fresh=fresh)
    # claim the home before hours of training (a home holding only adapters/ would be refused later); no chromadb
    check_home(cfg.home, create=True)
    with emitter(ctx) as emit:
        doc = Restem(cfg, opts, emit=emit).prepare().run()

    def human(console):
        from rich import box
        from rich.table import Table
        table = Table(title=f"ReST-EM ({doc['out']})", box=box.SIMPLE_HEAD, pad_edge=False,  # 80 columns
                      caption="words in passage: share of the self-edits' words found in their passage, "
                              "sampled / kept")
        for col in ("round", "reward\nmean", "reward\nmax", "kept\n(passages)", "words in\npassage",
                    "held-out\nacc", "passage-\nonly", "min"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in doc["rounds"]:
            st_ = r.get("reward_stats") or {}
            h = r.get("heldout") or {}
            kept = f"{r.get('kept', 0)} ({r.get('passages_kept', 0)}/{r.get('passages', 0)})" if r["round"] else ""
            g = r.get("grounding") or {}
            words = f"{_f(g.get('sampled'), '{:.0%}')}/{_f(g.get('kept'), '{:.0%}')}" if g else ""
            table.add_row(str(r["round"]), _f(st_.get("mean")), _f(st_.get("max")), kept, words,
                          _f(h.get("accuracy"), "{:.3f}"), _f(h.get("passage_accuracy"), "{:.3f}"),
                          _f((r.get("seconds") or math.nan) / 60, "{:.1f}"))
        console.print(table)
        for r in doc["rounds"][1:] if doc["rounds"] and doc["rounds"][0]["round"] == 0 else doc["rounds"]:
            note = "" if r.get("trained", True) else " (unchanged: nothing kept)"
            console.print(f"round {r['round']}: teacher version {r.get('adapter') or 'base'}{note}")
        sp = doc["split"]
        console.print(f"trained on {sp['train_passages']} passages ({', '.join(sp['train_passage_titles'])}); "
                      f"held-out: {sp['heldout_passages']} passages of other titles ({sp['heldout_file']})")
        if doc["teacher"]:
            console.print(f"use it: seal-agent --set models.teacher_adapter={doc['teacher']} ingest FILE   |   "
                          f"seal-agent bench knowledge --data {sp['heldout_file']} --conditions "
                          f"base,passage,teacher,teacher:{doc['teacher']},ref:gpt4.1")
    output(ctx, doc, human)


@teacher_app.command("list")
def list_versions(ctx: typer.Context,
                  json_out: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Trained teacher versions: id, round, parent, reward statistics, created."""
    from ...models import teacher_versions

    st = state(ctx)
    st.json = st.json or json_out
    cfg = st.config()
    rows = []
    store = teacher_versions(cfg.home)  # listing creates nothing
    for vid in store.ids() if store else []:
        meta = store.meta(vid)
        rs = meta.get("reward_stats") or {}
        rows.append({"id": vid, "round": meta.get("round"), "parent": meta.get("parent"),
                     "family": meta.get("family"), "reward": meta.get("reward"), "reward_mean": rs.get("mean"),
                     "reward_max": rs.get("max"), "kept": meta.get("kept"), "pairs": meta.get("pairs"),
                     "self": meta.get("self"), "run": meta.get("run"),
                     "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.get("created", 0)))})

    def human(console):
        from rich.table import Table
        if not rows:
            console.print("no trained teacher versions yet (seal-agent teacher train)")
            return
        table = Table(title="teacher versions (parents, runs, families: --json)")
        for col in ("id", "round", "reward", "mean", "max", "kept", "created"):
            table.add_column(col, no_wrap=True)
        for r in rows:
            table.add_row(r["id"], str(r["round"]), r["reward"] or "", _f(r["reward_mean"]), _f(r["reward_max"]),
                          str(r["kept"]), r["created"][5:16])
        console.print(table)
    output(ctx, {"versions": rows}, human)


def _f(x, fmt: str = "{:+.3f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return fmt.format(x)
