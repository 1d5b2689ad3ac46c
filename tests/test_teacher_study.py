"""Study material families (teacher/study.py): questions, SPA-style templates, cues, continuations, diversity."""

import gzip

import pytest

from teacher.config import TeacherSettings
from teacher.selfedit import Teacher
from teacher.study import (QUESTIONS_HEADER, SPA_TEMPLATES, StudyText, compression_ratio, continuation_pairs,
                           cue_questions, parse_questions, questions_prompt, sentence_cues, template_prompt,
                           write_questions, write_study_texts)
from tests.conftest import make_tiny_tokenizer

T = "Super Bowl 50"
P = ("Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa Clara. "
     "The Denver Broncos defeated the Carolina Panthers 24-10. Von Miller was named MVP.")


class Canned:
    """A generation backend returning canned completions (per prompt, cycling over samples); records the calls."""

    def __init__(self, completions):
        self.completions = completions
        self.calls = []

    def generate(self, prompts, n, max_new_tokens, temperature, top_p, seed, on_text=None, no_repeat_ngram=0):
        self.calls.append(dict(prompts=list(prompts), n=n, max_new_tokens=max_new_tokens, temperature=temperature,
                               top_p=top_p, seed=seed))
        return [[self.completions[(i * n + j) % len(self.completions)] for j in range(n)] for i in range(len(prompts))]


def test_parse_questions():
    completion = ("Who won Super Bowl 50?\n"
                  "2. **Where** was the game played? Answer: Levi's Stadium\n"
                  "3) Question 3: Who was named MVP?\n"
                  "- who won super bowl 50 ?\n"  # duplicate up to case and spacing
                  "4. The Broncos won.\n"  # no question mark
                  "5. Why?\n"  # too short
                  "6. What was the score of the game?")
    got = parse_questions(completion)
    assert got == ["Who won Super Bowl 50?", "Where was the game played?", "Who was named MVP?",
                   "What was the score of the game?"]
    assert parse_questions(completion, cap=2) == got[:2]
    assert parse_questions("", header="") == []


def test_write_questions_prompt_and_merge():
    tok = make_tiny_tokenizer()
    prompt = questions_prompt(tok, T, P, 3)
    assert prompt.startswith(f"<|user|>{T}\n{P}\n\nWrite 3 different questions")
    assert prompt.endswith(f"<|assistant|>{QUESTIONS_HEADER}")
    raw = questions_prompt(make_tiny_tokenizer(chat=False), T, P, 3)
    assert raw.startswith(f"{T}\n{P}\n\n") and raw.endswith(f"alone.\n\n{QUESTIONS_HEADER}")
    backend = Canned(["Who won Super Bowl 50?\n2. Who was MVP?", "Who won Super Bowl 50?\n2. Where was it played?"])
    qs = write_questions(backend, tok, T, P, n=3, samples=2, temperature=0.5, seed=4)
    assert qs == ["Who won Super Bowl 50?", "Who was MVP?", "Where was it played?"]
    assert backend.calls[0]["n"] == 2 and backend.calls[0]["max_new_tokens"] == 24 * 3 + 16
    teacher = Teacher(Canned(["Who was MVP?"]), tok, TeacherSettings(temperature=0.2, seed=9))
    assert teacher.write_questions(T, P, n=2) == ["Who was MVP?"]
    assert teacher.backend.calls[0]["temperature"] == 0.2 and teacher.backend.calls[0]["seed"] == 9


def test_spa_templates_and_study_texts():
    tok = make_tiny_tokenizer()
    assert [t.name for t in SPA_TEMPLATES] == ["key-concepts", "summary", "connect-facts", "teach",
                                                 "questions-answers"]
    assert {t.group for t in SPA_TEMPLATES} == {"concept learning", "critical thinking", "generative learning"}
    prompt = template_prompt(tok, SPA_TEMPLATES[1], T, P)
    assert prompt == f"<|user|>{T}\n{P}\n\n{SPA_TEMPLATES[1].instruction}<eos><|assistant|>"
    backend = Canned([" The Broncos won.  ", "", "Miller was MVP."])
    texts = write_study_texts(backend, tok, T, P, SPA_TEMPLATES[:2], samples=2, max_new_tokens=64)
    assert len(backend.calls[0]["prompts"]) == 2 and backend.calls[0]["max_new_tokens"] == 64
    # prompt 0 gets completions 0 and 1 (the empty one is dropped), prompt 1 gets 2 and 0
    assert texts == [StudyText("key-concepts", SPA_TEMPLATES[0].instruction, "The Broncos won."),
                     StudyText("summary", SPA_TEMPLATES[1].instruction, "Miller was MVP."),
                     StudyText("summary", SPA_TEMPLATES[1].instruction, "The Broncos won.")]
    assert write_study_texts(backend, tok, T, P, (), samples=2) == []
    teacher = Teacher(Canned(["Key: Broncos."]), tok, TeacherSettings(max_new_tokens=32, temperature=0.4))
    assert teacher.write_study_texts(T, P, SPA_TEMPLATES[:1]) == [
        StudyText("key-concepts", SPA_TEMPLATES[0].instruction, "Key: Broncos.")]
    assert (teacher.backend.calls[0]["max_new_tokens"], teacher.backend.calls[0]["temperature"]) == (32, 0.4)


def test_sentence_cues_and_continuations():
    cues = sentence_cues(P)
    assert cues == [("Super Bowl 50 was played on February 7,", " 2016, at Levi's Stadium in Santa Clara."),
                    ("The Denver Broncos defeated", " the Carolina Panthers 24-10.")]
    assert [c + r for c, r in cues] == ["Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in "
                                        "Santa Clara.", "The Denver Broncos defeated the Carolina Panthers 24-10."]
    assert sentence_cues(P, min_words=5)[-1] == ("Von Miller", " was named MVP.")
    q, a = cue_questions(P)[1]
    assert q == 'Continue this sentence from the passage: "The Denver Broncos defeated ..."'
    assert a == "the Carolina Panthers 24-10."
    assert continuation_pairs(["a", " ", "b", "c"]) == [("a", "b"), ("b", "c")]
    assert continuation_pairs(["only"]) == []


def test_compression_ratio_values():
    assert compression_ratio([]) == 0.0
    # "abc": 3 bytes against gzip's 10-byte header, 5-byte deflate block and 8-byte trailer
    assert compression_ratio(["abc"]) == pytest.approx(3 / 23)
    assert compression_ratio(["ab", "cd"]) == compression_ratio(["ab\ncd"])
    same = ["The Denver Broncos won Super Bowl 50."] * 200
    raw = "\n".join(same).encode()
    assert compression_ratio(same) == len(raw) / len(gzip.compress(raw, 9, mtime=0)) > 50
    diverse = [f"Line {i}: {i * 7919 % 104729} {i ** 3} {hex(i * 2654435761)}" for i in range(200)]
    assert 1.5 < compression_ratio(diverse) < compression_ratio(same) / 10
