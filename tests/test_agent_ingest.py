"""The ingest pipeline on tiny random models: commit, guard, rollback, cancel, crash consistency, replay."""
import json
import threading

import pytest
import torch

from agent.errors import BadInput, Cancelled
from agent.events import EditCommitted, EditRejected, TrainStep
from agent.ingest import Ingest, IngestOptions, judge
from tests.conftest import make_tiny_agent, tiny_config

DOC = {"title": "Zorblat", "context": "The zorblat lives in Quentin Bay and eats blue kelp every morning.",
       "questions": [{"question": "Where does the zorblat live?", "answer": "Quentin Bay"},
                     {"question": "What does the zorblat eat?", "answer": "blue kelp"}]}
DOC2 = {"title": "Murvel", "context": "Murvel towers were built in 1802 by the glassmakers of Ostrin.",
        "questions": [{"question": "Who built the Murvel towers?", "answer": "the glassmakers of Ostrin"}]}


def continue_agent(home):
    """update = continue (one knowledge adapter that keeps training): the tests below look at the student's
    weights after an ingest, which in a route store rest at the base between questions."""
    return make_tiny_agent(home, tiny_config(home, ingest={"update": "continue"}))


@pytest.fixture
def tiny_agent(tmp_path):
    agent = continue_agent(tmp_path / "home")
    yield agent
    agent.close()


def write(tmp_path, name, *docs):
    f = tmp_path / name
    f.write_text(json.dumps(list(docs)))
    return f


def logits(agent, text="Where does the zorblat live?"):
    s = agent.student
    ids = s.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return s.model(input_ids=ids).logits.clone()


def snapshot(home):
    """What a user could lose: every file under the home except the lock."""
    return sorted((str(p.relative_to(home)), p.stat().st_size) for p in home.rglob("*") if p.is_file()
                  and p.name != ".lock" and "chroma" not in p.parts)


def test_ingest_commits_an_adapter_and_records(tmp_path, tiny_agent):
    events = []
    f = write(tmp_path, "z.json", DOC)
    base = logits(tiny_agent)
    [out] = Ingest(tiny_agent, IngestOptions(guard=False), emit=events.append).run([f])
    assert out.status == "committed" and out.texts >= 1 and out.train_steps > 0
    assert [a["question"] for a in out.answers] == [q["question"] for q in DOC["questions"]]
    assert any(isinstance(e, TrainStep) for e in events) and any(isinstance(e, EditCommitted) for e in events)
    assert not torch.equal(base, logits(tiny_agent))          # the student changed
    [row] = tiny_agent.history()
    assert row["status"] == "active" and row["adapter_id"] == out.adapter_id
    folder = tiny_agent.adapters.path(out.adapter_id)
    assert list(folder.rglob("adapter_model.safetensors")) and not list(folder.rglob("*.bin"))
    docs = tiny_agent.memory.documents()
    assert [d["title"] for d in docs] == ["Zorblat"]
    assert tiny_agent.memory.probes()[docs[0]["doc_id"]] == [(q["question"], q["answer"]) for q in DOC["questions"]]
    assert "Zorblat\nThe zorblat lives in Quentin Bay and eats blue kelp every morning." in tiny_agent.memory.training_stream()


def test_the_learned_adapter_survives_a_restart(tmp_path):
    home = tmp_path / "home"
    agent = continue_agent(home)
    Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    learned = logits(agent)
    agent.close()
    again = continue_agent(home)
    assert torch.equal(learned, logits(again))
    again.close()


def test_duplicate_is_refused_and_nothing_changes(tmp_path, tiny_agent):
    f = write(tmp_path, "z.json", DOC)
    Ingest(tiny_agent, IngestOptions(guard=False)).run([f])
    home = tiny_agent.cfg.home
    before, hist = snapshot(home), tiny_agent.history()
    with pytest.raises(BadInput, match="already ingested"):
        Ingest(tiny_agent, IngestOptions(guard=False)).run([f])
    assert snapshot(home) == before and tiny_agent.history() == hist
    [out] = Ingest(tiny_agent, IngestOptions(guard=False, force=True)).run([f])   # --force learns it again
    assert out.status == "committed" and len(tiny_agent.history()) == 2


