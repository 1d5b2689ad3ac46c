import pytest

from teacher.backend import TransformersBackend
from teacher.config import ParseSettings, TeacherSettings
from teacher.prompts import build_prompt, probe_prompt
from teacher.cloze import BLANK, cloze_probes, short_question
from teacher.selfedit import SelfEdit, Teacher, filter_probes, passage_share, self_edit_from_completion

T = "Super Bowl 50"
P = ("Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa Clara. "
     "The Denver Broncos defeated the Carolina Panthers 24-10, and Von Miller was named MVP.")


class FakeBackend:
    """Returns canned completions and records every call."""

    def __init__(self, *rounds):
        self.rounds = list(rounds)
        self.calls = []

    def generate(self, prompts, n, max_new_tokens, temperature, top_p, seed, on_text=None, no_repeat_ngram=0):
        self.calls.append(dict(prompts=list(prompts), n=n, max_new_tokens=max_new_tokens,
                               temperature=temperature, top_p=top_p, seed=seed, no_repeat_ngram=no_repeat_ngram))
        completions = self.rounds.pop(0)
        out = [[completions[i % len(completions)] for i in range(n)] for _ in prompts]
        if on_text:
            for pi, samples in enumerate(out):
                for si, text in enumerate(samples):
                    on_text(pi, si, text)
        return out


def test_propose_parses_completions(tiny_tokenizer):
    c1 = "1. Denver won Super Bowl 50.\n2. **Miller** was the MVP.\nlr: 3e-4\nepochs: 3"
    c2 = "- The game was in Santa Clara."
    be = FakeBackend([c1, c2])
    settings = TeacherSettings(family="implications", samples=2, temperature=0.9, top_p=0.8, seed=11, max_new_tokens=50)
    teacher = Teacher(be, tiny_tokenizer, settings, ParseSettings())
    streamed = []
    edits = teacher.propose(T, P, on_text=lambda p, s, t: streamed.append((p, s, t)))
    prompt = build_prompt(tiny_tokenizer, "implications", T, P, None)
    assert be.calls == [dict(prompts=[prompt], n=2, max_new_tokens=50, temperature=0.9, top_p=0.8, seed=11,
                             no_repeat_ngram=0)]
    assert edits == [
        SelfEdit("implications", prompt, c1,
                 [f"{T}\nDenver won Super Bowl 50.", f"{T}\nMiller was the MVP.", f"{T}\n{P}"],
                 {"lr": 3e-4, "epochs": 3}),
        SelfEdit("implications", prompt, c2, [f"{T}\nThe game was in Santa Clara.", f"{T}\n{P}"], {}),
    ]
    assert streamed == [(0, 0, c1), (0, 1, c2)]


def test_propose_k_family_seed_and_many(tiny_tokenizer):
    be = FakeBackend(["Who won?\nAnswer 1: Denver Broncos"], ["Broncos won."])
    teacher = Teacher(be, tiny_tokenizer, TeacherSettings(use_chat=False))
    edits = teacher.propose(T, P, k=3, family="self-qa", seed=5)
    assert len(edits) == 3 and be.calls[0]["n"] == 3 and be.calls[0]["seed"] == 5
    assert be.calls[0]["prompts"][0].endswith("Question 1: ")
    assert edits[0].texts == [f"{T}\nQuestion: Who won?\nAnswer: Denver Broncos", f"{T}\n{P}"]
    many = teacher.propose_many([(T, P), ("Other", "Another passage here.")], k=1, family="rewrite")
    assert len(be.calls[1]["prompts"]) == 2 and [len(m) for m in many] == [1, 1]
    assert many[1][0].texts == ["Other\nBroncos won.", "Other\nAnother passage here."]
    assert be.calls[0]["no_repeat_ngram"] == 0


