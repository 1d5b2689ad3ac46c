"""The Textual app driven by Pilot on tiny random models: add -> ingest -> history -> rollback -> ask; cancel
mid-ingest; pasted text; bad input as a notification; the palette; light start-up imports."""
from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.app import SealApp
from tui.widgets import AskPane, DocumentsPane, HistoryPane, LearnPane

from .tui_helpers import GatedApp, notes, settle, tiny_factory, tui_config

DOC = {"title": "Zorblat [v2]", "context": "The zorblat lives in Quentin Bay and eats blue kelp every morning.",
       "questions": [{"question": "Where does the zorblat live?", "answer": "Quentin Bay"},
                     {"question": "What does the zorblat [really] eat?", "answer": "blue kelp"}]}


@pytest.fixture
def doc_file(tmp_path) -> Path:
    f = tmp_path / "zorblat.json"
    f.write_text(json.dumps([DOC]))
    return f


def line(widget, y: int) -> str:
    return "".join(segment.text for segment in widget.render_line(y))


async def type_path(pilot, app, text: str) -> None:
    app.query_one("#path").focus()
    app.query_one("#path").value = text
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.asyncio
async def test_add_ingest_history_rollback_ask(tmp_path, doc_file):
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await type_path(pilot, app, str(doc_file))
        assert app.query_one("#tabs").active == "learn"          # the live view opens by itself
        await settle(pilot, app)

        learn = app.query_one(LearnPane)
        assert [r["question"] for r in learn.probes] == [q["question"] for q in DOC["questions"]]
        assert all(r["before"][0] is not None and r["after"][0] is not None for r in learn.probes)
        assert learn.query_one("#loss").losses and learn.texts                 # loss plotted, self-edit streamed
        assert "committed" in str(learn.query_one("#decision").render())
        assert any("probe accuracy" in n for n in notes(app))

        [doc] = app.query_one(DocumentsPane).rows
        assert (doc.title, doc.status, doc.probes) == ("Zorblat [v2]", "active", 2) and doc.learned is not None
        [row] = app.query_one(HistoryPane).rows
        assert (row["kind"], row["status"], row["title"]) == ("commit", "active", "Zorblat [v2]")

        await pilot.press("1", "p")                                           # probe every document now
        await settle(pilot, app)
        assert list(app.query_one(DocumentsPane).now) == [doc.doc_id]
        assert "Zorblat [v2]" in line(app.query_one("#docs"), 1)             # shown as text, not as markup

        await pilot.press("3")
        assert app.query_one("#tabs").active == "history"
        await pilot.press("r")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen", notes(app)
        assert "('Zorblat [v2]')" in str(app.screen.query_one("#confirm-text").render())
        await pilot.press("y")
        await settle(pilot, app)
        rows = app.query_one(HistoryPane).rows
        assert [(r["kind"], r["status"]) for r in rows] == [("commit", "rolled_back"), ("rollback", "rollback")]
        assert app.agent.memory.state().head == ""
        assert [d.status for d in app.query_one(DocumentsPane).rows] == ["rolled_back"]

        await pilot.press("5")
        assert app.focused.id == "question"
        await pilot.press(*"Where does the zorblat live?", "enter")
        await settle(pilot, app)
        ask = app.query_one(AskPane)
        for who in ("student", "base"):
            shown = str(ask.query_one(f"#{who}-answer").render())
            assert shown and "thinking" not in shown


