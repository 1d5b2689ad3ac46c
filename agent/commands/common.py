"""What every CLI command shares: the global options, opening the agent, printing results (rich or --json)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import typer
from rich.console import Console

from ..config import Config, load_config


@dataclass
class CliState:
    home: Path
    json: bool = False
    overrides: list[str] = field(default_factory=list)
    console: Console = field(default_factory=lambda: Console(stderr=False))

    def config(self) -> Config:
        return load_config(self.home, self.overrides)


def state(ctx: typer.Context) -> CliState:
    return ctx.find_root().obj


def open_agent(ctx: typer.Context, create: bool = True):
    from ..core import Agent
    return Agent(state(ctx).config(), create=create)


def emitter(ctx: typer.Context):
    """A rich renderer for events, or a sink when --json asks for machine output only."""
    from ..render import RichRenderer
    st = state(ctx)
    if st.json:
        import contextlib
        return contextlib.nullcontext(lambda _e: None)
    return RichRenderer(Console(stderr=True))


def output(ctx: typer.Context, data, human: Callable[[Console], None] | None = None) -> None:
    st = state(ctx)
    if st.json or human is None:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(st.console)
