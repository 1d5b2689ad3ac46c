"""Rendering typed events in the terminal with rich (the TUI renders the same events with textual widgets)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from teacher.cloze import short_question  # noqa: F401  (re-exported for the TUI, which imports only agent)

from . import events as ev


class RichRenderer:
    """Progress bars for generation, training and probing; one line per decision."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.tasks: dict[str, int] = {}
        self.started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.started:  # started on the first event, so an early refusal prints nothing but its one line
            self.progress.stop()

    def _task(self, key: str, description: str, total: int | None) -> int:
        if key in self.tasks:
            self.progress.update(self.tasks[key], description=description, total=total, completed=0, info="")
        else:
            self.tasks[key] = self.progress.add_task(description, total=total, info="")
        return self.tasks[key]

    def __call__(self, event: ev.Event) -> None:
        p = self.progress
        if not self.started:
            p.start()
            self.started = True
        if isinstance(event, ev.Stage):
            if event.name in ("generate", "train", "probe", "bench"):
                self._task(event.name, f"{event.name} {event.detail}"[:60], event.total)
            else:
                p.console.print(f"[dim]{event.name}: {event.detail}[/]")
        elif isinstance(event, ev.DocumentRead):
            p.console.print(f"[bold cyan]{event.title}[/] ({event.doc_id}): {event.chunks} chunk(s), {event.probes} probe(s)")
        elif isinstance(event, ev.SelfEditToken):
            if "generate" in self.tasks:
                p.update(self.tasks["generate"], info=f"{len(event.text_so_far)} chars")
        elif isinstance(event, ev.SelfEditProposed):
            if "generate" in self.tasks:
                p.advance(self.tasks["generate"])
            p.console.print(f"  self-edit {event.chunk}.{event.sample} ({event.family}): {len(event.texts)} training texts")
            for t in event.texts[:3]:
                p.console.print(f"    [dim]{t.splitlines()[-1][:100]}[/]")
        elif isinstance(event, ev.TrainStep):
            tid = self.tasks.get("train") or self._task("train", "train", event.total)
            epoch = f"epoch {event.epoch} " if event.epoch else ""  # 0: the trainer has no single epoch (batched)
            p.update(tid, total=event.total, completed=event.step, info=f"{epoch}loss {event.loss:.3f}")
        elif isinstance(event, ev.ProbeResult):
            if "probe" in self.tasks:
                p.advance(self.tasks["probe"])
        elif isinstance(event, ev.ProbeSummary):
            p.console.print(f"  probes {event.phase}: accuracy {event.accuracy:.2f}, F1 {event.f1:.2f}, "
                            f"gold-answer NLL {event.nll:.3f} (n={event.n})")
        elif isinstance(event, ev.EditCommitted):
            p.console.print(f"[green]committed[/] {event.edit_id} -> adapter {event.adapter_id} "
                            f"({event.before:.2f} -> {event.after:.2f}, {event.seconds:.1f} s): {event.reason}")
        elif isinstance(event, ev.EditRejected):
            p.console.print(f"[yellow]rejected[/] {event.edit_id} ({event.before:.2f} -> {event.after:.2f}): {event.reason}")
        elif isinstance(event, ev.Progress):
            tid = self.tasks.get(event.task) or self._task(event.task, event.task, event.total)
            p.update(tid, total=event.total, completed=event.done, info=event.detail[:40])
        elif isinstance(event, ev.Message):
            p.console.print(f"[{'yellow' if event.level == 'warning' else 'dim'}]{event.text}[/]")


def answers_table(answers: list[dict]) -> Table:
    table = Table(title="closed-book answers, before -> after")
    for col in ("question", "gold", "before", "after"):
        table.add_column(col, overflow="fold")
    for a in answers:
        mark = lambda ok: "[green]✓[/]" if ok else "[red]✗[/]"  # noqa: E731
        table.add_row(a["question"], a["gold"], f"{mark(a['before_correct'])} {a['before']}",
                      f"{mark(a['after_correct'])} {a['after']}")
    return table
