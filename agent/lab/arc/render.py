"""ARC grids as rich renderables, coloured as ARC shows them (the CLI prints them; the TUI's view shows the same).

Each cell is its colour as a background, with the digit on it. Built from rich ``Text`` objects only, so nothing
read from a task file is ever interpreted as markup.
"""

from __future__ import annotations

from typing import Optional, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

ARC_COLOURS = ("#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25")
"""The 10 standard ARC colours, 0-9: black, blue, red, green, yellow, grey, magenta, orange, sky blue, maroon."""
_DARK_TEXT = {3, 4, 5, 8}  # light backgrounds get black digits


def cell_style(colour: int) -> str:
    return f"{'black' if colour in _DARK_TEXT else 'white'} on {ARC_COLOURS[colour]}"


def grid_text(grid: Optional[Sequence[Sequence[int]]], empty: str = "(none)") -> Text:
    """A grid as lines of coloured cells (two columns a cell: the digit and a space)."""
    if not grid:
        return Text(empty, style="dim")
    text = Text(no_wrap=True, overflow="crop")
    for y, row in enumerate(grid):
        if y:
            text.append("\n")
        for c in row:
            text.append(f"{c} ", style=cell_style(int(c)))
    return text


def grids_row(items: Sequence[tuple[str, Optional[Sequence[Sequence[int]]]]], arrow: bool = True) -> Table:
    """Grids side by side under their captions (e.g. input → output)."""
    t = Table.grid(padding=(0, 2))
    for _ in items:
        t.add_column(no_wrap=True)
    t.add_row(*(Text(label, style="bold") for label, _ in items))
    t.add_row(*(grid_text(g) for _, g in items))
    return t


def task_view(task: dict, prediction: Optional[Sequence[Sequence[int]]] = None, show_prediction: bool = True
              ) -> Group:
    """A task (as :func:`agent.lab.arc.jobs.task_json` writes it): every demonstration input → output, then each
    test input, the prediction (first test) and the expected output when known."""
    parts = []
    for i, ex in enumerate(task["train"], 1):
        parts.append(grids_row([(f"demo {i}: input", ex["input"]), ("output", ex["output"])]))
    for i, ex in enumerate(task["test"], 1):
        items = [(f"test {i}: input", ex["input"])]
        if show_prediction:
            items.append(("prediction", prediction if i == 1 else None))
        if ex.get("output") is not None:
            items.append(("expected", ex["output"]))
        parts.append(grids_row(items))
    return Group(*parts)
