"""Choose a file or folder to learn from a directory tree; dismisses with the Path or None."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Static

SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text", ".json"}


class DocTree(DirectoryTree):
    """Folders and the files seal-agent can read; hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in SUFFIXES)]


class FilePicker(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="picker"):
            yield Static("Choose a file (or a folder) to learn: Enter opens a folder / picks a file", id="picker-title")
            yield DocTree(self.root, id="tree")
            yield Input(str(self.root), id="picked")
            with Horizontal(classes="buttons"):
                yield Button("Learn it", id="learn", variant="primary")
                yield Button("Cancel", id="close")

    def on_mount(self) -> None:
        self.query_one(DocTree).focus()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(Path(event.path))

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#picked", Input).value = str(event.path)

    def on_tree_node_highlighted(self, event) -> None:
        data = getattr(event.node, "data", None)
        if data is not None and hasattr(data, "path"):
            self.query_one("#picked", Input).value = str(data.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(Path(event.value).expanduser() if event.value.strip() else None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "learn":
            value = self.query_one("#picked", Input).value.strip()
            self.dismiss(Path(value).expanduser() if value else None)
        else:
            self.dismiss(None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
