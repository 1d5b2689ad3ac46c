"""The replay buffer: a reservoir sample over every text the student absorbed, mixed into each new update.

The buffer is derived from the store, not kept beside it: the stream is the training texts of the edits still
active, in the order they were absorbed, and slot decisions use a per-item seeded RNG (Algorithm R). So it
survives restarts, is identical for identical histories, and drops what a rollback undid — with no second copy
that could disagree with the edit log.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass
class Reservoir:
    capacity: int
    seed: int = 0

    def sample(self, stream: Sequence[str]) -> list[str]:
        """Algorithm R: item n (0-based) takes a slot with probability capacity/(n+1), uniform over the stream."""
        slots: list[str] = []
        for n, item in enumerate(stream):
            if n < self.capacity:
                slots.append(item)
            else:
                j = random.Random(f"{self.seed}:{n}").randrange(n + 1)
                if j < self.capacity:
                    slots[j] = item
        return slots


def general_texts() -> list[str]:
    """The general-text set shipped with the project (paragraphs of agent/data/general.txt)."""
    path = Path(__file__).parent / "data" / "general.txt"
    if not path.is_file():
        return []
    return [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def draw(buffer: Sequence[str], n: int, seed: int) -> list[str]:
    """n texts drawn without replacement from the buffer (all of it when n >= len)."""
    if n <= 0 or not buffer:
        return []
    if n >= len(buffer):
        return list(buffer)
    return random.Random(seed).sample(list(buffer), n)


def replay_texts(strategy: str, stream: Sequence[str], capacity: int, ratio: float, n_new: int,
                 seed: int) -> list[str]:
    """Texts to mix into an update of n_new new texts: none, reservoir samples, or (mixed) reservoir samples and
    general text, half and half (the larger half to the buffer; at least one general text, so that a one-text
    update still gets both, and the first update, with an empty buffer, gets general text only)."""
    if strategy == "none" or ratio <= 0:
        return []
    n = max(1, round(ratio * n_new))
    buffer = Reservoir(capacity, seed).sample(stream)
    if strategy == "reservoir":
        return draw(buffer, n, seed)
    if strategy == "mixed":
        general = general_texts()
        half = (n + 1) // 2 if buffer else 0
        return draw(buffer, half, seed) + draw(general, max(1, n - half), seed + 1)
    raise ValueError(f"unknown replay strategy {strategy!r} (none, reservoir, mixed)")
