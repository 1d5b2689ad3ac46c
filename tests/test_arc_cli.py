"""`seal-agent arc solve | bench | train` on tiny random models; the shipped ARC data; task files; bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import BadInput
from agent.lab.arc import jobs
from agent.lab.arc.solve import read_results
from agent.lab.arc.tasks import SHIPPED_DIR, load_split, read_task_file
from student.adapters import AdapterStore
from teacher.arc_config import DEFAULT_CONFIG, ArcConfig
from teacher.config import PolicySettings

from .conftest import make_tiny_model, make_tiny_tokenizer
from .test_arc import tiny_task

SHORT = ArcConfig(False, False, False, False, "train_using_output_tokens", 1e-2, 1)
TASK = {"train": [{"input": [[1, 2], [3, 4]], "output": [[2, 1], [4, 3]]},
                  {"input": [[5, 0], [0, 5]], "output": [[0, 5], [5, 0]]},
                  {"input": [[6, 7], [7, 6]], "output": [[7, 6], [6, 7]]}],
        "test": [{"input": [[8, 9], [9, 8]], "output": [[9, 8], [8, 9]]}]}


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    tok = make_tiny_tokenizer()
    folder = tmp_path / "tiny"
    make_tiny_model(tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def cli(tmp_path, folder, *args):
    from agent.lab.cli import main
    sets = ["--set", f"models.student={folder}", "--set", f"models.teacher={folder}", "--set", "models.threads=1"]
    with pytest.raises(SystemExit) as e:
        main(["--home", str(tmp_path / "home"), *sets, *args])
    return e.value.code


# ------------------------------------------------------------------ data
def test_shipped_sets_load_without_the_full_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SEAL_AGENT_ARC_DATA", str(tmp_path / "nowhere"))
    ev, tr = load_split("seal-evaluation"), load_split("seal-training")
    assert len(ev) == 10 and len(tr) == 12 and not set(ev) & set(tr)
    assert all(ex.output is not None for t in [*ev.values(), *tr.values()] for ex in t.test)
    assert sum(f.stat().st_size for f in SHIPPED_DIR.iterdir()) < 300_000
    assert "Apache" in (SHIPPED_DIR / "README.md").read_text()
    with pytest.raises(BadInput, match="SEAL_AGENT_ARC_DATA"):
        load_split("evaluation")
    with pytest.raises(BadInput, match="SEAL_AGENT_ARC_DATA"):
        jobs.load_task_set(["eval-small"])
    assert list(jobs.load_task_set(["66e6c45b,8be77c9e"])) == ["66e6c45b", "8be77c9e"]
    with pytest.raises(BadInput):
        jobs.load_task_set(["nope"])


def test_task_files_one_or_many(tmp_path):
    one = tmp_path / "flip.json"
    one.write_text(json.dumps(TASK))
    task = read_task_file(one)
    assert task.id == "flip" and len(task.train) == 3 and task.test[0].output == ((9, 8), (8, 9))
    many = tmp_path / "many.json"
    bare = {"train": TASK["train"], "test": [{"input": [[8, 9], [9, 8]]}]}
    many.write_text(json.dumps({"a": bare, "b": bare}))
    with pytest.raises(BadInput, match="--task"):
        read_task_file(many)
    sol = tmp_path / "sol.json"
    sol.write_text(json.dumps({"b": [[[1]]]}))
    assert read_task_file(many, "b", sol).test[0].output == ((1,),)
    assert read_task_file(many, "a").test[0].output is None
    with pytest.raises(BadInput, match="no task"):
        read_task_file(many, "c")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]}))
    with pytest.raises(BadInput, match="malformed"):
        read_task_file(bad)


def test_rows_configs_and_the_oracle_grid():
    assert jobs.parse_rows("in-context,default,teacher:t1,oracle,default") == ["in-context", "default",
                                                                              "teacher:t1", "oracle"]
    for text in ("", "nope", "teacher:"):
        with pytest.raises(BadInput):
            jobs.parse_rows(text)
    assert jobs.parse_config_option(json.dumps(SHORT.to_json()), None) == SHORT
    assert jobs.parse_config_option(None, None) is None
    with pytest.raises(BadInput):
        jobs.parse_config_option("{not json", None)
    assert len(jobs.ORACLE_GRID) == 16 and len({c.key() for c in jobs.ORACLE_GRID}) == 16


def test_table_values_intervals_and_oracle_best():
    res = [{"task_id": t, "label": label, "solved": s, "status": "ok"}
           for t, label, s in [("a", "default", True), ("b", "default", False), ("a", "teacher#0", True),
                               ("a", "teacher#1", False), ("b", "teacher#0", False), ("b", "teacher#1", False),
                               ("a", "oracle#x", False), ("a", "oracle#y", True), ("b", "oracle#x", True)]]
    lines = {r["row"]: r for r in jobs.table(res, ["a", "b"], ["default", "teacher", "oracle"])}
    assert lines["default"]["solved"] == 1 and lines["default"]["rate"]["value"] == 0.5
    assert lines["teacher"]["solved"] == 0.5 and lines["teacher"]["best_of"] == 1 and lines["teacher"]["runs"] == 4
    assert lines["oracle"]["solved"] == 2 and lines["oracle"]["rate"]["lo"] == 1.0
    assert 0 <= lines["default"]["rate"]["lo"] <= 0.5 <= lines["default"]["rate"]["hi"] <= 1


# ------------------------------------------------------------------ solve
def test_cli_solve_prints_grids_and_json(tmp_path, tiny_folder, capsys):
    task = tmp_path / "flip[bold].json"  # a name with markup in it is printed as it is
    task.write_text(json.dumps(TASK))
    config = json.dumps(SHORT.to_json())
    assert cli(tmp_path, tiny_folder, "arc", "solve", str(task), "--config", config, "--device", "cpu") == 0
    out = capsys.readouterr().out
    assert "task flip[bold]" in out and "demo 3: input" in out and "prediction" in out and "expected" in out
    assert "learning_rate" in out and "training: 10 examples, 5 steps" in out and "solved: " in out
    assert cli(tmp_path, tiny_folder, "arc", "solve", str(task), "--config", config, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["task"]["id"] == "flip[bold]" and doc["solved"] in (True, False)
    [run] = doc["runs"]
    assert run["config"] == SHORT.to_json() and run["steps"] == 5 and run["loss_first"] > 0
    assert doc["source"] == "--config"


def test_cli_solve_with_the_teacher_tries_k_configurations(tmp_path, tiny_folder, capsys, monkeypatch):
    import agent.lab.arc.restem as restem
    task = tmp_path / "flip.json"
    task.write_text(json.dumps(TASK))
    completions = [json.dumps(SHORT.to_json()), "not a configuration {", json.dumps(SHORT.to_json())]

    def propose(backend, tokenizer, demos, k, *a, **kw):
        assert k == 3 and backend is not None
        return [[(c, None) for c in completions] for _ in demos]
    monkeypatch.setattr(restem, "propose_configs", propose)
    assert cli(tmp_path, tiny_folder, "arc", "solve", str(task), "--teacher", "--k", "3", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in doc["runs"]] == ["ok", "invalid", "ok"]
    assert [r["completion"] for r in doc["runs"]] == completions
    assert doc["runs"][0]["attempts"] == doc["runs"][2]["attempts"]  # the same configuration and seed
    assert doc["source"].startswith("teacher (untrained)")


def test_cli_bad_input_is_one_line(tmp_path, tiny_folder, capsys):
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"a": TASK, "b": TASK}))
    one = tmp_path / "one.json"
    one.write_text(json.dumps(TASK))
    for args in (["solve", str(many)], ["solve", str(tmp_path / "missing.json")],
                 ["solve", str(one), "--config", "{oops"], ["solve", str(one), "--teacher", "--config", "{}"],
                 ["bench", "--rows", "default,nope"], ["bench", "--tasks", "no-such-task"]):
        assert cli(tmp_path, tiny_folder, "arc", *args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err


# ------------------------------------------------------------------ bench
def test_bench_rows_table_and_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "ORACLE_GRID", (SHORT, DEFAULT_CONFIG))
    tok = make_tiny_tokenizer()
    student, teacher = make_tiny_model(tok, 0), make_tiny_model(tok, 1)
    loads = []

    def load_student():
        loads.append("student")
        return student, tok

    def load_teacher(version):
        loads.append(f"teacher{version}")
        return teacher, tok

    tasks = {"tiny": tiny_task()}
    rows = ["in-context", "default", "teacher", "oracle"]
    doc = jobs.run_bench(tasks, rows, tmp_path / "b", load_student, load_teacher, k=2, seeds=1)
    lines = {r["row"]: r for r in doc["rows"]}
    assert list(lines) == rows and lines["teacher"]["runs"] == 2 and lines["oracle"]["runs"] == 2
    assert all(r["tasks"] == 1 and r["solved"] in (0, 0.5, 1) for r in lines.values())
    results = read_results(tmp_path / "b" / "results.jsonl")
    assert len(results) == 6 and {r["label"].split("#")[0] for r in results} == set(rows)
    table = (tmp_path / "b" / "table.md").read_text()
    assert "| oracle | 1 | 2 |" in table and "95% CI" in table
    assert json.loads((tmp_path / "b" / "results.json").read_text())["rows"] == doc["rows"]
    assert loads == ["teacher", "student"]
    again = jobs.run_bench(tasks, rows, tmp_path / "b", load_student, load_teacher, k=2, seeds=1)
    assert again["rows"] == doc["rows"] and loads == ["teacher", "student"]  # resumed: nothing loads, nothing runs


# ------------------------------------------------------------------ train
def test_train_round_saves_a_teacher_version_and_resumes(tmp_path, monkeypatch):
    import agent.lab.arc.restem as restem
    tok = make_tiny_tokenizer()
    student, teacher = make_tiny_model(tok, 0), make_tiny_model(tok, 1)
    completions = [json.dumps(SHORT.to_json()), "{broken", json.dumps(DEFAULT_CONFIG.to_json())]
    sampled = []

    def propose(backend, tokenizer, demos, k, *a, **kw):
        sampled.append(len(demos))
        return [[(c, None) for c in completions[:k]] for _ in demos]
    monkeypatch.setattr(restem, "propose_configs", propose)
    real = jobs.local_solver
    solved = []

    def solver(*a, **kw):  # the reward: real test-time training, then "solved" for the short configuration only
        run = real(*a, **kw)

        def job(rows):
            out = run(rows)
            for r, row in zip(out, rows):
                r["solved"] = row.config == SHORT
                solved.append(r["label"])
            return out
        return job
    monkeypatch.setattr(jobs, "local_solver", solver)
    store = AdapterStore(tmp_path / "versions")
    policy = PolicySettings(r=4, alpha=8, epochs=1, batch_size=2, max_len=2048)
    args = ({"tiny": tiny_task()}, lambda: (student, tok), lambda: (teacher, tok), store, policy, tmp_path / "run")
    doc = jobs.train_rounds(*args, rounds=1, k=3)
    [rnd] = doc["rounds"]
    assert rnd["status"] == "done" and rnd["trained"] and rnd["solved_rows"] == 1 and rnd["valid"] == 2
    assert doc["teacher"] == rnd["adapter"] and store.ids() == [rnd["adapter"]]
    meta = store.meta(rnd["adapter"])
    assert meta["round"] == 1 and meta["domain"] == "arc" and meta["pairs"] == 1 and meta["parent"] is None
    assert rnd["policy_train"]["steps"] >= 1
    assert sampled == [1] and solved == ["teacher#0", "teacher#1", "teacher#2"]
    again = jobs.train_rounds(*args, rounds=1, k=3)
    assert again["rounds"] == doc["rounds"] and sampled == [1] and len(solved) == 3  # resumed: nothing reruns
