"""Fill-in-the-blank probes cut from the passage itself, for when the teacher model writes no usable questions.

A 135M teacher almost never writes a question whose short answer is in the passage (measured: 0 probes for two
plain-text SQuAD paragraphs), and a document without probes is ingested unguarded. A cloze probe needs no model:
one sentence of the passage with a name or a number blanked out; asked closed-book, only a student that learned
the passage can fill it in, and the gold answer's NLL measures how close it is. Deterministic: the same passage
always gives the same probes.
"""
from __future__ import annotations

import re

BLANK = "____"
PREFIX = "Fill in the blank"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?:s)?(?![\w])|(?<![\w.])\d(?![\w.,])")
_CAP = re.compile(r"[A-Z][\w'’.-]*")
_LINKS = {"of", "the", "de", "da", "di", "von", "van", "der", "du", "la", "le", "and", "&"}
_PUNCT = "\"'()[],;:.!?"


def as_word(text: str) -> str:
    """A regex for ``text`` on word boundaries ("he" does not match inside "the")."""
    return r"(?<!\w)" + re.escape(text) + r"(?!\w)"


def _sentences(passage: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(passage.split())) if s.strip()]


def _names(sentence: str) -> list[str]:
    """Runs of capitalised words (joined by of/the/de/...), the sentence's first word excluded; punctuation
    ("(NFL)", "Paris,") ends a run, so every run occurs verbatim in the sentence."""
    words = sentence.split()
    out, run = [], []

    def close() -> None:
        while run and run[-1].lower() in _LINKS:
            run.pop()
        if run:
            out.append(" ".join(run))
        run.clear()

    for i, raw in enumerate(words):
        w = raw.strip(_PUNCT)
        if raw[:1] in "\"'([":
            close()
        if i > 0 and w and _CAP.fullmatch(w):
            run.append(w)
        elif run and w.lower() in _LINKS and raw == w:
            run.append(w)
        else:
            close()
            continue
        if raw != w:  # trailing punctuation
            close()
    close()
    return out


def _candidates(sentence: str) -> list[str]:
    """Blanks in order of preference: multi-word names, numbers, one-word names, then long content words (for
    passages with neither names nor numbers)."""
    names = sorted(_names(sentence), key=len, reverse=True)
    words = sorted({w.strip(_PUNCT) for w in sentence.split()[1:]}, key=lambda w: (-len(w), w))
    long_words = [w for w in words if len(w) >= 7 and w.isalpha() and w.islower()]
    return ([n for n in names if " " in n] + _NUMBER.findall(sentence) + [n for n in names if " " not in n]
            + long_words)


def _answer(sentence: str, title: str, used: set[str]) -> str:
    """The most specific blank of a sentence that is not in the title, not repeated in the sentence, not used."""
    title_n = title.casefold().strip()
    for a in _candidates(sentence):
        a_n = a.casefold()
        if len(a) < 2 or a_n in used or re.search(as_word(a_n), title_n):
            continue  # the title is part of the question: an answer inside it would be given away
        if len(re.findall(as_word(a), sentence)) != 1:
            continue
        return a
    return ""


def cloze_probes(title: str, passage: str, n: int, min_words: int = 6) -> list[tuple[str, str]]:
    """Up to ``n`` (question, answer) pairs: "Fill in the blank (about TITLE): ... ____ ...", answer = the blanked
    span. One per sentence, spread over the passage (every k-th sentence first), distinct answers."""
    if n < 1:
        return []
    sents = [s for s in _sentences(passage) if len(s.split()) >= min_words]
    if not sents:
        return []
    step = max(1, len(sents) // n)
    order = [i for start in range(step) for i in range(start, len(sents), step)]
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for i in order:
        s = sents[i]
        a = _answer(s, title, used)
        if not a:
            continue
        used.add(a.casefold())
        blanked = re.sub(as_word(a), BLANK, s, count=1)
        about = f" (about {title})" if title else ""
        out.append((f"{PREFIX}{about}: {blanked}", a))
        if len(out) == n:
            break
    return out


def short_question(question: str) -> str:
    """For narrow displays: a cloze probe as its blanked sentence alone, any other question unchanged."""
    if question.startswith(PREFIX) and ": " in question:
        return question.split(": ", 1)[1]
    return question
