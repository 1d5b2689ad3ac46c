"""Configuration dataclasses owned by the teacher room (composed by ``agent/config.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union


@dataclass
class TeacherSettings:
    """How the teacher samples self-edits.

    family: one of :data:`teacher.prompts.FAMILIES` ("implications", "implications-long", "rewrite", "self-qa").
      Default "rewrite": the embedded 135M teacher's rewrites teach the student as much as the passage alone,
      its implications less (docs/results.md). SEAL's default, and what GPT-4.1 writes well, is "implications".
    samples: self-edits per passage (SEAL's k; 5 in the paper).
    temperature / top_p: 0.3 (the measured configuration; SEAL sampled at 1.0) / 0.95. temperature <= 0 means
      greedy.
    use_chat: None = auto (use the tokenizer's chat template when it has one), True/False to force.
    probe_count: question-answer probes asked of :meth:`teacher.selfedit.Teacher.make_probes`.
    cloze_fallback: when the model writes fewer usable probes, top up with fill-in-the-blank probes cut from the
      passage (:mod:`teacher.cloze`), so that documents without questions are still guarded and measured.
    no_repeat_ngram: when > 0, no run of this many tokens may occur twice in one self-edit (the prompt is not
      counted, so the passage may still be copied): the embedded model tends to repeat its lines. 0: off (it
      brought no accuracy gain: docs/results.md).
    """

    family: str = "rewrite"
    samples: int = 1
    max_new_tokens: int = 256
    temperature: float = 0.3
    top_p: float = 0.95
    seed: int = 0
    use_chat: Optional[bool] = None
    probe_count: int = 5
    cloze_fallback: bool = True
    no_repeat_ngram: int = 0

    def __post_init__(self) -> None:
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            raise ValueError(f"teacher no_repeat_ngram must be 0 (off) or at least 2, got {self.no_repeat_ngram}")


@dataclass
class ParseSettings:
    """How a completion becomes training texts.

    split: "lines" (SEAL: each non-empty line is one text), "paragraphs" (blank-line separated blocks, useful for
      "rewrite") or "whole" (the whole cleaned completion as one text; SEAL's continued-pretraining setting).
      The "self-qa" family always groups question/answer pairs, whatever ``split`` says.
    title_prefix: each text is "{title}\\n{line}" (SEAL's TRAINING_SEQUENCE_TEMPLATE).
    append_passage: also train on "{title}\\n{passage}".
    strip_markup: remove list numbering ("1.", "1)", "-", "*", "•") and markdown (**bold**, "#" headings).
    min_chars: drop lines shorter than this (after stripping).
    max_texts: at most this many texts taken from the completion (the appended passage comes on top).
    """

    split: str = "lines"
    title_prefix: bool = True
    append_passage: bool = True
    strip_markup: bool = True
    min_chars: int = 8
    max_texts: int = 64


@dataclass
class PolicySettings:
    """The teacher's own policy LoRA and its SFT (ReST-EM's M-step; SEAL: r=64, alpha=128, all projections,
    lr 3e-4, 2 epochs, loss on the completion only).

    target_modules: "all-linear" or a list of module names. batch_size: (prompt, completion) pairs per optimizer
    step. max_len: prompt + completion tokens (the completion is cut to fit; a prompt that leaves no room for it
    drops the pair). schedule: "linear" | "cosine" | "constant" (with warmup_ratio). init: where each round's
    M-step starts: "previous" (the previous round's policy, SEAL's chain; every GPU run here so far) or "base" (a
    fresh policy on the base model, trained on that round's kept self-edits alone, as ReST-EM does to keep
    iterations from compounding their fit). eos: which kept self-edits the M-step ends with the end-of-sequence
    token: "always" (every run so far, also one the generation cap cut mid-sentence, which teaches the teacher to
    stop where the cap stopped it) or "ended" (only those that ended before the cap, teacher.max_new_tokens).
    """

    r: int = 64
    alpha: int = 128
    dropout: float = 0.0
    target_modules: Union[str, Sequence[str]] = "all-linear"
    lr: float = 3e-4
    epochs: int = 2
    batch_size: int = 4
    max_len: int = 1024
    seed: int = 0
    grad_clip: float = 1.0
    warmup_ratio: float = 0.0
    schedule: str = "linear"
    weight_decay: float = 0.0
    init: str = "previous"
    eos: str = "always"

    def __post_init__(self) -> None:
        if self.init not in ("previous", "base"):
            raise ValueError(f"policy init must be previous or base, got {self.init!r}")
        if self.eos not in ("always", "ended"):
            raise ValueError(f"policy eos must be always or ended, got {self.eos!r}")
        if self.r <= 0 or self.epochs < 0 or self.batch_size <= 0 or self.max_len <= 1 or self.lr <= 0:
            raise ValueError("policy: need r > 0, epochs >= 0, batch_size > 0, max_len > 1, lr > 0")
        if self.schedule not in ("linear", "cosine", "constant"):
            raise ValueError(f"policy schedule must be linear, cosine or constant, got {self.schedule!r}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError("policy: dropout must be in [0, 1) and warmup_ratio in [0, 1]")
