"""Context distillation (student/distill.py): study items, targets, the top-k KL, training with both engines."""

import math

import pytest
import torch
import torch.nn.functional as F

from student.config import AnswerSettings, DistillSettings, LoraSettings, TrainSettings
from student.distill import (StudyItem, StudyRow, StudyTokens, TargetCache, Targets, compute_targets,
                             qa_study_item, rows_loss, tokenize_study, topk_kl, topk_targets)
from student.innerloop import Candidate, evaluate
from student.multilora import MultiLoRA, train_many
from student.prompts import question_prompt
from student.student import ADAPTER_NAME, Student
from tests.conftest import make_tiny_tokenizer

LORA = LoraSettings(r=4, alpha=8)
ANSWER = AnswerSettings(max_new_tokens=6, question_format="chat", batch_size=4)
PASSAGE = "Super Bowl 50\nThe Denver Broncos beat the Carolina Panthers 24-10 at Levi's Stadium."
QUESTIONS = ["Who won Super Bowl 50?", "Where was Super Bowl 50 played?"]
GOLDS = ["Denver Broncos", "Levi's Stadium"]


def _settings(**kw) -> TrainSettings:
    return TrainSettings(**{**dict(lr=3e-3, epochs=2, batch_size=2, max_len=96, seed=0, autocast="off"), **kw})


def _items(tok) -> list[StudyItem]:
    return [
        qa_study_item(tok, QUESTIONS[0], "The Denver Broncos.", PASSAGE),
        qa_study_item(tok, QUESTIONS[1], "At Levi's Stadium.", PASSAGE),
        StudyItem("", PASSAGE + "\n\n", "The Broncos won 24-10."),
    ]


# --- the loss ----------------------------------------------------------------------------------
def test_one_hot_target_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(5, 11, dtype=torch.float64) * 3
    gold = torch.tensor([3, 0, 10, 7, 3])
    index = torch.stack([gold, (gold + 1) % 11, (gold + 2) % 11], dim=1).to(torch.int32)
    logp = torch.tensor([[0.0, -math.inf, -math.inf]] * 5, dtype=torch.float64)
    rest = torch.full((5,), -math.inf, dtype=torch.float64)
    kl = topk_kl(logits, logp, index, rest)
    assert torch.allclose(kl, F.cross_entropy(logits, gold, reduction="none"), rtol=0, atol=1e-12)


