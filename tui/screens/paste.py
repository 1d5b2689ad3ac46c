"""Paste (or type) a text to learn; its first line becomes the title. Dismisses with the text or None."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea


class PasteScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("ctrl+s", "learn", "Learn it", priority=True), Binding("escape", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="paste"):
            yield Static("Paste or type a text; the first line is its title. ^s learns it, Esc closes.",
                         id="paste-title")
            yield TextArea(id="text", soft_wrap=True, show_line_numbers=False)
            with Horizontal(classes="buttons"):
                yield Button("Learn it (^s)", id="learn", variant="primary")
                yield Button("Cancel (esc)", id="close")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "learn":
            self.action_learn()
        else:
            self.dismiss(None)

    def action_learn(self) -> None:
        text = self.query_one(TextArea).text
        if not text.strip():
            self.app.notify("Nothing to learn: the text is empty.", severity="warning")
            return
        self.dismiss(text)

    def action_close(self) -> None:
        self.dismiss(None)