@pytest.mark.asyncio
async def test_cancel_mid_ingest_leaves_nothing(tmp_path, doc_file):
    home = tmp_path / "home"
    app = GatedApp(tui_config(home), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await type_path(pilot, app, str(doc_file))
        while not app.training.is_set():
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        assert app.query_one(LearnPane).query_one("#loss").losses          # training was under way
        await pilot.press("escape")
        assert app.cancel_event.is_set()
        app.go.set()
        await settle(pilot, app)
        assert any("Cancelled: nothing was committed" in n for n in notes(app))
        assert app.agent.history() == [] and app.agent.memory.documents(include_inactive=True) == []
        assert app.query_one(HistoryPane).rows == [] and app.query_one(DocumentsPane).pending == {}
    adapters = home / "adapters" / "student"
    assert not adapters.exists() or not [p for p in adapters.iterdir() if p.is_dir()]


@pytest.mark.asyncio
async def test_pasted_text_goes_to_the_inbox_and_is_learned(tmp_path):
    home = tmp_path / "home"
    app = SealApp(tui_config(home), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+n")
        assert type(app.screen).__name__ == "PasteScreen"
        app.screen.query_one("#text").text = "Murvel towers\nMurvel towers were built in 1802 by the glassmakers of Ostrin."
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        [f] = (home / "inbox").glob("*.md")
        assert f.read_text().startswith("# Murvel towers\n")
        assert not list((home / "inbox").glob(".*"))                       # no temp file left behind
        [row] = app.query_one(HistoryPane).rows
        assert row["title"] == "Murvel towers" and row["status"] == "active"


@pytest.mark.asyncio
async def test_bad_input_is_a_notification_not_a_traceback(tmp_path):
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, app)
        await type_path(pilot, app, str(tmp_path / "missing [draft].txt"))   # not taken for Rich markup
        await settle(pilot, app)
        assert any("missing [draft].txt: no such file" in n for n in notes(app))
        shown = " ".join(str(t.render()) for t in app.screen.query("Toast"))
        assert "missing [draft].txt: no such file" in shown
        await pilot.press("5")
        await pilot.press("enter")                                        # an empty question
        assert any("Type a question first" in n for n in notes(app))
        assert app.is_running and app.job is None


@pytest.mark.asyncio
async def test_a_store_that_cannot_open_is_reported(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "someone-elses-file.txt").write_text("not a seal-agent home")
    app = SealApp(tui_config(home), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        assert any("not a seal-agent home" in n for n in notes(app))
        await pilot.press("5", *"hello", "enter")
        await settle(pilot, app)
        assert any("not a seal-agent home" in n for n in notes(app)[1:])   # jobs say so too, no crash


@pytest.mark.asyncio
async def test_palette_commands(tmp_path):
    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.press(*"Go to Forgetting")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.query_one("#tabs").active == "forgetting"


def test_startup_imports_stay_light():
    code = ("import sys, time; t = time.time(); import tui.main, tui.app; "
            "print(sorted(m for m in ('torch', 'transformers', 'chromadb', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_only_tui_imports_textual_and_tui_imports_only_agent():
    root = Path(__file__).resolve().parents[1]
    for room in ("agent", "teacher", "student"):
        for f in (root / room).rglob("*.py"):
            text = f.read_text()
            assert "import textual" not in text and "from textual" not in text, f
    for f in (root / "tui").rglob("*.py"):
        text = f.read_text()
        for other in ("teacher", "student"):
            assert f"from {other}" not in text and f"import {other}" not in text, f


@pytest.mark.asyncio
async def test_typing_a_path_from_the_list_goes_into_the_path_field(tmp_path, doc_file):
    """On the Documents tab the list has focus (digits switch tabs, p probes); a key that starts a path jumps into
    the path field and every following key lands there too, however fast it comes — a path holding "p", "1" or
    "2" must neither start a probe nor switch tabs. Pasted text lands there as well."""
    from textual import events
    from textual.widgets import Input, TabbedContent

    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        assert app.focused is app.query_one("#docs")
        path = app.query_one("#path", Input)
        await pilot.press(*"/tmp/p12.txt")  # no pause between the keys
        assert path.value == "/tmp/p12.txt"
        assert app.query_one(TabbedContent).active == "documents" and app.job is None
        path.value = ""
        app.query_one("#docs").focus()
        await pilot.pause()
        app.query_one("#docs").post_message(events.Paste(str(doc_file)))
        await pilot.pause()
        assert path.value == str(doc_file) and app.focused is path
        await pilot.press("enter")
        await settle(pilot, app)
        assert [r.title for r in app.query_one(DocumentsPane).rows] == ["Zorblat [v2]"]


@pytest.mark.asyncio
async def test_a_path_and_enter_sent_in_one_burst_learn_that_path(tmp_path):
    """tmux or a fast typist sends the whole path and Enter before the app handles the first key: the keys reach
    the app while the list has focus, then the field. The path must arrive whole, once, and be learned; the field
    takes focus once the keys stop. (Moving focus at the first key lost the Enter here, and cut paths in a
    terminal.)"""
    from textual import events
    from textual.widgets import Input

    app = SealApp(tui_config(tmp_path / "home"), agent_factory=tiny_factory)
    learned: list[str] = []
    app.learn_path = learned.append
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        text = "/tmp/papers/p1.txt"
        for ch in text:
            app.post_message(events.Key(ch, ch))
        app.post_message(events.Key("enter", "\r"))
        await pilot.pause(0.6)
        assert learned == [text] and app.job is None
        # once the path is sent the list keeps focus, so digits switch tabs again
        assert app.focused is app.query_one("#docs") and app.query_one("#path", Input).value == ""


@pytest.mark.asyncio
async def test_route_store_says_which_document_answered(tmp_path, doc_file):
    app = SealApp(tui_config(tmp_path / "home", ingest={"update": "route"}), agent_factory=tiny_factory)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot, app)
        await type_path(pilot, app, str(doc_file))
        await settle(pilot, app)
        assert app.agent.update_mode == "route"
        await pilot.press("5", *"Where does the zorblat live?", "enter")
        await settle(pilot, app)
        ask = app.query_one(AskPane)
        svg = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "via: Zorblat [v2]" in svg, svg[-3000:]                         # shown as text, not as markup
        assert "1 document(s) learned · an adapter per document, questions routed" in svg
        assert not ask.query_one("#base-answer").border_subtitle
