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
STATUS_STYLE = {"active": "green", "rolled_back": "dim", "learning": "bold yellow", "queued": "yellow"}


class DocumentsPane(Vertical):
    BINDINGS = [Binding("a", "app.focus_path", "Add path"), Binding("p", "app.probe", "Probe all")]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[DocRow] = []
        self.pending: dict[str, tuple[str, str]] = {}   # key -> (title, learning|queued)
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
        self.render_rows()

    def set_pending(self, key: str, title: str, state: str | None) -> None:
        if state is None:
            self.pending.pop(key, None)
        else:
            self.pending[key] = (title, state)
        self.render_rows()

    def set_now(self, rows: list[dict]) -> None:
        self.now = {r["doc_id"]: r["accuracy"] for r in rows}
        self.render_rows()

    def render_rows(self) -> None:
        table = self.query_one("#docs", DataTable)
        table.clear()
        width = max(20, self.size.width - 40)
        for r in self.rows:
            now = self.now.get(r.doc_id, r.latest)
            table.add_row(Text(one_line(r.title, width)), Text(r.status.replace("_", " "), STATUS_STYLE.get(r.status, "")),
                          str(r.probes), fmt_acc(r.learned), _delta(now, r.learned), key=r.doc_id)
        for key, (title, state) in self.pending.items():
            table.add_row(Text(one_line(title, width)), Text(state, STATUS_STYLE[state]), "", "", "", key=f"pending:{key}")
        empty = not self.rows and not self.pending
        self.query_one("#docs-hint", Static).display = empty
        table.display = not empty

    def on_resize(self) -> None:
        self.render_rows()


def _delta(now: float | None, learned: float | None) -> Text:
    if now is None:
        return Text("—", "dim")
    style = "" if learned is None or abs(now - learned) < 1e-9 else ("green" if now > learned else "red")
    return Text(f"{now:.2f}", style)
