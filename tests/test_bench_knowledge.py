"""`seal-agent bench knowledge` on a tiny random model and a 2-passage file: schema, table, resume, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.lab.knowledge import BenchOptions, KnowledgeBench
from agent.lab.report import shuffled_control
from agent.lab.squad import DEFAULT_DATA, load_passages, load_reference
from agent.lab.stats import paired_interval, ratio_interval
from agent.config import Config
from agent.errors import BadInput

from .conftest import make_tiny_model, make_tiny_tokenizer

PASSAGES = [
    {"title": "Zorblat", "context": "The Zorblat river flows into the Quenby sea near the town of Larrow.",
     "questions": [{"question": "Where does the Zorblat flow?", "answer": "Quenby sea"},
                   {"question": "Which town is near the mouth?", "answer": "Larrow"}],
     "completions": ["1. The Zorblat ends in the Quenby sea.\n2. Larrow lies at its mouth.", "- Larrow is a town."]},
    {"title": "Mipsy", "context": "Mipsy the cat was born in 1931 and lived in Tarn.",
     "questions": [{"question": "When was Mipsy born?", "answer": "1931"},
                   {"question": "Where did Mipsy live?", "answer": "Tarn"},
                   {"question": "What was Mipsy?", "answer": "cat"}],
     "completions": ["Mipsy was a cat.\nMipsy lived in Tarn.", "**Born in 1931.**"]},
]
CONDITIONS = ("base", "passage", "ref", "teacher:rewrite")
ROW_KEYS = {"row", "condition", "kind", "family", "adapter", "format", "passages", "questions", "accuracy", "control",
            "f1", "em", "nll", "accuracy_per_seed", "accuracy_seed_sd", "self_edits_per_passage", "train", "timing"}


def tiny_config(home: Path) -> Config:
    cfg = Config(home=home)
    cfg.absorb.method = "sft"
    cfg.lora.r, cfg.lora.alpha = 4, 8
    cfg.train.epochs, cfg.train.batch_size, cfg.train.max_len, cfg.train.lr = 2, 4, 96, 3e-3
    cfg.answer.max_new_tokens = 6
    cfg.teacher.max_new_tokens, cfg.teacher.samples = 24, 2
    cfg.models.device = "cpu"
    return cfg


@pytest.fixture
def data_file(tmp_path) -> Path:
    path = tmp_path / "two.json"
    path.write_text(json.dumps(PASSAGES))
    return path


def loaders():
    tok = make_tiny_tokenizer()
    student, teacher = make_tiny_model(tok, seed=0), make_tiny_model(tok, seed=1)
    return (lambda: (student, tok)), (lambda _adapter: (teacher, tok))


def run_bench(tmp_path, data_file, out: str, on_record=None, conditions=CONDITIONS, cfg=None, **kw) -> dict:
    load_student, load_teacher = loaders()
    opts = BenchOptions(data=data_file, conditions=conditions, seeds=2, out=tmp_path / out, engine="sequential", **kw)
    bench = KnowledgeBench(cfg or tiny_config(tmp_path / "home"), opts, load_student=load_student,
                           load_teacher=load_teacher, on_record=on_record)
    return bench.prepare().run()


def strip_timing(doc: dict) -> dict:
    rows = [{k: v for k, v in r.items() if k != "timing"} for r in doc["rows"]]
    return {"rows": rows, "differences": doc["differences"], "per_passage": doc["per_passage"]}


def test_full_schema_and_table(tmp_path, data_file):
    doc = run_bench(tmp_path, data_file, "a", question_format="both")
    assert {"benchmark", "config", "rows", "differences", "per_passage", "timing", "machine"} <= set(doc)
    assert doc["config"]["question_formats"] == ["chat", "raw"] and doc["config"]["question_format_default"] == "chat"
    names = [r["row"] for r in doc["rows"]]
    assert names == [f"{c} [{f}]" for f in ("chat", "raw")
                     for c in ("base", "passage", "ref:data", "teacher:rewrite")]
    for r in doc["rows"]:
        assert set(r) == ROW_KEYS
        assert r["passages"] == 2 and r["questions"] == 5
        for m in ("accuracy", "control", "f1", "em"):
            assert set(r[m]) == {"value", "lo", "hi"} and 0.0 <= r[m]["value"] <= 1.0
        assert r["timing"]["seconds_per_passage"] > 0 or r["kind"] == "base"
    ref = next(r for r in doc["rows"] if r["condition"] == "ref:data")
    assert ref["self_edits_per_passage"] == 2 and len(ref["accuracy_per_seed"]) == 2
    base = next(r for r in doc["rows"] if r["condition"] == "base")
    assert len(base["accuracy_per_seed"]) == 1  # no update: one seed is enough
    assert len(doc["differences"]) == 8 * 7 // 2
    assert set(doc["differences"][0]["accuracy"]) == {"value", "lo", "hi", "outside_error_bars"}
    assert len(doc["per_passage"]) == 2 and len(doc["per_passage"][1]["results"]) == 8
    out = tmp_path / "a"
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(doc))
    table = (out / "table.md").read_text()
    assert "| ref:data [raw] |" in table and "Paired differences" in table and "default is 'chat'" in table
    teacher = [json.loads(x) for x in (out / "selfedits.jsonl").read_text().splitlines()]
    assert len(teacher) == 2 and all(len(t["completions"]) == 2 for t in teacher)
    # 2 formats x 2 passages x (base 1 seed + 3 conditions x 2 seeds)
    assert len((out / "results.jsonl").read_text().splitlines()) == 2 * 2 * 7


class Stop(Exception):
    pass


def test_resume_after_interruption_gives_the_same_result(tmp_path, data_file):
    conds = ("base", "passage", "ref")
    whole = run_bench(tmp_path, data_file, "whole", conditions=conds)

    def stop_after(k):
        def hook(_rec, done, _total):
            if done >= k:
                raise Stop
        return hook

    with pytest.raises(Stop):
        run_bench(tmp_path, data_file, "parts", on_record=stop_after(5), conditions=conds)
    lines = (tmp_path / "parts" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 5
    with open(tmp_path / "parts" / "results.jsonl", "a") as f:  # a write cut short by a kill
        f.write('{"condition": "pas')
    seen = []
    resumed = run_bench(tmp_path, data_file, "parts", on_record=lambda r, d, t: seen.append(d), conditions=conds)
    assert seen[0] == 6 and seen[-1] == 10  # only the unfinished units were run: 2 passages x (1 + 2 + 2)
    assert strip_timing(resumed) == strip_timing(whole)
    assert len((tmp_path / "parts" / "results.jsonl").read_text().splitlines()) == 10
    # a report-only re-run names the machine the results were computed on (machine.json), not its own
    machine = json.loads((tmp_path / "parts" / "machine.json").read_text())
    (tmp_path / "parts" / "machine.json").write_text(json.dumps({**machine, "host": "the-gpu-box"}))
    again = run_bench(tmp_path, data_file, "parts", on_record=lambda r, d, t: seen.append(d), conditions=conds)
    assert again["machine"]["host"] == "the-gpu-box" and seen[-1] == 10


def test_shards_into_one_folder_equal_one_run_and_subset_keeps_indices(tmp_path, data_file):
    # --k 16: the teacher writes one passage per generate call, so each shard gets one passage (and its self-edits)
    conds = ("base", "passage", "ref", "teacher:rewrite")
    whole = run_bench(tmp_path, data_file, "whole", conditions=conds, k=16)
    seen = {0: [], 1: []}
    for i in (0, 1):
        part = run_bench(tmp_path, data_file, "sharded", conditions=conds, k=16, shard=(i, 2),
                         on_record=lambda r, d, t, i=i: seen[i].append(r["passage"]))
        assert [r["passages"] for r in part["rows"]] == [i + 1] * 4  # the table so far: this shard's and earlier
    assert set(seen[0]) == {0} and set(seen[1]) == {1}
    report = run_bench(tmp_path, data_file, "report", conditions=conds, k=16, report_only=True,
                       on_record=lambda *a: pytest.fail("--report-only computes nothing"))
    assert [r["passages"] for r in report["rows"]] == [0] * 4
    merged = run_bench(tmp_path, data_file, "sharded", conditions=conds, k=16,
                       on_record=lambda *a: pytest.fail("a run after all shards has nothing left to do"))
    assert strip_timing(merged) == strip_timing(whole)

    only = tmp_path / "mipsy.json"
    only.write_text(json.dumps(PASSAGES[1:]))
    sub = run_bench(tmp_path, data_file, "whole", conditions=conds, k=16, subset=only,
                    on_record=lambda *a: pytest.fail("the subset's results are in the folder already"))
    assert [p["index"] for p in sub["per_passage"]] == [1]
    assert sub["per_passage"][0]["results"] == whole["per_passage"][1]["results"]
    assert all(r["passages"] == 1 for r in sub["rows"])
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{**PASSAGES[0], "context": "Nothing of the kind."}]))
    with pytest.raises(BadInput, match="none of its passages"):
        run_bench(tmp_path, data_file, "whole", conditions=conds, subset=other)
    with pytest.raises(BadInput, match="--shard 2/2"):
        run_bench(tmp_path, data_file, "whole", conditions=conds, shard=(2, 2))


def test_cpt_mode_and_changed_settings_refused(tmp_path, data_file):
    doc = run_bench(tmp_path, data_file, "cpt", mode="cpt")
    assert all(r["passages"] == 2 and r["questions"] == 5 for r in doc["rows"])
    assert doc["rows"][1]["train"]["texts"] == 2  # passage row: both passages in one update
    with pytest.raises(BadInput, match="other settings"):
        run_bench(tmp_path, data_file, "cpt", mode="single")


def test_cli_end_to_end_and_malformed_data(tmp_path, data_file, capsys):
    from agent.lab.cli import main
    tok = make_tiny_tokenizer()
    folder = tmp_path / "tiny"
    make_tiny_model(tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    sets = ["--set", f"models.student={folder}", "--set", "models.teacher=" + str(folder), "--set", "train.epochs=1",
            "--set", "lora.r=4", "--set", "answer.max_new_tokens=4"]
    with pytest.raises(SystemExit) as e:
        main(["--home", str(tmp_path / "h"), *sets, "bench", "knowledge", "--data", str(data_file), "--n", "1",
              "--conditions", "base,passage", "--out", str(tmp_path / "cli"), "--json", "--device", "cpu",
              "--engine", "sequential"])
    assert e.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["row"] for r in doc["rows"]] == ["base", "passage"] and doc["config"]["n"] == 1

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"title": "x", "context": "y", "questions": [{"question": "q"}]}]))
    for args in (["--data", str(bad)], ["--data", str(tmp_path / "missing.json")], ["--conditions", "base,nope"],
                 ["--data", str(data_file), "--conditions", "ref:/no/such/file.json"]):
        with pytest.raises(SystemExit) as e:
            main(["--home", str(tmp_path / "h"), "bench", "knowledge", "--out", str(tmp_path / "bad"), *args])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err


def test_shipped_data_and_references():
    passages = load_passages(DEFAULT_DATA)
    assert len(passages) == 175 and sum(len(p.questions) for p in passages) == 857
    for name in ("gpt4.1", "qwen-base", "seal-rl", "gpt-4.1"):
        comps, family = load_reference(name, passages[:3])
        assert [len(c) for c in comps] == [5, 5, 5] and family == "implications"


def test_control_and_bootstrap():
    # answer 0 recites gold 1, so question 1's gold shows up in another question's answer
    assert shuffled_control(["Larrow", "nothing"], ["Quenby", "Larrow"]) == 1.0
    assert shuffled_control(["x"], ["x"]) == 0.0
    iv = ratio_interval([1, 0, 2, 1], [2, 2, 2, 2])
    assert iv.value == 0.5 and iv.lo <= 0.5 <= iv.hi
    same = paired_interval([1, 0, 2], [1, 0, 2], [2, 2, 2])
    assert same.value == 0 and not same.excludes(0)
    assert paired_interval([2, 2, 2, 2], [0, 0, 0, 0], [2, 2, 2, 2]).excludes(0)


def test_trained_teacher_adapter_condition(tmp_path, data_file):
    """`teacher:ADAPTER` loads a stored teacher version with peft (default loader) and takes its family."""
    from peft import LoraConfig, get_peft_model

    from student.adapters import AdapterStore
    tok = make_tiny_tokenizer()
    folder = tmp_path / "tiny"
    make_tiny_model(tok, seed=1).save_pretrained(folder)
    tok.save_pretrained(folder)
    cfg = tiny_config(tmp_path / "home")
    cfg.models.teacher = str(folder)
    store = AdapterStore(cfg.home / "adapters" / "teacher")
    policy = get_peft_model(make_tiny_model(tok, seed=1), LoraConfig(r=2, target_modules="all-linear"),
                            adapter_name="policy")
    version = store.new_id("t")
    store.save(policy, version, {"family": "rewrite"})
    load_student, _ = loaders()
    opts = BenchOptions(data=data_file, n=1, conditions=("teacher:implications", f"teacher:{version}"),
                        out=tmp_path / "tv", engine="sequential")
    doc = KnowledgeBench(cfg, opts, load_student=load_student).prepare().run()
    rows = {r["row"]: r for r in doc["rows"]}
    assert rows[f"teacher:{version}"]["family"] == "rewrite" and rows[f"teacher:{version}"]["adapter"] == version
    assert rows["teacher:implications"]["adapter"] == "" and rows["teacher:implications"]["self_edits_per_passage"] == 2
    with pytest.raises(BadInput, match="neither a prompt family"):
        KnowledgeBench(cfg, BenchOptions(data=data_file, conditions=("teacher:t-nope",), out=tmp_path / "x")).prepare()


def test_lines_beside_the_passage(tmp_path, data_file):
    """[absorb] lines = beside: the passage keeps its own schedule (a self-edit's update takes the passage-only
    row's steps) and the lines change the result; the passage row is the same as with mixed lines; a run folder
    made with mixed lines refuses to resume with beside."""
    def edits(out):
        recs = [json.loads(x) for x in (tmp_path / out / "results.jsonl").read_text().splitlines()]
        return {(r["condition"], r["passage"], r["seed"]): r["edits"] for r in recs}

    cfg_mixed = tiny_config(tmp_path / "home")
    cfg_mixed.absorb.lines = "mixed"
    mixed = run_bench(tmp_path, data_file, "mixed", conditions=("passage", "ref"), cfg=cfg_mixed)
    cfg = tiny_config(tmp_path / "home")
    cfg.absorb.lines, cfg.train.side_weight = "beside", 1.0
    beside = run_bench(tmp_path, data_file, "beside", conditions=("passage", "ref"), cfg=cfg)
    m, b = edits("mixed"), edits("beside")
    changed = 0
    for key, runs in b.items():
        alone = b[("passage", key[1], key[2])][0]
        for e_b, e_m in zip(runs, m[key]):
            assert e_b["texts"] == e_m["texts"]  # the same texts, planned differently
            if key[0] == "passage":
                assert {**e_b, "seconds": 0} == {**e_m, "seconds": 0}
                continue
            assert e_b["steps"] == alone["steps"] == 2
            # first step, same fresh adapter: the passage's own mean NLL + the lines' mean NLL (both ~7 here)
            assert e_b["loss_first"] - alone["loss_first"] == pytest.approx(e_m["loss_first"], rel=0.05)
            changed += e_b["nll"] != e_m["nll"]
    assert changed >= 6  # of the 8 self-edit updates (a tiny random model's NLL can round alike)
    assert mixed["rows"][0]["accuracy"] == beside["rows"][0]["accuracy"]
    with pytest.raises(BadInput, match="other settings"):
        run_bench(tmp_path, data_file, "mixed", conditions=("passage", "ref"), cfg=cfg)


def test_split_update():
    from agent.absorb import split_update
    from agent.config import AbsorbSettings
    texts = ["T\nline one", "T\nline two", "T\npassage"]
    assert AbsorbSettings().lines == "beside"
    assert split_update(texts, ["T\npassage"], AbsorbSettings(lines="mixed")) == (texts, [])
    assert split_update(texts, ["T\npassage"], AbsorbSettings(lines="beside")) == (["T\npassage"], texts[:2])
    assert split_update(texts[:2], ["T\npassage"], AbsorbSettings(lines="beside")) == (texts[:2], [])  # no passage
    with pytest.raises(ValueError):
        AbsorbSettings(lines="sideways")


def test_jsonl_log_keeps_a_record_holding_a_line_separator(tmp_path):
    """A completion with a raw U+2028 (written with ensure_ascii=False) is one record, not a torn line: a ReST-EM
    run folder with such a sample failed to resume ('samples.jsonl:39: not a JSON line')."""
    from agent.lab.runlog import JsonlLog, read_records
    path = tmp_path / "samples.jsonl"
    log = JsonlLog(path, key=lambda r: r["id"])
    records = [{"id": 1, "completion": "Devas\u2028 and more\u2029 text"}, {"id": 2, "completion": "plain"}]
    for r in records:
        log.append(r)
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw
    assert list(JsonlLog(path, key=lambda r: r["id"])) == records
    assert read_records(path) == records


def test_plan_distill_turns_material_into_study_items_and_sft_into_texts(tiny_tokenizer):
    from agent.absorb import Material, plan, study_pairs
    from agent.config import AbsorbSettings
    from student.config import TrainSettings
    chunk = "The red stone lies high up on the old tower of the town. Nobody has ever climbed up to it."
    m = Material("Towers\n" + chunk, ["Towers\n" + chunk, "Towers\nA line about it."],
                 study_pairs(chunk, ["Where is the red stone?"], ["On the old tower."], AbsorbSettings(method="distill")))
    assert m.qa == [("Where is the red stone?", "On the old tower."),
                    ('Continue this sentence from the passage: "The red stone lies high up ..."',
                     "on the old tower of the town."),
                    ('Continue this sentence from the passage: "Nobody has ever climbed ..."', "up to it.")]
    sft = plan([m], AbsorbSettings(method="sft"), TrainSettings())
    assert sft.texts == ["Towers\n" + chunk] and sft.side == ["Towers\nA line about it."] and sft.study == []
    distill = plan([m], AbsorbSettings(method="distill"), TrainSettings(), tiny_tokenizer)  # the default study
    assert distill.texts == [] and len(distill.study) == 4  # the passage and three question-answer pairs
    assert {s.context.strip() for s in distill.study} == {m.context}
    assert distill.study[0].suffix == "Towers\n" + chunk and distill.study[0].prefix == ""
    assert distill.study[1].suffix.endswith("On the old tower.")  # the answer ends the item, after the question
    lines = plan([m], AbsorbSettings(method="distill", study="passage,texts"), TrainSettings(), tiny_tokenizer)
    assert [s.suffix for s in lines.study] == m.texts
    only_lines = plan([m], AbsorbSettings(method="distill", study="texts"), TrainSettings(), tiny_tokenizer)
    assert [s.suffix for s in only_lines.study] == m.texts[1:]
    with pytest.raises(ValueError):
        AbsorbSettings(method="distill", study="texts,guesses")


def test_distill_bench_rows_open_book_and_base_train_nothing(tmp_path, data_file):
    """Under absorb.method = distill the bench writes study material (teacher questions answered open-book) once,
    trains the passage row on study items, and the base and open-book rows train nothing."""
    cfg = tiny_config(tmp_path / "home")
    cfg.absorb.method, cfg.absorb.questions = "distill", 2
    doc = run_bench(tmp_path, data_file, "o", conditions=("base", "open-book", "passage"), cfg=cfg)
    assert {r["condition"] for r in doc["rows"]} == {"base", "open-book", "passage"}
    study = [json.loads(line) for line in (tmp_path / "o" / "study.jsonl").read_text().splitlines()]
    assert sorted(r["passage"] for r in study) == [0, 1]
    records = [json.loads(line) for line in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    steps = {(r["condition"], r["seed"]): r["edits"][0]["steps"] for r in records}
    assert steps[("base", 0)] == 0 and steps[("open-book", 0)] == 0
    assert steps[("passage", 0)] >= 1 and ("open-book", 1) not in steps  # one seed for the untrained rows
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["absorb"]["method"] == "distill" and run["format"] == 2


def test_a_killed_distill_run_resumes_to_the_same_result(tmp_path, data_file):
    """Distillation's study material is written once (study.jsonl) and reused: a run stopped after its first
    result and resumed gives the table of an uninterrupted run."""
    def cfg(home):
        c = tiny_config(home)
        c.absorb.method, c.absorb.questions = "distill", 2
        return c
    conds = ("base", "passage")
    whole = run_bench(tmp_path, data_file, "whole", conditions=conds, cfg=cfg(tmp_path / "h1"))

    def stop(_rec, done, _total):
        if done >= 2:
            raise Stop
    with pytest.raises(Stop):
        run_bench(tmp_path, data_file, "parts", on_record=stop, conditions=conds, cfg=cfg(tmp_path / "h2"))
    study = (tmp_path / "parts" / "study.jsonl").read_text()
    resumed = run_bench(tmp_path, data_file, "parts", conditions=conds, cfg=cfg(tmp_path / "h2"))
    assert (tmp_path / "parts" / "study.jsonl").read_text() == study  # not written again
    assert strip_timing(resumed) == strip_timing(whole)
