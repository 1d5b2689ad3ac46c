"""One line above the footer: the store, the job in progress and what it is doing."""
from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from ..store import one_line


class StatusLine(Static):
    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.store = "opening the store…"
        self.job = ""
        self.detail = ""
        self.started: float | None = None      # monotonic start of the job, for the elapsed time

    def on_mount(self) -> None:
        self.show()
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        if self.job:
            self.show()

    def show(self, store: str | None = None, job: str | None = None, detail: str | None = None) -> None:
        if store is not None:
            self.store = store
        if job is not None:
            self.started = time.monotonic() if job else None
            self.job = job
        if detail is not None:
            self.detail = detail
        if self.job:
            secs = int(time.monotonic() - self.started) if self.started is not None else 0
            text = Text.assemble(("● ", "bold yellow"), (one_line(self.job, 40), "bold"),
                                 (f" {secs // 60}:{secs % 60:02d}", "dim"),
                                 (" · " + one_line(self.detail, 60) if self.detail else "", ""))
        else:
            text = Text.assemble(("● ", "bold green"), (self.store, ""))
        self.update(text)