def test_no_repeat_ngram_reaches_the_backend(tiny_tokenizer):
    be = FakeBackend(["Broncos won."])
    Teacher(be, tiny_tokenizer, TeacherSettings(use_chat=False, no_repeat_ngram=6)).propose(T, P, k=2)
    assert be.calls[0]["no_repeat_ngram"] == 6
    for bad in (-1, 1):
        with pytest.raises(ValueError, match="no_repeat_ngram"):
            TeacherSettings(no_repeat_ngram=bad)


def test_filter_probes():
    pairs = [
        ("Who won Super Bowl 50?", "the denver BRONCOS"),    # case-insensitive match: kept
        ("Who lost?", "Green Bay Packers"),                  # not in the passage
        ("", "Von Miller"),                                  # empty question
        ("Who won super bowl 50", "Denver Broncos"),         # duplicate question
        ("Where did Von Miller play?", "Von Miller"),        # answer given away by the question
        ("Where was it played?", "Levi's   Stadium"),        # whitespace-normalised match
        ("What happened?", P),                               # too long to be a short answer
        ("Who wrote it?", "he"),                             # only inside words ("the"): no match
        ("What is this about?", "super bowl 50"),            # the bare title
        ("Who were the champions?", "Denver Broncos"),       # an answer already used
        ("How many points did Carolina score?", "10"),       # a number on word boundaries: kept
    ]
    assert filter_probes(pairs, P, title=T) == [("Who won Super Bowl 50?", "the denver BRONCOS"),
                                                ("Where was it played?", "Levi's   Stadium"),
                                                ("How many points did Carolina score?", "10")]
    assert filter_probes([("Who?", "Von")], P) == [("Who?", "Von")] and filter_probes([("Who?", "Mill")], P) == []


def test_passage_share():
    passage = "The Denver Broncos defeated the Carolina Panthers 24-10."
    assert passage_share(passage, passage) == 1.0
    # denver, the, panthers occur (case-folded); beat, in, paris do not
    assert passage_share("denver BEAT the Panthers in Paris", passage) == pytest.approx(3 / 6)
    assert passage_share("Broncos 24, Panthers 10", passage) == 1.0  # numbers are words too
    assert passage_share("Zorblat glimmers", passage) == 0.0
    assert passage_share("- * ...", passage) == 0.0  # no words at all


def test_make_probes_keeps_answers_found_in_passage(tiny_tokenizer):
    greedy = ("When was Super Bowl 50 played?\nAnswer: February 7, 2016.\n"
              "Question 2: Who won the Super Bowl?\nAnswer 2: The New England Patriots\n"
              "Question 3: Who was named MVP?\nAnswer 3: Von Miller\n")
    sampled = ("Who did the Broncos defeat?\nAnswer: the Carolina Panthers\n"
               "Question 2: Who was named MVP?\nAnswer: Von Miller\n"
               "Question 3: What was the score?\nAnswer: 24-10\n")
    be = FakeBackend([greedy], [sampled])
    teacher = Teacher(be, tiny_tokenizer, TeacherSettings(probe_count=4, seed=3))
    probes = teacher.make_probes(T, P)
    assert probes == [("When was Super Bowl 50 played?", "February 7, 2016"),
                      ("Who was named MVP?", "Von Miller"),
                      ("Who did the Broncos defeat?", "the Carolina Panthers"),
                      ("What was the score?", "24-10")]
    assert [c["temperature"] for c in be.calls] == [0.0, 0.7]  # greedy first, low temperature to top up
    assert be.calls[0]["n"] == 1 and be.calls[1]["n"] == 3
    assert be.calls[0]["prompts"] == [probe_prompt(tiny_tokenizer, T, P, 4, None)]
    # enough valid pairs after the greedy pass: one call, capped at n
    be2 = FakeBackend([sampled])
    assert Teacher(be2, tiny_tokenizer).make_probes(T, P, n=2) == [
        ("Who did the Broncos defeat?", "the Carolina Panthers"), ("Who was named MVP?", "Von Miller")]
    assert len(be2.calls) == 1


def test_self_edit_from_reference_completion():
    se = self_edit_from_completion("1. Denver won.\n2. Miller was MVP.", T, P, "implications",
                                   ParseSettings(append_passage=False))
    assert se.texts == [f"{T}\nDenver won.", f"{T}\nMiller was MVP."] and se.prompt == "" and se.directives == {}