def test_topk_kl_is_the_full_kl_when_the_rest_is_one_token_and_smaller_below():
    torch.manual_seed(1)
    teacher, student = torch.randn(4, 9, dtype=torch.float64), torch.randn(4, 9, dtype=torch.float64)
    full = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True,
                    reduction="none").sum(-1)
    t = topk_targets(teacher, top_k=8)  # 8 tokens + a rest bucket of one token = the whole distribution
    assert t.logp.dtype == torch.float32 and t.index.dtype == torch.int32 and t.logp.shape == (4, 8)
    assert torch.allclose(torch.logsumexp(torch.cat([t.logp, t.rest[:, None]], 1).double(), 1),
                          torch.zeros(4, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(topk_kl(student, t.logp, t.index, t.rest), full, atol=1e-5)
    coarse = topk_kl(student, *(lambda x: (x.logp, x.index, x.rest))(topk_targets(teacher, top_k=2)))
    assert (coarse >= -1e-7).all() and (coarse < full).all()  # merging buckets loses information
    # the student's rest bucket stays finite when its top-k hold nearly all the mass
    peaked = torch.full((1, 9), -60.0, dtype=torch.float32)
    peaked[0, 0] = 40.0
    tt = topk_targets(torch.randn(1, 9), top_k=3)
    assert torch.isfinite(topk_kl(peaked, tt.logp, tt.index, tt.rest)).all()


def test_one_hot_study_row_equals_the_text_nll(tiny_model, tiny_tokenizer):
    """rows_loss puts each target on the right logit: one-hot targets on a text's own tokens give its NLL."""
    ids = tiny_tokenizer("The Broncos won.", add_special_tokens=True)["input_ids"] + [tiny_tokenizer.eos_token_id]
    tokens = StudyTokens(head=tuple(ids[:3]), context=(), suffix=tuple(ids[3:]))
    n = tokens.count
    assert n == len(ids) - 3 and tokens.start == 2
    targets = Targets(torch.zeros(n, 1), torch.tensor(ids[3:], dtype=torch.int32)[:, None],
                      torch.full((n,), -math.inf))
    with torch.no_grad():
        kl = rows_loss(tiny_model, [StudyRow(tokens, targets), ids], tiny_tokenizer.pad_token_id)
        logits = tiny_model(input_ids=torch.tensor([ids])).logits[0]
    suffix_nll = F.cross_entropy(logits[2:-1], torch.tensor(ids[3:]), reduction="sum")
    full_nll = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="sum")
    assert kl[0].item() == pytest.approx(suffix_nll.item(), rel=1e-5)
    assert kl[1].item() == pytest.approx(full_nll.item(), rel=1e-5)


# --- items and targets ---------------------------------------------------------------------------
def test_study_tokens_align_student_and_target(tiny_tokenizer):
    tok = tiny_tokenizer
    t = tokenize_study(tok, StudyItem("Q: who? ", "Broncos won. ", "A: Broncos"), max_len=64, context_max_len=64)
    assert t.head == tuple(tok("Q: who? ")["input_ids"]) and t.context == tuple(tok("Broncos won. ")["input_ids"])
    assert t.suffix == tuple(tok("A: Broncos")["input_ids"]) + (tok.eos_token_id,)
    s, g = t.student_ids, t.target_ids
    assert t.count == len(t.suffix) == 11
    for j in range(t.count):  # the same next token at both positions
        assert s[t.start + j + 1] == g[t.target_start + j + 1] == t.suffix[j]
    cut = tokenize_study(tok, StudyItem("", "x" * 50, "abcdef", eos=True), max_len=4, context_max_len=10)
    assert len(cut.context) == 10 and cut.suffix == tuple(tok("abcd")["input_ids"])
    assert cut.first == 1 and cut.count == 3 and cut.start == 0  # no prefix: the first token is not predicted
    no_eos = tokenize_study(tok, StudyItem("a", "", "bc", eos=False), 8, 8)
    assert no_eos.suffix == tuple(tok("bc")["input_ids"]) and no_eos.student_ids == no_eos.target_ids


def test_zero_loss_when_the_student_is_the_target(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    cache = TargetCache(DistillSettings(top_k=8))
    same = StudyItem("Question: who won? ", "", "The Broncos.")
    read = StudyItem("Question: who won? ", PASSAGE + "\n", "The Broncos.")
    rows = cache.rows(student.model, tiny_tokenizer, [same, read], 96, base=student.model.disable_adapter)
    with torch.no_grad():
        loss = rows_loss(student.model, rows, tiny_tokenizer.pad_token_id)
    per_token = loss / torch.tensor([r.tokens.count for r in rows])
    assert abs(per_token[0].item()) <= 1e-6
    assert per_token[1].item() > 1e-3  # the context changes the base model's predictions


def test_cached_targets_equal_fresh_ones(tiny_model, tiny_tokenizer):
    tok = tiny_tokenizer
    items = _items(tok)
    student = Student(tiny_model, tok, LORA)
    cache = TargetCache(DistillSettings(top_k=6))
    first = cache.rows(student.model, tok, items + items[:1], 96, base=student.model.disable_adapter)
    assert len(cache) == 3 and first[3].targets is first[0].targets
    # train the adapter: cached targets still come from the base model, the cache is not recomputed
    student.absorb(["The Broncos won Super Bowl 50."], _settings(lr=3e-2, epochs=3))
    again = cache.rows(student.model, tok, items, 96, base=student.model.disable_adapter)
    assert all(a.targets is b.targets for a, b in zip(again, first))
    # fresh: each item alone (no padding), on the plain model, and on a multi-LoRA routed to no adapter
    tokens = cache.tokenize(tok, items, 96)
    student.model.unload()
    if hasattr(tiny_model, "peft_config"):
        del tiny_model.peft_config
    for i, t in enumerate(tokens):
        fresh = compute_targets(tiny_model, [t], cache.settings, tok.pad_token_id)[0]
        assert torch.equal(fresh.index, first[i].targets.index)
        assert torch.allclose(fresh.logp, first[i].targets.logp, atol=1e-5)
        assert torch.allclose(fresh.rest, first[i].targets.rest, atol=1e-5)
        assert fresh.logp.shape == (t.count, 6)
    with MultiLoRA(tiny_model, LORA, 2) as multi:
        routed = TargetCache(cache.settings)
        train_many(multi, tok, [[]], [_settings()], study=[items], targets=routed)
        for i, t in enumerate(tokens):
            assert torch.allclose(routed.get(t).logp, first[i].targets.logp, atol=1e-5)


def test_gradient_flows_only_into_the_adapter(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA)
    rows = TargetCache().rows(student.model, tiny_tokenizer, _items(tiny_tokenizer), 96,
                              base=student.model.disable_adapter)
    student.model.train()
    rows_loss(student.model, rows, tiny_tokenizer.pad_token_id).sum().backward()
    grads = {n: p.grad for n, p in student.model.named_parameters()}
    assert all(g is None for n, g in grads.items() if "lora_" not in n)
    lora_b = [g for n, g in grads.items() if "lora_B" in n]
    assert lora_b and all(g is not None for g in lora_b) and sum(g.abs().sum().item() for g in lora_b) > 0


# --- training ------------------------------------------------------------------------------------
@pytest.fixture
def tiny64(tiny_model):
    return tiny_model.double()


def test_study_rows_join_the_plan_and_count_their_suffix_tokens(tiny64, tiny_tokenizer):
    tok = tiny_tokenizer
    items = _items(tok)
    student = Student(tiny64, tok, LORA)
    cache = TargetCache()
    result = student.absorb(["a text", "another text", "a third"], _settings(), study=items[:2], targets=cache)
    assert result.steps == 6 and len(cache) == 2  # ceil(5 rows / batch 2) x 2 epochs
    suffix = sum(t.count for t in cache.tokenize(tok, items[:2], 96))
    texts = sum(len(x.encode()) for x in ["a text", "another text", "a third"])  # bytes + eos - 1
    assert result.tokens == 2 * (suffix + texts)
    only = student.absorb([], _settings(epochs=1, batch_size=8), study=items, targets=cache)
    assert only.steps == 1 and len(cache) == 3 and only.losses[0] > 0


def test_batched_matches_sequential_with_study_items(tiny64, tiny_tokenizer):
    tok = tiny_tokenizer
    items = _items(tok)
    passage = [PASSAGE]
    cands = [
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=1), tag="passage"),
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=1), tag="passage+study", study=items),
        Candidate([], QUESTIONS, GOLDS, _settings(seed=2, lr=1e-2, epochs=3, batch_size=1), tag="study",
                  study=items[:2]),
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=3, side_weight=0.5), tag="side", study=items[2:],
                  side=["The Broncos won 24-10."]),
        Candidate([], QUESTIONS, GOLDS, _settings(), tag="base"),
    ]
    cache = TargetCache(DistillSettings(top_k=16))
    seq = evaluate(tiny64, tok, cands, LORA, ANSWER, engine="sequential", targets=cache)
    assert len(cache) == 3  # one target computation per distinct item, for every candidate
    bat = evaluate(tiny64, tok, cands, LORA, ANSWER, engine="batched", group=3, targets=cache)
    assert [r.steps for r in seq] == [2, 4, 6, 2, 0]
    for s, b in zip(seq, bat):
        assert b.steps == s.steps and b.tokens == s.tokens
        assert b.losses == pytest.approx(s.losses, rel=1e-10, abs=1e-12)
        assert b.answers == s.answers and b.nll == pytest.approx(s.nll, rel=1e-10)
    assert seq[1].nll != seq[0].nll and seq[1].tokens > seq[0].tokens

    # final weights: every multi-LoRA slot where a Student alone ends
    texts, study = [c.texts for c in cands], [c.study for c in cands]
    settings, side = [c.settings for c in cands], [c.side for c in cands]
    with MultiLoRA(tiny64, LORA, len(cands)) as multi:
        for k, s in enumerate(settings):
            multi.reset(k, s.seed)
        train_many(multi, tok, texts, settings, side=side, study=study, targets=cache, max_tokens=64, overhead=0)
        states = [multi.state(k) for k in range(len(cands))]
    student = Student(tiny64, tok, LORA)
    for k, c in enumerate(cands):
        student.reset(c.settings.seed)
        student.absorb(c.texts, c.settings, side=c.side, study=c.study, targets=cache)
        alone = student.state()
        assert max((states[k][key] - alone[key]).abs().max().item() for key in alone) < 1e-12
    assert len(cache) == 3


