"""ReST-EM (agent/restem.py, teacher/policy.py): rewards, keep rule, completion-only SFT, resume, exported versions."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel

from agent.lab.cli import main
from agent.config import Config
from agent.lab.restem import Restem, RestemOptions
from agent.errors import BadInput
from agent.lab.restem_reward import Score, keep, reward_of, seed_gains
from agent.lab.restem_split import make_split
from student.adapters import AdapterStore
from student.config import AnswerSettings, LoraSettings, TrainSettings
from student.innerloop import CandidateResult
from teacher.config import PolicySettings
from teacher.selfedit import passage_share
from teacher.policy import (IGNORE_INDEX, attach_policy, completion_loss, detach_policy, encode_pair, encode_pairs,
                            train_policy)

from .conftest import make_tiny_model, make_tiny_tokenizer


def _result(acc: float, f1: float = 0.0, nll: float = 1.0) -> CandidateResult:
    return CandidateResult(tag="", answers=[], grades=[], accuracy=acc, f1=f1, em=0.0, nll=nll, losses=[], steps=0,
                           tokens=0, seconds=0.0)


# ---- rewards and keep rule ----------------------------------------------------------------------------------------
def test_reward_is_the_mean_paired_gain_over_seeds():
    edit = {0: _result(0.6, 0.5, 2.0), 1: _result(0.2, 0.1, 3.0)}
    passage = {0: _result(0.4, 0.5, 2.5), 1: _result(0.4, 0.3, 2.0), 2: _result(1.0, 1.0, 0.1)}  # seed 2: unused
    assert seed_gains(edit, passage, "contains") == pytest.approx({0: 0.2, 1: -0.2})
    assert reward_of(edit, passage, "contains") == pytest.approx(0.0)
    assert reward_of(edit, passage, "f1") == pytest.approx((0.0 - 0.2) / 2)
    # loglik: decrease of the gold-answer NLL vs passage-only, same seed: (2.5 - 2.0 + 2.0 - 3.0) / 2
    assert reward_of(edit, passage, "loglik") == pytest.approx(-0.25)
    # pairing is by seed, not by position
    assert reward_of({1: _result(0.8)}, {0: _result(0.0), 1: _result(0.6)}, "contains") == pytest.approx(0.2)
    with pytest.raises(KeyError):
        reward_of({3: _result(1.0)}, {0: _result(0.0)}, "contains")
    assert math.isnan(reward_of({0: _result(0.5, nll=math.nan)}, {0: _result(0.5)}, "loglik"))
    # records read back from the log score the same as the results
    rec = {"accuracy": 0.6, "f1": 0.5, "em": 0.0, "nll": 2.0}
    assert reward_of({0: Score.of(rec)}, {0: _result(0.4, 0.5, 2.5)}, "loglik") == pytest.approx(0.5)


def test_keep_rule():
    assert keep([0.1, 0.3, -0.2, 0.3], "best") == [1]  # highest, first on ties
    assert keep([0.1, 0.3, -0.2, 0.3], "positive") == [0, 1, 3]
    assert keep([0.0, -0.1, math.nan], "best") == []  # never keep an edit no better than the passage
    assert keep([0.0, -0.1, math.nan], "positive") == []
    assert keep([math.nan, 0.05], "best") == [1]
    with pytest.raises(ValueError):
        keep([1.0], "all")


# ---- the M-step's loss ------------------------------------------------------------------------------------------
def test_completion_only_masking_and_loss(tiny_tokenizer, tiny_model):
    prompt, completion = "<|user|>Read this.<eos><|assistant|>Implications:\n", "The sky is blue."
    ids, labels = encode_pair(tiny_tokenizer, prompt, completion, max_len=256)
    n_prompt = len(tiny_tokenizer(prompt)["input_ids"])
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(ids[n_prompt:-1]) == completion

    pairs = [(prompt, completion), ("Q: short", "a much longer completion than the other one")]
    batch = encode_pairs(tiny_tokenizer, pairs, max_len=256)
    assert ((batch["labels"] != IGNORE_INDEX) <= (batch["attention_mask"] == 1)).all()  # padding is -100
    loss, count = completion_loss(tiny_model, batch)

    # by hand: each sequence alone, unpadded, NLL of its completion tokens only
    total, n = 0.0, 0
    for p, c in pairs:
        seq, lab = encode_pair(tiny_tokenizer, p, c, 256)
        start = len(seq) - sum(1 for x in lab if x != IGNORE_INDEX)
        with torch.no_grad():
            logits = tiny_model(input_ids=torch.tensor([seq])).logits[0]
        targets = torch.tensor(seq[start:])
        total += float(F.cross_entropy(logits[start - 1: -1], targets, reduction="sum"))
        n += len(targets)
    assert count == n
    assert float(loss.detach()) == pytest.approx(total / n, rel=1e-5)

    # a prompt that leaves no room for the completion is dropped; the completion is cut to fit
    assert encode_pair(tiny_tokenizer, prompt, completion, max_len=n_prompt) is None
    assert len(encode_pair(tiny_tokenizer, prompt, completion, max_len=n_prompt + 3)[0]) == n_prompt + 3


def test_a_completion_the_cap_cut_gets_no_eos_under_eos_ended(tiny_tokenizer, tiny_model, monkeypatch):
    """policy.eos = ended: a completion as long as the generation cap (cut mid-text) is trained without the
    end-of-sequence token, one that ended earlier with it; eos = always (the default) ends both with it."""
    prompt = "Passage: Paris.\nImplications:\n"
    short, long_ = "Paris is in France.", " ".join(["Paris is a city in France."] * 12)
    n_short, n_long = (len(tiny_tokenizer(c, add_special_tokens=False)["input_ids"]) for c in (short, long_))
    cap = n_long  # the long one filled the cap; the short one stopped well before it
    assert n_short < cap - 4
    eos = tiny_tokenizer.eos_token_id
    assert encode_pair(tiny_tokenizer, prompt, long_, 512, cap=cap)[0][-1] != eos
    assert encode_pair(tiny_tokenizer, prompt, short, 512, cap=cap)[0][-1] == eos
    assert encode_pair(tiny_tokenizer, prompt, long_, 512)[0][-1] == eos  # no cap: always
    # train_policy passes the cap on only under eos = ended
    import teacher.policy as policy_mod
    seen, real = [], policy_mod.encode_pair
    monkeypatch.setattr(policy_mod, "encode_pair", lambda *a: seen.append(a[4]) or real(*a))
    for mode in ("always", "ended"):
        settings = PolicySettings(r=4, alpha=8, epochs=0, eos=mode)
        policy = attach_policy(tiny_model, settings)
        train_policy(policy, tiny_tokenizer, [(prompt, long_)], settings, cap=cap)
        tiny_model = detach_policy(policy)
    assert seen == [None, cap]
    with pytest.raises(ValueError, match="eos"):
        PolicySettings(eos="never")


def test_policy_training_lowers_the_completion_loss(tiny_tokenizer, tiny_model):
    model = attach_policy(tiny_model, PolicySettings(r=4, alpha=8, lr=1e-2, epochs=8, batch_size=2))
    pairs = [("Passage: Paris.\nImplications:\n", "Paris is in France."), ("Passage: Rome.\nImplications:\n", "Rome.")]
    batch = encode_pairs(tiny_tokenizer, pairs, 128)
    with torch.no_grad():
        before = float(completion_loss(model, batch)[0])
    result = train_policy(model, tiny_tokenizer, pairs, PolicySettings(r=4, alpha=8, lr=1e-2, epochs=8, batch_size=2))
    assert result.steps == 8 and result.pairs == 2 and not model.training
    with torch.no_grad():
        assert float(completion_loss(model, batch)[0]) < before


# ---- the loop ---------------------------------------------------------------------------------------------------
PASSAGES = [
    {"title": "Alpha", "context": "Alpha town has a red bridge built in 1901.",
     "questions": [{"question": "What colour is the bridge?", "answer": "red"}]},
    {"title": "Beta", "context": "Beta river flows north into the cold sea.",
     "questions": [{"question": "Where does Beta river flow?", "answer": "north"}]},
    {"title": "Gamma", "context": "Gamma hill hosts an old observatory.",
     "questions": [{"question": "What is on Gamma hill?", "answer": "an observatory"}]},
]


def _setup(tmp_path, **opts):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "train.json"
    data.write_text(json.dumps(PASSAGES[:2]))
    held = tmp_path / "held.json"
    held.write_text(json.dumps(PASSAGES))  # Alpha and Beta are training titles: only Gamma is held out
    cfg = Config(home=tmp_path / "home")
    cfg.absorb.method = "sft"
    cfg.teacher.max_new_tokens = 16
    cfg.train = TrainSettings(lr=3e-3, epochs=2, batch_size=4, max_len=64)
    cfg.lora = LoraSettings(r=4, alpha=8)
    cfg.answer = AnswerSettings(max_new_tokens=4, batch_size=4)
    cfg.policy = PolicySettings(r=4, alpha=8, lr=1e-2, epochs=2, batch_size=2, max_len=256)
    tok = make_tiny_tokenizer()
    options = dict(data=data, eval_data=held, rounds=2, passages=2, samples=2, seeds=2, reward="loglik",
                   keep="positive", eval_passages=1, out=tmp_path / "run", group=3)
    options.update(opts)
    return cfg, RestemOptions(**options), (lambda: (make_tiny_model(tok, seed=1), tok)), \
        (lambda: (make_tiny_model(tok, seed=2), tok))


def test_eval_titles_reserve_whole_titles_even_with_commas(tmp_path):
    """--eval-titles on a pool of many titles: the reserved titles leave training and are the held-out set; a
    title holding a comma is matched whole inside the list."""
    fresno = {"title": "Fresno, California", "context": "Fresno lies in the San Joaquin Valley.",
              "questions": [{"question": "Where does Fresno lie?", "answer": "the San Joaquin Valley"}]}
    data = tmp_path / "pool.json"
    data.write_text(json.dumps(PASSAGES + [fresno]))
    split = make_split(data, data, n_train=2, eval_titles=("Alpha,Fresno, California",))
    assert split.heldout_titles == ["Alpha", "Fresno, California"]
    assert split.train_titles == ["Beta", "Gamma"]
    assert sorted(p.title for p in split.train) == ["Beta", "Gamma"]
    assert make_split(data, data, 2).heldout == []  # no reserved titles: every title of the pool trains
    with pytest.raises(BadInput, match="no passages titled Fresno"):
        make_split(data, data, 2, eval_titles=("Fresno",))


def _stable(path):
    """Log lines without wall times."""
    drop = {"seconds", "teacher"}  # wall times; version ids are unique per store
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in path.read_text().splitlines()]


def _assert_same(a, b):
    """Equal, floats within tolerance: a resumed batch may group candidates differently (float reduction order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6, nan_ok=True)
    else:
        assert a == b


