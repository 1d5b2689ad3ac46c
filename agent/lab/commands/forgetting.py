"""`seal-agent forgetting`: the forgetting sweep (agent/forgetting.py), or the user's own history (--from-store)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ...commands.common import emitter, open_agent, output, state
from .run_flags import command_config, executor_option, ray_address_option


def forgetting(ctx: typer.Context,
               data: Optional[Path] = typer.Option(None, "--data", help="SQuAD-format JSON [{title, context, questions, "
                                                   "completions?}] (default: SEAL's 175 reference passages)."),
               docs: int = typer.Option(8, "--docs", min=1, help="T: documents learned one after another."),
               runs: int = typer.Option(1, "--runs", min=1, help="Orders (seeded shuffles of the same T documents)."),
               replay: str = typer.Option("none,reservoir,mixed", "--replay",
                                          help="Replay strategies compared side by side: none, reservoir, mixed."),
               ratio: Optional[float] = typer.Option(None, "--replay-ratio", min=0.0,
                                                     help="Replay texts per new text (default: config replay.ratio)."),
               capacity: Optional[int] = typer.Option(None, "--capacity", min=1,
                                                      help="Reservoir capacity (default: config replay.capacity)."),
               update: str = typer.Option("continue", "--update", help="continue (one adapter keeps training) | merge "
                                          "(SEAL: merge the LoRA into the weights after each edit) | route (an adapter "
                                          "per document, each text routed by similarity, else the base) | several, "
                                          "comma-separated."),
               route_threshold: float = typer.Option(0.3, "--route-threshold", min=-1.0, max=1.0,
                                                     help="route: least cosine similarity for a text to use a "
                                                          "document's adapter."),
               texts: str = typer.Option("passage", "--texts", help="Training texts per document: passage | "
                                         "ref[:NAME] (first reference self-edit + passage; NAME: gpt4.1, qwen-base, "
                                         "seal-rl, a file; default: the data's completions, else gpt4.1)."),
               out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default runs/forgetting-<time>); "
                                                  "re-running with the same folder resumes."),
               seed: int = typer.Option(0, "--seed", help="Seed of the document choice and the orders."),
               perplexity: bool = typer.Option(True, "--perplexity/--no-perplexity",
                                               help="General-text perplexity after every step (drift)."),
               device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: config)."),
               from_store: bool = typer.Option(False, "--from-store", help="Show your own forgetting history from the "
                                               "store's edit log instead of running a sweep."),
               json_out: bool = typer.Option(False, "--json", help="Print the result JSON only."),
               executor: Optional[str] = executor_option(), ray_address: Optional[str] = ray_address_option()):
    """Forgetting across sequential edits: the full accuracy matrix, ACC/BWT/FWT/forgetting, perplexity drift."""
    st = state(ctx)
    st.json = st.json or json_out
    if from_store:
        _from_store(ctx, out)
        return
    from ..forgetting import ForgettingSweep, SweepOptions
    cfg = command_config(ctx, json_out, device, executor, ray_address)
    opts = SweepOptions(data=data, docs=docs, runs=runs, replay=replay, ratio=ratio, capacity=capacity,
                        update=update, texts=texts, out=out, seed=seed, perplexity=perplexity,
                        route_threshold=route_threshold)
    with emitter(ctx) as emit:
        doc = ForgettingSweep(cfg, opts, emit=emit).prepare().run()

    def human(console):
        from rich.markdown import Markdown
        console.print(Markdown((Path(doc["config"]["out"]) / "table.md").read_text(encoding="utf-8")))
        console.print(f"results: {doc['config']['out']}/results.json, table.md, heatmap-*.png, first-doc.png, "
                      "perplexity.png")
    output(ctx, doc, human)


def _from_store(ctx: typer.Context, out: Optional[Path]) -> None:
    from ..forgetting_report import store_outputs
    from ...retention import store_matrix
    with open_agent(ctx, create=False) as agent:
        matrix = store_matrix(agent.memory)
    doc = store_outputs(matrix, out) if out else matrix.to_dict()

    def human(console):
        if not matrix.rows:
            console.print("no committed edits yet: seal-agent ingest FILE")
            return
        t = Table(title="your forgetting history: probe accuracy per document after each edit")
        t.add_column("after edit")
        for i, title in enumerate(matrix.titles, 1):
            t.add_column(f"{i}. {title[:14]}", justify="right")
        for k, row in enumerate(matrix.rows):
            t.add_row(f"{k + 1}. {matrix.titles[k][:20]}",
                      *[("" if x is None else f"[bold]{x:.2f}[/]" if i == k else f"{x:.2f}") for i, x in enumerate(row)])
        console.print(t)
        m = matrix.metrics()
        console.print(f"ACC {m.acc:.3f}  BWT {_f(m.bwt)}  forgetting {_f(m.forgetting)}  "
                      f"just-learned {m.just_learned:.3f}  ({len(matrix.rows)} edits)")
        if out:
            console.print(f"written: {out}/store-forgetting.json, store-heatmap.png")
    output(ctx, doc, human)


def _f(x: float) -> str:
    return "–" if x != x else f"{x:+.3f}"


def register(app: typer.Typer) -> None:
    app.command("forgetting")(forgetting)
