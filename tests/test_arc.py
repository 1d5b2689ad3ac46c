"""ARC lab: augmentations and inverses, grids as text, the vote, configuration parsing, TTT data, solve and resume."""

from __future__ import annotations

import json
import random

import pytest
import torch

from agent.lab.arc import augment as A
from agent.lab.arc.predict import decide, max_new_tokens_for, predict, queries, vote
from agent.lab.arc.solve import (IN_CONTEXT, Row, bench, local_solver, read_results, result_key, solve,
                                 summarize)
from agent.lab.arc.tasks import (Example, Task, as_grid, exact_match, grid_to_text, load_split, pass_at_2,
                                 prompt_text, small_task_ids, tasks_from_json, text_to_grid)
from agent.lab.arc.ttt import MAX_STEPS, leave_out_tasks, ttt_data, ttt_tasks
from student.config import LoraSettings, TrainSettings
from teacher.arc_config import (DEFAULT_CONFIG, ArcConfig, config_messages, config_prompt, first_json_object,
                                parse_config)
from tests.conftest import make_tiny_model, make_tiny_tokenizer


def random_grid(rng: random.Random, h: int, w: int):
    return tuple(tuple(rng.randrange(10) for _ in range(w)) for _ in range(h))


SHAPES = [(1, 1), (1, 5), (3, 3), (2, 7), (7, 2), (5, 4), (15, 15)]


# ------------------------------------------------------------------ augmentations
@pytest.mark.parametrize("aug", A.INVERTIBLE + A.SIZE + A.CHAIN + A.REPEAT, ids=repr)
def test_every_augmentation_inverts(aug):
    rng = random.Random(1)
    for h, w in SHAPES:
        g = random_grid(rng, h, w)
        out = aug.apply(g)
        assert aug.invert(out) == g
        if aug.invertible:  # a bijection keeps the cells
            assert sorted(c for r in out for c in r) == sorted(c for r in g for c in r)


def test_geometric_transforms_are_what_they_say():
    g = ((1, 2, 3), (4, 5, 6))
    assert A.ROT90.apply(g) == ((3, 6), (2, 5), (1, 4))  # counter-clockwise
    assert A.ROT270.apply(g) == ((4, 1), (5, 2), (6, 3))
    assert A.ROT180.apply(g) == ((6, 5, 4), (3, 2, 1))
    assert A.FLIP_H.apply(g) == ((3, 2, 1), (6, 5, 4))
    assert A.FLIP_V.apply(g) == ((4, 5, 6), (1, 2, 3))
    assert A.TRANSPOSE.apply(g) == ((1, 4), (2, 5), (3, 6))
    assert A.ANTI_TRANSPOSE.apply(g) == ((6, 3), (5, 2), (4, 1))
    assert len({A_.apply(((1, 2), (3, 4))) for A_ in A.INVERTIBLE}) == 8  # the dihedral group of a square


def test_size_augmentations_and_partial_inverses():
    g = ((1, 2), (3, 4))
    assert A.RES2.apply(g) == ((1, 1, 2, 2), (1, 1, 2, 2), (3, 3, 4, 4), (3, 3, 4, 4))
    assert A.HEIGHT2.apply(g) == ((1, 2), (1, 2), (3, 4), (3, 4))
    assert A.Tile(1, 2).apply(g) == ((1, 2, 1, 2), (3, 4, 3, 4))
    assert A.RES2.invert(g) is None  # not an upscaled grid
    assert A.Tile(2, 2).invert(((1, 2, 1), (3, 4, 3))) is None
    assert A.Chain((A.ROT90, A.RES2)).invert(((1, 2), (3, 4))) is None


def test_colour_maps_keep_background_and_invert():
    rng = random.Random(0)
    g = random_grid(rng, 4, 6)
    maps = [A.random_colour_map(random.Random(s)) for s in range(20)]
    assert all(m.mapping[0] == 0 and sorted(m.mapping) == list(range(10)) for m in maps)
    assert len({m.mapping for m in maps}) > 10
    assert all(m.invert(m.apply(g)) == g for m in maps)
    assert A.random_colour_map(random.Random(3)) == A.random_colour_map(random.Random(3))  # seeded