class Kill(Exception):
    pass


def test_resume_after_a_kill_gives_the_same_run(tmp_path):
    cfg, opts, load_teacher, load_student = _setup(tmp_path / "a")
    full = Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    assert [r["round"] for r in full["rounds"]] == [0, 1, 2]
    assert full["split"]["heldout_passages"] == 1  # Gamma only
    r1, r2 = full["rounds"][1], full["rounds"][2]
    assert r1["trained"] and r2["trained"] and r2["teacher"] == r1["adapter"] != r2["adapter"] == full["teacher"]
    # the round summary says how grounded in the passage the sampled and the kept self-edits were
    samples = [json.loads(x) for x in (opts.out / "samples.jsonl").read_text().splitlines()]
    contexts = {i: p["context"] for i, p in enumerate(json.loads(opts.data.read_text()))}
    sampled = [passage_share(c, contexts[s["passage"]]) for s in samples if s["set"] == "train" and s["round"] == 1
               for c in s["completions"]]
    kept = [passage_share(next(s for s in samples if s["set"] == "train" and s["round"] == 1
                               and s["passage"] == x["passage"])["completions"][x["sample"]], contexts[x["passage"]])
            for x in r1["picks"]]
    assert r1["grounding"]["sampled"] == pytest.approx(sum(sampled) / len(sampled))
    assert r1["grounding"]["kept"] == pytest.approx(sum(kept) / len(kept))
    assert AdapterStore(cfg.home / "adapters" / "teacher").meta(r2["adapter"])["parent"] == r1["adapter"]

    cfg2, opts2, lt2, ls2 = _setup(tmp_path / "b")
    seen = {"rewards": 0}

    def killer(log, _rec):
        if log == "rewards":
            seen["rewards"] += 1
            if seen["rewards"] == 3:  # round 1, second passage, first sample: mid-round
                raise Kill()

    with pytest.raises(Kill):
        Restem(cfg2, opts2, load_teacher=lt2, load_student=ls2, on_record=killer).prepare().run()

    def kill_after_mstep(log, rec):  # round 1's policy is saved; die in its held-out evaluation
        if log == "evals" and rec["set"] == "heldout" and rec["round"] == 1:
            raise Kill()

    with pytest.raises(Kill):
        Restem(cfg2, opts2, load_teacher=lt2, load_student=ls2, on_record=kill_after_mstep).prepare().run()
    assert json.loads((opts2.out / "round-1.json").read_text())["status"] == "trained"
    evals_before = len((opts2.out / "evals.jsonl").read_text().splitlines())
    counted = {"evals": 0, "samples": 0}

    def count(log, _rec):
        counted[log] = counted.get(log, 0) + 1

    resumed = Restem(cfg2, opts2, load_teacher=lt2, load_student=ls2, on_record=count).prepare().run()
    evals_total = len((opts2.out / "evals.jsonl").read_text().splitlines())
    assert counted["evals"] == evals_total - evals_before  # nothing evaluated twice
    for name in ("rewards.jsonl", "evals.jsonl", "samples.jsonl"):
        _assert_same(_stable(opts.out / name), _stable(opts2.out / name))
    for a, b in zip(full["rounds"], resumed["rounds"]):
        assert a.get("picks") == b.get("picks")
        assert a.get("kept") == b.get("kept")
    assert len(AdapterStore(cfg2.home / "adapters" / "teacher").ids()) == 2  # round 1 was not trained twice
    # a re-run of a finished run does nothing
    again = {"n": 0}
    Restem(cfg2, opts2, load_teacher=lt2, load_student=ls2,
           on_record=lambda *_: again.__setitem__("n", again["n"] + 1)).prepare().run()
    assert again["n"] == 0
    # other settings in the same folder are refused
    with pytest.raises(Exception, match="other settings"):
        Restem(cfg2, RestemOptions(**{**opts2.__dict__, "samples": 3}), load_teacher=lt2,
               load_student=ls2).prepare()