def test_rollback_restores_the_previous_adapter(tmp_path, tiny_agent):
    base = logits(tiny_agent)
    [a] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    after_a = logits(tiny_agent)
    [b] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "m.json", DOC2)])
    assert a.adapter_id != b.adapter_id
    res = tiny_agent.rollback(b.edit_id)
    assert res["undone"] == [b.edit_id] and res["head"] == a.adapter_id
    assert torch.equal(after_a, logits(tiny_agent))
    res = tiny_agent.rollback(a.edit_id)
    assert torch.equal(base, logits(tiny_agent)) and res["head"] == "base"
    status = {r["edit_id"]: r["status"] for r in tiny_agent.history()}
    assert status[a.edit_id] == status[b.edit_id] == "rolled_back"
    with pytest.raises(BadInput, match="already rolled back"):
        tiny_agent.rollback(a.edit_id)
    with pytest.raises(BadInput, match="no such committed edit"):
        tiny_agent.rollback("e-nope")
    assert tiny_agent.memory.documents() == [] and tiny_agent.memory.training_stream() == []
    [c] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])  # learnable again
    assert c.adapter_id not in (a.adapter_id, b.adapter_id)


def test_rollback_of_an_earlier_edit_undoes_the_later_ones(tmp_path, tiny_agent):
    [a] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    [b] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "m.json", DOC2)])
    res = tiny_agent.rollback(a.edit_id)
    assert sorted(res["undone"]) == sorted([a.edit_id, b.edit_id]) and res["head"] == "base"


def test_cancel_mid_training_leaves_nothing(tmp_path, tiny_agent):
    cancel = threading.Event()
    base = logits(tiny_agent)
    home = tiny_agent.cfg.home
    before = snapshot(home)

    def emit(e):
        if isinstance(e, TrainStep) and e.step == 1:
            cancel.set()
    with pytest.raises(Cancelled):
        Ingest(tiny_agent, IngestOptions(guard=False), emit=emit, cancel=cancel).run([write(tmp_path, "z.json", DOC)])
    assert tiny_agent.history() == [] and tiny_agent.adapters.ids() == []
    assert torch.equal(base, logits(tiny_agent)) and snapshot(home) == before


def test_a_crash_before_the_commit_point_leaves_a_consistent_store(tmp_path):
    home = tmp_path / "home"
    agent = continue_agent(home)
    real_log = agent.memory.log

    def crash(edit):
        raise KeyboardInterrupt("killed")
    agent.memory.log = crash
    with pytest.raises(KeyboardInterrupt):
        Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    assert len(agent.adapters.ids()) == 1          # the adapter was written, the log entry was not
    agent.memory.log = real_log
    agent.close()
    again = continue_agent(home)
    assert again.history() == [] and again.memory.documents() == []
    [out] = Ingest(again, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    assert again.adapters.ids() == [out.adapter_id]  # the orphan was swept; its id is not reused
    assert again.memory.cols["documents"].count() == 1 and again.memory.cols["probes"].count() == 2
    again.close()


def test_guard_rejects_a_worse_edit_and_restores_the_student(tmp_path, tiny_agent, monkeypatch):
    base = logits(tiny_agent)
    nll = iter([1.0, 2.0])  # gold-answer NLL before, after: worse
    monkeypatch.setattr(tiny_agent.student, "answer_nll", lambda qs, gs, **kw: [next(nll)] * len(qs))
    events = []
    [out] = Ingest(tiny_agent, emit=events.append).run([write(tmp_path, "z.json", DOC)])
    assert out.status == "rejected" and "did not fall" in out.reason
    assert any(isinstance(e, EditRejected) for e in events)
    assert torch.equal(base, logits(tiny_agent)) and tiny_agent.adapters.ids() == []
    [row] = tiny_agent.history()
    assert row["kind"] == "reject" and row["status"] == "rejected"
    assert tiny_agent.memory.documents() == []


def test_judge_rules():
    assert judge(0.5, 0.25, 1, 0.5, {}, {}, 0.0, 4)[0] is False                       # own probes fell
    assert judge(0.0, 0.5, 1, 2, {"d": 1.0}, {"d": 0.5}, 0.0, 4)[0] is False          # earlier docs fell
    assert judge(0.0, 0.5, 1, 2, {"d": 1.0}, {"d": 0.5}, 0.6, 4)[0] is True           # ...within tolerance
    assert judge(0.0, 0.0, 2.0, 1.5, {}, {}, 0.0, 4)[0] is True                       # tie, NLL fell
    assert judge(0.0, 0.0, 2.0, 2.5, {}, {}, 0.0, 4)[0] is False                      # tie, NLL rose
    assert judge(0.0, 0.0, 0.0, 0.0, {}, {}, 0.0, 0)[0] is True                       # no probes: unguarded


def test_later_edits_mix_in_replay_of_earlier_ones(tmp_path, tiny_agent):
    Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    [b] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "m.json", DOC2)])
    edit = tiny_agent.memory.find_edit(b.edit_id)
    assert edit.info["replay"] >= 1 and edit.info["anchor"] == 0
    assert set(edit.retention) == {e.doc_id for e in tiny_agent.memory.state().active()}
    # 'mixed' adds the general text as a KL anchor: the first edit has nothing to replay yet but is anchored
    from agent.replay import general_texts
    tiny_agent.cfg.replay.strategy = "mixed"
    [c] = Ingest(tiny_agent, IngestOptions(guard=False)).run([write(tmp_path, "n.json", {**DOC2, "title": "Quorn", "context": "Quorn mills grind barley on Tuesdays."})])
    info = tiny_agent.memory.find_edit(c.edit_id).info
    assert info["replay"] >= 1 and info["anchor"] == len(general_texts())


