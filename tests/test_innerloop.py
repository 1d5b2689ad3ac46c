"""The inner loop (student/innerloop.py): sequential reference engine and batched multi-LoRA equivalence."""

import dataclasses
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


# --- batched multi-LoRA engine ------------------------------------------------------------------
from peft import PeftModel  # noqa: E402

from student.batching import micro_batches  # noqa: E402
from student.multilora import MultiLoRA, block_layout, target_names, train_many  # noqa: E402

MIXED = [  # different text counts, lr, epochs, batch sizes, schedules, clipping, weight decay; one base row
    (TEXTS, dict(seed=1)),
    (TEXTS[:1], dict(seed=2, lr=1e-2, epochs=4, batch_size=1)),
    ([], dict(seed=3)),
    (TEXTS[::-1] + TEXTS[:1], dict(seed=4, epochs=1, batch_size=3, weight_decay=0.1, grad_clip=0.05)),
    (TEXTS[1:], dict(seed=5, lr=5e-3, epochs=3, schedule="cosine", warmup_ratio=0.3, grad_clip=0.0)),
    (TEXTS[::-1], dict(seed=6)),  # the same schedule as the first: one optimizer param group for both
]


def _mixed_candidates() -> list[Candidate]:
    return [Candidate(list(t), QUESTIONS, GOLDS, _settings(**kw), tag=f"c{i}") for i, (t, kw) in enumerate(MIXED)]


@pytest.fixture
def tiny64(tiny_model):
    return tiny_model.double()


def test_batched_matches_sequential(tiny64, tiny_tokenizer):
    cands = _mixed_candidates()
    seq = evaluate(tiny64, tiny_tokenizer, cands, LORA, ANSWER, engine="sequential")
    seen = []
    bat = evaluate(tiny64, tiny_tokenizer, cands, LORA, ANSWER, engine="batched", group=3,
                   on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 6), (6, 6)]
    assert [r.tag for r in bat] == [c.tag for c in cands]
    assert [r.steps for r in bat] == [4, 4, 0, 2, 3, 4]
    for s, b in zip(seq, bat):
        assert b.steps == s.steps and b.tokens == s.tokens
        assert b.losses == pytest.approx(s.losses, rel=1e-10, abs=1e-12)
        assert b.answers == s.answers
        assert b.nll == pytest.approx(s.nll, rel=1e-10)
        assert (b.accuracy, b.f1, b.em) == (s.accuracy, s.f1, s.em)
    # the updates did something, and the base row is the base model
    assert seq[0].nll != seq[2].nll


@pytest.mark.parametrize("autocast, rel", [("off", 1e-4), ("bf16", 2e-2)])
def test_batched_float32_close(tiny_model, tiny_tokenizer, autocast, rel):
    """float32 weights; with bf16 autocast (the CPU default where bf16 is native) both engines train in bf16
    matmuls, so they agree to bf16's precision instead."""
    cands = [dataclasses.replace(c, settings=dataclasses.replace(c.settings, autocast=autocast))
             for c in _mixed_candidates()[:2]]
    seq = evaluate(tiny_model, tiny_tokenizer, cands, LORA, ANSWER, engine="sequential")
    bat = evaluate(tiny_model, tiny_tokenizer, cands, LORA, ANSWER, engine="batched")
    for s, b in zip(seq, bat):
        assert b.losses == pytest.approx(s.losses, rel=rel)
        assert b.nll == pytest.approx(s.nll, rel=rel)


def test_each_adapter_ends_where_it_would_alone(tiny64, tiny_tokenizer):
    """Final weights of every slot equal a Student trained alone; micro-batching changes nothing."""
    texts = [list(t) for t, _ in MIXED]
    settings = [_settings(**kw) for _, kw in MIXED]
    states = {}
    for max_tokens, overhead in ((10_000, 10**6), (40, 0)):  # one pass per step / many small ones
        with MultiLoRA(tiny64, LORA, len(MIXED) + 1) as multi:  # one slot more than used
            for k, s in enumerate(settings):
                multi.reset(k, s.seed)
            multi.reset(len(MIXED), 99)
            spare = multi.state(len(MIXED))
            train_many(multi, tiny_tokenizer, texts, settings, max_tokens=max_tokens, overhead=overhead)
            states[max_tokens] = [multi.state(k) for k in range(len(MIXED))]
            assert all(torch.equal(v, multi.state(len(MIXED))[key]) for key, v in spare.items())
    student = Student(tiny64, tiny_tokenizer, LORA)
    for k, (t, s) in enumerate(zip(texts, settings)):
        student.reset(s.seed)
        if t:
            student.absorb(t, s)
        alone = student.state()
        for st in states.values():
            assert set(st[k]) == set(alone)
            assert max((st[k][key] - alone[key]).abs().max().item() for key in alone) < 1e-12


