"""Completion -> training texts, update directives and question/answer probes.

SEAL turned each non-empty line of a self-edit into one training sequence "{title}\\n{line}" and appended the
passage. We keep that, and clean what a small model leaks into its lines (list numbering, markdown, echoed prompt
headers, preambles ending with ':', duplicates), because the student otherwise learns to answer "1. **...**".
"""
from __future__ import annotations

import math
import re
from typing import Optional

from .config import ParseSettings
from .prompts import ECHO_HEADERS, get_family

# ---------------------------------------------------------------- markup

_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]*)`")
_HEADING = re.compile(r"^#{1,6}\s*")
_LIST = re.compile(r"^(?:[-*+–]\s+|[•·‣◦▪]\s*(?=\S)|\(?\d{1,3}[.)]\s+|\(\d{1,3}\)\s*)")
_LABEL_WORDS = r"(?:implications?|rewrites?|rewritten\s+passages?|rewritten\s+versions?|passages?|versions?|facts?|paraphrases?|titles?)"
_LABEL = re.compile(r"^" + _LABEL_WORDS + r"\s*#?\s*\d{0,3}\s*[:.)-]\s+(?=\S)", re.I)
# a line that is only a label ("Passage 1", "Rewrite #2:") or only numbering ("1.", "(3)", "#4")
_BARE_LABEL = re.compile(r"^(?:" + _LABEL_WORDS + r"\s*#?\s*\d{0,3}|\(?#?\d{1,3}\)?)\s*[:.)-]?$", re.I)
_SPACES = re.compile(r"\s+")


def clean_line(line: str, strip_markup: bool = True) -> str:
    """One line without list numbering ("1.", "1)", "(1)", "-", "*", "•"), markdown emphasis/headings/code and
    labels like "Implication 3:". Whitespace is collapsed."""
    s = line.strip()
    if not strip_markup:
        return _SPACES.sub(" ", s)
    s = _BOLD.sub(r"\2", s)
    s = _ITALIC.sub(r"\1", s)
    s = _CODE.sub(r"\1", s)
    s = s.replace("**", "").replace("__", "")  # unpaired leftovers
    for _ in range(3):  # "- 1. **x**", "### 2) x", "Implication 1: x"
        before = s
        s = _HEADING.sub("", s).strip()
        s = _LIST.sub("", s).strip()
        s = _LABEL.sub("", s).strip()
        if s == before:
            break
    return _SPACES.sub(" ", s).strip()


def _key(text: str) -> str:
    """Dedupe key: case-folded, whitespace collapsed, trailing punctuation dropped."""
    return _SPACES.sub(" ", text.casefold()).strip().rstrip(".!;,: ")


# ---------------------------------------------------------------- directives

DIRECTIVE_LIMITS: dict[str, tuple[float, float]] = {"lr": (1e-5, 1e-2), "epochs": (1, 20)}
_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_DIRECTIVE = re.compile(
    r"^(learning[\s_-]*rate|lr|epochs?|num[\s_-]*epochs|n[\s_-]*epochs|number of epochs)\s*[:=]\s*" + _NUM + r"\s*\.?$",
    re.I,
)


def _directive(line: str) -> Optional[tuple[str, float]]:
    """("lr"|"epochs", raw value) when the (cleaned) line is a directive, else None."""
    m = _DIRECTIVE.match(clean_line(line))
    if not m:
        return None
    name = "lr" if m.group(1).lower().replace(" ", "").replace("_", "").replace("-", "") in ("lr", "learningrate") \
        else "epochs"
    return name, float(m.group(2))


def parse_directives(completion: str) -> dict:
    """Update directives written as whole lines: "learning rate: 3e-4", "lr=1e-3", "epochs: 5" ->
    {"lr": 3e-4, "epochs": 5}. Values are validated (finite, > 0) and clamped: lr to [1e-5, 1e-2], epochs to
    an int in [1, 20]. A later line overrides an earlier one. Invalid values are ignored."""
    out: dict = {}
    for line in completion.splitlines():
        d = _directive(line)
        if d is None:
            continue
        name, value = d
        if not math.isfinite(value) or value <= 0:
            continue
        lo, hi = DIRECTIVE_LIMITS[name]
        if name == "epochs":
            out[name] = int(min(max(int(round(value)), lo), hi))
        else:
            out[name] = float(min(max(value, lo), hi))
    return out


# ---------------------------------------------------------------- question / answer pairs

def _is_header(text: str) -> bool:
    """An echoed prompt header ("Implications", "Passage:"), a bare label or numbering ("Passage 1", "Rewrite #2",
    "3.") or any line ending with ':' (a preamble such as "Here are some implications:")."""
    low = text.casefold().strip()
    return (low in ECHO_HEADERS or low.rstrip(":") + ":" in ECHO_HEADERS or low.endswith(":")
            or bool(_BARE_LABEL.match(low)))


_Q = re.compile(r"^(?:question\s*\d{0,3}\s*[:.)]|q\s*\d{0,3}\s*:)\s*", re.I)
_A = re.compile(r"^(?:answer\s*\d{0,3}\s*[:.)]|a\s*\d{0,3}\s*:)\s*", re.I)
_A_INLINE = re.compile(r"\s+(?:answer\s*\d{0,3}|a)\s*:\s*", re.I)


def _starts_with_question(text: str, strip_markup: bool = True) -> bool:
    for line in text.splitlines():
        c = clean_line(line, strip_markup)
        if c:
            return bool(_Q.match(c))
    return False


def with_header(completion: str, header: str) -> str:
    """Put back the header the prompt ended with ("Question 1: ") unless the completion already starts with a
    question marker."""
    if header and not _starts_with_question(completion):
        return header + completion.lstrip(" ")
    return completion


def qa_pairs(completion: str, strip_markup: bool = True, multiline_answers: bool = True) -> list[tuple[str, str]]:
    """Group "Question:/Question 3:/Q:" and "Answer:/A:" lines into (question, answer) pairs. Lines after a
    marker continue the current question or answer (answers: only when ``multiline_answers``); "Question: x?
    Answer: y" on one line also works; an echoed header ("Passage:") ends the current pair; pairs without a
    question or an answer are dropped; directive lines are skipped."""
    pairs: list[tuple[str, str]] = []
    q: list[str] = []
    a: list[str] = []
    state = None  # None | "q" | "a"

    def flush():
        qq, aa = " ".join(q).strip(), " ".join(a).strip()
        if qq and aa:
            pairs.append((qq, aa))

    for line in completion.splitlines():
        c = clean_line(line, strip_markup)
        if not c or _directive(c) is not None:
            continue
        mq, ma = _Q.match(c), _A.match(c)
        if mq:
            flush()
            q, a, state = [], [], "q"
            rest = c[mq.end():]
            parts = _A_INLINE.split(rest, maxsplit=1)
            if parts[0].strip():
                q.append(parts[0].strip())
            if len(parts) == 2:
                state = "a"
                if parts[1].strip():
                    a.append(parts[1].strip())
        elif ma:
            if state is None:
                continue
            state = "a"
            rest = c[ma.end():].strip()
            if rest:
                a.append(rest)
        elif _is_header(c):
            flush()
            q, a, state = [], [], None
        elif state == "q":
            q.append(c)
        elif state == "a" and (multiline_answers or not a):
            a.append(c)
    flush()
    return pairs


def _short_answer(answer: str) -> str:
    a = answer.strip().strip("\"'“”‘’").strip()
    a = a.rstrip(".;,!").strip().strip("\"'“”‘’").strip()
    return a


def parse_probes(completion: str, prefix: str = "") -> list[tuple[str, str]]:
    """(question, answer) pairs from "Question: ...\\nAnswer: ..." text. Answers are trimmed of quotes and
    trailing punctuation. ``prefix``: the header the prompt ended with (e.g. "Question 1: "), put back first."""
    text = with_header(completion, prefix) if prefix else completion
    out = []
    for q, a in qa_pairs(text, multiline_answers=False):
        a = _short_answer(a)
        if q.strip() and a:
            out.append((q.strip(), a))
    return out


# ---------------------------------------------------------------- training texts

def _units(completion: str, split: str, strip_markup: bool) -> list[str]:
    lines = completion.splitlines()
    kept: list[Optional[str]] = []  # None marks a paragraph break
    for line in lines:
        if not line.strip():
            kept.append(None)
            continue
        if _directive(line) is not None:
            continue
        c = clean_line(line, strip_markup)
        if not c or _is_header(c):
            continue
        kept.append(c)
    if split == "lines":
        return [c for c in kept if c]
    if split == "paragraphs":
        out, cur = [], []
        for c in kept + [None]:
            if c is None:
                if cur:
                    out.append(" ".join(cur))
                cur = []
            else:
                cur.append(c)
        return out
    if split == "whole":
        body = "\n".join(c for c in kept if c)
        return [body] if body else []
    raise ValueError(f"unknown split {split!r}; use 'lines', 'paragraphs' or 'whole'")


def passage_text(title: str, passage: str, settings: Optional[ParseSettings] = None) -> str:
    """The passage as :func:`parse_completion` appends it to a self-edit's texts ("{title}\\n{passage}")."""
    s = settings or ParseSettings()
    return f"{title}\n{passage.strip()}" if s.title_prefix and title else passage.strip()


def parse_completion(completion: str, title: str, passage: str, family: str = "implications",
                     settings: Optional[ParseSettings] = None) -> list[str]:
    """Training texts from one self-edit completion (see :class:`teacher.config.ParseSettings`).

    Lines-type families: each kept unit -> "{title}\\n{unit}". "self-qa": one text per question/answer pair,
    "{title}\\nQuestion: {q}\\nAnswer: {a}". Directive lines are never training texts. Units shorter than
    ``min_chars``, echoed headers, lines ending with ':' (preambles such as "Here are some implications:"),
    the title alone and duplicates (also of the passage) are dropped; at most ``max_texts`` are kept; then
    "{title}\\n{passage}" is appended when ``append_passage``."""
    s = settings or ParseSettings()
    fam = get_family(family)

    def titled(body: str) -> str:
        return f"{title}\n{body}" if s.title_prefix and title else body

    seen = {_key(passage), _key(title)} if passage or title else set()
    seen.discard("")
    texts: list[str] = []
    if fam.qa:
        for q, a in qa_pairs(with_header(completion, fam.header), s.strip_markup):
            body = f"Question: {q}\nAnswer: {a}"
            k = _key(body)
            if k in seen or len(q) + len(a) < s.min_chars:
                continue
            seen.add(k)
            texts.append(titled(body))
    else:
        for unit in _units(completion, s.split, s.strip_markup):
            k = _key(unit)
            if len(unit) < s.min_chars or k in seen:
                continue
            seen.add(k)
            texts.append(titled(unit))
    texts = texts[: max(0, s.max_texts)]
    if s.append_passage and passage.strip():
        texts.append(passage_text(title, passage, s))
    return texts
