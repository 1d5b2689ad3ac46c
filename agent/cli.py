"""The ``seal-agent`` command line (Typer). Errors print as one line and exit with status 2."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.table import Table

from .commands.common import CliState, emitter, open_agent, output, state
from .config import Config, default_home

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Teach a language model new documents in its weights, and keep what it knew.")


# The benchmark's aggregate for the default pipeline, so that one demo paragraph is read against it (the table,
# its command and its error bars: docs/results.md, "Context distillation against next-token training").
EXPECT = ("What to expect: on SEAL's 175 SQuAD passages the default pipeline answers 0.27 of the questions "
          "closed-book after learning a passage (0.03 before; 0.38 with the passage in its context), measured with "
          "`seal-agent bench knowledge` on an H100, 2 seeds: see docs/results.md.")

# What a bare `seal-agent` (no command) does: set by the console entry point (tui/main.py opens the TUI);
# without one, the help is printed.
default_action: Callable[[Config], None] | None = None


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          home: Optional[Path] = typer.Option(None, "--home", help="Data home (env SEAL_AGENT_HOME, default ~/.seal-agent)."),
          json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON only."),
          set_: List[str] = typer.Option([], "--set", help="Override a config value: section.key=value (repeatable).")):
    ctx.obj = CliState(home=(home or default_home()).expanduser(), json=json_out, overrides=list(set_))
    if ctx.invoked_subcommand is None:
        if default_action is None:
            typer.echo(ctx.get_help())
        else:
            default_action(state(ctx).config())


@app.command()
def ingest(ctx: typer.Context,
           paths: List[Path] = typer.Argument(..., help="Text/markdown files, SQuAD-format JSON files, or folders."),
           prompt: Optional[str] = typer.Option(None, "--prompt", help="Self-edit family: implications, implications-long, rewrite, self-qa."),
           samples: Optional[int] = typer.Option(None, "--samples", "-k", min=1, max=64, help="Self-edits per chunk."),
           force: bool = typer.Option(False, "--force", help="Learn a document again even if it is already learned."),
           no_guard: bool = typer.Option(False, "--no-guard", help="Keep the edit even if its probes get worse.")):
    """Learn documents: the teacher writes study material, the student absorbs it, probes show the gain.

    Exit status:
    0 = every edit committed;
    1 = the guard rejected an edit (its probes got worse or earlier documents fell; --no-guard keeps it);
    2 = an error (one line on stderr; nothing committed for the edit in progress); 130 = interrupted."""
    from teacher.prompts import FAMILIES

    from .errors import BadInput
    from .ingest import Ingest, IngestOptions
    from .render import answers_table, plain
    if prompt is not None and prompt not in FAMILIES:
        raise BadInput(f"--prompt {prompt!r}: choose one of {', '.join(FAMILIES)}")
    t0 = time.time()
    with open_agent(ctx) as agent, emitter(ctx) as emit:
        opts = IngestOptions(force=force, family=prompt, samples=samples, guard=False if no_guard else None)
        outcomes = Ingest(agent, opts, emit=emit).run(list(paths))
    data = {"seconds": round(time.time() - t0, 2), "edits": [asdict(o) for o in outcomes]}

    def human(console):
        for o in outcomes:
            console.print(answers_table(o.answers))
            colour = "green" if o.status == "committed" else "yellow"
            console.print(f"[{colour}]{o.status}[/] {o.edit_id} '{plain(o.title, True)}': probe accuracy {o.before:.2f} -> "
                          f"{o.after:.2f}, {o.train_steps} steps on {o.texts} texts, {o.seconds:.1f} s")
        console.print(f"total {data['seconds']:.1f} s")
    output(ctx, data, human)
    if any(o.status == "rejected" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def ask(ctx: typer.Context, question: str = typer.Argument(..., help="A question, answered closed-book."),
        base: bool = typer.Option(False, "--base", help="Ask the untouched base model instead."),
        both: bool = typer.Option(False, "--both", help="Show the student's and the base model's answers.")):
    """The student's closed-book answer to a question."""
    from .errors import BadInput
    from .render import plain
    if not question.strip():
        raise BadInput("the question is empty")
    with open_agent(ctx, read=True) as agent:
        data = {"question": question}
        if both or not base:
            data["student"] = agent.ask([question])[0]
            if agent.update_mode == "route":
                data["via"] = agent.routes([question])[0]  # the document whose adapter answered ("" = the base)
        if both or base:
            data["base"] = agent.ask([question], base=True)[0]

    def human(console):
        for who in ("student", "base"):
            if who in data:
                via = ""
                if who == "student" and "via" in data:
                    via = (f" (via the adapter of '{data['via']}')" if data["via"]
                           else " (no learned document is close: the base model)")
                console.print(f"[bold]{who}[/]{plain(via)}[bold]:[/] {plain(data[who])}")
    output(ctx, data, human)


@app.command()
def history(ctx: typer.Context):
    """Every edit: document, time, probe accuracy before/after, status (edit ids in full: rollback takes them,
    or any unique prefix)."""
    from rich.text import Text

    from .render import safe_text
    with open_agent(ctx, read=True) as agent:
        rows, mode = agent.history(), agent.update_mode

    def human(console):
        if not rows:
            console.print(f"no edits yet: seal-agent ingest FILE (update mode: {mode})")
            return
        what = {"route": "an adapter per document, questions routed", "continue": "one adapter that keeps learning"}
        t = Table(title=Text(f"edits in {safe_text(state(ctx).home)}"), caption=f"update mode: {mode} ({what[mode]})")
        id_width = max(len(r["edit_id"]) for r in rows)
        for c in ("edit", "when", "kind", "status", "document", "before", "after", "s"):
            t.add_column(c, no_wrap=c == "edit", min_width=id_width if c == "edit" else None,
                         overflow="fold" if c == "document" else "ellipsis")
        for r in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))
            t.add_row(r["edit_id"], when, r["kind"], r["status"], Text(safe_text(r["title"], True, 30)),
                      f"{r['before']:.2f}" if r["kind"] != "rollback" else "",
                      f"{r['after']:.2f}" if r["kind"] != "rollback" else "", f"{r['seconds']:.0f}")
        console.print(t)
    output(ctx, rows, human)