def test_augment_examples_refuses_grids_over_30():
    big = Example(tuple((1,) * 16 for _ in range(16)), ((1,),))
    assert A.augment_examples(A.RES2, [big]) is None
    assert A.augment_examples(A.ROT90, [big])[0].output == ((1,),)


# ------------------------------------------------------------------ text
def test_grid_text_round_trip():
    rng = random.Random(2)
    for h, w in SHAPES + [(30, 30), (30, 1)]:
        g = random_grid(rng, h, w)
        text = grid_to_text(g)
        assert text.count("\n") == h - 1 and len(text.split("\n")[0].split()) == w
        assert text_to_grid(text) == g


def test_text_to_grid_is_robust():
    assert text_to_grid("1 2\n3 4") == ((1, 2), (3, 4))
    assert text_to_grid("\n 1 2 \n3 4\n\nInput:\n5 5") == ((1, 2), (3, 4))  # stops at the blank line
    assert text_to_grid("1 2\n3 4\nInput:") == ((1, 2), (3, 4))
    assert text_to_grid("1 2\n3") is None  # ragged
    assert text_to_grid("1 2\n3 x") is None
    assert text_to_grid("12 3") is None
    assert text_to_grid("") is None and text_to_grid("hello") is None and text_to_grid(None) is None
    assert text_to_grid("\n".join(["1"] * 31)) is None  # over 30 rows


def test_prompt_layout_and_grading():
    demos = [Example(((1, 0),), ((0, 1),)), Example(((2, 2),), ((2, 2),))]
    p = prompt_text(demos, ((3, 0),))
    assert p == "Input:\n1 0\nOutput:\n0 1\n\nInput:\n2 2\nOutput:\n2 2\n\nInput:\n3 0\nOutput:\n"
    assert exact_match(((1,),), [[1]]) and not exact_match(None, ((1,),)) and not exact_match(((1,),), ((2,),))
    assert pass_at_2([((2,),), ((1,),)], ((1,),)) and not pass_at_2([((2,),), ((3,),), ((1,),)], ((1,),))
    assert as_grid([[1, 2], [3]]) is None and as_grid([[10]]) is None and as_grid([[True]]) is None


def test_loading_seal_split_and_selection_rule():
    tasks = load_split("seal-evaluation")
    assert len(tasks) == 10
    assert all(ex.output is not None for t in tasks.values() for ex in t.test)
    assert len(tasks["b1fc8b8e"].test) == 2
    small = small_task_ids(tasks, 5)
    assert small == ["66e6c45b"]  # 4x4 grids; the only one within 5x5
    assert tasks_from_json({"bad": {"train": [{"input": [[1, 2], [3]]}], "test": []}, "x": 3}) == {}


# ------------------------------------------------------------------ vote
def test_vote_counts_and_breaks_ties_by_first_seen():
    a, b, c = ((1,),), ((2,),), ((3,),)
    assert vote([a, b, b, None, c]) == [(b, 2), (a, 1), (c, 1)]
    assert vote([c, a, a, c]) == [(c, 2), (a, 2)]
    assert vote([None, None]) == []


def test_decide_maps_back_and_lets_identity_win_ties():
    task = Task("t", (Example(((1, 2),), ((2, 1),)),), (Example(((3, 4),), ((4, 3),)),))
    qs = queries(task, [A.ROT90, A.IDENTITY, A.FLIP_H])
    assert [q.augmentation.name for q in qs] == ["rotate90", "identity", "flip_h"]
    gold = ((4, 3),)
    texts = [grid_to_text(A.ROT90.apply(((9, 9),))),  # rotate90's answer, mapped back: 9 9
             grid_to_text(gold),  # identity's answer
             grid_to_text(A.FLIP_H.apply(((9, 9),)))]
    [pred] = decide(task, qs, texts)
    assert pred.candidates == [(((9, 9),), 2), (gold, 1)]
    assert pred.attempts == [((9, 9),), gold]
    # a tie: the identity's grid comes first although it was asked second
    [pred] = decide(task, qs, [grid_to_text(A.ROT90.apply(((7, 7),))), grid_to_text(gold), "garbage"])
    assert pred.attempts == [gold, ((7, 7),)]


