"""Forgetting: metric formulas, reservoir uniformity, the buffer across restarts, --from-store, a tiny sweep."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from agent.config import Config
from agent.forgetting_metrics import (acc, bwt, check_shape, forgetting_per_doc, fwt, just_learned, mean_forgetting,
                                      mean_matrix, mean_std, metrics, perplexity_drift, with_unknown_start)
from agent.replay import Reservoir, general_texts, replay_mix
from student.config import AnswerSettings, LoraSettings, TrainSettings
from student.student import Student
from tests.conftest import make_tiny_model

# ---- metric formulas on hand-made matrices ------------------------------------------------------------------------

R3 = [[0.1, 0.0, 0.2],   # before any edit
      [0.8, 0.1, 0.2],   # after doc 1
      [0.9, 0.9, 0.4],   # after doc 2 (doc 1 still rising: its max is here, not on the diagonal)
      [0.5, 0.7, 1.0]]   # after doc 3


def test_metrics_hand_computed():
    assert check_shape(R3) == 3
    assert acc(R3) == pytest.approx((0.5 + 0.7 + 1.0) / 3)
    # BWT: doc 1 (0.5 - R[1][1]=0.8), doc 2 (0.7 - R[2][2]=0.9)
    assert bwt(R3) == pytest.approx(((0.5 - 0.8) + (0.7 - 0.9)) / 2)
    # FWT: doc 2 (R[1][2]=0.1 - R[0][2]=0.0), doc 3 (R[2][3]=0.4 - R[0][3]=0.2)
    assert fwt(R3) == pytest.approx(((0.1 - 0.0) + (0.4 - 0.2)) / 2)
    # forgetting: doc 1 max(0.1, 0.8, 0.9) - 0.5 = 0.4; doc 2 max(0.0, 0.1, 0.9) - 0.7 = 0.2
    assert forgetting_per_doc(R3) == pytest.approx([0.4, 0.2])
    assert mean_forgetting(R3) == pytest.approx(0.3)
    assert just_learned(R3) == pytest.approx((0.8 + 0.9 + 1.0) / 3)
    m = metrics(R3).to_dict()
    assert m == pytest.approx({"acc": 2.2 / 3, "bwt": -0.25, "fwt": 0.15, "forgetting": 0.3, "just_learned": 0.9})


def test_metrics_edge_cases():
    one = metrics([[0.2], [0.6]])
    assert one.acc == pytest.approx(0.6) and one.just_learned == pytest.approx(0.6)
    assert math.isnan(one.bwt) and math.isnan(one.fwt) and math.isnan(one.forgetting)
    perfect = metrics([[0, 0], [1, 0], [1, 1]])
    assert (perfect.bwt, perfect.forgetting, perfect.fwt) == (0, 0, 0)
    with pytest.raises(ValueError):
        check_shape([[0.1, 0.2], [0.3]])
    # a store's history: no row before the first edit, unknown cells above the diagonal
    rows = [[0.5, None, None], [0.25, 0.75, None], [0.0, 0.5, 1.0]]
    m = metrics(with_unknown_start(rows))
    assert m.acc == pytest.approx(0.5) and m.just_learned == pytest.approx(0.75)
    assert m.bwt == pytest.approx(((0.0 - 0.5) + (0.5 - 0.75)) / 2)
    assert m.forgetting == pytest.approx((0.5 + 0.25) / 2)
    assert math.isnan(m.fwt)
    assert perplexity_drift(10.0, 10.3) == pytest.approx(0.03)
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}
    assert mean_matrix([[[0.0, 1.0]], [[1.0, None]]]) == [[0.5, 1.0]]


# ---- the reservoir is uniform ----------------------------------------------------------------------------------------

def _inclusion(sample, n_items: int, capacity: int, trials: int) -> list[float]:
    seeds = random.Random(20240611).sample(range(10**9), trials)
    stream = [f"t{i}" for i in range(n_items)]
    counts = [0] * n_items
    for s in seeds:
        kept = sample(stream, capacity, s)
        assert len(kept) == capacity and len(set(kept)) == capacity
        for t in kept:
            counts[int(t[1:])] += 1
    return [c / trials for c in counts]


def _uniform(freqs: list[float], p: float, trials: int) -> bool:
    """Every item's inclusion frequency within 4.5 standard errors of p, and a chi-square test at p = 0.001."""
    se = math.sqrt(p * (1 - p) / trials)
    chi2 = sum((f * trials - p * trials) ** 2 / (p * trials) for f in freqs)
    return max(abs(f - p) for f in freqs) < 4.5 * se and chi2 < 85.4  # chi-square 0.999 quantile, 49 d.o.f.


