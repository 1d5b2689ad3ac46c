"""Routing a text to the document adapter it is about (the ``route`` update mode of the forgetting sweep).

Each learned document keeps its own LoRA; a question (or any text) goes to the adapter of the learned document
whose text is most similar to it by sentence embedding (cosine), or to no adapter — the untouched base model —
when no document is similar enough. General text then meets the base model, so it cannot drift, and one
document's update cannot overwrite another's. The embedder is the memory's offline all-MiniLM-L6-v2 by default.
"""
from __future__ import annotations

import math

import numpy as np
from typing import Callable, Hashable, Optional, Sequence, TypeVar

Embed = Callable[[list[str]], list]  # texts -> vectors
K = TypeVar("K", bound=Hashable)


def _unit(v: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


class Router:
    """Cosine routing over a fixed set of keyed texts (``keys[i]`` is document i's text)."""

    def __init__(self, embed: Embed, keys: Sequence[str], threshold: float, vectors: Optional[Sequence] = None):
        """keys: the texts to route to, embedded here; or ``vectors``: their embeddings, already made."""
        self.embed, self.threshold = embed, threshold
        if vectors is None:
            vectors = embed(list(keys)) if keys else []
        self.keys = [_unit(v) for v in vectors]

    def vectors(self, texts: Sequence[str]) -> list[list[float]]:
        return [_unit(v) for v in self.embed(list(texts))] if texts else []

    def pick(self, vectors: Sequence[Sequence[float]], allowed: Sequence[int]) -> list[Optional[int]]:
        """For each vector, the allowed key it is most similar to, or None below the threshold (or none allowed)."""
        allowed = list(allowed)
        if not allowed or not len(vectors):
            return [None] * len(vectors)
        sims = np.asarray(vectors, dtype=np.float64) @ np.asarray([self.keys[i] for i in allowed], dtype=np.float64).T
        best = sims.argmax(axis=1)  # the first of equals, as before
        return [allowed[j] if sims[r, j] >= self.threshold else None for r, j in enumerate(best)]


def grouped(targets: Sequence[Optional[K]]) -> list[tuple[Optional[K], list[int]]]:
    """The positions of each routing target, the base (None) first, then targets in order of first use."""
    out: dict = {None: []}
    for i, t in enumerate(targets):
        out.setdefault(t, []).append(i)
    return [(t, idx) for t, idx in out.items() if idx]


def default_embedder(spec: str = "embedded") -> Embed:
    from .memory import LazyEmbedder
    return LazyEmbedder(spec)