def test_side_texts_match_sequential_and_keep_the_plan(tiny64, tiny_tokenizer):
    """A self-edit's lines learned beside its passage (Candidate.side): both engines give the same losses,
    answers and NLL; the steps are planned over the passage alone; weight 0 is the passage alone; the side
    term changes the update."""
    passage = [TEXTS[0]]
    lines = [TEXTS[1], TEXTS[2], "The Broncos beat the Panthers 24-10 in Santa Clara."]
    cands = [
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=1), tag="passage"),
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=1, side_weight=1.0), tag="beside", side=lines),
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=1, side_weight=0.25), tag="quarter", side=lines),
        Candidate(passage, QUESTIONS, GOLDS, _settings(seed=1, side_weight=0.0), tag="zero", side=lines),
        Candidate(lines + passage, QUESTIONS, GOLDS, _settings(seed=2, epochs=3), tag="mixed", side=lines[:1]),
    ]
    seq = evaluate(tiny64, tiny_tokenizer, cands, LORA, ANSWER, engine="sequential")
    bat = evaluate(tiny64, tiny_tokenizer, cands, LORA, ANSWER, engine="batched", group=5)
    for s, b in zip(seq, bat):
        assert b.steps == s.steps and b.tokens == s.tokens
        assert b.losses == pytest.approx(s.losses, rel=1e-10, abs=1e-12)
        assert b.answers == s.answers and b.nll == pytest.approx(s.nll, rel=1e-10)
    alone, beside, quarter, zero, _ = seq
    assert beside.steps == alone.steps == 2 and beside.tokens == alone.tokens  # planned over the passage only
    assert zero.losses == alone.losses and zero.nll == alone.nll
    # the reported loss is the passage's mean NLL + weight x the lines' mean: larger with the lines, and the
    # first step (same weights, same passage batch) differs by exactly the weighted lines' term
    lines_nll = beside.losses[0] - alone.losses[0]
    assert lines_nll > 0
    assert quarter.losses[0] - alone.losses[0] == pytest.approx(0.25 * lines_nll, rel=1e-9)
    assert beside.nll != alone.nll and quarter.nll != beside.nll


def test_init_and_targets_match_peft(tiny_model, tiny_tokenizer):
    names = target_names(tiny_model, LORA)
    with MultiLoRA(tiny_model, LORA, 2) as multi:
        multi.reset(1, 7)
        ours = multi.state(1)
    student = Student(tiny_model, tiny_tokenizer, LORA)
    student.reset(7)
    ref = student.state()
    student_names = [n for n, m in student.model.base_model.model.named_modules() if hasattr(m, "lora_A")]
    assert names == student_names
    assert set(ours) == set(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)


