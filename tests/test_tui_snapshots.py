"""Snapshots (pytest-textual-snapshot) of the app's main screens on a store with fixed content.

The store is written with fixed ids and times (TZ=UTC), the answers are fixed, and the Learn view is fed a fixed
sequence of agent events, so nothing random or time-dependent reaches the screen.
Update after a deliberate UI change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""
from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from agent import events as ev
from agent.core import Agent
from agent.documents import Document
from agent.memory import Edit, Memory
from tui.app import SealApp
from tui.widgets import LearnPane

from .tui_helpers import fake_embed, settle, tui_config

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC

DOCS = [
    Document("Zorblat", "The zorblat lives in Quentin Bay and eats blue kelp every morning.", "zorblat.json#0",
             [("Where does the zorblat live?", "Quentin Bay"), ("What does the zorblat eat?", "blue kelp")]),
    Document("Murvel towers", "Murvel towers were built in 1802 by the glassmakers of Ostrin.", "murvel.md",
             [("Who built the Murvel towers?", "the glassmakers of Ostrin"), ("When?", "1802"),
              ("Where were the glassmakers from?", "Ostrin")]),
    Document("Larrow", "Larrow is a town at the mouth of the Zorblat river.", "larrow.txt",
             [("What is Larrow?", "a town"), ("Where is Larrow?", "at the mouth of the Zorblat river")]),
    Document("Ostrin glass", "Ostrin glass is green because of the iron in its sand.", "ostrin.txt",
             [("Why is Ostrin glass green?", "iron in its sand")]),
]


def seed_store(home) -> None:
    """Four commits (the last one rolled back), one rejected edit, with retention rows."""
    memory = Memory(home)
    memory.embed = fake_embed
    d = [doc.doc_id for doc in DOCS]
    entries = [
        Edit("e-0001", 1, "commit", d[0], "Zorblat", "k-0001", "", T0 + 60, 41.0, 0.0, 1.0, 3.1, 1.2,
             "accuracy 0.00 -> 1.00, gold-answer NLL 3.100 -> 1.200", retention={d[0]: 1.0}),
        Edit("e-0002", 2, "commit", d[1], "Murvel towers", "k-0002", "k-0001", T0 + 120, 52.0, 0.0, 0.67, 3.4,
             1.9, "accuracy 0.00 -> 0.67, gold-answer NLL 3.400 -> 1.900", retention={d[0]: 0.5, d[1]: 0.67}),
        Edit("e-0003", 3, "reject", "d-quenby", "Quenby sea", "", "k-0002", T0 + 180, 38.0, 0.33, 0.0, 2.8,
             2.9, "probe accuracy fell 0.33 -> 0.00"),
        Edit("e-0004", 4, "commit", d[2], "Larrow", "k-0004", "k-0002", T0 + 240, 47.0, 0.0, 0.5, 3.0, 2.2,
             "accuracy 0.00 -> 0.50, gold-answer NLL 3.000 -> 2.200",
             retention={d[0]: 0.5, d[1]: 0.33, d[2]: 0.5}),
        Edit("e-0005", 5, "commit", d[3], "Ostrin glass", "k-0005", "k-0004", T0 + 300, 33.0, 0.0, 1.0, 2.5,
             0.9, "accuracy 0.00 -> 1.00, gold-answer NLL 2.500 -> 0.900",
             retention={d[0]: 0.0, d[1]: 0.33, d[2]: 0.5, d[3]: 1.0}),
        Edit("r-0006", 6, "rollback", d[3], "Ostrin glass", "k-0004", "k-0005", T0 + 360, target="e-0005",
             reason="undid e-0005"),
    ]
    committed = {e.doc_id: e for e in entries if e.kind == "commit"}
    for doc in DOCS:
        memory.add_document(committed[doc.doc_id].edit_id, doc, [doc.text], doc.probes, "given")
    for e in entries:
        memory.log(e)
    memory.close()


class FixedAgent(Agent):
    """The real store; fixed answers instead of a model."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.memory.embed = fake_embed

    def ask(self, questions, base=False):
        return ["I do not know." if base else "Quentin Bay, where it eats blue kelp."] * len(questions)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    home = tmp_path / "home"
    seed_store(home)
    yield SealApp(tui_config(home), agent_factory=FixedAgent)
    monkeypatch.undo()
    time.tzset()


def steady(app) -> None:
    """No blinking cursor in the picture."""
    for widget in app.query(Input):
        widget.cursor_blink = False


def tab(name: str, keys: str = ""):
    async def run_before(pilot) -> None:
        await settle(pilot, pilot.app)
        steady(pilot.app)
        pilot.app.action_tab(name)
        if keys:
            await pilot.press(*keys)
        await settle(pilot, pilot.app)
    return run_before


LEARN_EVENTS = [
    ev.DocumentRead("d-zorblat", "Zorblat", "zorblat.json#0", 1, 3),
    ev.ProbeResult("before", "d-zorblat", "Where does the zorblat live?", "Quentin Bay", "In the sea.", False, 0.0),
    ev.ProbeResult("before", "d-zorblat", "What does the zorblat eat?", "blue kelp", "Fish.", False, 0.0),
    ev.ProbeResult("before", "d-zorblat", "When does it eat?", "every morning", "Every morning.", True, 1.0),
    ev.ProbeSummary("before", "d-zorblat", 1 / 3, 0.33, 3.1, 3),
    ev.SelfEditToken(0, 0, "1. The zorblat lives in Quentin Bay.\n2. It eats blue kelp.\n3. It eats every morning."),
    ev.SelfEditProposed(0, 0, "implications", ("Zorblat\nThe zorblat lives in Quentin Bay.",) * 4),
    ev.Stage("train", "4 texts + 0 replay, 10 epochs, lr 0.001"),
    *[ev.TrainStep(i, 12, 1 + i // 4, 3.0 * 0.8 ** i) for i in range(1, 13)],
    ev.ProbeResult("after", "d-zorblat", "Where does the zorblat live?", "Quentin Bay", "Quentin Bay.", True, 1.0),
    ev.ProbeResult("after", "d-zorblat", "What does the zorblat eat?", "blue kelp", "Blue kelp.", True, 1.0),
    ev.ProbeResult("after", "d-zorblat", "When does it eat?", "every morning", "At night.", False, 0.0),
    ev.ProbeSummary("after", "d-zorblat", 2 / 3, 0.67, 1.2, 3),
    ev.EditCommitted("e-0007", "d-zorblat", "k-0007", 1 / 3, 2 / 3, 42.0,
                     "accuracy 0.33 -> 0.67, gold-answer NLL 3.100 -> 1.200"),
]


def learn_view(pilot_events):
    async def run_before(pilot) -> None:
        await settle(pilot, pilot.app)
        pilot.app.action_tab("learn")
        learn = pilot.app.query_one(LearnPane)
        learn.reset("zorblat.json")
        for e in pilot_events:
            learn.handle(e)
        await pilot.pause(0.1)
    return run_before


def test_documents(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=tab("documents"))


def test_learn(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=learn_view(LEARN_EVENTS))


def test_learn_wide(app, snap_compare):
    assert snap_compare(app, terminal_size=(120, 40), run_before=learn_view(LEARN_EVENTS))


def test_history(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=tab("history"))


def test_rollback_confirmation(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=tab("history", ["down", "down", "r"]))


def test_forgetting(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=tab("forgetting"))


def test_ask(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=tab("ask", [*"Where does the zorblat live?", "enter"]))
