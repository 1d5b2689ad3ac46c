"""Offline answer grading: SQuAD normalisation, contains / token F1 / exact match."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Sequence, Union

Gold = Union[str, Sequence[str]]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
# leading list markers: "1.", "1)", "(a)", "-", "*", "+", "•", "#", ">" (repeated, e.g. "- 1.")
_LIST_MARKER = re.compile(r"^\s*(?:(?:\(?\d{1,3}[.)]|[-*+•·>#]+)(?:\s+|$))+")
_ANSWER_LABEL = re.compile(r"^\s*(?:final\s+)?answer\s*:\s*", re.IGNORECASE)
_MARKDOWN = re.compile(r"(\*\*|__|\*|`+|~~)")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalisation: lower case, drop punctuation and articles, squeeze whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _clean_line(line: str) -> str:
    line = _LIST_MARKER.sub("", line)
    line = _MARKDOWN.sub("", line)
    line = _ANSWER_LABEL.sub("", line)
    line = _LIST_MARKER.sub("", line)
    return line.strip()


def extract_answer(text: str) -> str:
    """The first line that is non-empty once list markers, markdown and an "Answer:" label are stripped."""
    for line in text.splitlines():
        cleaned = _clean_line(line)
        if cleaned:
            return cleaned
    return ""


def _golds(gold: Gold) -> list[str]:
    golds = [gold] if isinstance(gold, str) else list(gold)
    if not golds:
        raise ValueError("no gold answer given")
    return golds


def contains(pred: str, gold: Gold) -> bool:
    """True when a normalised gold answer occurs in the normalised prediction on word boundaries."""
    p = f" {normalize_answer(pred)} "
    return any(
        (g := normalize_answer(x)) != "" and f" {g} " in p for x in _golds(gold)
    )


def _f1_one(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def f1(pred: str, gold: Gold) -> float:
    """SQuAD token F1 (max over gold answers)."""
    return max(_f1_one(pred, g) for g in _golds(gold))


def exact(pred: str, gold: Gold) -> bool:
    """SQuAD exact match after normalisation (any gold answer)."""
    return any(normalize_answer(pred) == normalize_answer(g) for g in _golds(gold))


@dataclass(frozen=True)
class Grade:
    """Scores in [0, 1]: ``contains``, token ``f1`` and exact match ``em``."""

    contains: float
    f1: float
    em: float


def grade(pred: str, gold: Gold) -> Grade:
    """Grade the extracted answer (first meaningful line) of a raw model output."""
    answer = extract_answer(pred)
    return Grade(float(contains(answer, gold)), f1(answer, gold), float(exact(answer, gold)))


def mean_grade(grades: Sequence[Grade]) -> Grade:
    """Component-wise mean; NaNs for an empty list (there is no accuracy of nothing)."""
    if not grades:
        return Grade(math.nan, math.nan, math.nan)
    n = len(grades)
    return Grade(
        sum(g.contains for g in grades) / n,
        sum(g.f1 for g in grades) / n,
        sum(g.em for g in grades) / n,
    )
