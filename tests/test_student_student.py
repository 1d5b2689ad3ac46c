import ast
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from student.config import AnswerSettings, LoraSettings, TrainSettings
from student.prompts import prompt_ids, question_prompt
from student.student import ADAPTER_NAME, Student

LORA = LoraSettings(r=8, alpha=16)
QUESTIONS = ["Who won Super Bowl 50?", "What is the capital of France?"]
ANSWERS = ["Broncos", "Paris"]
TEXTS = ["The Eiffel Tower is in Paris.", "Super Bowl 50 was won by the Denver Broncos.", "Water boils at 100 C."]


def _logits(model, tok, text="Hello world"):
    batch = tok([text], return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def _greedy(model, tok, ids, max_new):
    """Reference: one sequence, no padding, argmax token by token until eos."""
    ids = list(ids)
    new = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
    return tok.decode(new, skip_special_tokens=True).rstrip("\ufffd").strip()  # a cut multi-byte character dropped


def test_fresh_adapter_equals_base(tiny_model, tiny_tokenizer):
    before = _logits(tiny_model, tiny_tokenizer)
    student = Student(tiny_model, tiny_tokenizer, LORA)
    assert isinstance(student.model, PeftModel)
    assert torch.equal(_logits(student.model, tiny_tokenizer), before)
    with student.model.disable_adapter():
        assert torch.equal(_logits(student.model, tiny_tokenizer), before)
    # all-linear: q,k,v,o,gate,up,down in both layers, never lm_head
    wrapped = {n.split(".")[-1] for n, m in student.model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert sum(1 for _, m in student.model.named_modules() if hasattr(m, "lora_A")) == 14
    assert all(not v.any() for k, v in student.state().items() if "lora_B" in k)


def test_wraps_once_and_refuses_peft_models(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    settings = TrainSettings(epochs=1, batch_size=4, max_len=32)
    model = student.model
    student.absorb(TEXTS, settings)
    student.reset()
    student.absorb(TEXTS, settings)
    assert student.model is model and list(model.peft_config) == [ADAPTER_NAME]
    with pytest.raises(TypeError):
        Student(student.model, tiny_tokenizer, LORA)


def test_reset_is_seeded_and_leaves_global_rng(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    s0 = student.state()
    student.absorb(TEXTS, TrainSettings(lr=1e-2, epochs=1, max_len=32))
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    student.reset()
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(v, s0[k]) for k, v in student.state().items())
    student.reset(seed=1)
    assert any(not torch.equal(v, s0[k]) for k, v in student.state().items() if "lora_A" in k)


def test_state_load_round_trip_and_key_check(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    student.absorb(TEXTS, TrainSettings(lr=1e-2, epochs=2, batch_size=2, max_len=64))
    saved, logits = student.state(), _logits(student.model, tiny_tokenizer)
    assert all(v.device.type == "cpu" for v in saved.values())
    student.reset()
    assert not torch.equal(_logits(student.model, tiny_tokenizer), logits)
    student.load(saved)
    assert torch.equal(_logits(student.model, tiny_tokenizer), logits)
    with pytest.raises(ValueError, match="does not fit"):
        student.load({k: v for k, v in list(saved.items())[1:]})


def test_absorb_lowers_loss_and_reports_steps(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    before = student.text_nll(TEXTS)
    calls = []
    result = student.absorb(
        TEXTS, TrainSettings(lr=3e-2, epochs=5, batch_size=2, max_len=64), on_step=lambda *a: calls.append(a)
    )
    after = student.text_nll(TEXTS)
    assert result.steps == 10 and len(result.losses) == 10  # ceil(3 / 2) * 5
    assert [c[:3] for c in calls] == [(s + 1, 10, s // 2 + 1) for s in range(10)]
    assert [c[3] for c in calls] == result.losses
    assert result.tokens == 5 * sum(len(t.encode()) for t in TEXTS)  # target tokens per epoch
    assert result.seconds > 0
    assert after < before - 1.0, (before, after)


def test_first_step_loss_is_the_untrained_text_nll(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    nll = student.text_nll(TEXTS, max_len=64)
    result = student.absorb(TEXTS, TrainSettings(epochs=1, batch_size=8, max_len=64, autocast="off"))
    assert result.losses[0] == pytest.approx(nll, abs=1e-5)
    # bf16 autocast (the default on CPUs with native bf16) computes the same loss to bf16 precision
    student.reset()
    result = student.absorb(TEXTS, TrainSettings(epochs=1, batch_size=8, max_len=64, autocast="bf16"))
    assert result.losses[0] == pytest.approx(nll, rel=2e-2)


def test_replay_texts_are_trained_without_diluting_the_new_ones(tiny_model, tiny_tokenizer):
    """Steps are planned over the new texts; each step adds its share of the replay texts' mean NLL, so the
    replay is learned and the new text's part of the update keeps its full weight."""
    student = Student(tiny_model, tiny_tokenizer, LORA)
    settings = TrainSettings(lr=1e-2, epochs=6, batch_size=1, max_len=64, autocast="off")
    before = student.text_nll(TEXTS[1:])
    result = student.absorb(TEXTS[:1], settings, replay=TEXTS[1:])
    assert result.steps == 6                                # one new text per epoch, batch 1
    assert student.text_nll(TEXTS[1:]) < before - 0.5      # the replay texts were learned too
    # the first step's loss = new text's mean NLL + replay texts' mean NLL (not their pooled mean)
    student.reset()
    new, old = student.text_nll(TEXTS[:1]), student.text_nll(TEXTS[1:])
    first = student.absorb(TEXTS[:1], dataclasses.replace(settings, epochs=1), replay=TEXTS[1:]).losses[0]
    assert first == pytest.approx(new + old, rel=1e-5)


def test_anchor_holds_predictions_on_general_text(tiny_model, tiny_tokenizer):
    """The KL anchor keeps the adapted model's predictions on anchor text near the base model's (more so the
    larger its weight), and the anchored update still learns its texts; weight 0 is the unanchored update."""
    from student.batching import anchor_kl, pad_batch, pad_id_of, tokenize_texts
    anchor = ["the river runs to the sea and the rain falls on the hills", "a small dog sleeps by the warm fire"]
    settings = TrainSettings(lr=1e-2, epochs=8, batch_size=4, max_len=64, autocast="off", anchor_batch=2)
    student = Student(tiny_model, tiny_tokenizer, LORA)
    batch = pad_batch(tokenize_texts(tiny_tokenizer, anchor, 64), pad_id_of(tiny_tokenizer))

    def absorb(weight, **kw):
        student.reset()
        result = student.absorb(TEXTS, dataclasses.replace(settings, anchor_weight=weight), **kw)
        with torch.no_grad():
            kl, n = anchor_kl(student.model, batch)
        return float(kl / n), result.losses

    free, free_losses = absorb(1.0)
    held, held_losses = absorb(1.0, anchor=anchor)
    tight, _ = absorb(5.0, anchor=anchor)
    assert free > 0.1 and held < free / 2 and tight < held / 2
    assert held_losses[-1] < 0.8 * held_losses[0]       # the texts are still learned
    off, off_losses = absorb(0.0, anchor=anchor)
    assert off_losses == pytest.approx(free_losses, abs=1e-6) and off == pytest.approx(free, abs=1e-6)


def test_zero_epochs_changes_nothing(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    s0 = student.state()
    result = student.absorb(TEXTS, TrainSettings(epochs=0))
    assert (result.steps, result.losses, result.tokens) == (0, [], 0)
    assert all(torch.equal(v, s0[k]) for k, v in student.state().items())


def test_seeded_training_is_reproducible(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LoraSettings(r=8, alpha=16, dropout=0.1))
    settings = TrainSettings(lr=1e-2, epochs=3, batch_size=1, max_len=64, seed=7)

    def run(s):
        student.reset()
        losses = student.absorb(TEXTS, s).losses
        return losses, student.state()

    (l1, s1), (l2, s2) = run(settings), run(settings)
    assert l1 == l2
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    l3, _ = run(TrainSettings(lr=1e-2, epochs=3, batch_size=1, max_len=64, seed=8))
    assert l3 != l1


def test_answer_learns_stops_at_eos_and_base_ignores_adapter(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA, AnswerSettings(max_new_tokens=12, question_format="raw"))
    base_answers = student.answer(QUESTIONS, base=True)
    assert student.answer(QUESTIONS) == base_answers  # fresh adapter == base
    nll_before = student.answer_nll(QUESTIONS, ANSWERS)
    texts = [question_prompt(tiny_tokenizer, q, "raw") + a for q, a in zip(QUESTIONS, ANSWERS)]
    student.absorb(texts, TrainSettings(lr=3e-2, epochs=30, batch_size=2, max_len=128))

    assert student.answer(QUESTIONS) == ANSWERS  # greedy, stopped at the trained eos, stripped
    assert student.answer(QUESTIONS, base=True) == base_answers
    nll_after = student.answer_nll(QUESTIONS, ANSWERS)
    assert all(a < b - 1.0 for a, b in zip(nll_after, nll_before)), (nll_before, nll_after)
    assert student.answer_nll(QUESTIONS, ANSWERS, base=True) == pytest.approx(nll_before, abs=1e-5)


def test_answer_batched_left_padding_matches_single_greedy(tiny_model, tiny_tokenizer):
    settings = AnswerSettings(max_new_tokens=10, question_format="chat", batch_size=2)
    student = Student(tiny_model, tiny_tokenizer, LORA, settings)
    student.absorb(TEXTS, TrainSettings(lr=1e-2, epochs=2, batch_size=2, max_len=64))
    questions = ["Why?", "What is the longest river in Africa, by length?", "Who?"]
    side = tiny_tokenizer.padding_side
    answers = student.answer(questions)
    assert tiny_tokenizer.padding_side == side
    expected = [_greedy(student.model, tiny_tokenizer, prompt_ids(tiny_tokenizer, q, "chat"), 10) for q in questions]
    assert answers == expected
    assert all(len(a) <= 10 for a in answers)  # one byte per token: at most max_new_tokens chars


def test_answer_nll_matches_manual_log_likelihood(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA, AnswerSettings(question_format="chat"))
    q, a = QUESTIONS[0], "Denver Broncos"
    p = prompt_ids(tiny_tokenizer, q, "chat")
    ids = tiny_tokenizer(a, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(student.model(input_ids=torch.tensor([p + ids])).logits[0].float(), -1)
    manual = -sum(logp[len(p) - 1 + i, t].item() for i, t in enumerate(ids)) / len(ids)
    got = student.answer_nll([q, "Why?"], [a, "x"])
    assert got[0] == pytest.approx(manual, abs=1e-4)
    assert math.isnan(student.answer_nll(["Why?"], [""])[0])
    with pytest.raises(ValueError):
        student.answer_nll(["a", "b"], ["c"])


def test_text_nll_is_token_weighted_mean(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    a, b = TEXTS[0], TEXTS[2]
    na, nb = len(a.encode()), len(b.encode())  # targets: bytes + eos - first token
    joint = student.text_nll([a, b])
    assert joint == pytest.approx((student.text_nll([a]) * na + student.text_nll([b]) * nb) / (na + nb), abs=1e-5)
    assert math.isnan(student.text_nll([]))


FORBIDDEN = {"teacher", "agent", "tui", "textual", "typer", "rich", "chromadb"}


def test_student_imports_no_other_room():
    for path in Path(__file__).resolve().parents[1].joinpath("student").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [n.name for n in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & FORBIDDEN, (path.name, names)


def test_micro_batched_steps_equal_one_padded_batch(tiny_tokenizer):
    """A step split into micro-batches (gradients accumulated, one normaliser) is the same update as one padded
    batch: compared in float64 after 3 epochs on texts of very different lengths."""
    from .conftest import make_tiny_model
    from student.trainer import train_adapter

    texts = TEXTS + ["Paris " * 40, "A short one.", "Denver " * 25]
    settings = TrainSettings(lr=1e-2, epochs=3, batch_size=4, max_len=96, seed=3)

    def run(max_tokens, overhead):
        student = Student(make_tiny_model(tiny_tokenizer).double(), tiny_tokenizer, LORA)
        result = train_adapter(student.model, tiny_tokenizer, texts, settings, max_tokens=max_tokens,
                               overhead=overhead)
        return result, student.state()

    (one, s1), (many, s2) = run(10**6, 10**6), run(40, 0)
    assert one.steps == many.steps == 6 and one.tokens == many.tokens
    assert many.losses == pytest.approx(one.losses, rel=1e-10)
    assert all(torch.allclose(s1[k], s2[k], rtol=1e-9, atol=1e-12) for k in s1)
    assert not all(torch.equal(s1[k], s2[k]) for k in s1)  # the split did change the order of the sums
