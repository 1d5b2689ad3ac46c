"""Few-shot ARC: a task's demonstration grids and test input, the configuration, the training loss as it falls,
and the predicted grid, coloured as ARC shows grids. Enter in the path field solves the task file with the default
configuration (a test-time-trained adapter of the student, thrown away afterwards: nothing is stored)."""
from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Static

from agent import events as ev

from ..store import one_line
from .learn import LossPlot


class ArcPane(Vertical):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.arc_task: dict | None = None
        self.arc_result: dict | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="arc-bar"):
            yield Input(placeholder="an ARC task file (JSON); Enter solves it with the default configuration",
                        id="arc-path")
        yield Static("Open an ARC task: its grids show here, then the training loss and the prediction.",
                     id="arc-stage")
        with Horizontal(id="arc-mid"):
            with VerticalScroll(id="arc-grids-box"):
                yield Static("", id="arc-grids")
            with Vertical(id="arc-side"):
                yield Static("", id="arc-config")
                yield LossPlot(id="arc-loss")
                yield Static("", id="arc-result")

    def on_mount(self) -> None:
        self.query_one("#arc-grids-box").border_title = "Task: demonstrations, test input, prediction"
        self.query_one("#arc-config").border_title = "Configuration"
        self.query_one("#arc-loss").border_title = "Training loss"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "arc-path":
            event.stop()
            self.app.solve_arc(event.value)

    # ---- state -------------------------------------------------------------------------------------------
    def show_task(self, task: dict, config: dict | None = None) -> None:
        """A task (agent.lab.arc.jobs.task_json) about to be solved under ``config`` (SEAL's JSON layout)."""
        self.arc_task, self.arc_result = task, None
        self.query_one(LossPlot).reset()
        self.query_one("#arc-loss").border_subtitle = ""
        self.query_one("#arc-result", Static).update("")
        self.query_one("#arc-config", Static).update(Text(json.dumps(config, indent=1) if config else "default"))
        self.stage(Text.assemble(("Solving ", ""), (one_line(task["id"], 40), "bold"),
                                 (f" · {len(task['train'])} demonstration(s), {len(task['test'])} test input(s)",
                                  "dim")))
        self.render_grids(None)

    def render_grids(self, prediction) -> None:
        from agent.lab.arc.render import task_view
        if self.arc_task is not None:
            self.query_one("#arc-grids", Static).update(task_view(self.arc_task, prediction))

    def stage(self, text: str | Text) -> None:
        self.query_one("#arc-stage", Static).update(Text(text) if isinstance(text, str) else text)

    def show_result(self, doc: dict) -> None:
        """The solve's result: the prediction in the grids, the configuration, loss and verdict."""
        self.arc_result = doc
        run = doc["runs"][doc["best"]] if doc["runs"] else None
        if run is None:
            return
        attempts = run["attempts"][0] if run["attempts"] else []
        self.render_grids(attempts[0] if attempts else None)
        if isinstance(run["config"], dict):
            self.query_one("#arc-config", Static).update(Text(json.dumps(run["config"], indent=1)))
        solved = run["solved"]
        verdict = (("solved", "bold green") if solved else ("not solved", "bold red") if solved is False
                   else ("no expected output to compare", "dim"))
        loss = (f"loss {run['loss_first']:.3f} → {run['loss_last']:.3f}, {run['steps']} steps"
                if run.get("loss_first") is not None else f"not trained ({run['status']})")
        self.query_one("#arc-result", Static).update(Text.assemble(verdict, ("\n" + loss, ""),
                                                                   ("\nno valid grid predicted" if not attempts
                                                                    else "", "yellow")))
        self.stage(Text.assemble(("Done: ", ""), (one_line(doc["task"]["id"], 40), "bold"), (" · ", ""), verdict))

    # ---- events --------------------------------------------------------------------------------------------
    def handle(self, e) -> None:
        if isinstance(e, ev.Stage):
            self.stage(Text.assemble((e.name, "bold"), (": " + one_line(e.detail, 70) if e.detail else "", "")))
        elif isinstance(e, ev.TrainStep):
            plot = self.query_one(LossPlot)
            plot.add(e.loss)
            plot.border_subtitle = f"step {e.step}/{e.total} · loss {e.loss:.3f}"
        elif isinstance(e, ev.Message):
            self.stage(e.text)
