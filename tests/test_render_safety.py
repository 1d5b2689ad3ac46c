"""Text from documents is shown as text: no markup interpreted, escape sequences and control characters
neutralised, a title with `[/]` never crashes -- through ingest output, history, probe and ask (fuzzed)."""
import json
import random

import pytest
from rich.text import Text

from agent.cli import main
from agent.render import plain, safe_text
from tests.conftest import make_tiny_agent

NASTY = ["[bold red]PWNED[/bold red]", "[link=https://evil.example]clickme[/link]", "[/]", "[/bold]", "[",
         "\x1b[31mred\x1b[0m", "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07", "\x1b]0;title\x1b\\",
         "\x1b[2J\x1b[H", "\x07\x08\x0b\x0c\r", "\x9b31m", "\u202eevil", "tab\there", "x" * 300, "ü€😀", "\\[escaped]"]


def nasty(rng, n=3):
    return " ".join(rng.choice(NASTY) for _ in range(n))


def check_safe(out: str):
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert [out[max(0, i - 40):i + 5] for i, c in enumerate(out) if ord(c) < 32 and c not in "\n\t\r"] == []  # \r: progress bars


def test_safe_text_fuzz():
    rng = random.Random(0)
    for _ in range(500):
        raw = "".join(rng.choice(NASTY + [chr(rng.randrange(0, 0x250))]) for _ in range(rng.randrange(1, 8)))
        s = safe_text(raw)
        check_safe(s)
        assert Text.from_markup(plain(raw)).plain == s          # escaped: markup shows as itself, never fails
        assert "\n" not in safe_text(raw, one_line=True)


def test_documents_with_markup_and_escapes_through_the_cli(capsys, tmp_path, monkeypatch):
    rng = random.Random(1)
    docs = []
    for i in range(3):
        docs.append({"title": f"T{i} {nasty(rng)} [/]", "context": f"Zorb{i} {nasty(rng)} lives in Quentin Bay.",
                     "questions": [{"question": f"Where {nasty(rng)}?", "answer": f"Quentin {nasty(rng, 1)}"}]})
    docs[0]["title"] = "[bold red]PWNED[/bold red] [link=https://evil.example]clickme[/link] \x1b]8;;http://x\x07y[/]"
    f = tmp_path / "nasty.json"
    f.write_text(json.dumps(docs))
    home = tmp_path / "home"
    monkeypatch.setattr("agent.cli.open_agent", lambda ctx, create=True, read=False: make_tiny_agent(home))
    monkeypatch.setenv("COLUMNS", "80")
    outputs = []
    for argv in (["ingest", "--no-guard", str(f)], ["history"], ["probe"], ["ask", f"Where {NASTY[0]} {NASTY[6]}?"]):
        with pytest.raises(SystemExit) as e:
            main(["--home", str(home), *argv])
        out, err = capsys.readouterr()
        assert e.value.code == 0, err
        check_safe(out + err)
        outputs.append(out + err)
    ingest_out, history_out, probe_out, _ = outputs
    assert "[bold red]PWNED[/bold red]" in ingest_out            # shown as text, not interpreted
    assert "[bold" in history_out and "[bold" in probe_out
    ids = [r["edit_id"] for r in make_history(home)]
    assert ids and all(i in history_out for i in ids)           # at 80 columns, edit ids are never cut


def make_history(home):
    agent = make_tiny_agent(home)
    try:
        return agent.history()
    finally:
        agent.close()
