"""The teacher's policy LoRA and its supervised fine-tuning on (prompt -> completion) pairs: ReST-EM's M-step.

SEAL fine-tunes the generator on the kept self-edits (LoRA r=64, alpha=128, all projections, lr 3e-4, 2 epochs,
loss on the completion only), then *merges* the LoRA into the model and samples the next round from the merged
model. We keep the policy as an adapter instead: round r continues training round r-1's adapter (same rank, same
modules) and is saved as a new small adapter version, so the teacher's base never changes, every version is a few
MB and any version can be loaded on top of the base (``PeftModel.from_pretrained(base, folder)``).

The adapter is named "default", so ``save_pretrained`` writes it at the top of its folder (peft nests other names
in a subfolder) and a plain ``PeftModel.from_pretrained(base, folder)`` finds it. Saving into a versioned store is
the caller's job (the agent's ``AdapterStore``): this room knows nothing about the student's store.
"""
from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import get_scheduler

from .backend import encode_prompt
from .config import PolicySettings

POLICY_ADAPTER = "default"
IGNORE_INDEX = -100
StepCallback = Callable[[int, int, int, float], None]
"""on_step(step, total, epoch, loss)."""
_SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class PolicyResult:
    """Per-step losses of the M-step; ``pairs`` trained on, ``dropped`` (prompt too long for ``max_len``)."""

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    pairs: int = 0
    dropped: int = 0
    tokens: int = 0
    seconds: float = 0.0


def policy_config(settings: PolicySettings) -> LoraConfig:
    target = settings.target_modules
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=target if isinstance(target, str) else list(target),
                      bias="none", task_type="CAUSAL_LM", init_lora_weights=True)


def attach_policy(model, settings: PolicySettings, adapter_dir: Optional[str | Path] = None) -> PeftModel:
    """``model`` (plain) wrapped with a trainable policy adapter: continued from ``adapter_dir`` (a saved version)
    or fresh (seeded; B = 0, so a fresh policy generates exactly like the base). Undo with :func:`detach_policy`."""
    if isinstance(model, PeftModel):
        raise TypeError("attach_policy takes a plain transformers model; got a PeftModel")
    with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
        warnings.simplefilter("ignore", FutureWarning)
        if adapter_dir is not None:
            return PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=POLICY_ADAPTER, is_trainable=True)
        cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(settings.seed)
            return get_peft_model(model, policy_config(settings), adapter_name=POLICY_ADAPTER)


def detach_policy(peft_model: PeftModel):
    """The plain base model back, without the LoRA layers (nothing merged)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = peft_model.unload()
    if hasattr(base, "peft_config"):
        del base.peft_config
    return base


# ---- data -------------------------------------------------------------------------------------------------------
# A completion decoded from n generated tokens re-encodes to about n tokens, not always exactly: one within this
# many of the generation cap is taken as cut by it.
CAP_SLACK = 4


def encode_pair(tokenizer, prompt: str, completion: str, max_len: int,
                cap: Optional[int] = None) -> Optional[tuple[list[int], list[int]]]:
    """(input ids, labels) of prompt + completion + eos: labels are -100 on the prompt, the completion's ids
    elsewhere. The prompt is encoded exactly as the generation backend encodes it (so the completion is trained
    in the context it was sampled in); the completion is cut to fit ``max_len``; None if the prompt leaves no
    room for a single completion token. With ``cap`` (the generation's max_new_tokens), a completion that
    reached it was cut mid-text and gets no eos."""
    p = encode_prompt(tokenizer, prompt)
    c = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None and (cap is None or len(c) < cap - CAP_SLACK):
        c.append(int(tokenizer.eos_token_id))
    room = max_len - len(p)
    if room < 1 or not c:
        return None
    c = c[:room]
    return p + c, [IGNORE_INDEX] * len(p) + c


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; padding is masked out of attention and labelled -100."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, (seq, lab) in enumerate(rows):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, : len(lab)] = torch.tensor(lab)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], max_len: int) -> dict[str, torch.Tensor]:
    """One batch of (prompt, completion) pairs (pairs that do not fit are dropped)."""
    rows = [r for r in (encode_pair(tokenizer, p, c, max_len) for p, c in pairs) if r is not None]
    if not rows:
        raise ValueError("no (prompt, completion) pair fits max_len")
    return collate(rows, _pad_id(tokenizer))


def completion_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean next-token NLL over the labelled (completion) tokens of the batch, and their number."""
    device = next(model.parameters()).device
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    targets = batch["labels"][:, 1:].to(device)
    real = targets != IGNORE_INDEX
    picked = logits[:, :-1][real]
    if picked.dtype in (torch.float16, torch.bfloat16):
        picked = picked.float()
    count = int(real.sum())
    if count == 0:
        return picked.sum() * 0.0, 0
    return F.cross_entropy(picked, targets[real], reduction="mean"), count


def _pad_id(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


# ---- training ---------------------------------------------------------------------------------------------------
def train_policy(model: PeftModel, tokenizer, pairs: Sequence[tuple[str, str]], settings: PolicySettings,
                 on_step: Optional[StepCallback] = None, cap: Optional[int] = None) -> PolicyResult:
    """SFT of ``model``'s trainable (policy) parameters on (prompt, completion) pairs, loss on the completion only.

    AdamW over the trainable parameters, warmup + decay schedule, gradient clipping, ``settings.seed`` seeding the
    torch RNG and a per-epoch shuffle of the pairs. The model is left in eval mode. ``cap``: the max_new_tokens
    the completions were sampled with; with ``settings.eos == "ended"`` the ones it cut get no eos."""
    start = time.perf_counter()
    cut_at = cap if settings.eos == "ended" else None
    rows = [encode_pair(tokenizer, p, c, settings.max_len, cut_at) for p, c in pairs]
    data = [r for r in rows if r is not None]
    result = PolicyResult(pairs=len(data), dropped=len(rows) - len(data))
    if not data or settings.epochs == 0:
        result.seconds = time.perf_counter() - start
        return result
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the policy model has no trainable parameters")
    rng = random.Random(settings.seed)
    plan: list[list[int]] = []
    for _ in range(settings.epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        plan += [order[i: i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    per_epoch = math.ceil(len(data) / settings.batch_size)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = get_scheduler(_SCHEDULES[settings.schedule], optimizer,
                              num_warmup_steps=int(round(settings.warmup_ratio * len(plan))),
                              num_training_steps=len(plan))
    pad = _pad_id(tokenizer)
    cuda = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    model.train()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(settings.seed)
            for step, idx in enumerate(plan, 1):
                loss, count = completion_loss(model, collate([data[i] for i in idx], pad))
                loss.backward()
                if settings.grad_clip and settings.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                result.losses.append(float(loss.detach()))
                result.tokens += count
                if on_step is not None:
                    on_step(step, len(plan), (step - 1) // per_epoch + 1, result.losses[-1])
        result.steps = len(plan)
    finally:
        model.eval()
        optimizer.zero_grad(set_to_none=True)
    result.seconds = time.perf_counter() - start
    return result
