"""ReST-EM rewards and the keep rule (pure functions; agent/restem.py runs the loop).

reward(self-edit) = mean over training seeds s of metric(self-edit, s) - metric(passage-only, s): the gain over
absorbing the raw passage with the same seed (same LoRA init and data order), so an edit that helps less than
the passage earns a negative reward and is never kept. ``loglik`` is dense: the decrease of the mean gold-answer
NLL (nll(passage-only, s) - nll(self-edit, s)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

REWARDS = ("contains", "f1", "loglik")
KEEP_RULES = ("best", "positive")


class Scored(Protocol):  # a student.innerloop.CandidateResult, or a Score read back from the log
    accuracy: float
    f1: float
    nll: float


@dataclass(frozen=True)
class Score:
    accuracy: float
    f1: float
    em: float
    nll: float

    @classmethod
    def of(cls, rec: Mapping) -> "Score":
        return cls(float(rec["accuracy"]), float(rec["f1"]), float(rec["em"]), float(rec["nll"]))


def metric(result: Scored, reward: str) -> float:
    """Higher is better: 'contains' accuracy, token F1, or minus the gold-answer NLL."""
    if reward == "contains":
        return float(result.accuracy)
    if reward == "f1":
        return float(result.f1)
    if reward == "loglik":
        return -float(result.nll)
    raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")


def seed_gains(edit: Mapping[int, Scored], passage: Mapping[int, Scored], reward: str) -> dict[int, float]:
    """metric(edit, s) - metric(passage-only, s) for every seed s of ``edit`` (a seed without its passage-only
    baseline is an error: gains are only defined against the same seed)."""
    missing = sorted(set(edit) - set(passage))
    if missing:
        raise KeyError(f"no passage-only result for seed(s) {missing}")
    return {s: metric(edit[s], reward) - metric(passage[s], reward) for s in sorted(edit)}


def reward_of(edit: Mapping[int, Scored], passage: Mapping[int, Scored], reward: str) -> float:
    """Mean over seeds of the paired gains; nan if a gain is nan (e.g. no gold-answer NLL) or there are no seeds."""
    gains = list(seed_gains(edit, passage, reward).values())
    if not gains or any(math.isnan(g) for g in gains):
        return math.nan
    return sum(gains) / len(gains)


def keep(rewards: Sequence[float], rule: str = "best") -> list[int]:
    """Indices of the self-edits of one passage to train the teacher on: 'best' = the highest reward (first on
    ties) if it is > 0; 'positive' = every reward > 0. nan never counts as positive."""
    if rule not in KEEP_RULES:
        raise ValueError(f"keep rule must be one of {KEEP_RULES}, got {rule!r}")
    positive = [i for i, r in enumerate(rewards) if r > 0]  # nan > 0 is False
    if rule == "positive" or not positive:
        return positive
    return [max(positive, key=lambda i: (rewards[i], -i))]


def stats(rewards: Sequence[float]) -> dict:
    """mean / max / min over the finite rewards, and their count."""
    vals = [r for r in rewards if not math.isnan(r)]
    if not vals:
        return {"n": 0, "mean": math.nan, "max": math.nan, "min": math.nan}
    return {"n": len(vals), "mean": sum(vals) / len(vals), "max": max(vals), "min": min(vals)}
