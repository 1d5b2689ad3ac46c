"""Study material for context distillation: what a student studies about a passage while the base model reads it.

The teacher writes material; the caller turns it into the student's study items (the passage as context, the
material as the text to learn). Four families:

- ``questions``: the teacher LM writes questions about the passage (:func:`write_questions`); the caller has the
  base student answer them with the passage in context and distils those question-answer exchanges.
- SPA-style templates (SPA, arXiv 2603.22213, studies a document through fixed study prompts in three groups:
  concept learning, critical thinking, generative learning): :data:`SPA_TEMPLATES` are five fixed instructions
  whose completions, written with the passage in context (:func:`write_study_texts`), are the texts to learn.
  The instructions are ours, one or two per SPA group, worded for a small instruct model.
- ``cloze``: sentence cues cut from the passage without any LM (:func:`sentence_cues`, :func:`cue_questions`) and
  ``continuation`` pairs (chunk i as context, chunk i + 1 to learn; :func:`continuation_pairs`).
- :func:`compression_ratio`, SPA's diversity measure of a body of generated text (lower = more diverse).

Prompts put the passage first and the instruction after it in one user turn, so that the student's study item
can show the same instruction with and without the passage in front of it.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

from .backend import GenerationBackend
from .cloze import _sentences
from .parsing import _Q, _key, clean_line, passage_text
from .prompts import render

# ---------------------------------------------------------------- questions

QUESTIONS_INSTRUCTION = ("Write {n} different questions about the passage above, one per line. "
                         "Each question must be answerable from the passage alone.")
QUESTIONS_HEADER = "1. "  # pre-filled: a small model then continues a numbered list of questions


def reading(title: str, passage: str) -> str:
    """The passage as the teacher reads it (and as the caller should place it in the student's context):
    "{title}\\n{passage}"."""
    return passage_text(title, passage)


def questions_prompt(tokenizer, title: str, passage: str, n: int, use_chat: Optional[bool] = None) -> str:
    """The passage, then the request for ``n`` questions, one per line (chat template when the tokenizer has one;
    the answer starts with "1. ")."""
    user = f"{reading(title, passage)}\n\n{QUESTIONS_INSTRUCTION.format(n=n)}"
    return render(tokenizer, user, QUESTIONS_HEADER, use_chat)


def parse_questions(completion: str, cap: Optional[int] = None, header: str = QUESTIONS_HEADER) -> list[str]:
    """Questions from a completion, one per line: list numbering, markdown and "Question 3:" labels stripped, text
    after the first '?' dropped (an answer written on the same line), lines without '?' dropped, duplicates
    (case and spacing ignored) dropped, at most ``cap``. ``header``: what the prompt pre-filled, put back first."""
    out: list[str] = []
    seen: set[str] = set()
    for line in (header + completion).splitlines():
        text = clean_line(line)
        text = _Q.sub("", text, count=1).strip()
        if "?" not in text:
            continue
        text = text[: text.index("?") + 1].strip()
        key = _key(text.rstrip("? "))
        if len(text) < 8 or key in seen:
            continue
        seen.add(key)
        out.append(text)
        if cap is not None and len(out) >= cap:
            break
    return out


def write_questions(backend: GenerationBackend, tokenizer, title: str, passage: str, n: int = 8, samples: int = 1,
                    temperature: float = 0.7, top_p: float = 0.95, seed: int = 0,
                    max_new_tokens: Optional[int] = None, use_chat: Optional[bool] = None) -> list[str]:
    """Up to ``n`` distinct questions about the passage from ``samples`` completions (in order of appearance)."""
    return write_questions_many(backend, tokenizer, [(title, passage)], n, samples, temperature, top_p, seed,
                                max_new_tokens, use_chat)[0]


def write_questions_many(backend: GenerationBackend, tokenizer, docs: Sequence[tuple[str, str]], n: int = 8,
                         samples: int = 1, temperature: float = 0.7, top_p: float = 0.95, seed: int = 0,
                         max_new_tokens: Optional[int] = None, use_chat: Optional[bool] = None) -> list[list[str]]:
    """:func:`write_questions` for each (title, passage) of ``docs``, in one batched generate call."""
    if n < 1 or samples < 1 or not docs:
        return [[] for _ in docs]
    budget = max_new_tokens or 24 * n + 16  # ~ one question per 24 tokens
    prompts = [questions_prompt(tokenizer, title, passage, n, use_chat) for title, passage in docs]
    outs = backend.generate(prompts, samples, budget, temperature, top_p, seed)
    return [parse_questions("\n".join(QUESTIONS_HEADER + c for c in completions), cap=n, header="")
            for completions in outs]


# ---------------------------------------------------------------- SPA-style templates

@dataclass(frozen=True)
class StudyTemplate:
    name: str
    group: str  # SPA's groups: "concept learning" | "critical thinking" | "generative learning"
    instruction: str


SPA_TEMPLATES: tuple[StudyTemplate, ...] = (
    StudyTemplate("key-concepts", "concept learning",
                  "List the key concepts, names, dates and numbers of the passage above, each with a short "
                  "explanation."),
    StudyTemplate("summary", "concept learning",
                  "Summarize the passage above in a few sentences, keeping every name, date and number."),
    StudyTemplate("connect-facts", "critical thinking",
                  "Explain how the facts in the passage above are connected: who did what, when, where and why."),
    StudyTemplate("teach", "generative learning",
                  "Explain the passage above to a student who has never read it."),
    StudyTemplate("questions-answers", "generative learning",
                  "Write questions about the passage above, each followed by its answer."),
)
TEMPLATES: dict[str, StudyTemplate] = {t.name: t for t in SPA_TEMPLATES}


class StudyText(NamedTuple):
    """A completion of a study template: the student learns ``text`` as the reply to ``instruction``."""

    template: str
    instruction: str
    text: str


def template_prompt(tokenizer, template: StudyTemplate, title: str, passage: str,
                    use_chat: Optional[bool] = None) -> str:
    """The passage, then the template's instruction, in one user turn (or raw, followed by a blank line)."""
    return render(tokenizer, f"{reading(title, passage)}\n\n{template.instruction}", "", use_chat)


def write_study_texts(backend: GenerationBackend, tokenizer, title: str, passage: str,
                      templates: Sequence[StudyTemplate] = SPA_TEMPLATES, samples: int = 1,
                      temperature: float = 0.7, top_p: float = 0.95, seed: int = 0, max_new_tokens: int = 256,
                      use_chat: Optional[bool] = None) -> list[StudyText]:
    """``samples`` completions of every template for one passage, in one batched call; empty ones dropped."""
    if not templates or samples < 1:
        return []
    prompts = [template_prompt(tokenizer, t, title, passage, use_chat) for t in templates]
    outs = backend.generate(prompts, samples, max_new_tokens, temperature, top_p, seed)
    return [StudyText(t.name, t.instruction, c.strip()) for t, cs in zip(templates, outs) for c in cs if c.strip()]


# ---------------------------------------------------------------- cloze and continuation (no LM)

CUE_QUESTION = 'Continue this sentence from the passage: "{cue} ..."'


def sentences(passage: str) -> list[str]:
    """The passage's sentences (whitespace collapsed), as :mod:`teacher.cloze` cuts them."""
    return _sentences(passage)


def sentence_cues(passage: str, min_words: int = 6, share: float = 0.5) -> list[tuple[str, str]]:
    """(cue, rest) per sentence of at least ``min_words`` words: the cue is its first ``share`` of the words (at
    least 2), the rest the remainder with its leading space, so cue + rest is the sentence."""
    out = []
    for s in sentences(passage):
        words = s.split()
        if len(words) < max(min_words, 3):
            continue
        cut = min(len(words) - 1, max(2, round(len(words) * share)))
        out.append((" ".join(words[:cut]), " " + " ".join(words[cut:])))
    return out


def cue_questions(passage: str, min_words: int = 6, share: float = 0.5) -> list[tuple[str, str]]:
    """(question, answer) per sentence: a question-like prompt made of the sentence's cue, answered by the rest."""
    return [(CUE_QUESTION.format(cue=cue), rest.strip()) for cue, rest in sentence_cues(passage, min_words, share)]


def continuation_pairs(chunks: Sequence[str]) -> list[tuple[str, str]]:
    """(context, suffix) = (chunk i, chunk i + 1) for consecutive non-empty chunks (e.g. a document's chunks, or a
    passage's :func:`sentences`)."""
    kept = [c for c in chunks if c.strip()]
    return [(a, b) for a, b in zip(kept, kept[1:])]


# ---------------------------------------------------------------- diversity

def compression_ratio(texts: Sequence[str]) -> float:
    """len(raw bytes) / len(gzip bytes) of the texts joined by newlines (SPA's diversity measure: repetitive text
    compresses well, so lower = more diverse). gzip at level 9 with a zero timestamp (deterministic); 0.0 for no
    text."""
    raw = "\n".join(texts).encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))

