"""Tokenisation, padding and the masked causal-LM loss.

Labels are -100 wherever ``attention_mask == 0``: the loss covers real tokens only (SEAL padded every
sequence to 2048 with EOS and trained on the padding). The loss of a batch is the sum of token NLLs
divided by the number of real target tokens, so padding never changes it.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def pad_id_of(tokenizer) -> int:
    """The id used for padding: pad token, else eos, else 0 (padding is masked either way)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def tokenize_texts(
    tokenizer, texts: Sequence[str], max_len: int, add_eos: bool = True
) -> list[list[int]]:
    """Token ids per text (tokenizer's own special tokens, eos appended, then cut to ``max_len``)."""
    if not texts:
        return []
    if add_eos and tokenizer.eos_token_id is None:
        raise ValueError("add_eos=True but the tokenizer has no eos token")
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    out = []
    for seq in ids:
        seq = list(seq)
        if add_eos:
            seq.append(int(tokenizer.eos_token_id))
        out.append(seq[:max_len])
    return out


def pad_batch(
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    side: str = "right",
    labels: Sequence[Sequence[int]] | None = None,
) -> dict[str, torch.Tensor]:
    """Pad id lists to one tensor batch; labels default to the ids, -100 on padding."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if not seqs:
        raise ValueError("empty batch")
    width = max(len(s) for s in seqs)
    labels = seqs if labels is None else labels
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    lab = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    for i, (seq, seq_labels) in enumerate(zip(seqs, labels)):
        n = len(seq)
        span = slice(0, n) if side == "right" else slice(width - n, width)
        ids[i, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, span] = 1
        lab[i, span] = torch.tensor(list(seq_labels), dtype=torch.long)
    lab[mask == 0] = IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def encode_texts(
    tokenizer, texts: Sequence[str], max_len: int, add_eos: bool = True
) -> dict[str, torch.Tensor]:
    """Right-padded batch ``{input_ids, attention_mask, labels}`` for causal-LM training."""
    return pad_batch(tokenize_texts(tokenizer, texts, max_len, add_eos), pad_id_of(tokenizer))


def model_device(model) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence (sum of token NLL, number of target tokens) for next-token prediction.

    Cross-entropy is computed on the real target positions only (memory scales with them).
    """
    targets = labels[:, 1:].to(logits.device)
    real = targets != IGNORE_INDEX
    picked = logits[:, :-1][real]
    if picked.dtype in (torch.float16, torch.bfloat16):  # half logits: cross-entropy in float32 (float64 stays)
        picked = picked.float()
    token_nll = F.cross_entropy(picked, targets[real], reduction="none")
    nll = torch.zeros(targets.shape, dtype=token_nll.dtype, device=logits.device)
    nll = nll.masked_scatter(real, token_nll)
    return nll.sum(dim=1), real.sum(dim=1)


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean NLL over the real target tokens of the whole batch (0 when there are none)."""
    total, count = sequence_nll(logits, labels)
    return total.sum() / count.sum().clamp_min(1)


def batch_nll(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` on a padded batch; per-sequence (NLL sum, target count)."""
    device = model_device(model)
    out = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
    )
    return sequence_nll(out.logits, batch["labels"])
