"""The TUI's ARC tab on a tiny random model: open a task file, see its grids, the loss fall, the predicted grid."""
from __future__ import annotations

import json

import pytest

from tui.app import SealApp
from tui.widgets import ArcPane

from .conftest import make_tiny_model, make_tiny_tokenizer
from .test_arc_cli import TASK
from .tui_helpers import notes, settle, tiny_factory, tui_config


def screen_text(widget) -> str:
    return "\n".join("".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height))


@pytest.mark.asyncio
async def test_arc_tab_shows_grids_loss_and_prediction(tmp_path):
    task = tmp_path / "flip [red].json"
    task.write_text(json.dumps(TASK))
    tok = make_tiny_tokenizer()
    model = make_tiny_model(tok)
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory, arc_loader=lambda: (model, tok))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("6")
        assert app.query_one("#tabs").active == "arc" and app.focused.id == "arc-path"
        app.query_one("#arc-path").value = str(tmp_path / "missing.json")
        await pilot.press("enter")
        await pilot.pause()
        assert any("cannot read" in n for n in notes(app)) and app.job is None
        app.query_one("#arc-path").value = str(task)
        await pilot.press("enter")
        await pilot.pause()
        pane = app.query_one(ArcPane)
        assert pane.arc_task["id"] == "flip [red]"
        await settle(pilot, app, timeout=120)
        assert pane.arc_result is not None and pane.arc_result["runs"][0]["status"] == "ok"
        assert len(pane.query_one("#arc-loss").losses) == pane.arc_result["runs"][0]["steps"] > 0
        grids = screen_text(pane.query_one("#arc-grids"))
        assert "demo 1: input" in grids and "prediction" in grids and "expected" in grids and "9 8" in grids
        assert "learning_rate" in screen_text(pane.query_one("#arc-config"))
        assert "solved" in screen_text(pane.query_one("#arc-result"))
        assert any(n.startswith("ARC task flip [red]") for n in notes(app))
        pane.query_one("#arc-grids-box").focus()  # out of the path field, the tabs' keys work
        await pilot.press("1")
        assert app.query_one("#tabs").active == "documents"