def test_predict_with_a_perfect_answer_fn_solves():
    task = Task("flip", (Example(((1, 2, 3),), ((3, 2, 1),)), Example(((4, 5),), ((5, 4),))),
                (Example(((6, 7, 8),), ((8, 7, 6),)),))

    def oracle(prompts, max_new_tokens):  # finds the dihedral transform the prompt's demonstrations show
        out = []
        for p in prompts:
            blocks = [b.split("\nOutput:\n") for b in p.split("Input:\n")[1:]]
            demos = [(text_to_grid(i), text_to_grid(o)) for i, o in blocks[:-1]]
            rule = next(a for a in A.INVERTIBLE if all(a.apply(i) == o for i, o in demos))
            out.append(grid_to_text(rule.apply(text_to_grid(blocks[-1][0]))))
        return out

    [pred] = predict(task, oracle)
    assert pred.attempts[0] == ((8, 7, 6),) and pred.candidates[0][1] == 8
    assert max_new_tokens_for(task) == 2 * 3 * 3 + 8


# ------------------------------------------------------------------ configuration
GOOD = {"data_generation": {"use_basic_augmentations": True, "use_size_augmentations": False,
                            "use_chain_augmentations": False, "use_repeat_augmentations": True},
        "training": {"strategy": "train_using_all_tokens", "learning_rate": 5e-5, "num_train_epochs": 3}}


def test_parse_config_valid_and_with_text_around():
    want = ArcConfig(True, False, False, True, "train_using_all_tokens", 5e-5, 3)
    assert parse_config(json.dumps(GOOD)) == want
    assert parse_config("Sure! ```json\n" + json.dumps(GOOD, indent=2) + "\n``` Hope it helps {x}") == want
    assert parse_config(json.dumps({**GOOD, "note": "hi", "training": {**GOOD["training"], "extra": 1}})) == want
    assert parse_config(DEFAULT_CONFIG and json.dumps(DEFAULT_CONFIG.to_json())) == DEFAULT_CONFIG
    assert first_json_object("a {b} {\"x\": {\"y\": 1}}") == {"x": {"y": 1}}


def test_parse_config_coerces_and_clamps():
    raw = {"data_generation": {"use_basic_augmentations": "true", "use_size_augmentations": 0,
                               "use_chain_augmentations": "False", "use_repeat_augmentations": "yes"},
           "training": {"strategy": "output tokens", "learning_rate": "1e-1", "num_train_epochs": 2.6}}
    cfg = parse_config(json.dumps(raw))
    assert cfg == ArcConfig(True, False, False, True, "train_using_output_tokens", 1e-2, 3)
    raw["training"].update(learning_rate=1e-9, num_train_epochs=500)
    cfg = parse_config(json.dumps(raw))
    assert cfg.learning_rate == 1e-6 and cfg.num_train_epochs == 50
    python_style = json.dumps(GOOD).replace("true", "True").replace("false", "False")
    assert parse_config(python_style) is not None


@pytest.mark.parametrize("text", [
    "", "no json here", "{", '{"data_generation": {', "[1, 2, 3]", "null", "{\"a\": 1}",
    json.dumps({"data_generation": GOOD["data_generation"]}),  # training missing
    json.dumps({**GOOD, "training": {"strategy": "train_using_all_tokens", "learning_rate": 1e-4}}),  # no epochs
    json.dumps({**GOOD, "training": {**GOOD["training"], "strategy": "sometimes"}}),
    json.dumps({**GOOD, "training": {**GOOD["training"], "learning_rate": "fast"}}),
    json.dumps({**GOOD, "training": {**GOOD["training"], "learning_rate": -1}}),
    json.dumps({**GOOD, "training": {**GOOD["training"], "num_train_epochs": 0}}),
    json.dumps({**GOOD, "training": {**GOOD["training"], "num_train_epochs": [3]}}),
    json.dumps({**GOOD, "data_generation": {"use_basic_augmentations": "maybe"}}),
    '{"training": {"learning_rate": NaN, "num_train_epochs": 1, "strategy": "train_using_all_tokens"}}',
    "{" * 5000,
])
def test_parse_config_malformed_is_invalid_never_raises(text):
    assert parse_config(text) is None


