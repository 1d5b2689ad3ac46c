"""Shared by the TUI tests: a tiny-model agent factory, a fast fake embedder, and waiting for the app to settle."""
from __future__ import annotations

import hashlib
import threading
import time

from agent.events import TrainStep
from tests.conftest import make_tiny_agent, tiny_config
from tui.app import SealApp


def fake_embed(texts: list[str]) -> list[list[float]]:
    """A deterministic 8-d embedding (the real all-MiniLM-L6-v2 costs seconds to load per store)."""
    return [[b / 255 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in texts]


def tui_config(home, **sections):
    cfg = tiny_config(home, **sections)
    cfg.ingest.guard = False          # a random tiny model rarely improves: keep every edit, deterministically
    cfg.teacher.samples = 1
    return cfg


def tiny_factory(cfg):
    agent = make_tiny_agent(cfg.home, cfg)
    agent.memory.embed = fake_embed
    return agent


async def settle(pilot, app, timeout: float = 60.0) -> None:
    """Wait until the store is open, no model job runs and every worker has finished (messages handled)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        await pilot.pause(0.05)
        if app.ready.is_set() and app.job is None and not any(w.is_running for w in app.workers):
            await pilot.pause(0.05)
            if app.job is None and not any(w.is_running for w in app.workers):
                return
    raise AssertionError(f"the app did not settle in {timeout} s (job: {app.job})")


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


class GatedApp(SealApp):
    """Holds the ingest worker at its first training step until the test sets ``go`` (``training`` is set once
    it got there)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.training, self.go = threading.Event(), threading.Event()

    def emit(self, event):
        super().emit(event)
        if isinstance(event, TrainStep) and not self.training.is_set():
            self.training.set()
            self.go.wait(30)
