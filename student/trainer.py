"""Supervised fine-tuning of the active (trainable) adapter of a PeftModel."""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from transformers import get_scheduler

from .batching import (anchor_kl, default_max_tokens, default_overhead, micro_batches, model_device, pad_batch,
                       pad_id_of, tokenize_prompted, tokenize_texts, training_autocast)
from .config import TrainSettings
from .distill import MaskedRow, Row, StudyItem, TargetCache, peft_base, row_count, row_ids, rows_loss

StepCallback = Callable[[int, int, int, float], None]
"""on_step(step, total, epoch, loss): step in 1..total, epoch in 1..epochs, loss of that step."""

_SCHEDULER_NAMES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class TrainResult:
    """Per-step training losses, number of optimizer steps, wall time and target tokens trained on."""

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    tokens: int = 0


def _batches(n: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def in_turn(seqs: list, step: int, n: int) -> list:
    """Step ``step``'s (1-based) ``n`` items of ``seqs``, taken in turn, cycling."""
    return [seqs[((step - 1) * n + j) % len(seqs)] for j in range(n)]


def batch_plan(n: int, settings: TrainSettings) -> list[list[int]]:
    """Indices of the sequences of every optimizer step, all epochs: a seeded shuffle of ``n`` texts per epoch."""
    rng = random.Random(settings.seed)
    return [idx for _ in range(settings.epochs) for idx in _batches(n, settings.batch_size, rng)]


def make_adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """torch's AdamW, fused where the device and dtype support it (same math; on a CPU ~9x faster per step
    for a 10M-parameter adapter than the default for-loop implementation), else the default implementation.
    ``params``: tensors or param-group dicts."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(optimizer, settings: TrainSettings, total: int):
    """The warmup + decay learning-rate schedule of ``settings`` over ``total`` steps."""
    return get_scheduler(
        _SCHEDULER_NAMES[settings.schedule],
        optimizer,
        num_warmup_steps=int(round(settings.warmup_ratio * total)),
        num_training_steps=total,
    )


def lr_schedule(settings: TrainSettings, total: int) -> list[float]:
    """The learning rate of each of ``total`` steps, exactly as :func:`train_adapter`'s scheduler sets it."""
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=settings.lr)
    scheduler = make_scheduler(dummy, settings, total)
    lrs = []
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": nothing is optimised here
        warnings.simplefilter("ignore")
        for _ in range(total):
            lrs.append(float(dummy.param_groups[0]["lr"]))
            scheduler.step()
    return lrs


