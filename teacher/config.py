"""Configuration dataclasses owned by the teacher room (composed by ``agent/config.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TeacherSettings:
    """How the teacher samples self-edits.

    family: one of :data:`teacher.prompts.FAMILIES` ("implications", "implications-long", "rewrite", "self-qa").
    samples: self-edits per passage (SEAL's k; 5 in the paper).
    temperature / top_p: SEAL's sampling defaults (1.0 / 0.95). temperature <= 0 means greedy.
    use_chat: None = auto (use the tokenizer's chat template when it has one), True/False to force.
    probe_count: question-answer probes asked of :meth:`teacher.selfedit.Teacher.make_probes`.
    """

    family: str = "implications"
    samples: int = 1
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int = 0
    use_chat: Optional[bool] = None
    probe_count: int = 5


@dataclass
class ParseSettings:
    """How a completion becomes training texts.

    split: "lines" (SEAL: each non-empty line is one text), "paragraphs" (blank-line separated blocks, useful for
      "rewrite") or "whole" (the whole cleaned completion as one text; SEAL's continued-pretraining setting).
      The "self-qa" family always groups question/answer pairs, whatever ``split`` says.
    title_prefix: each text is "{title}\\n{line}" (SEAL's TRAINING_SEQUENCE_TEMPLATE).
    append_passage: also train on "{title}\\n{passage}".
    strip_markup: remove list numbering ("1.", "1)", "-", "*", "•") and markdown (**bold**, "#" headings).
    min_chars: drop lines shorter than this (after stripping).
    max_texts: at most this many texts taken from the completion (the appended passage comes on top).
    """

    split: str = "lines"
    title_prefix: bool = True
    append_passage: bool = True
    strip_markup: bool = True
    min_chars: int = 8
    max_texts: int = 64
