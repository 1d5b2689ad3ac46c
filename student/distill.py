"""Context distillation: study items, their targets and the top-k KL loss.

A :class:`StudyItem` is (prefix, context, suffix). The student (base model + the adapter being trained) sees
prefix + suffix; the target is the frozen base model (no adapter) seeing prefix + context + suffix. On every
suffix position the student learns to predict what the base model predicts with the document in its context
(Knowledge Modules' context distillation, arXiv 2503.08727; Cartridges' self-study), instead of the next token
of a text (SFT), so what the model can do with the document in context moves into the adapter.

Targets are the base model's top-k next-token log-probabilities on the suffix positions plus the log-probability
of the rest of the vocabulary, computed once per item (no grad, adapters off) and kept on the CPU in a
:class:`TargetCache` keyed by the item's token ids: every seed and candidate studying the same item reuses them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Optional, Sequence, Union

import torch

from .batching import (IGNORE_INDEX, default_max_tokens, default_overhead, micro_batches, model_device, pad_batch,
                       pad_id_of, sequence_nll)
from .config import DistillSettings
from .prompts import CONTEXT_SEPARATOR, RAW_QUESTION_TEMPLATE, open_book, user_prompt


@dataclass(frozen=True)
class StudyItem:
    """The student sees ``prefix + suffix``, the target (base model) ``prefix + context + suffix``; the loss covers
    the suffix tokens (and an eos after them when ``eos``)."""

    prefix: str
    context: str
    suffix: str
    eos: bool = True


@dataclass(frozen=True)
class StudyTokens:
    """A study item's token ids, segment by segment: ``head`` = the tokenizer's leading special tokens + prefix.

    Student row: head + suffix; target row: head + context + suffix. Suffix token j (j >= ``first``) is predicted
    at student position ``start + j - first`` and at target position ``start + j - first + len(context)``.
    """

    head: tuple[int, ...]
    context: tuple[int, ...]
    suffix: tuple[int, ...]

    @property
    def student_ids(self) -> list[int]:
        return list(self.head + self.suffix)

    @property
    def target_ids(self) -> list[int]:
        return list(self.head + self.context + self.suffix)

    @property
    def first(self) -> int:
        """The first suffix token that has a position before it (0 unless the student row starts with it)."""
        return 0 if self.head else 1

    @property
    def count(self) -> int:
        """Suffix tokens predicted (the row's loss tokens)."""
        return max(0, len(self.suffix) - self.first)

    @property
    def start(self) -> int:
        """Student position that predicts the first loss token."""
        return len(self.head) + self.first - 1

    @property
    def target_start(self) -> int:
        return self.start + len(self.context)


def leading_ids(tokenizer, text: str) -> list[int]:
    """The special tokens the tokenizer puts before a text (a BOS, usually), unless ``text`` already starts with
    the BOS token (chat templates often render it): the student and target rows begin as a plain text would."""
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        return []
    eos = tokenizer.eos_token_id
    return [int(t) for t in tokenizer("", add_special_tokens=True)["input_ids"] if t != eos]


def tokenize_study(tokenizer, item: StudyItem, max_len: int, context_max_len: int) -> StudyTokens:
    """Segments tokenised separately (``add_special_tokens=False``) so that positions align exactly; the suffix
    (eos included) is cut to ``max_len`` tokens and the context to ``context_max_len`` (their beginnings kept)."""
    def ids(text: str) -> tuple[int, ...]:
        return tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()

    suffix = ids(item.suffix)
    if item.eos:
        if tokenizer.eos_token_id is None:
            raise ValueError("StudyItem.eos=True but the tokenizer has no eos token")
        suffix = suffix + (int(tokenizer.eos_token_id),)
    head = tuple(leading_ids(tokenizer, item.prefix)) + ids(item.prefix)
    return StudyTokens(head, ids(item.context)[:context_max_len], suffix[:max_len])


@dataclass(frozen=True)
class Targets:
    """Base-model targets of one study item, on the CPU: per loss position the top-k log-probabilities
    (float32, descending) and their token ids (int32), and the log-probability of all other tokens."""

    logp: torch.Tensor  # (n, k)
    index: torch.Tensor  # (n, k)
    rest: torch.Tensor  # (n,)
    temperature: float = 1.0


def topk_targets(logits: torch.Tensor, top_k: int, temperature: float = 1.0) -> Targets:
    """Targets from a (n, V) block of base-model logits (k is capped at V - 1 so that a rest bucket exists)."""
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    logp = torch.log_softmax(z / temperature, dim=-1)
    k = max(1, min(top_k, logp.shape[-1] - 1))
    values, index = logp.topk(k, dim=-1)
    rest = torch.logsumexp(logp.scatter(-1, index, float("-inf")), dim=-1)
    return Targets(values.float().cpu(), index.to(torch.int32).cpu(), rest.float().cpu(), temperature)


def topk_kl(logits: torch.Tensor, logp: torch.Tensor, index: torch.Tensor, rest: torch.Tensor,
            temperature: float = 1.0) -> torch.Tensor:
    """KL(p ‖ q) per position between the coarse (k+1)-way distributions over the target's top-k tokens and one
    bucket for the rest of the vocabulary: p from the targets, q from the student ``logits`` (n, V).

    Written by hand because torch has no top-k KL with a tail bucket. The student's rest is computed exactly, as
    logsumexp over the logits with the k tokens masked out minus logsumexp over all of them, rather than as
    log(1 - Σq), which cancels catastrophically when the k tokens hold nearly all the mass. Terms with p = 0
    (a one-hot target, or a target whose top-k hold all the mass) contribute 0. With a one-hot target the loss is
    the cross-entropy of that token; with q = p it is 0.
    """
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    z = z / temperature
    index = index.to(z.device, torch.long)
    logp, rest = logp.to(z.device, z.dtype), rest.to(z.device, z.dtype)
    lse = torch.logsumexp(z, dim=-1)
    logq = z.gather(-1, index) - lse.unsqueeze(-1)
    logq_rest = torch.logsumexp(z.scatter(-1, index, float("-inf")), dim=-1) - lse
    p, p_rest = logp.exp(), rest.exp()
    head = torch.where(p > 0, p * (torch.where(p > 0, logp, 0.0) - logq), 0.0).sum(-1)
    tail = torch.where(p_rest > 0, p_rest * (torch.where(p_rest > 0, rest, 0.0) - logq_rest), 0.0)
    return head + tail


@dataclass(frozen=True)
class StudyRow:
    """A training row that is a study item: its tokens and its targets."""

    tokens: StudyTokens
    targets: Targets

    @property
    def ids(self) -> list[int]:
        return self.tokens.student_ids


@dataclass(frozen=True)
class MaskedRow:
    """A training text whose prompt is not learned: ``labels`` are IGNORE_INDEX on the prompt's tokens."""

    ids: list[int]
    labels: list[int]


Row = Union[Sequence[int], StudyRow, MaskedRow]
"""A training row: a text's token ids (next-token NLL), a :class:`MaskedRow` (NLL on its unmasked labels) or a
:class:`StudyRow` (KL to its targets)."""


def row_ids(row: Row) -> list[int]:
    return row.ids if isinstance(row, (StudyRow, MaskedRow)) else list(row)


def row_count(row: Row) -> int:
    """Loss tokens of a row: a text's targets (length - 1; a masked text's unmasked ones), a study item's predicted
    suffix tokens."""
    if isinstance(row, StudyRow):
        return row.tokens.count
    if isinstance(row, MaskedRow):
        return sum(1 for x in row.labels[1:] if x != IGNORE_INDEX)
    return len(row) - 1


def row_labels(row: Row) -> list[int]:
    if isinstance(row, StudyRow):
        return [IGNORE_INDEX] * len(row.ids)
    return list(row.labels) if isinstance(row, MaskedRow) else list(row)


def rows_loss(model, rows: Sequence[Row], pad_id: int) -> torch.Tensor:
    """One forward pass over ``rows`` (right-padded); per row the summed loss: token NLL for a text, KL to its
    targets over the suffix positions for a study item."""
    ids = [row_ids(r) for r in rows]
    labels = [row_labels(r) for r in rows]
    batch = pad_batch(ids, pad_id, labels=labels)
    device = model_device(model)
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    loss, _ = sequence_nll(logits, batch["labels"])
    study = [(b, r) for b, r in enumerate(rows) if isinstance(r, StudyRow) and r.tokens.count]
    if study:
        temps = {r.targets.temperature for _, r in study}
        if len(temps) != 1:
            raise ValueError("study rows of one batch need targets of one temperature")
        rows_at = torch.cat([torch.full((r.tokens.count,), b, dtype=torch.long) for b, r in study])
        cols = torch.cat([torch.arange(r.tokens.start, r.tokens.start + r.tokens.count) for _, r in study])
        kl = topk_kl(
            logits[rows_at.to(device), cols.to(device)],
            torch.cat([r.targets.logp for _, r in study]),
            torch.cat([r.targets.index for _, r in study]),
            torch.cat([r.targets.rest for _, r in study]),
            temps.pop(),
        )
        loss = loss + torch.zeros_like(loss).index_add(0, rows_at.to(device), kl.to(loss.dtype))
    return loss


BaseContext = Callable[[], ContextManager]
"""A context in which ``model`` runs as the frozen base (peft: ``model.disable_adapter``)."""


@torch.no_grad()
def compute_targets(
    model,
    tokens: Sequence[StudyTokens],
    settings: DistillSettings,
    pad_id: int,
    base: Optional[BaseContext] = None,
    max_tokens: Optional[int] = None,
    overhead: Optional[int] = None,
) -> list[Targets]:
    """The base model's targets for each item (eval mode, no grad, under ``base()``), in micro-batches."""
    device = model_device(model)
    max_tokens = default_max_tokens(device) if max_tokens is None else max_tokens
    overhead = default_overhead(device) if overhead is None else overhead
    seqs = [t.target_ids for t in tokens]
    out: list[Optional[Targets]] = [None] * len(tokens)
    was_training = model.training
    model.eval()
    try:
        with (base or contextlib.nullcontext)():
            for part in micro_batches([len(s) for s in seqs], max_tokens, overhead):
                batch = pad_batch([seqs[i] for i in part], pad_id)
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits
                for b, i in enumerate(part):
                    t = tokens[i]
                    block = logits[b, t.target_start : t.target_start + t.count]
                    out[i] = topk_targets(block, settings.top_k, settings.temperature)
    finally:
        model.train(was_training)
    return [t for t in out if t is not None]


class TargetCache:
    """Targets of study items, computed once per distinct item (keyed by its token ids) and kept on the CPU.

    One cache belongs to one base model and one :class:`DistillSettings`; share it between every seed and
    candidate that studies the same items (it never needs the adapters: targets come from the base model)."""

    def __init__(self, settings: Optional[DistillSettings] = None) -> None:
        self.settings = settings or DistillSettings()
        self._targets: dict[StudyTokens, Targets] = {}

    def __len__(self) -> int:
        return len(self._targets)

    def tokenize(self, tokenizer, items: Iterable[StudyItem], max_len: int) -> list[StudyTokens]:
        return [tokenize_study(tokenizer, it, max_len, self.settings.context_max_len) for it in items]

    def rows(
        self,
        model,
        tokenizer,
        items: Sequence[StudyItem],
        max_len: int,
        base: Optional[BaseContext] = None,
        max_tokens: Optional[int] = None,
        overhead: Optional[int] = None,
    ) -> list[StudyRow]:
        """Training rows of ``items``; targets of items not seen before are computed with ``model`` under
        ``base()`` (the base model: adapters off)."""
        tokens = self.tokenize(tokenizer, items, max_len)
        self.fill(model, tokenizer, tokens, base, max_tokens, overhead)
        return [StudyRow(t, self._targets[t]) for t in tokens]

    def fill(self, model, tokenizer, tokens: Sequence[StudyTokens], base: Optional[BaseContext] = None,
             max_tokens: Optional[int] = None, overhead: Optional[int] = None) -> None:
        missing = list(dict.fromkeys(t for t in tokens if t not in self._targets))
        if missing:
            computed = compute_targets(model, missing, self.settings, pad_id_of(tokenizer), base, max_tokens,
                                       overhead)
            self._targets.update(zip(missing, computed))

    def get(self, tokens: StudyTokens) -> Optional[Targets]:
        return self._targets.get(tokens)


def peft_base(model) -> BaseContext:
    """The base-model context of ``model``: peft's ``disable_adapter`` for a PeftModel, else the model as it is."""
    return model.disable_adapter if hasattr(model, "disable_adapter") and hasattr(model, "peft_config") \
        else contextlib.nullcontext


# ---------------------------------------------------------------- study items from chat turns

_MARK = "\x00CONTEXT\x00"


def chat_study_item(tokenizer, user: str, reply: str, context: str, fmt: str = "chat") -> StudyItem:
    """The study item of a (user text, reply) exchange read with ``context``: the target sees the open-book
    prompt (``context`` + "\\n\\n" + ``user`` in the user turn, as :func:`~student.prompts.question_prompt` lays
    it out) followed by ``reply``, the student the same exchange without the context.

    The chat-templated text is split where the context goes in, so prefix + context + suffix is exactly the
    open-book prompt + reply and prefix + suffix the closed-book prompt + reply."""
    marked = user_prompt(tokenizer, open_book(_MARK, user), fmt)
    if marked.count(_MARK) != 1:
        raise ValueError("the chat template does not keep the user text as it is")
    prefix, rest = marked.split(_MARK)
    if not rest.startswith(CONTEXT_SEPARATOR) or prefix + rest[len(CONTEXT_SEPARATOR):] != user_prompt(
            tokenizer, user, fmt):
        raise ValueError("the chat template changes the user text around the context")
    return StudyItem(prefix, context + CONTEXT_SEPARATOR, rest[len(CONTEXT_SEPARATOR):] + reply)


def qa_study_item(tokenizer, question: str, answer: str, context: str, fmt: str = "chat") -> StudyItem:
    """The study item of a question and its answer (e.g. the base model's open-book answer): prefix + context +
    suffix == ``question_prompt(tokenizer, question, fmt, context) + answer`` and prefix + suffix ==
    ``question_prompt(tokenizer, question, fmt) + answer``."""
    return chat_study_item(tokenizer, RAW_QUESTION_TEMPLATE.format(question=question), answer, context, fmt)
