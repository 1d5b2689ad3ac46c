"""Configuration dataclasses owned by the student room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

SCHEDULES = ("linear", "cosine", "constant")
QUESTION_FORMATS = ("chat", "raw")
AUTOCAST = ("auto", "bf16", "off")


@dataclass
class LoraSettings:
    """LoRA adapter shape. ``target_modules`` is "all-linear" or a list of module names."""

    r: int = 32
    alpha: int = 64
    dropout: float = 0.0
    target_modules: Union[str, Sequence[str]] = "all-linear"

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise ValueError(f"LoRA rank must be positive, got r={self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainSettings:
    """Inner-loop SFT settings (SEAL defaults, except batch size 8 instead of 1)."""

    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 8
    max_len: int = 256
    seed: int = 0
    grad_clip: float = 1.0
    warmup_ratio: float = 0.0
    schedule: str = "linear"
    weight_decay: float = 0.0
    autocast: str = "auto"  # auto (bf16 autocast for float32 models on CPUs with native bf16) | bf16 | off
    anchor_weight: float = 5.0  # weight of the KL-to-base term on anchor (general) texts, when any are given
    anchor_batch: int = 2       # anchor texts per step
    side_weight: float = 0.3    # weight of the side texts' mean NLL in each step (a self-edit's lines learned
                                # beside the passage's own schedule; replay keeps weight 1)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 0 or self.batch_size <= 0 or self.max_len <= 1:
            raise ValueError("need epochs >= 0, batch_size > 0 and max_len > 1")
        if self.autocast not in AUTOCAST:
            raise ValueError(f"autocast must be one of {AUTOCAST}, got {self.autocast!r}")
        if self.anchor_weight < 0 or self.anchor_batch <= 0:
            raise ValueError("need anchor_weight >= 0 and anchor_batch > 0")
        if self.side_weight < 0:
            raise ValueError(f"side_weight must be >= 0, got {self.side_weight}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")


@dataclass
class AnswerSettings:
    """Closed-book answering: greedy, batched; ``question_format`` is "chat" or "raw"."""

    max_new_tokens: int = 48
    question_format: str = "chat"
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.question_format not in QUESTION_FORMATS:
            raise ValueError(
                f"question_format must be one of {QUESTION_FORMATS}, got {self.question_format!r}"
            )
        if self.max_new_tokens <= 0 or self.batch_size <= 0:
            raise ValueError("max_new_tokens and batch_size must be positive")


@dataclass(frozen=True)
class DistillSettings:
    """Context-distillation targets (see :mod:`student.distill`): kept apart from :class:`TrainSettings` because
    targets are computed once per study item and shared by every seed and candidate that studies it, whatever
    their learning rate or seed; a :class:`~student.distill.TargetCache` holds one of these.

    ``top_k``: target tokens kept per position (plus one bucket for the rest of the vocabulary);
    ``context_max_len``: the context's token cap (its beginning is kept); ``temperature``: both distributions
    are softened by it (no T² rescaling of the loss)."""

    top_k: int = 32
    context_max_len: int = 1024
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.top_k <= 0 or self.context_max_len < 0:
            raise ValueError("need top_k > 0 and context_max_len >= 0")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
