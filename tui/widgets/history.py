"""History: every edit with its metrics; roll back the selected one (with confirmation)."""
from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Static

from ..store import one_line, printable

STATUS_STYLE = {"active": "green", "rolled_back": "dim", "rejected": "red", "rollback": "cyan"}


class HistoryPane(Vertical):
    BINDINGS = [Binding("r", "rollback", "Roll back")]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-detail")
        with Horizontal(id="history-bar"):
            yield Static("No edits yet.", id="history-hint")
            yield Button("Roll back…", id="rollback", variant="warning", compact=True)

    def on_mount(self) -> None:
        self.render_rows()

    def set_rows(self, rows: list[dict]) -> None:
        self.rows = rows
        self.render_rows()

    def render_rows(self) -> None:
        table = self.query_one("#history-table", DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        title_w = max(10, self.size.width - 56)
        for label, w in (("#", 3), ("When", 11), ("Status", 11), ("Document", title_w), ("Before", 6),
                         ("After", 6), ("Sec", 4)):
            table.add_column(label, width=w)
        for r in reversed(self.rows):  # newest first
            scored = r["kind"] != "rollback"
            status = r["status"].replace("_", " ")
            table.add_row(str(r["seq"]), time.strftime("%m-%d %H:%M", time.localtime(r["created"])),
                          Text(status, STATUS_STYLE.get(r["status"], "")), Text(one_line(r["title"], title_w)),
                          f"{r['before']:.2f}" if scored else "", f"{r['after']:.2f}" if scored else "",
                          f"{r['seconds']:.0f}" if scored else "", key=r["edit_id"])
        if self.rows:
            table.move_cursor(row=min(keep, len(self.rows) - 1))
        self.query_one("#history-hint", Static).update(
            "r / Roll back: undo the selected edit and every later one." if self.rows else
            "No edits yet: learn a document first.")
        self.show_detail()

    def selected(self) -> dict | None:
        table = self.query_one("#history-table", DataTable)
        if not self.rows or table.cursor_row < 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((r for r in self.rows if r["edit_id"] == key), None)

    def show_detail(self) -> None:
        r = self.selected()
        detail = self.query_one("#history-detail", Static)
        if r is None:
            detail.update("")
            return
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created"]))
        adapter = "student back at" if r["kind"] == "rollback" else "adapter"
        detail.update(Text.assemble((r["edit_id"], "bold"), (f" · {r['kind']} · {when} · {adapter} "
                                                             f"{r['adapter_id'] or 'base'}\n", "dim"),
                                    (printable(r["reason"]), "")))

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "rollback":
            self.action_rollback()

    def action_rollback(self) -> None:
        r = self.selected()
        if r is None:
            self.app.notify("No edit selected.", severity="warning")
        elif r["kind"] != "commit" or r["status"] != "active":
            self.app.notify(f"{r['edit_id']} is {r['status'].replace('_', ' ')}: only an active commit can be rolled "
                            "back.", severity="warning")
        else:
            self.app.confirm_rollback(r)

    def on_resize(self) -> None:
        self.render_rows()