def train_adapter(
    model,
    tokenizer,
    texts: Sequence[str],
    settings: TrainSettings,
    on_step: Optional[StepCallback] = None,
    max_tokens: Optional[int] = None,
    overhead: Optional[int] = None,
    anchor: Sequence[str] = (),
    replay: Sequence[str] = (),
    side: Sequence[str] = (),
    study: Sequence[StudyItem] = (),
    targets: Optional[TargetCache] = None,
    prompt_chars: Optional[Sequence[int]] = None,
) -> TrainResult:
    """Train the trainable parameters of ``model`` on ``texts`` (eos appended, loss on real tokens).

    ``prompt_chars`` (optional, one per text): the first that many characters of a text are a prompt whose tokens
    are not learned (:func:`~student.batching.tokenize_prompted`); 0 = the whole text.

    AdamW over trainable parameters only, warmup + decay schedule, gradient clipping; seeded with
    ``torch.manual_seed(settings.seed)`` and a seeded shuffle of the texts each epoch. Each step's batch runs
    in micro-batches (:func:`~student.batching.micro_batches`; ``max_tokens``/``overhead`` default per device).

    ``replay`` texts (earlier documents') are learned beside ``texts`` without diluting them: the steps are
    planned over ``texts`` alone, and each step adds the mean NLL of its share of the replay texts (all of them
    once per epoch, in turn) to the mean NLL of its own batch. Mixed into one batch, a replayed passage took half
    of every step's gradient from the new one (H100 forgetting sweep: just-learned accuracy 0.142 -> 0.062).
    ``side`` texts (a self-edit's lines beside its passage) are learned the same way, at ``settings.side_weight``
    x their mean NLL.

    ``anchor`` texts (general text) are not learned: every step adds ``settings.anchor_weight`` x the mean
    KL(base || adapted) over ``settings.anchor_batch`` of them, taken in turn, which holds the model's
    predictions on text it was not asked to change (``model`` must then be a PeftModel).

    ``study`` items (:class:`~student.distill.StudyItem`) are rows of the plan like ``texts`` (the plan shuffles
    the texts then the study items as one list); their loss is the KL to the base model's targets with the item's
    context (:func:`~student.distill.topk_kl`), and a step's loss is the token mean over its rows of NLL and KL
    alike. Targets come from ``targets`` (a :class:`~student.distill.TargetCache`, filled with what it lacks,
    using the model with its adapters disabled) or, if None, from a cache of this call alone.
    """
    start = time.perf_counter()
    result = TrainResult()
    if prompt_chars is None:
        seqs: list[Row] = list(tokenize_texts(tokenizer, texts, settings.max_len, add_eos=True))
    else:
        seqs = [MaskedRow(ids, labels) for ids, labels in
                zip(*tokenize_prompted(tokenizer, texts, prompt_chars, settings.max_len))]
    if study and settings.epochs > 0:
        targets = TargetCache() if targets is None else targets
        seqs += targets.rows(model, tokenizer, study, settings.max_len, base=peft_base(model))
    if not seqs or settings.epochs == 0:
        result.seconds = time.perf_counter() - start
        return result
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (is the adapter active and trainable?)")

    torch.manual_seed(settings.seed)
    pad_id = pad_id_of(tokenizer)
    device = model_device(model)
    max_tokens = default_max_tokens(device) if max_tokens is None else max_tokens
    overhead = default_overhead(device) if overhead is None else overhead
    per_epoch = math.ceil(len(seqs) / settings.batch_size)
    plan = batch_plan(len(seqs), settings)
    total = len(plan)
    optimizer = make_adamw(params, settings.lr, settings.weight_decay)
    scheduler = make_scheduler(optimizer, settings, total)

    # beside-texts, each (token ids, share per step, weight): replay at weight 1, a self-edit's lines at side_weight
    beside = [(ids, math.ceil(len(ids) / per_epoch), w)
              for ids, w in ((tokenize_texts(tokenizer, replay, settings.max_len, add_eos=True), 1.0),
                             (tokenize_texts(tokenizer, side, settings.max_len, add_eos=True), settings.side_weight))
              if ids and w > 0]
    anchors = tokenize_texts(tokenizer, anchor, settings.max_len, add_eos=True) if settings.anchor_weight > 0 else []
    autocast = training_autocast(model, settings.autocast)
    # A step's batch runs in micro-batches of similar length, gradients accumulating, normalised by the
    # whole step's target tokens: the same update as one padded batch, without padding a dozen short
    # lines to the passage that is appended to every self-edit (2x faster for a 17-text edit on a CPU).
    def mean_nll_backward(rows: list[Row], weight: float = 1.0):
        """Backward of ``weight`` x the rows' mean token loss (NLL; KL for study rows), in micro-batches; returns
        it (detached)."""
        count, total = max(1, sum(row_count(r) for r in rows)), 0.0
        for part in micro_batches([len(row_ids(r)) for r in rows], max_tokens, overhead):
            with autocast:
                nll = rows_loss(model, [rows[j] for j in part], pad_id)
            part_loss = weight * nll.sum() / count
            part_loss.backward()
            total = total + part_loss.detach()
        return total

    was_training = model.training
    model.train()
    try:
        for step, idx in enumerate(plan, 1):
            epoch = (step - 1) // per_epoch + 1
            step_loss = mean_nll_backward([seqs[i] for i in idx])
            for ids, share, weight in beside:
                step_loss = step_loss + mean_nll_backward(in_turn(ids, step, share), weight)
            if anchors:
                rows = in_turn(anchors, step, min(settings.anchor_batch, len(anchors)))
                with autocast:
                    kl, n = anchor_kl(model, pad_batch(rows, pad_id))
                (settings.anchor_weight * kl / n.clamp_min(1)).backward()
            loss = float(step_loss)  # one device sync per step (reported: CE on the texts + weighted CE beside them)
            if settings.grad_clip and settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(loss)
            result.tokens += sum(row_count(seqs[i]) for i in idx)
            if on_step is not None:
                on_step(step, total, epoch, loss)
        result.steps = total
    finally:
        model.train(was_training)
        optimizer.zero_grad(set_to_none=True)
    result.seconds = time.perf_counter() - start
    return result
