"""ReST-EM's data: training passages and held-out evaluation passages, split by title.

The teacher trains on passages of some SQuAD titles and is evaluated on passages of other titles only, so no
held-out passage (nor another paragraph of the same article) is ever seen in training. The default training file
``agent/data/squad/restem_train.json`` holds six titles chosen to overlap little with the 175 reference passages
(``passages.json``): those minus the training titles (167 passages) are the held-out set.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .squad import SHIPPED, Passage, load_passages
from ..errors import BadInput

TRAIN_DATA = SHIPPED / "restem_train.json"
HELDOUT_DATA = SHIPPED / "passages.json"


@dataclass
class Split:
    train: list[Passage]          # round 1's training passages (in order): every round's unless they are fresh
    heldout: list[Passage]        # every held-out passage (for `bench knowledge --data heldout.json`)
    quick: list[Passage]          # the ones the per-round held-out evaluation uses
    train_titles: list[str]       # every title of the training pool (excluded from held-out)
    heldout_titles: list[str]
    pool: list[Passage] = field(default_factory=list)  # the whole training pool in its seeded order

    def round_passages(self, rnd: int, fresh: bool) -> list[Passage]:
        """Round ``rnd``'s training passages: ``train`` every round, or (``fresh``) the rnd-th block of as many
        from the seeded pool, so no round samples a passage an earlier round's M-step learned from."""
        if not fresh:
            return self.train
        n = len(self.train)
        return self.pool[(rnd - 1) * n: rnd * n]

    def check_fresh(self, rounds: int) -> None:
        need = rounds * len(self.train)
        if need > len(self.pool):
            raise BadInput(f"--fresh: {rounds} rounds of {len(self.train)} passages need {need}; the training pool "
                           f"has {len(self.pool)}")

    def describe(self, data: Path, eval_data: Path, rounds: int = 1, fresh: bool = False) -> dict:
        extra = {"round_passages": {str(r): [p.index for p in self.round_passages(r, True)]
                                    for r in range(1, rounds + 1)}} if fresh else {}
        return {
            "data": str(data), "eval_data": str(eval_data),
            "train_titles": self.train_titles, "train_passages": [p.index for p in self.train], **extra,
            "train_passage_titles": sorted({p.title for p in self.train}),
            "heldout_titles": self.heldout_titles, "heldout_passages": [p.index for p in self.heldout],
            "quick_eval_passages": [p.index for p in self.quick],
        }


def _shuffled(items: list[Passage], seed: int) -> list[Passage]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def resolve_titles(values: Sequence[str], known: set[str]) -> set[str]:
    """Titles from comma-separated lists. A title that holds a comma itself ("Fresno, California") is matched
    whole: at each part the longest run of parts that joins into a known title wins; else the part alone."""
    titles = set()
    for value in values:
        parts, i = value.split(","), 0
        while i < len(parts):
            j = next((j for j in range(len(parts), i + 1, -1) if ",".join(parts[i:j]).strip() in known), i + 1)
            titles.add(",".join(parts[i:j]).strip())
            i = j
    return titles - {""}


def make_split(data: Path, eval_data: Path, n_train: int, eval_titles: Sequence[str] = (), n_quick: int = 0,
               seed: int = 0) -> Split:
    """Training pool = ``data`` minus ``eval_titles`` (comma-separated lists, see resolve_titles); ``n_train`` of
    them (a seeded shuffle, so several titles are drawn). Held-out = ``eval_data`` passages whose title is not in
    the training pool (and is one of ``eval_titles`` when given) and whose text is not a training text;
    ``n_quick`` of them for the per-round evaluation (a seeded shuffle)."""
    passages, every = load_passages(data), load_passages(eval_data)
    reserved = resolve_titles(eval_titles, {p.title for p in passages + every})
    pool = [p for p in passages if p.title not in reserved]
    if not pool:
        raise BadInput(f"{data}: no training passages left after removing --eval-titles")
    if n_train < 1 or n_train > len(pool):
        raise BadInput(f"--passages {n_train}: the training pool of {data} has {len(pool)} passages")
    train_titles = sorted({p.title for p in pool})
    contexts = {p.context for p in pool}
    if reserved:
        unknown = reserved - {p.title for p in every}
        if unknown:
            raise BadInput(f"--eval-titles: {eval_data} has no passages titled {', '.join(sorted(unknown))}")
    heldout = [p for p in every if p.title not in train_titles and p.context not in contexts
               and (not reserved or p.title in reserved)]
    if n_quick > len(heldout):
        raise BadInput(f"--eval-passages {n_quick}: only {len(heldout)} held-out passages "
                       f"(titles of {eval_data} that are not training titles)")
    order = _shuffled(pool, seed)
    return Split(train=order[:n_train], heldout=heldout, quick=_shuffled(heldout, seed + 1)[:n_quick],
                 train_titles=train_titles, heldout_titles=sorted({p.title for p in heldout}), pool=order)


def squad_json(passages: Sequence[Passage]) -> str:
    """Passages back in SQuAD/SEAL format (what `bench knowledge --data` reads)."""
    return json.dumps([{"title": p.title, "context": p.context,
                        "questions": [{"question": q, "answer": a} for q, a in zip(p.questions, p.golds)]}
                       for p in passages], ensure_ascii=False, indent=1) + "\n"
