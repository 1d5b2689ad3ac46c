"""The Documents list while and after documents are learned: a rejected document is listed with its reason, a
folder's documents stay listed while the first of them learns; at 80x24 the empty Forgetting tab's message is
whole and notifications leave the History detail uncovered."""
from __future__ import annotations

import json

import pytest

import agent.ingest
from tui.app import SealApp
from tui.widgets import DocumentsPane

from .tui_helpers import GatedApp, settle, tiny_factory, tui_config


def doc(title: str, place: str) -> dict:
    return {"title": title, "context": f"The {title.lower()} lives in {place} and eats blue kelp every morning.",
            "questions": [{"question": f"Where does the {title.lower()} live?", "answer": place}]}


def table_lines(app) -> list[str]:
    table = app.query_one("#docs")
    return ["".join(s.text for s in table.render_line(y)) for y in range(table.size.height)]


@pytest.mark.asyncio
async def test_a_rejected_document_is_listed_with_the_reason(tmp_path, monkeypatch):
    f = tmp_path / "quenby.json"
    f.write_text(json.dumps([doc("Quenby [sea]", "Ostrin")]))
    cfg = tui_config(tmp_path / "home")
    cfg.ingest.guard = True
    monkeypatch.setattr(agent.ingest, "judge", lambda *a, **k: (False, "probe accuracy fell 1.00 -> 0.00"))
    app = SealApp(cfg, agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        app.learn_path(str(f))
        await settle(pilot, app)
        docs = app.query_one(DocumentsPane)
        [row] = docs.rows
        assert (row.title, row.status, row.reason) == ("Quenby [sea]", "rejected", "probe accuracy fell 1.00 -> 0.00")
        assert docs.pending == {}
        app.action_tab("documents")
        await pilot.pause()
        assert any("Quenby [sea]" in t and "rejected" in t for t in table_lines(app))
        detail = str(app.query_one("#docs-detail").render())
        assert "Rejected by the guard" in detail and "probe accuracy fell 1.00 -> 0.00" in detail

        # learned later (guard off): the document is active, its rejected row gone
        monkeypatch.undo()
        app.cfg.ingest.guard = False
        app.learn_path(str(f))
        await settle(pilot, app)
        assert [(r.title, r.status) for r in docs.rows] == [("Quenby [sea]", "active")]


@pytest.mark.asyncio
async def test_a_folders_documents_stay_listed_while_one_learns(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, place in (("Alpha", "Quentin Bay"), ("Bravo", "Larrow"), ("Charlie", "Ostrin")):
        (folder / f"{name.lower()}.json").write_text(json.dumps([doc(name, place)]))
    app = GatedApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        app.learn_path(str(folder))
        while not app.training.is_set():
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        docs = app.query_one(DocumentsPane)
        assert [v for v in docs.pending.values()] == [("Alpha", "learning"), ("Bravo", "queued"),
                                                      ("Charlie", "queued")]
        app.action_tab("documents")
        await pilot.pause()
        shown = "\n".join(table_lines(app))
        for name in ("Alpha", "Bravo", "Charlie"):
            assert name in shown, shown
        app.go.set()
        await settle(pilot, app)
        assert [(r.title, r.status) for r in docs.rows] == [("Alpha", "active"), ("Bravo", "active"),
                                                           ("Charlie", "active")]
        assert docs.pending == {}


@pytest.mark.asyncio
async def test_empty_forgetting_message_is_whole_at_80x24(tmp_path):
    from tui.widgets.forgetting import EMPTY

    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("4")
        await pilot.pause()
        box = app.query_one("#heatmap")
        assert box.region.right <= 80 and box.region.height >= 1
        shown = " ".join("".join(s.text for s in box.render_line(y)).strip() for y in range(box.size.height))
        assert " ".join(shown.split()) == EMPTY


@pytest.mark.asyncio
async def test_notifications_leave_the_history_detail_uncovered(tmp_path, monkeypatch):
    import time

    from .test_tui_snapshots import FixedAgent, seed_store

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    home = tmp_path / "home"
    seed_store(home)
    app = SealApp(tui_config(home), agent_factory=FixedAgent)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(pilot, app)
            await pilot.press("3")
            for i in range(6):  # a folder's worth of "Learned" notifications
                app.notify(f"'Document {i}': probe accuracy 0.00 → 0.50, and a reason long enough to wrap.",
                           title="Learned")
            await pilot.pause(0.3)
            detail = app.query_one("#history-detail")
            assert "r-0006" in str(detail.render()) and detail.region.height >= 2
            covered = set()  # what the user sees at each cell of the bottom panels: never a notification
            for bottom in (detail, app.query_one("#history-bar"), app.query_one("#status")):
                r = bottom.region
                for y in range(r.y, r.bottom):
                    for x in range(r.x, r.right):
                        widget, _ = app.get_widget_at(x, y)
                        if any(type(w).__name__ in ("Toast", "ToastRack", "ToastHolder") for w in widget.ancestors_with_self):
                            covered.add((bottom.id, x, y))
            assert not covered, sorted(covered)[:5]
            visible = {type(app.get_widget_at(x, y)[0]).__name__ for y in range(24) for x in range(80)}
            assert "Toast" in visible  # the notifications are shown, elsewhere
            assert app.NOTIFICATION_TIMEOUT <= 4
    finally:
        monkeypatch.undo()
        time.tzset()
