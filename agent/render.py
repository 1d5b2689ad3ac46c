"""Rendering typed events in the terminal with rich (the TUI renders the same events with textual widgets)."""
from __future__ import annotations

import re
import unicodedata

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from teacher.cloze import short_question  # noqa: F401  (re-exported for the TUI, which imports only agent)

from . import events as ev


# ESC sequences: CSI (colours, cursor moves), OSC (titles, OSC-8 links; ended by BEL or ST), DCS/SOS/PM/APC
# strings, and two-byte escapes; their 8-bit C1 forms too.
_ESCAPES = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
                      r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|\x1b[ -/]*[0-~]?")


def safe_text(text, one_line: bool = False, limit: int | None = None) -> str:
    """Text from a document, a model or a file name made safe for a terminal: escape sequences (ANSI colours,
    cursor moves, OSC titles and links) removed, other control and bidi-override characters shown as U+FFFD,
    newlines kept (or folded into spaces with ``one_line``), optionally cut to ``limit`` characters. Markup is
    a separate concern: print the result with :func:`plain` / ``rich.text.Text``, never as a markup string."""
    out = _ESCAPES.sub("", str(text))
    out = "".join(c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co") or c == "\u200d"
                  else "\ufffd" for c in out)
    if one_line:
        out = " ".join(out.split())
    if limit is not None and len(out) > limit:
        out = out[: max(1, limit - 1)] + "…"
    return out


def plain(text, one_line: bool = False, limit: int | None = None) -> str:
    """:func:`safe_text` escaped for a rich markup string: ``f"[bold]{plain(title)}[/]"`` shows the title as text."""
    return escape(safe_text(text, one_line, limit))


class RichRenderer:
    """Progress bars for generation, training and probing; one line per decision."""

    def __init__(self, console: Console, transient: bool = False):
        """transient: the bars vanish when done (a command whose result is a table printed after them)."""
        self.console = console
        # descriptions and info carry document titles: escaped (plain) where they are set
        self.progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                 console=console, transient=transient)
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
                self._task(event.name, plain(f"{event.name} {safe_text(event.detail, True)}"[:60]), event.total)
            else:
                p.console.print(f"[dim]{plain(event.name)}: {plain(event.detail, True)}[/]")
        elif isinstance(event, ev.DocumentRead):
            p.console.print(f"[bold cyan]{plain(event.title, True)}[/] ({plain(event.doc_id)}): {event.chunks} chunk(s), "
                            f"{event.probes} probe(s)")
        elif isinstance(event, ev.SelfEditToken):
            if "generate" in self.tasks:
                p.update(self.tasks["generate"], info=f"{len(event.text_so_far)} chars")
        elif isinstance(event, ev.SelfEditProposed):
            if "generate" in self.tasks:
                p.advance(self.tasks["generate"])
            p.console.print(f"  self-edit {event.chunk}.{event.sample} ({plain(event.family)}): {len(event.texts)} "
                            "training texts")
            for t in event.texts[:3]:
                last = t.splitlines()[-1] if t.splitlines() else ""
                p.console.print(Text(f"    {safe_text(last, True, 100)}", style="dim"))
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
                            f"({event.before:.2f} -> {event.after:.2f}, {event.seconds:.1f} s): {plain(event.reason, True)}")
        elif isinstance(event, ev.EditRejected):
            p.console.print(f"[yellow]rejected[/] {event.edit_id} ({event.before:.2f} -> {event.after:.2f}): "
                            f"{plain(event.reason, True)}")
        elif isinstance(event, ev.Progress):
            tid = self.tasks.get(event.task) or self._task(event.task, plain(event.task), event.total)
            p.update(tid, total=event.total, completed=event.done, info=plain(safe_text(event.detail, True)[:40]))
        elif isinstance(event, ev.Message):
            p.console.print(Text(safe_text(event.text), style="yellow" if event.level == "warning" else "dim"))


def answers_table(answers: list[dict]) -> Table:
    table = Table(title="closed-book answers, before -> after")
    for col in ("question", "gold", "before", "after"):
        table.add_column(col, overflow="fold")
    for a in answers:
        def mark(ok: bool, answer) -> Text:
            return Text.assemble(("✓", "green") if ok else ("✗", "red"), " ", safe_text(answer))
        table.add_row(Text(safe_text(a["question"])), Text(safe_text(a["gold"])), mark(a["before_correct"], a["before"]),
                      mark(a["after_correct"], a["after"]))
    return table