def test_parse_config_missing_switches_are_off():
    cfg = parse_config(json.dumps({"training": GOOD["training"]}))
    assert cfg == ArcConfig(False, False, False, False, "train_using_all_tokens", 5e-5, 3)


def test_config_prompt_shows_the_demos_and_asks_for_json():
    tok = make_tiny_tokenizer()
    demos = [([[1, 2]], [[2, 1]])]
    msgs = config_messages(demos)
    assert msgs[1]["content"].startswith("Input:\n1 2\n\nOutput:\n2 1\n\n------")
    assert "use_chain_augmentations" in msgs[1]["content"] and "Respond with a valid JSON" in msgs[1]["content"]
    prompt = config_prompt(tok, demos)
    assert prompt.startswith("<|system|>") and prompt.endswith("<|assistant|>")
    assert DEFAULT_CONFIG.key() == "b1s0c0r0-out-lr0.0001-e2"


# ------------------------------------------------------------------ TTT data
def demo_task(n: int = 4, side: int = 3, seed: int = 0) -> Task:
    rng = random.Random(seed)
    demos = []
    for _ in range(n + 1):
        g = random_grid(rng, side, side)
        demos.append(Example(g, A.FLIP_H.apply(g)))
    return Task("demo", tuple(demos[:n]), (demos[n],))


def test_leave_out_counts():
    t = demo_task(4)
    assert len(leave_out_tasks(t.train, 1)) == 4
    assert len(leave_out_tasks(t.train, 2)) == 12
    assert all(len(d) == 3 for d, _ in leave_out_tasks(t.train, 1))
    assert len(leave_out_tasks(demo_task(2).train, 2)) == 0  # a query needs a demonstration left


def test_ttt_data_counts_strategy_and_cap():
    t = demo_task(4)
    none = ArcConfig(False, False, False, False, "train_using_all_tokens", 1e-4, 1)
    plain = ttt_tasks(t, none)
    assert len(plain) == 16 + 10  # 16 leave-one/two-out tasks + their shuffled copies (1-demo ones duplicate)
    basic = ttt_tasks(t, ArcConfig(True, False, False, False))
    assert len(basic) == 250  # 16 x 8 = 128 augmented, then colour/shuffle copies: capped
    assert len(set(basic)) == 250 and ttt_tasks(t, ArcConfig()) == basic  # deduplicated, seeded
    assert ttt_tasks(t, ArcConfig(), seed=1) != basic
    data = ttt_data(t, none)
    assert data.prompt_chars is None and data.refused is None and data.steps == 13
    assert data.settings.batch_size == 2 and data.settings.schedule == "cosine" and data.settings.epochs == 1
    out = ttt_data(t, ArcConfig(num_train_epochs=3, learning_rate=3e-4))
    assert out.steps == 375 and out.refused is None and out.settings.lr == 3e-4
    d, q = out.tasks[0]
    text, n = out.texts[0], out.prompt_chars[0]
    assert text[:n] == prompt_text(d, q.input) and text[n:] == grid_to_text(q.output)
    over = ttt_data(t, ArcConfig(num_train_epochs=4))
    assert over.steps == 500 > MAX_STEPS and over.refused


def test_ttt_data_drops_texts_over_the_token_limit():
    t = demo_task(3)
    data = ttt_data(t, ArcConfig(False, True, False, False), count_tokens=len, max_len=120)
    assert data.dropped_long > 0 and all(len(x) <= 120 for x in data.texts)


