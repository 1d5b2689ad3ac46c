"""TUI key cases: digits switch tabs after a path is learned from the Documents list; Escape leaves the Ask
box; a home in use by another process opens once it frees up."""
from __future__ import annotations

import pytest
from textual.widgets import Input, TabbedContent

from agent.errors import StoreError
from tui.app import SealApp

from .tui_helpers import settle, tiny_factory, tui_config


@pytest.mark.asyncio
async def test_digits_switch_tabs_after_learning_a_path_from_documents(tmp_path):
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    learned: list[str] = []
    app.learn_path = learned.append          # the keys are the point, not the learning
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press(*"/tmp/x.txt", "enter")
        await pilot.pause(0.6)               # past the field's focus delay
        assert learned == ["/tmp/x.txt"] and app.query_one("#path", Input).value == ""
        await pilot.press("3")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "history"
        # typed into the field itself, then Enter: back to the list as well
        await pilot.press("1")
        app.query_one("#path", Input).focus()
        await pilot.press(*"/tmp/y.txt", "enter", "4")
        await pilot.pause()
        assert learned[-1] == "/tmp/y.txt" and app.query_one(TabbedContent).active == "forgetting"


@pytest.mark.asyncio
async def test_escape_leaves_the_ask_box(tmp_path):
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("5")
        box = app.query_one("#question", Input)
        assert app.focused is box
        await pilot.press(*"hi", "escape", "1")
        await pilot.pause()
        assert box.value == "hi" and app.query_one(TabbedContent).active == "documents"


@pytest.mark.asyncio
async def test_a_home_in_use_opens_when_it_frees_up(tmp_path, monkeypatch):
    tries = []

    def busy_then_free(cfg):
        tries.append(1)
        if len(tries) < 3:
            raise StoreError(f"{cfg.home}: in use by another seal-agent process")
        return tiny_factory(cfg)
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=busy_then_free)
    monkeypatch.setattr("tui.app.RETRY_OPEN_S", 0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        assert app.agent is not None and len(tries) == 3 and not app.open_error
