"""Ask: a question answered closed-book by the current student and by the untouched base, side by side."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Button, Input, Static

from ..store import printable


class AskPane(Vertical):
    # Escape leaves the question box (to the Ask button), so that digits switch tabs again
    BINDINGS = [Binding("escape", "leave", "Leave the box", show=False)]

    def action_leave(self) -> None:
        self.query_one("#ask", Button).focus()

    def compose(self) -> ComposeResult:
        with Horizontal(id="ask-bar"):
            yield Input(placeholder="a question, answered closed-book + Enter", id="question")
            yield Button("Ask", id="ask", variant="primary", compact=True)
        with Horizontal(id="answers"):
            yield Static("", id="student-answer", classes="answer")
            yield Static("", id="base-answer", classes="answer")

    def on_mount(self) -> None:
        self.query_one("#student-answer").border_title = "Student (what it learned)"
        self.query_one("#base-answer").border_title = "Base model (untouched)"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "question":
            self.app.ask(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ask":
            self.app.ask(self.query_one("#question", Input).value)

    def waiting(self, question: str) -> None:
        for who in ("student", "base"):
            self.query_one(f"#{who}-answer", Static).update(Text("thinking…", style="dim italic"))

    def answer(self, who: str, text: str, via: str | None = None) -> None:
        box = self.query_one(f"#{who}-answer", Static)
        box.update(Text(printable(text.strip()) or "(empty answer)"))
        if via is not None:  # update = route: which document's adapter answered
            box.border_subtitle = f"via: {escape(printable(via))}" if via else "via: the base (no learned document is close)"
