"""Forgetting: probe accuracy per document after each commit, as a heatmap, with ACC and BWT."""
from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.widgets import Static

from ..store import one_line

EMPTY = "No commits yet: the matrix fills in as documents are learned."


def heat(x: float | None) -> str:
    """Red (0) -> yellow (0.5) -> green (1) background."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    x = min(1.0, max(0.0, float(x)))
    r, g = (200, int(60 + 280 * x)) if x < 0.5 else (int(200 - 300 * (x - 0.5)), 200)
    return f"black on rgb({r},{min(g, 200)},60)"


def heatmap(matrix, unprobed: frozenset[str] = frozenset()) -> Table | Text:
    """Rows: after each active commit; columns: documents (D1 = the first learned). ``unprobed``: doc ids without
    probe questions, whose cells say n/a instead of a meaningless 0."""
    if matrix is None or not matrix.rows:
        return Text(EMPTY, style="dim")
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("after edit", no_wrap=True)
    table.add_column("pre", justify="center")
    for i in range(len(matrix.doc_ids)):
        table.add_column(f"D{i + 1}", justify="center")
    for k, row in enumerate(matrix.rows):
        cells = [Text("·", style="dim") if x is None else Text("n/a", style="dim") if matrix.doc_ids[i] in unprobed
                 else Text(f"{x:.2f}", style=heat(x)) for i, x in enumerate(row)]
        pre = matrix.before[k] if k < len(matrix.before) else None
        table.add_row(Text(f"D{k + 1} {one_line(matrix.titles[k], 18)}"),
                      Text(f"{pre:.2f}", style="dim") if pre is not None else Text(""), *cells)
    return table


def fmt_metric(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2f}" if x < 0 else f"{x:.2f}"


class ForgettingPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="metrics")
        with ScrollableContainer(id="heatmap-box"):
            yield Static(heatmap(None), id="heatmap", classes="empty")
        yield Static("Row k: accuracy on each document's probes after the k-th active edit (the diagonal is "
                     "'just learned'); pre: before it was learned.", id="heatmap-help")

    def set_matrix(self, matrix, metrics, unprobed: frozenset[str] = frozenset()) -> None:
        box = self.query_one("#heatmap", Static)
        box.update(heatmap(matrix, unprobed))
        box.set_class(matrix is None or not matrix.rows, "empty")  # the message wraps; a table scrolls
        if metrics is None:
            self.query_one("#metrics", Static).update(Text("ACC —   BWT —", style="bold"))
            return
        t = Text.assemble(("ACC ", "bold"), (fmt_metric(metrics.acc), "bold cyan"), ("   BWT ", "bold"),
                          (fmt_metric(metrics.bwt), "bold red" if metrics.bwt < 0 else "bold cyan"),
                          ("   forgetting ", "bold"), (fmt_metric(metrics.forgetting), ""),
                          (f"   {len(matrix.rows)} active edit(s)", "dim"))
        self.query_one("#metrics", Static).update(t)