def test_text_document_gets_cloze_probes_or_goes_unguarded(tmp_path):
    """A random tiny teacher writes no usable question; fill-in-the-blank probes cut from the text guard the edit
    instead. With the fallback off, the edit is kept and says it was not guarded."""
    from .conftest import make_tiny_agent, tiny_config

    f = tmp_path / "n.txt"
    f.write_text("Zorblats\n\nThe small zorblat lives in Quentin Bay near the old harbour.")
    with make_tiny_agent(tmp_path / "a") as agent:
        [out] = Ingest(agent).run([f])
        assert [a["question"] for a in out.answers] == [
            "Fill in the blank (about Zorblats): The small zorblat lives in ____ near the old harbour."]
        assert [a["gold"] for a in out.answers] == ["Quentin Bay"]
        assert "unguarded" not in out.reason and "NLL" in out.reason
    cfg = tiny_config(tmp_path / "b", teacher={"cloze_fallback": False})
    with make_tiny_agent(tmp_path / "b", cfg) as agent:
        [out] = Ingest(agent).run([f])
        assert out.answers == [] and out.status == "committed" and "unguarded" in out.reason


# ---- update = route: an adapter per document ------------------------------------------------------------------
GENERAL_Q = "What is the boiling point of water at sea level?"


def route_agent(home, **ingest):
    return make_tiny_agent(home, tiny_config(home, ingest={"update": "route", **ingest}))


def test_route_learns_each_document_in_its_own_adapter_and_forgets_nothing(tmp_path):
    agent = route_agent(tmp_path / "home")
    zq = [q["question"] for q in DOC["questions"]]
    zg = [q["answer"] for q in DOC["questions"]]
    base_nll = agent.student.answer_nll(zq, zg, base=True)
    [a] = Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    learned_nll, learned_answers = agent.answer_nll(zq, zg), agent.ask(zq)
    assert learned_nll != base_nll                                   # the document's questions meet its adapter
    weights = agent.adapters.weights_file(a.adapter_id).read_bytes()
    [b] = Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "m.json", DOC2)])
    assert a.adapter_id != b.adapter_id and {e.info["update"] for e in agent.memory.state().edits} == {"route"}
    assert agent.routes(zq) == ["Zorblat", "Zorblat"]
    assert agent.routes([DOC2["questions"][0]["question"], GENERAL_Q]) == ["Murvel", ""]
    # no forgetting: the first document's questions get exactly what they got right after it was learned
    assert agent.answer_nll(zq, zg) == learned_nll and agent.ask(zq) == learned_answers
    assert agent.adapters.weights_file(a.adapter_id).read_bytes() == weights
    # a question about neither document meets the untouched base model, and the student rests at the base
    assert agent.ask([GENERAL_Q]) == agent.student.answer([GENERAL_Q], base=True)
    assert torch.equal(logits(agent), logits_base(agent))
    # the retention row of the second edit holds the first document's accuracy, re-measured through the router
    edit = agent.memory.find_edit(b.edit_id)
    assert set(edit.retention) == {a.doc_id, b.doc_id} and edit.info["replay"] == 0
    agent.close()

    again = continue_agent(tmp_path / "home")                       # a config for 'continue': the store keeps 'route'
    assert again.update_mode == "route" and again.answer_nll(zq, zg) == learned_nll
    again.close()


def logits_base(agent, text="Where does the zorblat live?"):
    s = agent.student
    ids = s.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad(), s.model.disable_adapter():
        return s.model(input_ids=ids).logits.clone()


def test_route_rollback_and_a_store_keeps_its_update_mode(tmp_path):
    agent = route_agent(tmp_path / "home")
    Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    [b] = Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "m.json", DOC2)])
    murvel_q = [DOC2["questions"][0]["question"]]
    assert agent.routes(murvel_q) == ["Murvel"]
    agent.rollback(b.edit_id)
    assert agent.routes(murvel_q) != ["Murvel"] and agent.routes([DOC["questions"][0]["question"]]) == ["Zorblat"]
    agent.close()
    # a config asking for 'continue' does not change a store that learns with 'route'; the user is told
    cont = make_tiny_agent(tmp_path / "home", tiny_config(tmp_path / "home", ingest={"update": "continue"}))
    events = []
    Ingest(cont, IngestOptions(guard=False), emit=events.append).run([write(tmp_path, "m2.json", DOC2)])
    assert cont.update_mode == "route" and cont.memory.state().edits[-1].info["update"] == "route"
    assert any(getattr(e, "level", "") == "warning" and "'route'" in e.text for e in events)
    cont.close()


