"""The one place that knows where things live in a seal-agent home."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HomePaths:
    """Paths inside a home folder (``--home``, env SEAL_AGENT_HOME, default ~/.seal-agent)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def marker(self) -> Path:
        return self.root / "seal-agent.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def student_adapters(self) -> Path:
        return self.root / "adapters" / "student"

    @property
    def teacher_adapters(self) -> Path:
        return self.root / "adapters" / "teacher"


def home_paths(home: Path | str) -> HomePaths:
    return HomePaths(Path(home).expanduser())