# ------------------------------------------------------------------ student: output tokens only
def test_prompt_chars_mask_the_prompt_tokens():
    from student.batching import IGNORE_INDEX, tokenize_prompted
    tok = make_tiny_tokenizer()
    seqs, labels = tokenize_prompted(tok, ["ab:cd", "xyz"], [3, 0], 64)
    assert seqs[0] == tok("ab:")["input_ids"] + tok("cd", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert labels[0] == [IGNORE_INDEX] * 3 + seqs[0][3:]
    assert labels[1] == seqs[1]


def test_train_adapter_on_output_tokens_learns_only_the_output():
    from student.student import Student
    tok = make_tiny_tokenizer()
    texts = ["Q: 123 A: 7", "Q: 456 A: 7"]
    chars = [len("Q: 123 A: "), len("Q: 456 A: ")]
    settings = TrainSettings(lr=1e-2, epochs=2, batch_size=2, seed=0, autocast="off")
    s = Student(make_tiny_model(tok), tok, LoraSettings(r=4, alpha=8))
    full = s.absorb(texts, settings)
    s.reset(0)
    out = s.absorb(texts, settings, prompt_chars=chars)
    assert out.tokens == 2 * 2 * 2  # "7" and eos, 2 texts, 2 epochs
    assert full.tokens == 2 * sum(len(tok(t)["input_ids"]) for t in texts)
    assert out.losses != full.losses


def test_train_many_matches_train_adapter_with_prompt_chars():
    from student.multilora import MultiLoRA, train_many
    from student.student import Student
    tok = make_tiny_tokenizer()
    texts = ["in 12 out 21", "in 34 out 43", "in 5 out 5"]
    chars = [len("in 12 out "), len("in 34 out "), len("in 5 out ")]
    settings = TrainSettings(lr=1e-2, epochs=2, batch_size=2, seed=3, autocast="off")
    lora = LoraSettings(r=4, alpha=8)
    model = make_tiny_model(tok)
    with MultiLoRA(model, lora, 2) as multi:
        multi.reset(0, 3)
        multi.reset(1, 3)
        many = train_many(multi, tok, [texts, texts], [settings, settings], prompt_chars=[chars, None])
    s = Student(make_tiny_model(tok), tok, lora)
    s.reset(3)
    one = s.absorb(texts, settings, prompt_chars=chars)
    assert many[0].tokens == one.tokens < many[1].tokens
    assert many[0].losses == pytest.approx(one.losses, rel=1e-4)


# ------------------------------------------------------------------ solve and bench
def tiny_task() -> Task:
    return Task("tiny", (Example(((1, 2), (3, 4)), ((2, 1), (4, 3))), Example(((5, 0), (0, 5)), ((0, 5), (5, 0))),
                         Example(((6, 7), (7, 6)), ((7, 6), (6, 7)))),
                (Example(((8, 9), (9, 8)), ((9, 8), (8, 9))),))


SHORT = ArcConfig(False, False, False, False, "train_using_output_tokens", 1e-2, 1)


@pytest.mark.parametrize("engine", ["batched", "sequential"])
def test_solve_end_to_end_on_a_tiny_model(engine):
    tok = make_tiny_tokenizer()
    model = make_tiny_model(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    configs = [SHORT, IN_CONTEXT, None, ArcConfig(True, True, True, True, num_train_epochs=50),
               ArcConfig(True, False, False, False, "train_using_all_tokens", 1e-2, 1)]
    rows = solve(model, tok, tiny_task(), configs, seed=0, engine=engine, lora=LoraSettings(r=4, alpha=8),
                 base=TrainSettings(autocast="off"), batch_size=4)
    assert [r["status"] for r in rows] == ["ok", IN_CONTEXT, "invalid", "refused", "ok"]
    ok = rows[0]
    assert ok["examples"] == 10 and ok["steps"] == 5 and ok["loss_first"] > 0  # 9 leave-outs + 1 new shuffle
    assert rows[4]["examples"] > ok["examples"]
    for r in rows:
        assert r["solved"] in (True, False) and r["passed"] is not None and len(r["passed"]) == 1
        assert r["key"] == result_key("tiny", r["label"], 0)
        json.dumps(r)
    assert rows[2]["solved"] is False and rows[3]["solved"] is False and rows[3]["reason"].endswith("> 375")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # model handed back unchanged
    assert not any(p.requires_grad is False for p in model.parameters())


def test_bench_resumes_after_a_kill(tmp_path):
    tok = make_tiny_tokenizer()
    model = make_tiny_model(tok)
    task = tiny_task()
    task2 = Task("tiny2", task.train[1:], task.test)
    tasks = {"tiny": task, "tiny2": task2}
    rows = [Row(t, label, cfg, seed) for t in tasks for label, cfg in (("in_context", IN_CONTEXT), ("short", SHORT))
            for seed in (0,)]
    path = tmp_path / "results.jsonl"
    calls = []
    inner = local_solver(model, tok, tasks, lora=LoraSettings(r=4, alpha=8), base=TrainSettings(autocast="off"))

    def job(j):
        calls.append([result_key(r.task_id, r.label, r.seed) for r in j])
        return inner(j)

    first = bench(rows[:1], path, job)  # "killed" after the first row ...
    with path.open("a") as f:
        f.write('{"key": "tiny|short|0", "tor')  # ... in the middle of writing the next line
    calls.clear()
    results = bench(rows, path, job)
    assert calls == [["tiny|short|0"], ["tiny2|in_context|0", "tiny2|short|0"]]
    assert [r["key"] for r in results] == [result_key(r.task_id, r.label, r.seed) for r in rows]
    assert results[0] == first[0]
    assert len(read_results(path)) == 4
    calls.clear()
    assert bench(rows, path, job) == results and calls == []  # all done: nothing runs
    s = summarize(results)
    assert s["short"]["rows"] == 2 and s["in_context"]["rows"] == 2


def test_restem_round_samples_once_rewards_and_keeps_the_winners(tmp_path):
    from agent.lab.arc.restem import restem_round
    tasks = {"tiny": tiny_task(), "demo": demo_task(3)}
    completions = [json.dumps(SHORT.to_json()), "I think {oops", json.dumps(DEFAULT_CONFIG.to_json())]

    class FakeBackend:
        calls = 0

        def generate(self, prompts, n, max_new_tokens, temperature, top_p, seed, on_text=None, no_repeat_ngram=0):
            FakeBackend.calls += 1
            assert n == 3 and max_new_tokens == 128 and temperature == 0.8
            return [list(completions) for _ in prompts]

    jobs = []

    def job(rows):  # reward 1 for the short configuration on "tiny" only
        jobs.append(len(rows))
        out = []
        for r in rows:
            solved = r.task_id == "tiny" and r.config == SHORT
            out.append({"key": result_key(r.task_id, r.label, r.seed), "task_id": r.task_id, "label": r.label,
                        "status": "ok" if r.config else "invalid", "solved": solved})
        return out

    tok = make_tiny_tokenizer()
    summary = restem_round(FakeBackend(), tok, tasks, job, tmp_path, 1, k=3)
    assert summary["samples"] == 6 and summary["valid"] == 4 and summary["solved_tasks"] == 1
    [(prompt, completion)] = summary["pairs"]
    assert completion == completions[0] and prompt.startswith("<|system|>") and "Input:\n1 2\n3 4\n" in prompt
    assert jobs == [3, 3]  # one job per task: its configurations train together
    again = restem_round(FakeBackend(), tok, tasks, job, tmp_path, 1, k=3)
    assert FakeBackend.calls == 1 and jobs == [3, 3] and again == summary  # resumed: no new samples, no new solves


def test_single_demo_task_is_refused_and_unknown_outputs_are_ungraded(tmp_path):
    from agent.lab.arc.tasks import load_task_file
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3, 4]]}]}))
    task = load_task_file(path)
    assert task.id == "one" and task.test[0].output is None
    assert load_task_file(tmp_path / "missing.json") is None
    assert ttt_data(task, DEFAULT_CONFIG).refused == "no training example fits"
    tok = make_tiny_tokenizer()
    rows = solve(make_tiny_model(tok), tok, task, [DEFAULT_CONFIG, IN_CONTEXT], lora=LoraSettings(r=4, alpha=8))
    assert [r["status"] for r in rows] == ["refused", IN_CONTEXT]
    assert all(r["solved"] is None and r["passed"] is None for r in rows)
    assert len(rows[1]["attempts"]) == 1
