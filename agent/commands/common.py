"""What every CLI command shares: the global options, opening the agent, printing results (rich or --json)."""
from __future__ import annotations

import json
import math
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


def open_agent(ctx: typer.Context, create: bool = True, read: bool = False):
    """The agent on the home; ``read``: a reading command, which reads the last committed state when a writer
    (an ingest) holds the home instead of being refused."""
    from ..core import Agent
    if not read:
        return Agent(state(ctx).config(), create=create)
    from ..memory import reading
    with reading():
        return Agent(state(ctx).config(), create=create)


def emitter(ctx: typer.Context, transient: bool = False):
    """A rich renderer for events, or a sink when --json asks for machine output only (transient: its progress
    bars vanish when done)."""
    from ..render import RichRenderer
    st = state(ctx)
    if st.json:
        import contextlib
        return contextlib.nullcontext(lambda _e: None)
    return RichRenderer(Console(stderr=True), transient=transient)


def finite(data):
    """``data`` with every NaN or infinity made ``null``: strict JSON parsers reject NaN."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def dumps(data) -> str:
    """Strict JSON (no NaN) of command output."""
    return json.dumps(finite(json.loads(json.dumps(data, default=str))), indent=2, allow_nan=False)


def output(ctx: typer.Context, data, human: Callable[[Console], None] | None = None) -> None:
    st = state(ctx)
    if st.json or human is None:
        sys.stdout.write(dumps(data) + "\n")
    else:
        human(st.console)
