"""Benchmark conditions (the rows of the knowledge table) and how each turns a passage into self-edits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from teacher.parsing import parse_completion
from teacher.prompts import FAMILIES
from teacher.config import ParseSettings

from ..errors import BadInput
from .squad import DATA_REF, Passage, reference_name

KINDS = ("base", "open-book", "passage", "teacher", "ref")
DEFAULT_CONDITIONS = ("base", "passage", "teacher", "ref:gpt4.1", "ref:qwen-base", "ref:seal-rl")


@dataclass(frozen=True)
class Condition:
    name: str          # canonical row name: base | open-book | passage | teacher:FAMILY | teacher:ADAPTER | ref:NAME
    kind: str          # base | open-book (the base model with the passage in its context: the ceiling) | passage
                       # | teacher | ref
    family: str = ""   # prompt family of the self-edits (teacher, ref)
    adapter: str = ""  # trained teacher version (teacher:ADAPTER)
    ref: str = ""      # reference shortcut, path, or "data"

    @property
    def needs_teacher(self) -> bool:
        return self.kind == "teacher"

    @property
    def seed_invariant(self) -> bool:
        """No update: every training seed gives the same answers, so one seed is enough."""
        return self.kind in ("base", "open-book")


def parse_condition(spec: str, default_family: str, teacher_ids: Callable[[], Iterable[str]],
                    adapter_family: Callable[[str], str]) -> Condition:
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    if kind in ("base", "open-book", "passage") and not arg:
        return Condition(kind, kind)
    if kind == "teacher":
        if not arg or arg in FAMILIES:
            family = arg or default_family
            return Condition(f"teacher:{family}", "teacher", family=family)
        if arg in set(teacher_ids()):
            return Condition(f"teacher:{arg}", "teacher", family=adapter_family(arg) or default_family, adapter=arg)
        raise BadInput(f"condition {spec!r}: {arg!r} is neither a prompt family ({', '.join(FAMILIES)}) "
                       f"nor a trained teacher version (see: seal-agent teacher list)")
    if kind == "ref":
        name = reference_name(arg)
        return Condition(f"ref:{name}", "ref", ref=name)
    raise BadInput(f"unknown condition {spec!r}: use base, open-book, passage, teacher[:FAMILY|:ADAPTER], "
                   f"ref[:gpt4.1|:qwen-base|:seal-rl|:PATH]")


def parse_conditions(specs: Iterable[str], default_family: str, teacher_ids: Callable[[], Iterable[str]],
                     adapter_family: Callable[[str], str] = lambda _a: "") -> list[Condition]:
    """Conditions from specs (each may hold several, comma-separated); duplicates dropped, order kept."""
    out: list[Condition] = []
    for spec in specs:
        for part in spec.split(","):
            if part.strip():
                cond = parse_condition(part, default_family, teacher_ids, adapter_family)
                if cond not in out:
                    out.append(cond)
    if not out:
        raise BadInput("no conditions given")
    return out


def self_edit_texts(cond: Condition, passage: Passage, completions: list[str], parse: ParseSettings) -> list[list[str]]:
    """Training texts for each self-edit of ``passage`` under ``cond`` (base: one empty self-edit)."""
    if cond.kind in ("base", "open-book"):
        return [[]]
    if cond.kind == "passage":
        return [[passage.text]]
    return [parse_completion(c, passage.title, passage.context, cond.family or "implications", parse)
            for c in completions]


def merged_texts(per_passage: list[list[list[str]]]) -> list[str]:
    """All texts of all self-edits of all passages, each text once, in order (the CPT update)."""
    seen: dict[str, None] = {}
    for edits in per_passage:
        for texts in edits:
            for t in texts:
                seen.setdefault(t, None)
    return list(seen)


__all__ = ["Condition", "DATA_REF", "DEFAULT_CONDITIONS", "KINDS", "merged_texts", "parse_conditions",
           "self_edit_texts"]
