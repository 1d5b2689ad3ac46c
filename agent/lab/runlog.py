"""Append-only JSONL logs for resumable benchmarks, and atomic file writes.

Each record is one line written with a single ``write`` on a file opened in append mode, then fsync'ed; a line
cut short by a killed process is dropped (and cut off the file) when the log is read again, so a re-run
redoes exactly the unfinished work.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Hashable, Iterator

from ..errors import BadInput
from ..util import atomic_write  # noqa: F401 (the lab's modules take it from here)


# The layout and fingerprint of a run folder (run.json, the JSONL logs). A folder written with another format
# is refused on resume instead of being read through compatibility shims.
RUN_FORMAT = 2


def train_identity(train) -> dict:
    """TrainSettings as a run's fingerprint records them when the update has no anchor texts (the knowledge
    benchmark, ReST-EM rewards): without the seed (varied per run) and the anchor's settings (unused)."""
    skip = ("seed", "anchor_weight", "anchor_batch")
    return {k: v for k, v in dataclasses.asdict(train).items() if k not in skip}


def teacher_identity(teacher, skip: tuple[str, ...]) -> dict:
    """TeacherSettings as a run's fingerprint records them: without ``skip``."""
    return {k: v for k, v in dataclasses.asdict(teacher).items() if k not in skip}


def read_records(path: Path) -> list[dict]:
    """Every record of a JSONL file, in order. Records end at "\\n" only: ``str.splitlines`` also splits at
    U+2028/U+2029, which a model's completion can hold raw (``ensure_ascii=False``), and would tear such a
    line in two (a ReST-EM run folder then failed to resume: "samples.jsonl:39: not a JSON line")."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


class JsonlLog:
    """Records keyed by ``key(record)``; the last record of a key wins. ``repair=False`` reads without cutting a
    partial last line off the file (a reader beside a running writer, whose line may be half written)."""

    def __init__(self, path: Path, key: Callable[[dict], Hashable], repair: bool = True):
        self.path = path
        self.key = key
        self.repair = repair
        self.records: dict[Hashable, dict] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good = raw[: raw.rfind(b"\n") + 1]  # a partial last line is an interrupted write
        for n, line in enumerate(good.decode("utf-8").split("\n"), 1):  # not splitlines(): see read_records
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise BadInput(f"{self.path}:{n}: not a JSON line (remove the file to start over)") from None
            self.records[self.key(rec)] = rec
        if len(good) != len(raw) and self.repair:
            with open(self.path, "r+b") as f:
                f.truncate(len(good))

    def __contains__(self, key: Hashable) -> bool:
        return key in self.records

    def get(self, key: Hashable) -> dict | None:
        return self.records.get(key)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records.values())

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, allow_nan=True) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records[self.key(record)] = record


def check_run_file(path: Path, settings: dict, what: str = "run") -> None:
    """Write ``settings`` (JSON-normalised) to ``path`` on a first run; on a re-run refuse other settings, naming
    the keys that differ (results of different settings must not be mixed in one folder)."""
    mine = json.loads(json.dumps({"format": RUN_FORMAT, **settings}, default=str))
    if path.exists():
        try:
            theirs = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise BadInput(f"{path}: not valid JSON (remove it, or choose another --out)") from None
        if not isinstance(theirs, dict) or theirs.get("format") != RUN_FORMAT:
            found = theirs.get("format", "none") if isinstance(theirs, dict) else "none"
            raise BadInput(f"--out {path.parent} holds a {what} in run format {found}; this seal-agent writes "
                           f"format {RUN_FORMAT}: choose another --out")
        if theirs != mine:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise BadInput(f"--out {path.parent} holds a {what} with other settings ({', '.join(diff)} differ); "
                           "choose another --out")
    else:
        atomic_write(path, json.dumps(mine, indent=2) + "\n")