def test_route_guard_rejects_and_keeps_nothing(tmp_path, monkeypatch):
    agent = route_agent(tmp_path / "home")
    monkeypatch.setattr("agent.ingest.judge", lambda *a, **k: (False, "forced"))
    [out] = Ingest(agent, IngestOptions()).run([write(tmp_path, "z.json", DOC)])
    assert out.status == "rejected" and agent.adapters.ids() == [] and agent.routes(["Where does the zorblat live?"]) == [""]
    assert torch.equal(logits(agent), logits_base(agent))
    agent.close()


def test_a_store_from_before_the_option_keeps_continue(tmp_path):
    """Commits logged before ingest.update existed carry no mode: such a store goes on with one adapter."""
    import time as _time
    from agent.memory import Edit
    agent = route_agent(tmp_path / "home")
    assert agent.update_mode == "route"                             # an empty store takes the config's mode
    agent.memory.log(Edit(edit_id="e-old", seq=1, kind="commit", doc_id="d-1", title="Old", created=_time.time()))
    assert agent.update_mode == "continue" and agent.routes(["Where does the zorblat live?"]) == [""]
    agent.close()


def test_route_refuses_an_adapter_trained_with_other_lora_settings(tmp_path):
    agent = route_agent(tmp_path / "home")
    Ingest(agent, IngestOptions(guard=False)).run([write(tmp_path, "z.json", DOC)])
    agent.close()
    other = make_tiny_agent(tmp_path / "home", tiny_config(tmp_path / "home", lora={"r": 8, "alpha": 16}))
    with pytest.raises(BadInput, match="trained with lora"):
        other.ask(["Where does the zorblat live?"])
    other.close()


@pytest.mark.parametrize("lines", ["mixed", "beside"])
def test_lines_beside_the_passage_keep_its_schedule(tmp_path, lines):
    """absorb.lines = beside: the update plans its steps over the passage alone (the teacher's lines are side
    texts), so at batch size 1 it takes `epochs` steps whatever the teacher wrote; mixed takes one per text."""
    home = tmp_path / "home"
    agent = make_tiny_agent(home, tiny_config(home, train={"batch_size": 1}, absorb={"lines": lines}))
    events = []
    try:
        [out] = Ingest(agent, IngestOptions(guard=False), emit=events.append).run([write(tmp_path, "z.json", DOC)])
    finally:
        agent.close()
    assert out.status == "committed" and out.texts > 1  # the passage and the teacher's lines
    assert out.train_steps == (2 if lines == "beside" else 2 * out.texts)
    [train] = [e.detail for e in events if getattr(e, "name", "") == "train"]
    assert (f"({out.texts - 1} beside the passage, weight 0.3)" in train) == (lines == "beside")  # the defaults


def test_distill_ingest_studies_the_passage_questions_and_cues(tmp_path, monkeypatch):
    """The default pipeline (absorb.method = distill): no self-edits are sampled; the teacher's study questions,
    answered by the base model with the passage in its context, and the sentence cues are distilled with the
    passage into the document's adapter."""
    from agent.events import SelfEditProposed
    from teacher.selfedit import Teacher
    home = tmp_path / "home"
    cfg = tiny_config(home, absorb={"method": "distill"})
    agent = make_tiny_agent(home, cfg)
    monkeypatch.setattr(Teacher, "propose", lambda *a, **k: pytest.fail("distill without 'texts' samples no self-edit"))
    monkeypatch.setattr(Teacher, "write_questions_many",
                        lambda self, docs, **kw: [["What does the zorblat eat every morning?"] for _ in docs])
    answered = []
    real = agent.student.answer
    monkeypatch.setattr(agent.student, "answer", lambda qs, base=False, contexts=None: (
        answered.append((list(qs), base, contexts)) or real(qs, base=base, contexts=contexts)))
    events = []
    f = write(tmp_path, "z.json", DOC)
    [out] = Ingest(agent, IngestOptions(guard=False), emit=events.append).run([f])
    assert out.status == "committed" and out.texts == 1 and out.train_steps > 0
    study = [(q, b, c) for q, b, c in answered if c is not None]
    assert study == [(["What does the zorblat eat every morning?"], True, [f"Zorblat\n{DOC['context']}"])]
    [shown] = [e for e in events if isinstance(e, SelfEditProposed)]
    assert shown.family == "study questions" and shown.texts[0].startswith("What does the zorblat eat")
    assert any(t.startswith("Continue this sentence") for t in shown.texts)  # a cue
    assert agent.memory.training_stream() == [f"Zorblat\n{DOC['context']}"]
    agent.close()
