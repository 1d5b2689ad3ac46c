"""The replay buffer: a reservoir sample over every text the student absorbed, mixed into each new update.

The buffer is derived from the store, not kept beside it: the stream is the training texts of the edits still
active, in the order they were absorbed, and slot decisions use a per-item seeded RNG (Algorithm R). So it
survives restarts, is identical for identical histories, and drops what a rollback undid — with no second copy
that could disagree with the edit log.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

REPLAYS = ("none", "reservoir", "mixed")


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


@dataclass
class ReplayMix:
    """What an update mixes in besides its new texts."""

    texts: list[str] = field(default_factory=list)    # earlier texts, trained on like the new ones
    anchor: list[str] = field(default_factory=list)   # general text held to the base model's predictions (KL)


def replay_mix(strategy: str, stream: Sequence[str], capacity: int, ratio: float, n_new: int,
               seed: int) -> ReplayMix:
    """The mix for an update of n_new new texts: nothing (none), round(ratio x n_new) reservoir samples
    (reservoir), or those plus the shipped general text as an anchor (mixed).

    General text is an anchor, not training data: trained on with cross-entropy for 10 epochs, a few general
    paragraphs are memorised and held-out perplexity still rose (CPU, 3 documents: +340 %, worse than no
    replay); held by a KL term to the base model's predictions, it rose 2 % after 2 documents (kl weight 5)."""
    if strategy not in REPLAYS:
        raise ValueError(f"unknown replay strategy {strategy!r} ({', '.join(REPLAYS)})")
    if strategy == "none":
        return ReplayMix()
    texts = draw(Reservoir(capacity, seed).sample(stream), max(1, round(ratio * n_new)), seed) if ratio > 0 else []
    return ReplayMix(texts, general_texts() if strategy == "mixed" else [])