def test_mixed_batch_routing_equals_separate_runs(tiny_model, tiny_tokenizer, monkeypatch):
    """Every row gets its own adapter, whichever path the routed layers take (blocks, scatter, gather)."""
    from student import multilora

    ids = tiny_tokenizer(["Paris is big", "Broncos won!", "Water boils"], return_tensors="pt",
                         padding=True)["input_ids"]
    route = [2, 0, 2]
    with MultiLoRA(tiny_model, LORA, 3) as multi, torch.no_grad():
        for layer in multi.layers.values():  # non-trivial adapters
            torch.nn.init.normal_(layer.A, std=0.3)
            torch.nn.init.normal_(layer.B, std=0.3)
        runs = {}
        for budget in (0.0, 1e9):  # 0: gathered per-row weights; 1e9: block layout (scatter/identity)
            monkeypatch.setattr(multilora, "PAD_BUDGET", budget)
            multi.route(route)
            runs[budget] = tiny_model(input_ids=ids).logits
            runs[budget, "singles"] = []
            for row, k in enumerate(route):
                multi.route([k])
                runs[budget, "singles"].append(tiny_model(input_ids=ids[row : row + 1]).logits[0])
        multi.route([0, 1, 2])  # grouped rows: identity layout, no copies
        grouped = tiny_model(input_ids=ids).logits
        monkeypatch.setattr(multilora, "PAD_BUDGET", 0.0)
        multi.route([0, 1, 2])
        grouped_gathered = tiny_model(input_ids=ids).logits
        multi.route(None)
        base = tiny_model(input_ids=ids).logits
    reference = torch.stack(runs[0.0, "singles"])
    for key in (0.0, 1e9):
        assert torch.allclose(runs[key], reference, atol=1e-5)
        assert torch.allclose(torch.stack(runs[key, "singles"]), reference, atol=1e-5)
    assert torch.allclose(grouped, grouped_gathered, atol=1e-5)
    assert not torch.allclose(runs[0.0], base, atol=1e-3)
    # detached: the model is plain again
    assert not any("Routed" in type(m).__name__ for m in tiny_model.modules())


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_exported_adapter_loads_with_peft(tiny64, tiny_tokenizer, tmp_path):
    cand = _mixed_candidates()[0]
    bat = evaluate(tiny64, tiny_tokenizer, [cand], LORA, ANSWER, engine="batched")[0]
    with MultiLoRA(tiny64, LORA, 2) as multi:
        multi.reset(1, cand.settings.seed)
        train_many(multi, tiny_tokenizer, [[], cand.texts], [cand.settings, cand.settings])
        folder = multi.save(1, tmp_path / "adapter")
        state = multi.state(1)
        ids = tiny_tokenizer(QUESTIONS, return_tensors="pt", padding=True)
        multi.route([1, 1])
        with torch.no_grad():
            routed = tiny64(**ids).logits
        multi.route(None)
    assert (folder / "adapter_model.safetensors").is_file() and (folder / "adapter_config.json").is_file()
    peft_model = PeftModel.from_pretrained(tiny64, str(folder))
    with torch.no_grad():
        loaded = peft_model(**ids).logits
    assert torch.allclose(loaded, routed, rtol=0, atol=1e-10)
    peft_model.unload()
    # the same tensors fit a Student, whose answers match the batched engine's
    student = Student(tiny64, tiny_tokenizer, LORA, ANSWER)
    student.load(state)
    assert student.answer(QUESTIONS) == bat.answers


@pytest.mark.parametrize("overhead", [0, 4, 10**6])
def test_micro_batches_partition(overhead):
    lengths = [200, 30, 31, 35, 200, 12, 7, 64, 64, 1]
    parts = micro_batches(lengths, 256, overhead)
    assert sorted(i for p in parts for i in p) == list(range(len(lengths)))
    assert all(len(p) == 1 or len(p) * max(lengths[i] for i in p) <= 256 for p in parts)
    if overhead == 0:  # padding only within a length bucket of 8
        assert all(len({-(-lengths[i] // 8) for i in p}) == 1 for p in parts)
    assert micro_batches([], 256, overhead) == []


def test_block_layout():
    cpu = torch.device("cpu")
    grouped = block_layout([0, 0, 1, 1], cpu)
    assert (grouped.n, grouped.c, grouped.ids, grouped.slots) == (2, 2, None, None)
    mixed = block_layout([1, 0, 1], cpu)
    assert (mixed.n, mixed.c, mixed.ids, mixed.slots.tolist()) == (2, 2, None, [2, 0, 3])
    partial = block_layout([0, 0, 1], cpu)
    assert (partial.n, partial.c, partial.slots.tolist()) == (2, 2, [0, 1, 2])
    sparse = block_layout([5, 2, 5], cpu)  # adapters 2 and 5 present: their blocks only
    assert (sparse.n, sparse.c, sparse.ids.tolist(), sparse.slots.tolist()) == (2, 2, [2, 5], [2, 0, 3])
    assert block_layout([0] * 6 + [1, 2], cpu) is None  # 18 padded rows for 8 real ones: gather instead
    assert block_layout([], cpu) is None


def test_side_weight_weighs_the_lines_not_replay(tiny64, tiny_tokenizer):
    """Replay (earlier documents) keeps weight 1 whatever train.side_weight says; the weight applies to side texts."""
    student = Student(tiny64, tiny_tokenizer, LORA)
    runs = {}
    for name, weight, side in (("w1", 1.0, []), ("w025", 0.25, []), ("lines", 0.25, TEXTS[2:])):
        student.reset(4)
        runs[name] = student.absorb(TEXTS[:1], _settings(seed=4, side_weight=weight), replay=TEXTS[1:2], side=side)
    assert runs["w1"].losses == runs["w025"].losses
    assert runs["lines"].losses[0] > runs["w025"].losses[0]
