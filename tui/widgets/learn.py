"""Live adaptation: the teacher's self-edit streaming in, the loss step by step, probes before/after, the guard."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Static
from textual_plotext import PlotextPlot

from agent import events as ev
from agent.render import short_question

from ..store import one_line, printable

MARK = {True: ("✓", "green"), False: ("✗", "red")}


def marked(correct: bool | None, answer: str, width: int) -> Text:
    if correct is None:
        return Text("")
    sign, style = MARK[bool(correct)]
    return Text.assemble((sign + " ", f"bold {style}"), (one_line(answer, width) or "(empty)", style))


class LossPlot(PlotextPlot):
    """Training loss per optimizer step."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.losses: list[float] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def reset(self) -> None:
        self.losses = []
        self.replot()

    def add(self, loss: float) -> None:
        self.losses.append(loss)
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("step")
        if self.losses:
            plt.plot(list(range(1, len(self.losses) + 1)), self.losses, marker="braille")
        else:
            plt.title("waiting for training")
        self.refresh()


class LearnPane(Vertical):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.texts: dict[tuple[int, int], str] = {}
        self.done: dict[tuple[int, int], int] = {}
        self.probes: list[dict] = []
        self.summary: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="learn-top"):
            yield Static("Nothing is being learned. Add a document on the Documents tab (1).", id="stage")
            yield Button("Cancel", id="cancel", variant="error", compact=True, disabled=True)
        with Horizontal(id="learn-mid"):
            with VerticalScroll(id="selfedit-box"):
                yield Static("", id="selfedit")
            yield LossPlot(id="loss")
        yield DataTable(id="probes", cursor_type="none")
        yield Static("", id="decision")

    def on_mount(self) -> None:
        self.query_one("#selfedit-box").border_title = "Self-edit (teacher)"
        self.query_one("#loss").border_title = "Training loss"
        self.query_one("#probes").border_title = "Probes: before → after"
        self.render_probes()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.app.action_cancel()

    # ---- state -------------------------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        self.query_one("#cancel", Button).disabled = not running

    def reset(self, title: str) -> None:
        self.texts, self.done, self.probes, self.summary = {}, {}, [], {}
        self.query_one("#stage", Static).update(Text.assemble(("Learning ", ""), (one_line(title, 60), "bold")))
        self.query_one("#selfedit", Static).update("")
        self.query_one(LossPlot).reset()
        self.query_one("#decision", Static).update("")
        self.query_one("#loss").border_subtitle = ""
        self.render_probes()

    def stage(self, text: str | Text) -> None:
        self.query_one("#stage", Static).update(Text(text) if isinstance(text, str) else text)  # str: not markup

    def decision(self, text: Text) -> None:
        self.query_one("#decision", Static).update(text)

    # ---- events --------------------------------------------------------------------------------------------
    def handle(self, e) -> None:
        if isinstance(e, ev.Stage):
            self.stage(Text.assemble((e.name, "bold"), (": " + one_line(e.detail, 70) if e.detail else "", "")))
        elif isinstance(e, ev.DocumentRead):
            self.reset(e.title)
            self.stage(Text.assemble(("Learning ", ""), (one_line(e.title, 40), "bold"),
                                     (f" · {e.chunks} chunk(s), {e.probes} probe(s)", "dim")))
        elif isinstance(e, ev.SelfEditToken):
            self.texts[(e.chunk, e.sample)] = e.text_so_far
            self.render_selfedits()
        elif isinstance(e, ev.SelfEditProposed):
            self.done[(e.chunk, e.sample)] = len(e.texts)
            self.render_selfedits()
        elif isinstance(e, ev.TrainStep):
            plot = self.query_one(LossPlot)
            plot.add(e.loss)
            plot.border_subtitle = f"step {e.step}/{e.total} · epoch {e.epoch} · loss {e.loss:.3f}"
        elif isinstance(e, ev.ProbeResult):
            self.probe(e)
        elif isinstance(e, ev.ProbeSummary):
            self.summary[e.phase] = e.accuracy
            self.render_probes()
        elif isinstance(e, ev.EditCommitted):
            self.decision(Text.assemble(("✓ committed ", "bold green"), (e.edit_id, ""),
                                        (f" ({e.before:.2f} → {e.after:.2f}, {e.seconds:.0f} s): ", ""),
                                        (printable(e.reason), "green")))
        elif isinstance(e, ev.EditRejected):
            self.decision(Text.assemble(("✗ rejected by the guard ", "bold red"), (e.edit_id, ""),
                                        (f" ({e.before:.2f} → {e.after:.2f}): ", ""), (printable(e.reason), "red")))
        elif isinstance(e, ev.Progress):
            self.stage(f"{e.task}: {e.done}/{e.total} {one_line(e.detail, 40)}")

    def probe(self, e: ev.ProbeResult) -> None:
        if e.phase == "before":
            self.probes.append({"question": e.question, "gold": e.gold, "before": (e.correct, e.answer),
                                "after": (None, "")})
        else:
            row = next((r for r in self.probes if r["question"] == e.question and r["after"][0] is None), None)
            if row is None:
                row = {"question": e.question, "gold": e.gold, "before": (None, ""), "after": (None, "")}
                self.probes.append(row)
            row["after"] = (e.correct, e.answer)
        self.render_probes()

    def render_selfedits(self) -> None:
        parts = []
        for (c, s), text in sorted(self.texts.items()):
            n = self.done.get((c, s))
            head = f"── chunk {c + 1} · sample {s + 1}" + (f" · {n} training texts" if n is not None else " …")
            parts.append(Text(head, style="bold cyan"))
            parts.append(Text(printable(text.strip()) + "\n"))
        self.query_one("#selfedit", Static).update(Text("\n").join(parts))
        self.query_one("#selfedit-box", VerticalScroll).scroll_end(animate=False)

    def render_probes(self) -> None:
        table = self.query_one("#probes", DataTable)
        table.clear(columns=True)
        w = max(50, self.size.width - 12)
        qw, gw, aw = int(w * 0.34), int(w * 0.16), int(w * 0.25)
        table.add_column("Question", width=qw)
        table.add_column("Gold", width=gw)
        table.add_column("Before", width=aw)
        table.add_column("After", width=aw)
        for r in self.probes:
            table.add_row(Text(one_line(short_question(r["question"]), qw)), Text(one_line(r["gold"], gw)), marked(*r["before"], aw - 2),
                          marked(*r["after"], aw - 2))
        if self.summary:
            table.border_subtitle = " → ".join(f"{k} {v:.2f}" for k, v in self.summary.items())
        else:
            table.border_subtitle = ""

    def on_resize(self) -> None:
        self.render_probes()
