"""Documents: add a file or folder (path, picker) or paste text; the list with status and probe accuracy."""
from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Static

from ..store import DocRow, fmt_acc, one_line

PATH_STARTS = ("/", "~", ".")
FOCUS_AFTER = 0.3  # s without a key before the path field takes focus from the list
STATUS_STYLE = {"active": "green", "rolled_back": "dim", "rejected": "red", "learning": "bold yellow",
                "queued": "yellow", "learned": "green", "failed": "red"}
PENDING_DETAIL = {"learning": "learning now: 2 shows it live", "queued": "waiting to be learned after the ones above",
                  "learned": "learned in this run", "rejected": "rejected by the guard in this run"}


class DocumentsPane(Vertical):
    BINDINGS = [Binding("a", "app.focus_path", "Add path"), Binding("p", "app.probe", "Probe all")]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[DocRow] = []
        self.pending: dict[str, tuple[str, str]] = {}   # key -> (title, learning|queued|learned|rejected)
        self.finished: set[str] = set()                  # pending keys of a finished job: gone at the next set_rows
        self.now: dict[str, float] = {}                  # doc_id -> accuracy from the last "probe all"
        self.redirect = False                            # keys typed on the list go to the path field
        self.focus_timer: Timer | None = None            # gives the path field focus once those keys stop

    def compose(self) -> ComposeResult:
        with Horizontal(id="add-bar"):
            yield Input(placeholder="file or folder to learn (.txt .md .json) + Enter", id="path",
                        select_on_focus=False)
            yield Button("Browse", id="browse", compact=True)
            yield Button("Paste", id="paste", compact=True)
        yield DataTable(id="docs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="docs-detail")
        yield Static("No documents yet: a (or just start typing a path: / ~ .) to type one, ^o to browse, ^n to paste "
                     "text, or ^p → 'Learn the sample document'.", id="docs-hint")

    def on_mount(self) -> None:
        table = self.query_one("#docs", DataTable)
        table.add_column("Document", key="title")
        table.add_column("Status", key="status")
        table.add_column("Probes", key="probes")
        table.add_column("Learned", key="learned")
        table.add_column("Now", key="now")
        self.render_rows()

    def on_key(self, event: events.Key) -> None:
        """From the list, a key that starts a path ("/", "~", ".") starts typing into the path field; letters and
        digits stay bindings (a: add path, p: probe all, 1-5: tabs). A path typed fast (or sent by tmux, Enter
        included) must neither start a probe or switch tabs halfway, nor lose or reorder keys: the keys are
        written into the field here, in order, while the list keeps focus, and the field takes focus only once
        they stop coming. (Moving focus at once let later keys reach the field before earlier ones queued for the
        list: a path arrived cut, or its Enter was lost.)"""
        path = self.query_one("#path", Input)
        if self.screen.focused is path:
            return
        if event.character in PATH_STARTS and not self.redirect:
            self.redirect = True
        if not self.redirect:
            return
        event.stop()
        event.prevent_default()
        if event.key == "enter":  # an empty path is ignored where every submission is handled
            path.post_message(Input.Submitted(path, path.value))
            self.redirect = False  # the path is sent: the list keeps focus, so digits switch tabs again
            if self.focus_timer is not None:
                self.focus_timer.stop()
                self.focus_timer = None
            return
        elif event.key == "backspace":
            path.action_delete_left()
        elif event.is_printable and event.character:
            path.insert_text_at_cursor(event.character)
        if self.focus_timer is not None:
            self.focus_timer.stop()
        self.focus_timer = self.set_timer(FOCUS_AFTER, path.focus)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget is self.query_one("#docs"):
            self.redirect = False

    def on_paste(self, event) -> None:
        """A path pasted while the list has focus goes into the path field (first line only)."""
        path = self.query_one("#path", Input)
        text = event.text.strip().splitlines()[0] if event.text.strip() else ""
        if text and self.screen.focused is not path:
            event.stop()
            path.focus()
            path.insert_text_at_cursor(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "path" and event.value.strip():
            self.app.learn_path(event.value.strip())
            event.input.value = ""
            if self.screen.focused is event.input:  # learned (or queued): back to the list, where digits are tabs
                self.query_one("#docs").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "browse":
            self.app.action_add_file()
        elif event.button.id == "paste":
            self.app.action_paste()

    def set_rows(self, rows: list[DocRow]) -> None:
        self.rows = rows
        self.now = {}
        for key in self.finished:  # the store now shows what the finished job did
            self.pending.pop(key, None)
        self.finished.clear()
        self.render_rows()

    def set_pending(self, key: str, title: str, state: str | None) -> None:
        if state is None:
            self.pending.pop(key, None)
        else:
            self.pending[key] = (title, state)
        self.render_rows()

    def plan(self, job: str, docs: list[tuple[str, str]]) -> None:
        """The documents an ingest will learn, in order: one "queued" row each in place of the job's own row, so
        that a folder's documents stay listed while the first of them learns."""
        rows = {f"{job}/{doc_id}": (title, "queued") for doc_id, title in docs}
        if job in self.pending:  # in the job's own place, before ingests queued after it
            self.pending = {k2: v2 for k, v in self.pending.items()
                            for k2, v2 in (rows.items() if k == job else [(k, v)])}
        else:
            self.pending.update({k: v for k, v in rows.items() if k not in self.pending})
        self.render_rows()

    def mark(self, job: str, doc_id: str, title: str, state: str) -> None:
        """One document of a running ingest is learning, learned or rejected (its row stays in place)."""
        key = f"{job}/{doc_id}"
        if key not in self.pending and job in self.pending:  # no plan: the job's own row becomes the document's
            self.pending = {(key if k == job else k): v for k, v in self.pending.items()}
        self.pending[key] = (title or self.pending.get(key, ("", ""))[0], state)
        self.render_rows()

    def finish(self, job: str) -> None:
        """The job ended: its rows stay until the store has been read again (no flicker, nothing vanishes)."""
        self.finished |= {k for k in self.pending if k == job or k.startswith(f"{job}/")}

    def set_now(self, rows: list[dict]) -> None:
        self.now = {r["doc_id"]: r["accuracy"] for r in rows}
        self.render_rows()

    def render_rows(self) -> None:
        table = self.query_one("#docs", DataTable)
        keep = table.cursor_row
        table.clear()
        width = max(20, self.size.width - 40)
        for i, r in enumerate(self.rows):
            now = self.now.get(r.doc_id, r.latest) if r.status != "rejected" else None
            table.add_row(Text(one_line(r.title, width)), Text(r.status.replace("_", " "), STATUS_STYLE.get(r.status, "")),
                          str(r.probes) if r.status != "rejected" else "—", fmt_acc(r.learned), _delta(now, r.learned),
                          key=f"row:{i}")
        for key, (title, state) in self.pending.items():
            table.add_row(Text(one_line(title, width)), Text(state, STATUS_STYLE.get(state, "")), "", "", "",
                          key=f"pending:{key}")
        empty = not self.rows and not self.pending
        self.query_one("#docs-hint", Static).display = empty
        table.display = not empty
        if not empty and keep > 0:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self.show_detail()

    def detail(self, index: int) -> Text:
        """What the highlighted row's one-line status does not say: the guard's verdict (a rejected document's
        reason above all), or where an in-flight document stands."""
        if index < 0:
            return Text("")
        if index < len(self.rows):
            r = self.rows[index]
            if r.status == "rejected":
                scores = (f" ({r.before:.2f} → {r.after:.2f})" if r.before is not None and r.after is not None
                          else "")
                return Text.assemble(("Rejected by the guard: ", "bold red"), one_line(r.reason) + scores,
                                     (" · not learned; History (3) has the edit", "dim"))
            return Text.assemble((r.edit_id, "bold"), (f" · {r.status.replace('_', ' ')} · ", "dim"),
                                 one_line(r.reason))
        pending = list(self.pending.values())
        if index - len(self.rows) < len(pending):
            title, state = pending[index - len(self.rows)]
            return Text.assemble((one_line(title, 40), "bold"), (" · ", "dim"), PENDING_DETAIL.get(state, state))
        return Text("")

    def show_detail(self) -> None:
        table = self.query_one("#docs", DataTable)
        text = self.detail(table.cursor_row) if table.display else Text("")
        text.truncate(max(20, self.size.width - 2) * 2, overflow="ellipsis")
        self.query_one("#docs-detail", Static).update(text)

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_resize(self) -> None:
        self.render_rows()


def _delta(now: float | None, learned: float | None) -> Text:
    if now is None:
        return Text("—", "dim")
    style = "" if learned is None or abs(now - learned) < 1e-9 else ("green" if now > learned else "red")
    return Text(f"{now:.2f}", style)
