"""The inner loop (student/innerloop.py): sequential reference engine and batched multi-LoRA equivalence."""

import math

import pytest
import torch

from student.config import AnswerSettings, LoraSettings, TrainSettings
from student.innerloop import Candidate, CandidateResult, evaluate
from student.student import Student

LORA = LoraSettings(r=4, alpha=8)
ANSWER = AnswerSettings(max_new_tokens=6, question_format="chat", batch_size=4)
TEXTS = ["The Eiffel Tower is in Paris.", "Super Bowl 50 was won by the Denver Broncos.", "Water boils at 100 C."]
QUESTIONS = ["Where is the Eiffel Tower?", "Who won Super Bowl 50?"]
GOLDS = ["Paris", "Denver Broncos"]


def _settings(**kw) -> TrainSettings:
    base = dict(lr=3e-3, epochs=2, batch_size=2, max_len=48, seed=0)
    return TrainSettings(**{**base, **kw})


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_sequential_matches_student_and_leaves_model_untouched(tiny_model, tiny_tokenizer):
    before = _state(tiny_model)
    names = [n for n, _ in tiny_model.named_modules()]
    cands = [
        Candidate(TEXTS, QUESTIONS, GOLDS, _settings(seed=3), tag="edit"),
        Candidate([], QUESTIONS, GOLDS, _settings(), tag="base"),
    ]
    results = evaluate(tiny_model, tiny_tokenizer, cands, LORA, ANSWER, engine="sequential")
    assert [r.tag for r in results] == ["edit", "base"]
    assert all(isinstance(r, CandidateResult) for r in results)
    edit, base = results
    assert edit.steps == 4 and len(edit.losses) == 4 and edit.tokens > 0
    assert base.steps == 0 and base.losses == [] and len(base.answers) == 2
    assert not math.isnan(edit.nll) and 0.0 <= edit.accuracy <= 1.0

    # the model comes back as it was: same modules, weights, flags, mode
    assert [n for n, _ in tiny_model.named_modules()] == names
    assert not hasattr(tiny_model, "peft_config")
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())
    assert all(p.requires_grad for p in tiny_model.parameters()) and not tiny_model.training

    # the reference: a Student absorbing the same texts from the same seed
    student = Student(tiny_model, tiny_tokenizer, LORA, ANSWER)
    student.reset(3)
    train = student.absorb(TEXTS, _settings(seed=3))
    assert train.losses == pytest.approx(edit.losses, rel=1e-6)
    assert student.answer(QUESTIONS) == edit.answers
    nlls = student.answer_nll(QUESTIONS, GOLDS)
    assert sum(nlls) / len(nlls) == pytest.approx(edit.nll, rel=1e-6)


def test_results_do_not_depend_on_order(tiny_model, tiny_tokenizer):
    a = Candidate(TEXTS, QUESTIONS, GOLDS, _settings(seed=1), tag="a")
    b = Candidate(TEXTS[:1], QUESTIONS, GOLDS, _settings(seed=2, lr=1e-2), tag="b")
    ab = evaluate(tiny_model, tiny_tokenizer, [a, b], LORA, ANSWER, engine="sequential")
    ba = evaluate(tiny_model, tiny_tokenizer, [b, a], LORA, ANSWER, engine="sequential")
    assert ab[0].losses == ba[1].losses and ab[1].losses == ba[0].losses
    assert ab[0].answers == ba[1].answers and ab[0].nll == ba[1].nll


def test_rejects_bad_input(tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError):
        Candidate(TEXTS, QUESTIONS, GOLDS[:1])
    with pytest.raises(ValueError):
        evaluate(tiny_model, tiny_tokenizer, [], LORA, ANSWER, engine="nope")
    assert evaluate(tiny_model, tiny_tokenizer, [], LORA, ANSWER) == []
