"""Configuration: dataclasses composed from each room's settings; file < environment < flags.

The file is ``<home>/config.toml`` with one table per section (``[train]``, ``[lora]``, ``[teacher]`` ...);
flags are ``--set section.key=value``; a few common ones have their own environment variables.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from student.config import AnswerSettings, LoraSettings, TrainSettings
from teacher.config import ParseSettings, PolicySettings, TeacherSettings

from .errors import BadInput
from .paths import home_paths

EMBEDDED = "embedded"


@dataclass
class ModelSettings:
    teacher: str = EMBEDDED        # "embedded", a local HF folder, or a hub id (needs a network)
    student: str = EMBEDDED
    device: str = "auto"           # auto | cpu | cuda | cuda:N
    dtype: str = "auto"            # the student's: auto (bf16 on CUDA, f32 on CPU) | float32 | bfloat16
    teacher_dtype: str = "auto"    # auto (bf16 on CUDA and on CPUs with native bf16, else f32) | float32 | bfloat16
    embedder: str = EMBEDDED       # the memory's and the router's sentence embedder: "embedded" (all-MiniLM-L6-v2,
                                   # offline) or a sentence-transformers folder
    teacher_adapter: str = ""      # a trained teacher version id (ReST-EM) or "" for the untrained teacher
    threads: int = 0               # CPU threads for torch; 0 = auto: the cores not already busy (at least 1)


UPDATES = ("continue", "route")


@dataclass
class IngestSettings:
    chunk_tokens: int = 320        # chunks are paragraph-aware and at most this many tokens
    max_file_bytes: int = 2_000_000
    probes_per_doc: int = 5        # probes the teacher writes for documents that come without questions
    guard: bool = True             # reject (roll back) an edit whose probes come out worse than before
    guard_tolerance: float = 0.0   # accuracy drop on earlier documents' probes tolerated by the guard
    retention_probes: int = 40     # earlier probes re-run after each commit (capped), for the forgetting history
    use_directives: bool = False   # let update settings the teacher writes ("lr: 3e-4", "epochs: 5") override [train]
    update: str = "route"          # continue: one knowledge adapter keeps learning (with replay) | route: an adapter
                                   # per document, each question answered by the most similar document's adapter;
                                   # fixed for a store by its first committed document
    route_threshold: float = 0.3   # route: least cosine similarity (question vs a document chunk) to use its adapter

    def __post_init__(self) -> None:
        if self.update not in UPDATES:
            raise ValueError(f"ingest.update must be one of {', '.join(UPDATES)}, got {self.update!r}")
        if not -1.0 <= self.route_threshold <= 1.0:
            raise ValueError("ingest.route_threshold must be in [-1, 1]")


LINES = ("mixed", "beside")
METHODS = ("sft", "distill")
STUDY = ("passage", "texts", "questions", "cues")


@dataclass
class AbsorbSettings:
    """How an update learns a document (ingest, ``bench knowledge``, the forgetting sweep, ReST-EM rewards)."""

    method: str = "distill"        # distill: context distillation — the student without the document matches the
                                   # base model with the document in its context, on study material (``study``);
                                   # 0.271 closed-book against 0.170 for sft on 175 passages | sft: next-token
                                   # training on the texts (docs/results.md)
    study: str = "passage,questions,cues"  # distill's material: passage (the chunk's own text), texts (the
                                   # self-edit's lines), questions (the teacher asks, the base model answers with
                                   # the chunk in context), cues (each sentence's first half as a question, its rest
                                   # the answer)
    questions: int = 8             # questions the teacher writes per chunk (distill with ``questions``)
    lines: str = "beside"          # sft: beside: the passage keeps its own schedule (as if learned alone) and each
                                   # step adds train.side_weight x the mean NLL of its share of the lines | mixed
                                   # (SEAL): one batch plan over the lines and the passage

    def __post_init__(self) -> None:
        if self.lines not in LINES:
            raise ValueError(f"absorb.lines must be one of {', '.join(LINES)}, got {self.lines!r}")
        if self.method not in METHODS:
            raise ValueError(f"absorb.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        unknown = set(self.study_set) - set(STUDY)
        if unknown or not self.study_set:
            raise ValueError(f"absorb.study: comma-separated names from {', '.join(STUDY)}, got {self.study!r}")
        if self.questions < 0:
            raise ValueError("absorb.questions must be >= 0")

    @property
    def study_set(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.study.split(",") if s.strip())


@dataclass
class ReplaySettings:
    strategy: str = "reservoir"    # none | reservoir | mixed
    capacity: int = 2000
    ratio: float = 0.5             # replay texts added per new training text
    seed: int = 0


EXECUTORS = ("local", "ray")


@dataclass
class RunSettings:
    """Where the lab's long jobs (``bench knowledge``, ``teacher train``'s rewards, ``forgetting``) run."""

    executor: str = "local"        # local: in this process | ray: on Ray actors, each holding a loaded student
    ray_address: str = ""          # "" = start a Ray instance on this machine; else a cluster (e.g. "auto", "ray://h:10001")
    gpus_per_worker: float = 0.25  # GPU share of one Ray worker: 0.25 = four workers per GPU (each needs its memory)
    workers: int = 0               # Ray workers; 0 = auto: GPUs / gpus_per_worker, or the CPUs on a machine without GPUs
    k_per_worker: int = 0          # adapters a worker trains at once (the batched engine's group); 0 = auto: the
                                   # command's --group, or on GPUs what a worker's share of free GPU memory holds

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"run.executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if not 0 < self.gpus_per_worker <= 1 and not (self.gpus_per_worker > 1 and float(self.gpus_per_worker).is_integer()):
            raise ValueError("run.gpus_per_worker must be in (0, 1] or a whole number of GPUs")
        if self.workers < 0 or self.k_per_worker < 0:
            raise ValueError("run.workers and run.k_per_worker must be >= 0 (0 = auto)")


@dataclass
class MemorySettings:
    url: str = ""                  # "" = the embedded store under <home>/chroma; else a chroma server started with
                                   # `chroma run` (e.g. "http://127.0.0.1:8000"), which several machines can share


@dataclass
class Config:
    home: Path = field(default_factory=lambda: Path("~/.seal-agent").expanduser())
    models: ModelSettings = field(default_factory=ModelSettings)
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    parse: ParseSettings = field(default_factory=ParseSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    absorb: AbsorbSettings = field(default_factory=AbsorbSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    replay: ReplaySettings = field(default_factory=ReplaySettings)
    policy: PolicySettings = field(default_factory=PolicySettings)  # the teacher's ReST-EM M-step
    memory: MemorySettings = field(default_factory=MemorySettings)
    run: RunSettings = field(default_factory=RunSettings)

    def sections(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "home"}

    def to_dict(self) -> dict:
        return {"home": str(self.home), **{k: dataclasses.asdict(v) for k, v in self.sections().items()}}


ENV = {
    "SEAL_AGENT_TEACHER_MODEL": "models.teacher",
    "SEAL_AGENT_STUDENT_MODEL": "models.student",
    "SEAL_AGENT_DEVICE": "models.device",
    "SEAL_AGENT_THREADS": "models.threads",
    "SEAL_AGENT_EMBEDDER": "models.embedder",
}


def default_home() -> Path:
    return Path(os.environ.get("SEAL_AGENT_HOME", "~/.seal-agent")).expanduser()


def _coerce(current: Any, raw: Any, key: str, annotation: str = "") -> Any:
    if not isinstance(raw, str):
        return raw
    if "," in raw and ("Sequence" in annotation or "list" in annotation):
        return [x.strip() for x in raw.split(",") if x.strip()]
    try:
        if isinstance(current, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, (list, tuple)):
            return [x.strip() for x in raw.split(",") if x.strip()]
        if current is None and raw.lower() in ("none", "auto", ""):
            return None
        if current is None and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
    except ValueError:
        raise BadInput(f"config {key}: cannot read {raw!r} as {type(current).__name__}") from None
    return raw


def apply(cfg: Config, dotted: str, value: Any) -> None:
    """Set ``section.key`` to value (strings are converted to the field's type)."""
    section, _, key = dotted.partition(".")
    sections = cfg.sections()
    if section not in sections or not key:
        raise BadInput(f"unknown config key {dotted!r} (sections: {', '.join(sections)})")
    obj = sections[section]
    fields = {f.name: str(f.type) for f in dataclasses.fields(obj)}
    if key not in fields:
        raise BadInput(f"unknown config key {dotted!r} (keys: {', '.join(sorted(fields))})")
    setattr(obj, key, _coerce(getattr(obj, key), value, dotted, fields[key]))


def load_config(home: Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then ``<home>/config.toml``, then environment, then ``--set`` overrides."""
    cfg = Config(home=(home or default_home()).expanduser())
    path = home_paths(cfg.home).config
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise BadInput(f"{path}: not valid TOML ({e})") from None
        for section, table in data.items():
            if not isinstance(table, dict):
                raise BadInput(f"{path}: [{section}] must be a table")
            for key, value in table.items():
                apply(cfg, f"{section}.{key}", value)
    for var, dotted in ENV.items():
        if os.environ.get(var):
            apply(cfg, dotted, os.environ[var])
    for item in overrides or []:
        if "=" not in item:
            raise BadInput(f"--set takes section.key=value, got {item!r}")
        k, v = item.split("=", 1)
        apply(cfg, k.strip(), v.strip())
    for name, section in cfg.sections().items():
        check = getattr(section, "__post_init__", None)
        try:
            if check:
                check()
        except ValueError as e:
            raise BadInput(f"config [{name}]: {e}") from None
    return cfg