def test_distillation_moves_the_in_context_answer_into_the_weights(tiny_model, tiny_tokenizer):
    """The student never sees the passage; it learns the open-book answer's distribution from the base model that
    reads it, and the closed-book NLL of that answer falls towards the open-book one."""
    tok = tiny_tokenizer
    student = Student(tiny_model, tok, LORA, AnswerSettings(max_new_tokens=8, question_format="chat"))
    question = QUESTIONS[0]
    answer = student.answer([question], base=True, contexts=[PASSAGE])[0]
    assert answer and answer != student.answer([question], base=True)[0]  # the context changes the answer
    before = student.answer_nll([question], [answer])[0]
    item = qa_study_item(tok, question, answer, PASSAGE)
    result = student.absorb([], _settings(lr=2e-2, epochs=30, batch_size=1), study=[item])
    after = student.answer_nll([question], [answer])[0]
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert after < before - 0.5, (before, after)


# --- open-book prompts ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["chat", "raw"])
def test_open_book_prompt_and_qa_item_split(fmt):
    tok = make_tiny_tokenizer()
    closed = question_prompt(tok, "Who won?", fmt)
    opened = question_prompt(tok, "Who won?", fmt, context="Title\nThe Broncos won.")
    raw = "Let's answer a question directly and concisely.\nQuestion: Who won?\nAnswer:\n"
    if fmt == "chat":
        assert opened == f"<|user|>Title\nThe Broncos won.\n\n{raw}<eos><|assistant|>"
    else:
        assert opened == f"Title\nThe Broncos won.\n\n{raw}"
    item = qa_study_item(tok, "Who won?", "The Broncos.", "Title\nThe Broncos won.", fmt)
    assert item.prefix + item.context + item.suffix == opened + "The Broncos."
    assert item.prefix + item.suffix == closed + "The Broncos."
    assert item.context == "Title\nThe Broncos won.\n\n" and item.eos


def test_student_answers_open_book(tiny_model, tiny_tokenizer):
    student = Student(tiny_model, tiny_tokenizer, LORA, AnswerSettings(max_new_tokens=5))
    closed = student.answer(QUESTIONS)
    assert student.answer(QUESTIONS, contexts=[None, None]) == closed
    mixed = student.answer(QUESTIONS, contexts=[PASSAGE, None])
    assert mixed[1] == closed[1] and mixed[0] == student.answer(QUESTIONS[:1], contexts=[PASSAGE])[0]
    with pytest.raises(ValueError):
        student.answer(QUESTIONS, contexts=[PASSAGE])
    assert ADAPTER_NAME in student.model.peft_config