def test_reservoir_sampling_is_uniform():
    n, cap, trials = 50, 10, 2000
    freqs = _inclusion(lambda stream, c, s: Reservoir(c, s).sample(stream), n, cap, trials)
    assert _uniform(freqs, cap / n, trials)
    # the test has teeth: keeping the first N, or the last N, fails it
    assert not _uniform(_inclusion(lambda stream, c, s: list(stream[:c]), n, cap, trials), cap / n, trials)
    assert not _uniform(_inclusion(lambda stream, c, s: list(stream[-c:]), n, cap, trials), cap / n, trials)


def test_replay_mix_strategies():
    stream = [f"old {i}" for i in range(20)]
    none = replay_mix("none", stream, 10, 1.0, 4, 0)
    assert (none.texts, none.anchor) == ([], [])
    r = replay_mix("reservoir", stream, 10, 1.0, 4, 0)
    assert len(r.texts) == 4 and set(r.texts) <= set(stream) and r.anchor == []
    general = general_texts()
    assert len(general) >= 20
    m = replay_mix("mixed", stream, 10, 0.5, 1, 0)  # one new text: one replayed text, all general text as anchor
    assert len(m.texts) == 1 and m.texts[0] in stream and m.anchor == general
    first = replay_mix("mixed", [], 10, 0.5, 1, 0)  # first update: nothing to replay yet, the anchor still holds
    assert first.texts == [] and first.anchor == general
    with pytest.raises(ValueError):
        replay_mix("bogus", stream, 10, 1.0, 4, 0)


def test_general_sets_are_disjoint_and_untrained():
    from agent.lab.forgetting import general_eval_texts
    evals, train = general_eval_texts(), general_texts()
    assert 20 <= len(evals) <= 40 and 20 <= len(train) <= 40
    assert not set(evals) & set(train)
    shipped = json.loads((Path(__file__).parent.parent / "agent/data/squad/passages.json").read_text())
    contexts = {p["context"].strip() for p in shipped}
    assert not contexts & set(evals) and "Civil disobedience" not in {p["title"] for p in shipped}


# ---- the buffer survives a restart --------------------------------------------------------------------------------

def test_buffer_survives_restart(tmp_path):
    from agent.memory import Edit, Memory
    home = tmp_path / "home"
    mem = Memory(home)
    for seq, n in ((1, 7), (2, 9)):
        eid = f"e-{seq}"
        mem.add_training(eid, seq, [f"{eid} text {i}" for i in range(n)])
        mem.log(Edit(edit_id=eid, seq=seq, kind="commit", doc_id=f"d{seq}", adapter_id=f"k{seq}"))
    stream = mem.training_stream()
    buffer = Reservoir(5, 3).sample(stream)
    replay = replay_mix("reservoir", stream, 5, 1.0, 3, 11).texts
    mem.close()
    again = Memory(home)
    try:
        assert again.training_stream() == stream and len(stream) == 16
        assert Reservoir(5, 3).sample(again.training_stream()) == buffer
        assert replay_mix("reservoir", again.training_stream(), 5, 1.0, 3, 11).texts == replay
    finally:
        again.close()


# ---- the user's history: --from-store after three real ingests ------------------------------------------------------

DOCS = [{"title": f"Topic {c}", "context": f"The {c} stone is kept in the {c} tower of the old town.",
         "questions": [{"question": f"Where is the {c} stone kept?", "answer": f"the {c} tower"},
                       {"question": f"What is kept in the {c} tower?", "answer": f"the {c} stone"}]}
        for c in ("red", "blue", "green")]


def _tiny_cfg(home: Path) -> Config:
    cfg = Config(home=home)
    cfg.absorb.method = "sft"
    cfg.lora = LoraSettings(r=4, alpha=8)
    cfg.train = TrainSettings(lr=1e-2, epochs=2, batch_size=4, max_len=96)
    cfg.answer = AnswerSettings(max_new_tokens=6, batch_size=16)
    cfg.teacher.max_new_tokens = 12
    cfg.teacher.samples = 1
    cfg.ingest.guard = False
    cfg.replay.capacity = 8
    return cfg


