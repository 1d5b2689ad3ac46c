"""The lab's commands (benchmarks, the forgetting sweep, teacher training, few-shot ARC), added to the product's command line.

The product (agent/cli.py) never imports the lab; this module imports both and registers the lab's command groups
on the product's Typer app. The console entry point (tui/main.py) imports it.
"""
from __future__ import annotations

from ..cli import app, main
from .commands import arc, bench, bench_inner, bench_knowledge, forgetting, teacher_cmd  # noqa: F401 (they register)

for _module in (bench, forgetting, teacher_cmd, arc):
    _module.register(app)

__all__ = ["app", "main"]


if __name__ == "__main__":  # the lab's command line where the TUI is not installed (e.g. a GPU machine)
    main()
