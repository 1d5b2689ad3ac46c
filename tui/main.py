"""The `seal-agent` console entry point: the product's command line, the lab's commands, and the TUI.

It lives in tui/ because only the top room may see every other: agent/ never imports tui/ (doors go one way),
so the TUI is wired in here — as the `tui` command and as what a bare `seal-agent` runs.
"""
from __future__ import annotations

import typer

from agent import cli
from agent.commands.common import state
from agent.lab.cli import app


def _run_tui(cfg) -> None:
    from .app import run
    run(cfg)


@app.command()
def tui(ctx: typer.Context):
    """Open the terminal UI (the same as running seal-agent with no command)."""
    _run_tui(state(ctx).config())


cli.default_action = _run_tui


def main(argv: list[str] | None = None) -> None:
    cli.main(argv)


if __name__ == "__main__":
    main()