def test_from_store_after_three_ingests(tmp_path, tiny_tokenizer):
    from agent.lab.cli import app
    from agent.core import Agent
    from agent.ingest import Ingest
    from agent.retention import matrix_from_store, store_matrix
    from teacher.backend import TransformersBackend
    from teacher.selfedit import Teacher

    data = tmp_path / "docs"
    data.mkdir()
    for i, d in enumerate(DOCS):
        (data / f"{i}.json").write_text(json.dumps([d]))
    home = tmp_path / "home"
    cfg = _tiny_cfg(home)
    with Agent(cfg) as agent:
        agent._student = Student(make_tiny_model(tiny_tokenizer, seed=1), tiny_tokenizer, cfg.lora, cfg.answer)
        agent._teacher = Teacher(TransformersBackend(make_tiny_model(tiny_tokenizer, seed=2), tiny_tokenizer),
                                 tiny_tokenizer, cfg.teacher, cfg.parse)
        agent.memory.embed = lambda texts: [[float(len(t) % 7), 1.0, 0.5] for t in texts]  # no MiniLM in tests
        outcomes = Ingest(agent).run(sorted(data.iterdir()))
        assert [o.status for o in outcomes] == ["committed"] * 3
        titles, rows = matrix_from_store(agent.memory)
        sm = store_matrix(agent.memory)
    assert titles == ["Topic red", "Topic blue", "Topic green"]
    assert len(rows) == 3 and [sum(x is not None for x in r) for r in rows] == [1, 2, 3]
    assert [rows[k][k] for k in range(3)] == [o.after for o in outcomes]
    assert sm.before == [o.before for o in outcomes]

    out = tmp_path / "hist"
    res = CliRunner().invoke(app, ["--home", str(home), "--json", "forgetting", "--from-store", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["rows"]) == 3 and doc["titles"] == titles
    assert set(doc["metrics"]) == {"acc", "bwt", "fwt", "forgetting", "just_learned"}
    assert (out / "store-forgetting.json").is_file() and (out / "store-heatmap.png").stat().st_size > 1000
    human = CliRunner().invoke(app, ["--home", str(home), "forgetting", "--from-store"])
    assert human.exit_code == 0 and "BWT" in human.stdout and "Topic green" in human.stdout


# ---- merging, and a tiny sweep ---------------------------------------------------------------------------------------

def _logits(student, text: str) -> torch.Tensor:
    ids = student.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return student.model(input_ids=ids).logits


def test_merge_keeps_the_function_and_restore_undoes_it(tiny_tokenizer):
    from agent.lab.forgetting import BaseWeights, merge_into_base
    s = Student(make_tiny_model(tiny_tokenizer), tiny_tokenizer, LoraSettings(r=4, alpha=8))
    base = BaseWeights(s)
    original = _logits(s, "The red stone")
    s.absorb(["The red stone is in the tower."], TrainSettings(lr=5e-2, epochs=3, batch_size=2, max_len=64))
    trained = _logits(s, "The red stone")
    assert not torch.allclose(trained, original, atol=1e-4)
    merge_into_base(s, seed=1)
    assert torch.allclose(_logits(s, "The red stone"), trained, atol=1e-4)   # the delta now lives in the weights
    assert all(float(v.abs().sum()) == 0 for k, v in s.state().items() if "lora_B" in k)  # fresh adapter
    base.restore()
    assert torch.allclose(_logits(s, "The red stone"), original, atol=1e-5)


def test_tiny_sweep_writes_everything_and_resumes(tmp_path, tiny_tokenizer, monkeypatch):
    import agent.lab.forgetting as fg
    from agent.lab.forgetting import ForgettingSweep, SweepOptions
    short = fg.general_eval_texts()[:2]  # the whole set costs ~2 s per step on the tiny byte-level model
    monkeypatch.setattr(fg, "general_eval_texts", lambda: short)
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DOCS))
    cfg = _tiny_cfg(tmp_path / "home")
    out = tmp_path / "sweep"
    opts = SweepOptions(data=data, docs=2, runs=2, update="continue,merge", out=out, seed=3)
    loads = []

    def load():
        loads.append(1)
        return make_tiny_model(tiny_tokenizer), tiny_tokenizer
    events = []
    doc = ForgettingSweep(cfg, opts, emit=events.append, load_student=load).prepare().run()
    assert len(loads) == 1
    assert set(doc["strategies"]) == {f"{u}-{r}" for u in ("continue", "merge") for r in ("none", "reservoir", "mixed")}
    for s in doc["strategies"].values():
        assert s["runs"] == 2 and len(s["mean_R"]) == 3 and all(len(r) == 2 for r in s["mean_R"])
        for run in s["per_run"]:
            assert len(run["R"]) == 3 and len(run["ppl"]) == 3 and run["ppl"][0] > 1
        assert set(s["metrics"]) >= {"acc", "bwt", "fwt", "forgetting", "just_learned", "ppl_drift"}
    # every strategy starts from the same untouched model (runs do not contaminate each other)
    firsts = {json.dumps(run["R"][0]) for s in doc["strategies"].values() for run in s["per_run"] if run["run"] == 0}
    assert len(firsts) == 1
    assert doc["strategies"]["continue-none"]["per_run"][0]["replayed"] == [0, 0]
    assert doc["strategies"]["continue-reservoir"]["per_run"][0]["replayed"] == [0, 1]   # nothing to replay at step 1
    mixed = doc["strategies"]["continue-mixed"]["per_run"][0]
    assert mixed["replayed"] == [0, 1]   # the same replay as reservoir, plus the general-text anchor:
    assert mixed["NLL"] != doc["strategies"]["continue-reservoir"]["per_run"][0]["NLL"]  # which changes the update
    assert "goal" in doc["strategies"]["merge-mixed"]
    assert any(type(e).__name__ == "Progress" for e in events)
    for name in ("results.json", "table.md", "runs.jsonl", "first-doc.png", "perplexity.png", "machine.json",
                 "heatmap-continue-none.png", "heatmap-merge-mixed.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    assert json.loads((out / "results.json").read_text())["config"]["docs"] == 2
    assert "| continue-reservoir |" in (out / "table.md").read_text()
    # a re-run of the same folder loads no model and rewrites the same report
    again = ForgettingSweep(cfg, opts, load_student=lambda: pytest.fail("resumed sweep retrained")).prepare().run()
    assert again["strategies"]["merge-none"]["per_run"] == doc["strategies"]["merge-none"]["per_run"]
    cfg.train.lr = 3e-3
    with pytest.raises(Exception, match="other settings"):
        ForgettingSweep(cfg, opts).prepare()


def test_sweep_reference_texts_and_bad_options(tmp_path):
    from agent.errors import BadInput
    from agent.lab.forgetting import ForgettingSweep, SweepOptions
    data = tmp_path / "data.json"
    docs = [dict(d, completions=[f"1. The {c} stone is high up.\n2. **Towers** keep {c} stones."])
            for d, c in zip(DOCS, ("red", "blue", "green"))]
    data.write_text(json.dumps(docs))
    sweep = ForgettingSweep(_tiny_cfg(tmp_path / "home"), SweepOptions(data=data, docs=3, texts="ref",
                                                                       out=tmp_path / "o")).prepare()
    for d in sweep.docs:
        assert len(d.texts) == 3 and d.texts[-1].endswith("of the old town.") and "**" not in d.texts[1]
    for bad in ({"replay": "none,lots"}, {"update": "fold"}, {"texts": "teacher"}, {"docs": 0}):
        with pytest.raises(BadInput):
            SweepOptions(**bad)
    with pytest.raises(BadInput, match="has 3 passages"):
        ForgettingSweep(_tiny_cfg(tmp_path / "home"), SweepOptions(data=data, docs=4, out=tmp_path / "p")).prepare()


@pytest.mark.parametrize("lines", ["beside", "mixed"])
def test_sweep_reference_lines_go_beside_the_passage_as_in_ingest(tmp_path, tiny_tokenizer, monkeypatch, lines):
    """--texts ref trains each document as ingest does under [absorb] lines: beside = the passage planned and the
    self-edit's lines as side texts; mixed = all in one plan. The run folder records the choice."""
    from agent.lab.forgetting import ForgettingSweep, SweepOptions
    from student.student import Student
    calls = []
    absorb = Student.absorb
    monkeypatch.setattr(Student, "absorb", lambda self, texts, *a, side=(), **kw: (
        calls.append((list(texts), list(side))), absorb(self, texts, *a, side=side, **kw))[1])
    data = tmp_path / "data.json"
    data.write_text(json.dumps([dict(d, completions=["1. The red stone is high up.\n2. Towers keep red stones."])
                                for d in DOCS[:1]]))
    cfg = _tiny_cfg(tmp_path / "home")
    cfg.absorb.lines = lines
    opts = SweepOptions(data=data, docs=1, texts="ref", replay="none", perplexity=False, out=tmp_path / "o")
    ForgettingSweep(cfg, opts, load_student=lambda: (make_tiny_model(tiny_tokenizer), tiny_tokenizer)).prepare().run()
    passage = f"{DOCS[0]['title']}\n{DOCS[0]['context']}"
    lines_ = [f"{DOCS[0]['title']}\nThe red stone is high up.", f"{DOCS[0]['title']}\nTowers keep red stones."]
    assert calls == ([([passage], lines_)] if lines == "beside" else [(lines_ + [passage], [])])
    recorded = json.loads((tmp_path / "o" / "run.json").read_text())
    assert recorded["absorb"]["lines"] == lines and recorded["format"] == 2


def _colour_embedder(texts):
    """A fake sentence embedder: counts of the three colour words, plus a constant (general text -> orthogonal)."""
    out = []
    for t in texts:
        words = t.lower().replace("?", " ").replace(".", " ").split()
        out.append([float(words.count(c)) for c in ("red", "blue", "green")] + [0.0 if any(
            c in words for c in ("red", "blue", "green")) else 1.0])
    return out


def test_route_mode_keeps_each_document_and_the_base(tmp_path, tiny_tokenizer, monkeypatch):
    import agent.lab.forgetting as fg
    from agent.lab.forgetting import ForgettingSweep, SweepOptions
    short = fg.general_eval_texts()[:2]
    monkeypatch.setattr(fg, "general_eval_texts", lambda: short)
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DOCS))
    def sweep(update, load=lambda: (make_tiny_model(tiny_tokenizer), tiny_tokenizer)):
        opts = SweepOptions(data=data, docs=3, runs=1, update=update, replay="none,reservoir",
                            out=tmp_path / "sweep", seed=3)
        return opts, ForgettingSweep(_tiny_cfg(tmp_path / "home"), opts, embed=_colour_embedder, load_student=load)
    # the strategies may run as separate processes into one folder (e.g. one process per strategy on a GPU machine), then be
    # reported together without retraining anything
    sweep("continue")[1].prepare().run()
    sweep("route")[1].prepare().run()
    opts, both = sweep("continue,route", load=lambda: pytest.fail("everything was logged: nothing to retrain"))
    assert opts.strategies() == [("continue", "none"), ("continue", "reservoir"), ("route", "none")]
    doc = both.prepare().run()
    route = doc["strategies"]["route-none"]["per_run"][0]
    assert route["routed_own"] == [1.0, 1.0, 1.0] and route["general_to_base"] == [1.0, 1.0, 1.0]
    assert route["ppl"][1:] == pytest.approx([route["ppl"][0]] * 3, rel=1e-9)  # general text never meets an adapter
    # a learned document keeps its own adapter and its questions: its column never changes after it is learned
    for i in range(3):
        assert [row[i] for row in route["NLL"][i + 1:]] == pytest.approx([route["NLL"][i + 1][i]] * (3 - i), rel=1e-9)
        assert route["NLL"][i + 1][i] < route["NLL"][0][i]  # and it did learn something
    cont = doc["strategies"]["continue-none"]["per_run"][0]
    assert cont["ppl"][3] != pytest.approx(cont["ppl"][0], rel=1e-3)  # one shared adapter does move general text
    assert "vs_none" in doc["strategies"]["route-none"]  # compared with one adapter without replay
    assert "routing: 1.000 of learned documents' questions" in (tmp_path / "sweep" / "table.md").read_text()


def test_router_picks_the_most_similar_allowed_key_above_the_threshold():
    from agent.router import Router, grouped
    r = Router(lambda texts: pytest.fail("keys were given as vectors"), [], 0.5, vectors=[[2, 0], [0, 1], [1, 1]])
    assert r.pick([[1, 0.1], [0.1, 1], [-1, 0]], range(3)) == [0, 1, None]   # unit-normalised; below 0.5 -> base
    assert r.pick([[1, 0.1]], [1, 2]) == [2]                                 # key 0 not allowed: the next best
    assert r.pick([[1, 0]], []) == [None] and r.pick([], [0]) == []
    assert grouped([None, "a", "b", "a"]) == [(None, [0]), ("a", [1, 3]), ("b", [2])]
    assert grouped(["a"]) == [("a", [0])]
