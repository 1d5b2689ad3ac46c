"""The teacher: samples self-edits for a passage, parses them into training texts, writes probe questions."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .backend import GenerationBackend, OnText
from .cloze import as_word, cloze_probes
from .config import ParseSettings, TeacherSettings
from .parsing import parse_completion, parse_directives, parse_probes
from .prompts import PROBE_HEADER, build_prompt, get_family, probe_prompt
from .study import SPA_TEMPLATES, StudyTemplate, StudyText, write_questions_many, write_study_texts


@dataclass
class SelfEdit:
    family: str
    prompt: str
    completion: str  # the generated text only (the prompt's header is not repeated)
    texts: list[str] = field(default_factory=list)  # training texts for the student
    directives: dict = field(default_factory=dict)  # e.g. {"lr": 3e-4, "epochs": 5}


def self_edit_from_completion(completion: str, title: str, passage: str, family: str = "implications",
                              parse: Optional[ParseSettings] = None, prompt: str = "") -> SelfEdit:
    """Wrap any completion (ours, or a reference teacher's such as SEAL's GPT-4.1 self-edits) as a SelfEdit."""
    get_family(family)
    return SelfEdit(
        family=family,
        prompt=prompt,
        completion=completion,
        texts=parse_completion(completion, title, passage, family, parse),
        directives=parse_directives(completion),
    )


_WS = re.compile(r"\s+")


def _norm(s: str) -> str:
    return _WS.sub(" ", s.casefold()).strip()


_WORD = re.compile(r"\w+")


def passage_share(text: str, passage: str) -> float:
    """Share of ``text``'s words (case-folded) that occur in ``passage``: 1.0 for a verbatim copy, low for an
    invented one (0.0 for a text without words). Across ReST-EM runs the self-edits that beat the passage alone
    were the most grounded ones, so a teacher learning from its rewards shows it as this share rising."""
    words = _WORD.findall(text.casefold())
    if not words:
        return 0.0
    vocab = set(_WORD.findall(passage.casefold()))
    return sum(w in vocab for w in words) / len(words)


MAX_ANSWER_WORDS = 12  # probes want short, checkable answers


def filter_probes(pairs: Sequence[tuple[str, str]], passage: str, title: str = "",
                  max_answer_words: int = MAX_ANSWER_WORDS) -> list[tuple[str, str]]:
    """Keep pairs whose answer occurs in the passage (case-insensitive, whitespace-normalised, on word
    boundaries: "he" does not match inside "the") and whose question is non-empty. Also dropped: answers longer
    than ``max_answer_words`` words, answers the question gives away, the bare title (a small model's answer to
    everything), and repeats (one pair per question and one per answer, for diverse probes). Order is kept."""
    text = _norm(passage)
    title_n = _norm(title)
    out, seen_q, seen_a = [], set(), set()
    for q, a in pairs:
        qn, an = _norm(q), _norm(a)
        if not qn or not an or not re.search(as_word(an), text):
            continue
        if len(an.split()) > max_answer_words or an in qn or an == title_n:
            continue
        qkey, akey = qn.rstrip("?. "), re.sub(r"^(?:the|a|an)\s+", "", an)
        if qkey in seen_q or akey in seen_a:
            continue
        seen_q.add(qkey)
        seen_a.add(akey)
        out.append((q.strip(), a.strip()))
    return out


class Teacher:
    """Writes self-edits through a :class:`~teacher.backend.GenerationBackend`.

    ``tokenizer`` renders the prompts (chat template or raw); ``settings`` and ``parse`` default to
    ``TeacherSettings()`` / ``ParseSettings()``."""

    def __init__(self, backend: GenerationBackend, tokenizer, settings: Optional[TeacherSettings] = None,
                 parse: Optional[ParseSettings] = None):
        self.backend = backend
        self.tokenizer = tokenizer
        self.settings = settings or TeacherSettings()
        self.parse = parse or ParseSettings()

    def prompt(self, title: str, passage: str, family: Optional[str] = None) -> str:
        return build_prompt(self.tokenizer, family or self.settings.family, title, passage, self.settings.use_chat)

    def propose(self, title: str, passage: str, k: Optional[int] = None, family: Optional[str] = None,
                on_text: Optional[OnText] = None, seed: Optional[int] = None) -> list[SelfEdit]:
        """Sample ``k`` (default ``settings.samples``) self-edits for one passage in one batched call.
        ``on_text(0, sample_idx, text_so_far)`` streams them. ``seed`` overrides ``settings.seed`` (pass a new one
        per ReST-EM round to get fresh samples)."""
        return self.propose_many([(title, passage)], k=k, family=family, on_text=on_text, seed=seed)[0]

    def propose_many(self, docs: Sequence[tuple[str, str]], k: Optional[int] = None, family: Optional[str] = None,
                     on_text: Optional[OnText] = None, seed: Optional[int] = None) -> list[list[SelfEdit]]:
        """``k`` self-edits for each (title, passage) in ``docs``, all in one batched generate call;
        ``on_text(doc_idx, sample_idx, text_so_far)``."""
        s = self.settings
        fam = family or s.family
        get_family(fam)
        k = s.samples if k is None else int(k)
        if k < 1 or not docs:
            return [[] for _ in docs]
        prompts = [self.prompt(t, p, fam) for t, p in docs]
        outs = self.backend.generate(prompts, k, s.max_new_tokens, s.temperature, s.top_p,
                                     s.seed if seed is None else seed, on_text=on_text,
                                     no_repeat_ngram=s.no_repeat_ngram)
        result = []
        for (title, passage), prompt, completions in zip(docs, prompts, outs):
            result.append([self_edit_from_completion(c, title, passage, fam, self.parse, prompt)
                           for c in completions])
        return result

    def make_probes(self, title: str, passage: str, n: Optional[int] = None, extra_samples: int = 3,
                    temperature: float = 0.7) -> list[tuple[str, str]]:
        """Up to ``n`` (default ``settings.probe_count``) question-answer probes for a passage without questions.

        One greedy completion first; if it yields fewer than ``n`` valid pairs, ``extra_samples`` low-temperature
        samples follow. Only pairs whose answer occurs in the passage survive (:func:`filter_probes`). Still short
        of ``n`` (a small teacher's usual case) and ``settings.cloze_fallback``: fill-in-the-blank probes make up the
        rest (:func:`teacher.cloze.cloze_probes`)."""
        s = self.settings
        n = s.probe_count if n is None else int(n)
        if n < 1:
            return []
        prompt = probe_prompt(self.tokenizer, title, passage, n, s.use_chat)
        budget = 40 * n + 24  # ~ one question + short answer per 40 tokens
        pairs: list[tuple[str, str]] = []
        rounds = [(1, 0.0)] + ([(extra_samples, temperature)] if extra_samples > 0 else [])
        for count, temp in rounds:
            outs = self.backend.generate([prompt], count, budget, temp, s.top_p, s.seed)
            for completion in outs[0]:
                pairs.extend(parse_probes(completion, prefix=PROBE_HEADER))
            kept = filter_probes(pairs, passage, title)
            if len(kept) >= n:
                break
        kept = kept[:n]
        if len(kept) < n and s.cloze_fallback:
            answers = {_norm(a) for _, a in kept}
            kept += [(q, a) for q, a in cloze_probes(title, passage, n) if _norm(a) not in answers][: n - len(kept)]
        return kept

    def write_questions(self, title: str, passage: str, n: int = 8, samples: int = 1,
                        temperature: Optional[float] = None) -> list[str]:
        """Up to ``n`` questions about the passage (:func:`teacher.study.write_questions`), sampled with this
        teacher's settings (``temperature`` overrides)."""
        return self.write_questions_many([(title, passage)], n, samples, temperature)[0]

    def write_questions_many(self, docs: Sequence[tuple[str, str]], n: int = 8, samples: int = 1,
                             temperature: Optional[float] = None, seed: Optional[int] = None) -> list[list[str]]:
        """:meth:`write_questions` for each (title, passage), in one batched generate call."""
        s = self.settings
        return write_questions_many(self.backend, self.tokenizer, docs, n, samples,
                                    s.temperature if temperature is None else temperature, s.top_p,
                                    s.seed if seed is None else seed, use_chat=s.use_chat)

    def write_study_texts(self, title: str, passage: str, templates: Sequence[StudyTemplate] = SPA_TEMPLATES,
                          samples: int = 1, temperature: Optional[float] = None) -> list[StudyText]:
        """Completions of the study templates for the passage (:func:`teacher.study.write_study_texts`), sampled
        with this teacher's settings (``temperature`` overrides)."""
        s = self.settings
        return write_study_texts(self.backend, self.tokenizer, title, passage, templates, samples,
                                 s.temperature if temperature is None else temperature, s.top_p, s.seed,
                                 s.max_new_tokens, s.use_chat)