def test_teacher_on_tiny_model(tiny_model, tiny_tokenizer):
    settings = TeacherSettings(samples=2, max_new_tokens=16, seed=4)
    teacher = Teacher(TransformersBackend(tiny_model, tiny_tokenizer), tiny_tokenizer, settings)
    edits = teacher.propose(T, P)
    assert len(edits) == 2
    for se in edits:
        # the default family is rewrite (the embedded teacher's rewrites beat its implications)
        assert se.prompt.startswith("<|user|>") and se.prompt.endswith("Rewritten passages:\n")
        assert se.texts[-1] == f"{T}\n{P}"
    assert [se.completion for se in edits] == [se.completion for se in teacher.propose(T, P)]
    # a random model writes no valid probes: fill-in-the-blank probes from the passage stand in, or nothing
    assert teacher.make_probes(T, P, n=2) == cloze_probes(T, P, 2) != []
    teacher.settings.cloze_fallback = False
    assert teacher.make_probes(T, P, n=2) == []


def test_cloze_probes_blank_one_span_of_a_sentence():
    passage = ("Warsaw's first stock exchange was established in 1817 and continued trading until World War II. "
               "It was re-established in April 1991, after the end of communist control of the country. "
               "Today, the Warsaw Stock Exchange (WSE) is the largest market in the region. Short one.")
    probes = cloze_probes("Warsaw", passage, 5)
    assert [a for _, a in probes] == ["World War II", "1991", "Warsaw Stock Exchange"]
    for q, a in probes:
        assert q.startswith("Fill in the blank (about Warsaw): ") and q.count(BLANK) == 1
        assert q.split(": ", 1)[1].replace(BLANK, a) in passage  # the sentence, with the answer put back
    assert cloze_probes("Warsaw", passage, 2) == probes[:2] and cloze_probes("Warsaw", passage, 0) == []
    # an answer inside the title would be given away by "(about ...)"; text without names falls back to long words
    assert cloze_probes("Super Bowl 50", "Super Bowl 50 was an American football game played in Santa Clara.", 1) \
        == [("Fill in the blank (about Super Bowl 50): Super Bowl 50 was an American football game played in ____.",
             "Santa Clara")]
    assert [a for _, a in cloze_probes("", "Each class has a teacher who teaches them the whole curriculum.", 1)] \
        == ["curriculum"]
    assert cloze_probes("T", "Too short.", 3) == [] and cloze_probes("T", "", 3) == []
    # narrow displays show the blanked sentence alone; other questions unchanged
    assert short_question(probes[1][0]) == "It was re-established in April ____, after the end of communist control of the country."
    assert short_question("Who won: the Broncos?") == "Who won: the Broncos?"


def test_cloze_probes_read_markdown_as_text_and_skip_common_words():
    passage = ("Zstandard is maintained by Meta. The reference code is the [Zstandard and FSE library]"
               "(https://github.com/facebook/zstd) written in **portable** `C` by Yann Collet.\n"
               "The format is documented and the implementation is widely deployed in modern software today.\n"
               "The format was carefully documented and the implementation was reviewed by several experts.")
    probes = cloze_probes("Compression", passage, 5)
    assert probes, "the passage has names and numbers to blank"
    for q, a in probes:
        for markup in ("[", "](", "http", "**", "`"):
            assert markup not in q and markup not in a, (q, a)
        assert a.casefold() not in {"documented", "implementation", "carefully", "reviewed", "several"}
    assert ("Fill in the blank (about Compression): The reference code is the ____ library written in portable C "
            "by Yann Collet.", "Zstandard and FSE") in probes
    # a sentence of common words alone gives no probe
    assert cloze_probes("", "The format was carefully documented and the implementation was reviewed.", 1) == []
    assert [a for _, a in cloze_probes("", "The meeting happened in Beijing during the spring season.", 1)] \
        == ["Beijing"]
