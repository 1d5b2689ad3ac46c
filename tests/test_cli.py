"""The command line: every refusal is one line on stderr with exit status 2, and the store is unchanged."""
import json

import pytest

from tui.main import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def files(home):
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name != ".lock")


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_history_on_a_new_home_is_empty_json(capsys, home):
    code, out, err = run(capsys, "--home", str(home), "--json", "history")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize("setup,argv,message", [
    (None, ["ingest", "{d}/missing.txt"], "missing.txt: no such file"),
    ("empty", ["ingest", "{d}/empty.txt"], "empty.txt: empty file"),
    ("binary", ["ingest", "{d}/bin.dat"], "bin.dat: binary file"),
    ("latin", ["ingest", "{d}/latin.txt"], "latin.txt: not UTF-8 text"),
    ("big", ["--set", "ingest.max_file_bytes=100", "ingest", "{d}/big.txt"], "big.txt: 101 bytes, over the 100-byte limit"),
    ("dir", ["ingest", "{d}/sub"], "directory has no text files"),
    (None, ["ingest", "--prompt", "poetry", "{d}/x.txt"], "--prompt 'poetry'"),
    (None, ["ingest", "--samples", "0", "{d}/x.txt"], "Invalid value"),
    (None, ["--bogus", "history"], "No such option: --bogus"),
    (None, ["rollback", "e-nope"], "e-nope: no such committed edit"),
    (None, ["--set", "train.lr=fast", "history"], "cannot read 'fast' as float"),
    (None, ["ask", "  "], "the question is empty"),
])
def test_bad_input_is_one_line_and_changes_nothing(capsys, tmp_path, home, setup, argv, message):
    d = tmp_path / "in"
    d.mkdir()
    content = {"empty": ("empty.txt", b"\n \n"), "binary": ("bin.dat", b"\x00\x01\x02"),
               "latin": ("latin.txt", "na\xefve".encode("latin-1")), "big": ("big.txt", b"y" * 101)}
    if setup in content:
        name, data = content[setup]
        (d / name).write_bytes(data)
    if setup == "dir":
        (d / "sub").mkdir()
    run(capsys, "--home", str(home), "history")  # create the store first
    before = files(home)
    code, out, err = run(capsys, "--home", str(home), *[a.format(d=d) for a in argv])
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert files(home) == before


def test_foreign_home_is_refused(capsys, tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    code, out, err = run(capsys, "--home", str(tmp_path), "history")
    assert code == 2 and "not a seal-agent home" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