@app.command()
def rollback(ctx: typer.Context, edit_id: str = typer.Argument(..., help="The edit to undo (with every later one).")):
    """Undo a committed edit (its id, or a unique prefix of it) and every later one: the student returns to the
    adapter it had before it (continue), or its documents stop being routed to (route)."""
    with open_agent(ctx) as agent:
        data = agent.rollback(edit_id)

    def human(console):
        if data.get("mode") == "route":
            console.print(f"rolled back {', '.join(data['undone'])}: questions are no longer routed to the "
                          f"adapter(s) of {plain(', '.join(data.get('titles', [])), True)}; the other learned documents "
                          "keep theirs")
        else:
            console.print(f"rolled back {', '.join(data['undone'])}; student now at {data['head']}")
    from .render import plain
    output(ctx, data, human)


@app.command()
def probe(ctx: typer.Context):
    """Re-run every stored probe against the current student: accuracy per document."""
    from rich.text import Text

    from .render import safe_text
    with open_agent(ctx, read=True) as agent, emitter(ctx, transient=True) as emit:  # no bar left above the table
        rows = agent.probe(emit)

    def human(console):
        if not rows:
            console.print("no documents learned yet")
            return
        t = Table(title="probe accuracy per document (now vs just after it was learned)")
        for c in ("document", "edit", "n", "now", "learned", "F1"):
            t.add_column(c)
        for r in rows:
            t.add_row(Text(safe_text(r["title"], True, 40)), r["edit_id"], str(r["n"]), f"{r['accuracy']:.2f}",
                      f"{r['learned']:.2f}" if r["learned"] is not None else "-", f"{r['f1']:.2f}")
        console.print(t)
    output(ctx, rows, human)


@app.command()
def demo(ctx: typer.Context):
    """Learn the bundled sample document in a fresh temporary home and show the answers before and after."""
    import shutil
    import tempfile

    from .config import load_config
    from .core import Agent
    from .ingest import Ingest
    from .render import answers_table

    st = state(ctx)  # the model comes from the shared cache (agent.models.model_cache), converted once per machine
    sample = Path(__file__).parent / "data" / "sample.json"
    tmp = Path(tempfile.mkdtemp(prefix="seal-agent-demo-"))
    try:
        cfg = load_config(st.home, st.overrides)
        cfg.home = tmp / "home"
        t0 = time.time()
        with Agent(cfg) as agent, emitter(ctx) as emit:
            outcome = Ingest(agent, emit=emit).run([sample])[0]
            question = outcome.answers[0]["question"] if outcome.answers else "What is this document about?"
            after = agent.ask([question])[0]
            base = agent.ask([question], base=True)[0]
        data = {"seconds": round(time.time() - t0, 2), "edit": asdict(outcome),
                "ask": {"question": question, "student": after, "base": base}}

        def human(console):
            console.print(answers_table(outcome.answers))
            console.print(f"[bold]{outcome.status}[/]: probe accuracy {outcome.before:.2f} -> {outcome.after:.2f} "
                          f"in {outcome.seconds:.1f} s ({outcome.train_steps} training steps on {outcome.texts} texts)")
            console.print(f"ask {question!r}\n  student: {after}\n  base:    {base}")
            console.print(f"total {data['seconds']:.1f} s. Try it on your own files: seal-agent ingest FILE")
            console.print(EXPECT)
        output(ctx, data, human)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_CORE = {"ingest", "ask", "history", "rollback", "probe", "demo", "tui"}


def _json_anywhere(argv: list[str]) -> list[str]:
    """``--json`` after a core command (``seal-agent history --json``) means what it means before it."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--":
            return argv
        i += 2 if argv[i] in ("--home", "--set") else 1
    if i >= len(argv) or argv[i] not in _CORE:
        return argv
    head, rest = argv[:i + 1], argv[i + 1:]
    end = rest.index("--") if "--" in rest else len(rest)
    if "--json" not in rest[:end]:
        return argv
    return ["--json"] + head + [a for a in rest[:end] if a != "--json"] + rest[end:]


def main(argv: list[str] | None = None) -> None:
    """The error boundary: every failure a user can meet is one line on stderr naming the file and the cause,
    exit status 2 (SEAL_AGENT_DEBUG=1 adds the traceback). Usage errors: 2; interrupted: 130; a rejected edit
    (ingest): 1."""
    import os

    from .errors import describe
    # typer 0.29 vendors click as typer._click; older typers use click itself
    try:
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover
        from click import exceptions as cx
    cmd = typer.main.get_command(app)
    argv = _json_anywhere(list(sys.argv[1:] if argv is None else argv))
    try:
        code = cmd.main(args=argv, prog_name="seal-agent", standalone_mode=False)
    except cx.UsageError as e:
        print(f"error: {' '.join(e.format_message().split())}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted; nothing was committed for the edit in progress", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except BrokenPipeError:  # `seal-agent history | head`: the reader left
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(0)
    except cx.ClickException as e:
        print(f"error: {' '.join(e.format_message().split())}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - the boundary: one line, never a traceback
        if os.environ.get("SEAL_AGENT_DEBUG"):
            import traceback
            traceback.print_exc()
        print(f"error: {' '.join(describe(e).split())}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
