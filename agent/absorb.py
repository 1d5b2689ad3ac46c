"""Which training texts of an update are planned and which are learned beside them (``[absorb] lines``).

``mixed`` (SEAL): the self-edit's lines and its passage share one batch plan. ``beside``: the passage keeps the
schedule it would have alone and the lines are side texts (each step adds ``train.side_weight`` x their mean
NLL), so lines can add to what the passage teaches but cannot take its steps. Measured on GPUs with ``mixed``:
every self-edit row, GPT-4.1's included, left the gold answers' NLL above the passage alone.
"""
from __future__ import annotations

from typing import Iterable

from .config import AbsorbSettings


def split_update(texts: list[str], passages: Iterable[str], absorb: AbsorbSettings) -> tuple[list[str], list[str]]:
    """(planned texts, side texts) of an update on ``texts``; ``passages`` are the passage texts among them.

    ``beside`` plans the passages alone and moves every other text to the side; an update without a passage
    (``parse.append_passage`` off) stays as it is."""
    if absorb.lines == "mixed":
        return list(texts), []
    own = set(passages)
    planned = [t for t in texts if t in own]
    if not planned:
        return list(texts), []
    return planned, [t for t in texts if t not in own]


def fingerprint(absorb: AbsorbSettings, side_weight: float) -> dict:
    """What a run folder records of the absorption: nothing for ``mixed`` (so folders from before it resume)."""
    return {} if absorb.lines == "mixed" else {"absorb": {"lines": absorb.lines, "side_weight": side_weight}}