@pytest.mark.parametrize("init,eos,ngram", [("previous", "always", 0), ("base", "ended", 3)])
def test_policy_init_says_where_each_m_step_starts(tmp_path, monkeypatch, init, eos, ngram):
    """policy.init = previous: round 2's M-step continues round 1's policy (SEAL's chain); base: it starts from a
    fresh policy on the base model (ReST-EM). Either way round 2's version names round 1 as its parent, and only a
    non-default init, eos or teacher.no_repeat_ngram is recorded in the run folder (older folders resume). Every M-step is told the cap
    its completions were sampled under (teacher.max_new_tokens), which policy.eos = ended uses."""
    import agent.lab.restem as restem_mod
    trained, caps = [], []  # per M-step: whether the policy held any learned weights before training; its cap

    def spy(model, *a, **kw):
        trained.append(any(float(p.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n))
        caps.append(kw.get("cap"))
        return real(model, *a, **kw)

    real = restem_mod.train_policy
    monkeypatch.setattr(restem_mod, "train_policy", spy)
    cfg, opts, load_teacher, load_student = _setup(tmp_path, eval_passages=0)
    cfg.policy.init, cfg.policy.eos, cfg.teacher.no_repeat_ngram = init, eos, ngram
    doc = Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    r1, r2 = (next(r for r in doc["rounds"] if r["round"] == n) for n in (1, 2))
    assert r1["trained"] and r2["trained"]
    assert trained == [False, init == "previous"]
    assert AdapterStore(cfg.home / "adapters" / "teacher").meta(r2["adapter"])["parent"] == r1["adapter"]
    run = json.loads((opts.out / "run.json").read_text())
    assert run["teacher"]["no_repeat_ngram"] == ngram
    assert run["format"] == 2
    recorded = run["policy"]
    assert recorded["init"] == init
    assert recorded["eos"] == eos
    assert caps == [cfg.teacher.max_new_tokens] * 2


def test_a_run_carried_to_another_home_rebuilds_its_teachers(tmp_path):
    """The run folder is the record: in a home without its teacher versions, a re-run trains each finished
    round's M-step again from the logged kept self-edits (nothing is sampled or evaluated again) and gets the
    same weights under new ids."""
    from safetensors.torch import load_file

    cfg, opts, load_teacher, load_student = _setup(tmp_path / "a", eval_passages=0)
    first = Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    old = [r["adapter"] for r in first["rounds"]]
    cfg_b = Config(**{**cfg.__dict__, "home": tmp_path / "b" / "home"})
    records = []
    again = Restem(cfg_b, opts, load_teacher=load_teacher, load_student=load_student,
                   on_record=lambda log, rec: records.append(log)).prepare().run()
    assert records == []  # no self-edit sampled, no candidate evaluated
    new = [r["adapter"] for r in again["rounds"]]
    assert [r["rebuilt_from"] for r in again["rounds"]] == old and not set(new) & set(old)
    assert again["teacher"] == new[-1] and again["rounds"][1]["teacher"] == old[0]  # round 2 sampled from the old
    store_a, store_b = (AdapterStore(c.home / "adapters" / "teacher") for c in (cfg, cfg_b))
    assert store_b.meta(new[1])["parent"] == new[0] and store_b.meta(new[0])["rebuilt_from"] == old[0]
    for a, b in zip(old, new):
        wa = load_file(store_a.path(a) / "adapter_model.safetensors")
        wb = load_file(store_b.path(b) / "adapter_model.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # a third run finds both versions and does nothing
    Restem(cfg_b, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    assert store_b.ids() == new


def test_fresh_rounds_sample_new_passages(tmp_path):
    """--fresh: round r samples the r-th block of --passages from the seeded pool, so no round rewards a passage an
    earlier M-step learned from; each passage gets its own passage-only baselines, a round keeps winners only from
    its own passages, and a run that would need more passages than the pool holds is refused before any work. The
    choice is part of the run: a folder made without --fresh does not resume with it."""
    cfg, opts, load_teacher, load_student = _setup(tmp_path, passages=1, fresh=True, eval_passages=0)
    doc = Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    logged = [json.loads(line) for line in (opts.out / "samples.jsonl").read_text().splitlines()]
    by_round = {r["round"]: r["passage"] for r in logged}
    assert sorted(by_round) == [1, 2] and by_round[1] != by_round[2]
    split = json.loads((opts.out / "split.json").read_text())
    assert split["round_passages"] == {"1": [by_round[1]], "2": [by_round[2]]}
    assert doc["split"]["train_passages"] == 2 and doc["settings"]["fresh"] is True
    baselines = {(e["passage"], e["seed"]) for e in map(json.loads, (opts.out / "evals.jsonl").read_text().splitlines())
                 if e["kind"] == "passage"}
    assert baselines == {(p, s) for p in by_round.values() for s in (0, 1)}
    for r in doc["rounds"]:
        assert {x["passage"] for x in r["picks"]} <= {by_round[r["round"]]}
    assert json.loads((opts.out / "run.json").read_text())["fresh"] is True

    with pytest.raises(BadInput, match="3 rounds of 1 passages need 3; the training pool has 2"):
        Restem(cfg, RestemOptions(**{**opts.__dict__, "rounds": 3}), load_teacher=load_teacher,
               load_student=load_student).prepare()
    same = RestemOptions(**{**opts.__dict__, "out": tmp_path / "same", "fresh": False, "rounds": 1})
    Restem(cfg, same, load_teacher=load_teacher, load_student=load_student).prepare()
    with pytest.raises(BadInput, match="other settings"):
        Restem(cfg, RestemOptions(**{**same.__dict__, "fresh": True}), load_teacher=load_teacher,
               load_student=load_student).prepare()


def _branch_tool():
    from agent.lab import restem_branch
    return restem_branch


def test_a_branch_after_round_one_reuses_its_rewards_under_another_policy(tmp_path):
    """agent.lab.restem_branch: round 1 sampled from the untrained teacher, so another M-step setting can start
    from its logged rewards. The branch rebuilds round 1's teacher under the new policy (more epochs: more steps),
    measures that teacher's quick held-out anew, samples and rewards only round 2, and the source run is
    untouched; a key that is no policy setting is refused."""
    branch = _branch_tool().branch
    cfg, opts, load_teacher, load_student = _setup(tmp_path / "a")  # 2 rounds: the branch keeps round 1's
    src = Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    before = {f.name: f.read_bytes() for f in opts.out.iterdir()}
    with pytest.raises(SystemExit, match="not a policy setting: epoch"):
        branch(opts.out, tmp_path / "nope", {"epoch": 3})
    dst = tmp_path / "b" / "run"
    made = branch(opts.out, dst, {"init": "base", "epochs": 3})
    assert made["policy"]["init"] == "base" and made["policy"]["epochs"] == 3
    assert {f.name: f.read_bytes() for f in opts.out.iterdir()} == before

    cfg_b = Config(**{**cfg.__dict__, "home": tmp_path / "b" / "home"})
    cfg_b.policy = PolicySettings(**{**cfg.policy.__dict__, "init": "base", "epochs": 3})
    opts_b = RestemOptions(**{**opts.__dict__, "out": dst, "rounds": 2})
    records = []
    doc = Restem(cfg_b, opts_b, load_teacher=load_teacher, load_student=load_student,
                 on_record=lambda log, rec: records.append((log, rec.get("set"), rec["round"]))).prepare().run()
    assert {r for r in records if r[2] != 2} == {("samples", "heldout", 1), ("evals", "heldout", 1)}
    assert {r[0] for r in records if r[2] == 2} == {"samples", "evals", "rewards"}
    r1_src, r1 = src["rounds"][1], doc["rounds"][1]
    assert r1["rebuilt_from"] == r1_src["adapter"] and r1["picks"] == r1_src["picks"]
    assert r1["policy_train"]["steps"] == r1_src["policy_train"]["steps"] * 3 // 2
    assert r1["heldout"]["passages"] == 1 and doc["rounds"][2]["trained"] is not None
    # the same folder with the source's policy is another run
    with pytest.raises(BadInput, match="policy differ"):
        Restem(cfg, opts_b, load_teacher=load_teacher, load_student=load_student).prepare()


def test_a_fresh_branch_continues_round_one_on_new_passages(tmp_path):
    """restem_branch.py fresh=true: a run's first round is the first block of the pool, so the branch resumes as a
    --fresh run: round 1 is not sampled or rewarded again, round 2 samples the pool's next passage."""
    cfg, opts, load_teacher, load_student = _setup(tmp_path / "a", passages=1, rounds=1, eval_passages=0)
    Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    dst = tmp_path / "b" / "run"
    _branch_tool().branch(opts.out, dst, {"fresh": True})
    cfg_b = Config(**{**cfg.__dict__, "home": tmp_path / "b" / "home"})
    records = []
    Restem(cfg_b, RestemOptions(**{**opts.__dict__, "out": dst, "rounds": 2, "fresh": True}), load_teacher=load_teacher,
           load_student=load_student, on_record=lambda log, rec: records.append((log, rec["round"], rec["passage"]))
           ).prepare().run()
    first = json.loads((opts.out / "samples.jsonl").read_text())["passage"]
    assert {(log, rnd) for log, rnd, _ in records} >= {("samples", 2), ("rewards", 2)}
    assert all(rnd in (-1, 2) and p != first for _, rnd, p in records)


@pytest.mark.parametrize("text", ['{"status": "done", "adapter": "t-x"}', '{"round": 1, "stat', "\x00\xff"])
def test_a_damaged_round_manifest_is_a_one_line_error(tmp_path, text):
    cfg, opts, load_teacher, load_student = _setup(tmp_path, rounds=1, eval_passages=0)
    Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    (opts.out / "round-1.json").write_text(text, encoding="latin-1")
    with pytest.raises(BadInput, match="round-1.json: not "):
        Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()


def test_exported_version_loads_with_peft_and_changes_generation(tmp_path, capsys):
    cfg, opts, load_teacher, load_student = _setup(tmp_path, rounds=1, eval_passages=0)
    doc = Restem(cfg, opts, load_teacher=load_teacher, load_student=load_student).prepare().run()
    rnd = doc["rounds"][-1]
    assert rnd["trained"] and rnd["kept"] > 0, rnd
    store = AdapterStore(cfg.home / "adapters" / "teacher")
    version = doc["teacher"]
    assert store.ids() == [version] and store.meta(version)["round"] == 1
    assert (store.path(version) / "adapter_model.safetensors").is_file()

    base, tok = load_teacher()
    ids = tok("Passage: Alpha\nImplications:\n", return_tensors="pt")["input_ids"]
    kw = dict(max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        before = base.generate(ids, **kw)
        peft = PeftModel.from_pretrained(base, str(store.path(version))).eval()
        after = peft.generate(input_ids=ids, **kw)
    assert not torch.equal(before, after)

    # `seal-agent teacher list` shows it; a bad --reward is refused with one line
    with pytest.raises(SystemExit) as e:
        main(["--home", str(cfg.home), "--json", "teacher", "list"])
    rows = json.loads(capsys.readouterr().out)["versions"]
    assert e.value.code == 0 and [(r["id"], r["round"], r["parent"]) for r in rows] == [(version, 1, None)]
    with pytest.raises(SystemExit) as e:
        main(["--home", str(tmp_path / "new"), "--json", "teacher", "list"])
    assert e.value.code == 0 and json.loads(capsys.readouterr().out) == {"versions": []}
    assert not (tmp_path / "new").exists()  # listing creates nothing
    with pytest.raises(SystemExit) as e:
        main(["--home", str(cfg.home), "teacher", "train", "--reward", "bleu", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "--reward 'bleu'" in capsys.readouterr().err


def test_self_mode_rewards_round_two_on_the_merged_teacher(tmp_path):
    cfg, opts, load_teacher, load_student = _setup(tmp_path, self_mode=True, eval_passages=0, seeds=1)

    def no_student():
        raise AssertionError("--self never loads models.student")

    doc = Restem(cfg, opts, load_teacher=load_teacher, load_student=no_student).prepare().run()
    r1 = doc["rounds"][0]
    assert r1["trained"]
    evals = [json.loads(line) for line in (opts.out / "evals.jsonl").read_text().splitlines()]
    baselines = {(r["student"], r["passage"]): r for r in evals if r["kind"] == "passage"}
    assert {s for s, _ in baselines} == {0, 1}  # passage-only recomputed on round 1's merged teacher
    # the merged student differs from the plain teacher base: the same candidate scores differently
    assert any(baselines[(0, p)]["nll"] != baselines[(1, p)]["nll"] for _, p in baselines)


def test_train_table_fits_80_columns(tmp_path, monkeypatch, capsys):
    """`teacher train`'s summary table, as a log file gets it (80 columns): every cell whole."""
    import agent.lab.restem as restem

    doc = {"out": str(tmp_path / "run"), "teacher": "t-2", "rounds": [
        {"round": 1, "reward_stats": {"mean": -0.079, "max": 0.375}, "kept": 71, "passages_kept": 71,
         "passages": 193, "grounding": {"sampled": 0.371, "kept": 0.379}, "adapter": "t-1", "trained": True,
         "seconds": 833.4, "heldout": {"accuracy": 0.111, "passage_accuracy": 0.183}},
        {"round": 2, "reward_stats": {"mean": -0.078, "max": 0.5}, "kept": 78, "passages_kept": 78,
         "passages": 193, "grounding": {"sampled": 0.411, "kept": 0.416}, "adapter": "t-2", "trained": True,
         "seconds": 614.0}],
        "split": {"train_passages": 193, "train_passage_titles": ["Rhine"], "heldout_passages": 167,
                  "heldout_file": str(tmp_path / "run" / "heldout.json")}}

    class Finished:  # a run that has already finished: only the report is rendered
        def __init__(self, *args, **kwargs):
            pass

        def prepare(self):
            return self

        def run(self):
            return doc

    monkeypatch.setattr(restem, "Restem", Finished)
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as e:
        main(["--home", str(tmp_path / "home"), "teacher", "train", "--out", doc["out"]])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "…" not in out
    row1 = next(line for line in out.splitlines() if line.split()[:1] == ["1"])
    assert row1.split() == ["1", "-0.079", "+0.375", "71", "(71/193)", "37%/38%", "0.111", "0.183", "13.9"]
    assert max(len(line) for line in out.splitlines()) <= 80
