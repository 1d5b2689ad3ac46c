"""The CLI's error boundary: every failure a user can meet is one line naming the file and the cause, exit 2."""
import errno
import json
import os

import pytest

from agent.cli import _json_anywhere, main
from agent.errors import describe


def run(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def one_line(code, err, *parts):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for p in parts:
        assert p in err, err


def test_json_after_the_command(capsys, tmp_path):
    code, out, err = run(capsys, "--home", str(tmp_path / "h"), "history", "--json")
    assert code == 0 and json.loads(out) == []
    assert _json_anywhere(["--home", "x", "ask", "q", "--json"]) == ["--json", "--home", "x", "ask", "q"]
    assert _json_anywhere(["ask", "--", "--json"]) == ["ask", "--", "--json"]          # a question "--json"
    assert _json_anywhere(["forgetting", "--json"]) == ["forgetting", "--json"]        # has its own --json


@pytest.mark.parametrize("where,cause", [("file", "not a directory"), ("/proc/seal-agent-test", "/proc/seal"),
                                         ("/sys/seal-agent-test", "/sys/seal")])
def test_a_home_where_none_can_be(capsys, tmp_path, where, cause):
    if where == "file":
        (tmp_path / "f").write_text("x")
        where = str(tmp_path / "f" / "home")
    code, out, err = run(capsys, "--home", where, "history")
    one_line(code, err, cause)


@pytest.mark.parametrize("exc,parts", [
    (OSError(errno.ENOSPC, "No space left on device", "/h/adapters/x"), ["/h/adapters/x", "disk full"]),
    (PermissionError(errno.EACCES, "Permission denied", "/h/.lock"), ["/h/.lock", "permission denied"]),
    (OSError(errno.EROFS, "Read-only file system", "/h/.lock"), ["/h/.lock", "read-only file system"]),
    (OSError(errno.ELOOP, "Too many levels of symbolic links", "/d/loop"), ["/d/loop", "symlink loop"]),
    (RuntimeError("database or disk is full"), ["disk full"]),
    (ValueError("something odd\nsecond line"), ["ValueError: something odd"]),
])
def test_failures_are_one_line(capsys, monkeypatch, tmp_path, exc, parts):
    def boom(*a, **k):
        raise exc
    monkeypatch.setattr("agent.core.Agent.__init__", boom)
    code, out, err = run(capsys, "--home", str(tmp_path / "h"), "history")
    one_line(code, err, *parts)


def test_chromadb_errors_name_the_store():
    from chromadb.errors import InternalError
    assert "memory store" in describe(InternalError("boom"))
    assert "disk full" in describe(InternalError("database or disk is full"))


def test_an_empty_database_under_a_learned_home_is_corrupt(capsys, tmp_path):
    home = tmp_path / "h"
    code, _, _ = run(capsys, "--home", str(home), "history")
    (home / "adapters" / "student" / "k-1").mkdir(parents=True)
    (home / "adapters" / "student" / "k-1" / "seal_meta.json").write_text("{}")
    (home / "chroma" / "chroma.sqlite3").write_bytes(b"")
    code, out, err = run(capsys, "--home", str(home), "history")
    one_line(code, err, "chroma.sqlite3", "corrupt")


def test_nan_is_null_in_json():
    from agent.commands.common import dumps
    assert json.loads(dumps({"loss": float("nan"), "x": [float("inf"), 1.5]})) == {"loss": None, "x": [None, 1.5]}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes anything")
def test_a_read_only_home(capsys, tmp_path):
    home = tmp_path / "h"
    run(capsys, "--home", str(home), "history")
    os.chmod(home, 0o555)
    (home / ".lock").chmod(0o444)
    try:
        code, out, err = run(capsys, "--home", str(home), "history")
        assert code in (0, 2) and "Traceback" not in err
    finally:
        os.chmod(home, 0o755)
