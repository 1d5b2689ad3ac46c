"""Fill-in-the-blank probes cut from the passage itself, for when the teacher model writes no usable questions.

A 135M teacher almost never writes a question whose short answer is in the passage (measured: 0 probes for two
plain-text SQuAD paragraphs), and a document without probes is ingested unguarded. A cloze probe needs no model:
one sentence of the passage with a name or a number blanked out; asked closed-book, only a student that learned
the passage can fill it in, and the gold answer's NLL measures how close it is. Deterministic: the same passage
always gives the same probes.
"""
from __future__ import annotations

import re

from .parsing import clean_line

BLANK = "____"
PREFIX = "Fill in the blank"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?:s)?(?![\w])|(?<![\w.])\d(?![\w.,])")
_CAP = re.compile(r"[A-Z][\w'’.-]*")
_LINKS = {"of", "the", "de", "da", "di", "von", "van", "der", "du", "la", "le", "and", "&"}
_PUNCT = "\"'()[],;:.!?"
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]*)>")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+")
_TAG = re.compile(r"</?[A-Za-z][^<>\n]*>")
# Words too common to test anything when blanked: function words, and the everyday vocabulary of prose and
# technical writing. A one-word blank is a name, a number or a word outside this list (and not an inflected
# form such as "documented", "supporting", "mostly").
COMMON = frozenset("""
a about above across after again against all almost along already also although always am among an and another
any anyone anything are around as at away back be became because become becomes been before being below between
both but by came can cannot could did do does doing done down during each either else enough even ever every few
for from further get gets given go goes going gone got had has have having he her here hers herself him himself
his how however i if in include includes including into is it its itself just keep kept know known last later
least less let like made main make makes many may me might more most much must my near need needs never new next
no nor not now of off often on once one only onto or other others our ours out over own part per perhaps put
rather really same see seen several shall she should since so some something sometimes still such than that the
their theirs them themselves then there these they thing things this those though through thus to together too
took toward towards under until up upon us use used uses using very via was way ways we well were what whatever
when where whether which while who whole whom whose why will with within without would yet you your yours
able according actually added additional allow allowed allows almost alternative approach available based basic
better called case cases certain change changes common complete completely content current currently data default
describe described description design designed detail details different directly document documentation
documented documents easy effect either example examples exist existing feature features file files first
following form format found full fully function functions general generally good great group high however
implementation implemented important included information instead large larger level likely long lower mainly
mean means method methods mode model number numbers often order original output particular people person place
point possible present process provide provided provides purpose rate reason related release released result
results second set show shown side similar simple simply single size small specific standard start state states
support supported supports system systems take taken term terms time times type types typically usually value
values various version versions whole work works world year years
""".split())
_INFLECTED = re.compile(r"\w+(?:ed|ing|ly)$")


def as_word(text: str) -> str:
    """A regex for ``text`` on word boundaries ("he" does not match inside "the")."""
    return r"(?<!\w)" + re.escape(text) + r"(?!\w)"


def plain_text(passage: str) -> str:
    """The passage as a reader sees it: markdown links and images as their text (``[text](url)`` -> ``text``),
    bare URLs and HTML tags dropped, emphasis, code ticks, headings and list markers removed."""
    s = _IMAGE.sub(r"\1", passage)
    s = _LINK.sub(r"\1", s)
    s = _REF_LINK.sub(r"\1", s)
    s = _AUTOLINK.sub("", s)
    s = _URL.sub("", s)
    s = _TAG.sub("", s)
    return "\n".join(clean_line(line).replace("`", "") for line in s.splitlines())


def _sentences(passage: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(plain_text(passage).split())) if s.strip()]


def is_common(word: str) -> bool:
    """A word too ordinary to blank: in :data:`COMMON`, or a lower-case inflected form ("documented", "mostly";
    names such as "Beijing" are not)."""
    return word.casefold() in COMMON or (word.islower() and bool(_INFLECTED.fullmatch(word)))


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
    long_words = [w for w in words if len(w) >= 7 and w.isalpha() and w.islower() and not is_common(w)]
    return ([n for n in names if " " in n] + _NUMBER.findall(sentence) + [n for n in names if " " not in n]
            + long_words)


def _answer(sentence: str, title: str, used: set[str]) -> str:
    """The most specific blank of a sentence that is not in the title, not repeated in the sentence, not used."""
    title_n = title.casefold().strip()
    for a in _candidates(sentence):
        a_n = a.casefold()
        if len(a) < 2 or a_n in used or re.search(as_word(a_n), title_n) or (" " not in a and is_common(a)):
            continue  # the title is part of the question: an answer inside it would be given away
        if len(re.findall(as_word(a), sentence)) != 1:
            continue
        return a
    return ""


def cloze_probes(title: str, passage: str, n: int, min_words: int = 6) -> list[tuple[str, str]]:
    """Up to ``n`` (question, answer) pairs: "Fill in the blank (about TITLE): ... ____ ...", answer = the blanked
    span (a name, a number or an uncommon word, never a common one). One per sentence of the passage's plain text
    (markdown links, emphasis and code ticks removed), spread over the passage (every k-th sentence first),
    distinct answers."""
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
