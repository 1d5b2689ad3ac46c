"""Tokenisation, padding and the masked causal-LM loss.

Labels are -100 wherever ``attention_mask == 0``: the loss covers real tokens only (SEAL padded every
sequence to 2048 with EOS and trained on the padding). The loss of a batch is the sum of token NLLs
divided by the number of real target tokens, so padding never changes it.
"""

from __future__ import annotations

import contextlib
import math
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


def tokenize_prompted(
    tokenizer, texts: Sequence[str], prompt_chars: Sequence[int], max_len: int, add_eos: bool = True
) -> tuple[list[list[int]], list[list[int]]]:
    """(token ids, labels) per text whose first ``prompt_chars[i]`` characters are a prompt not to be learned.

    The prompt and the rest are tokenized apart, as generation sees them (the prompt alone, then the continuation),
    and the labels are -100 on the prompt's tokens. ``prompt_chars[i] <= 0``: the whole text is learned, tokenized
    as :func:`tokenize_texts` does. Both are cut to ``max_len``.
    """
    if len(prompt_chars) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(prompt_chars)} prompt lengths")
    seqs, labels = [], []
    for text, n, ids in zip(texts, prompt_chars, tokenize_texts(tokenizer, texts, max_len, add_eos)):
        if n > 0:
            prompt = list(tokenizer(text[:n], add_special_tokens=True)["input_ids"])
            rest = list(tokenizer(text[n:], add_special_tokens=False)["input_ids"]) if text[n:] else []
            rest += [int(tokenizer.eos_token_id)] if add_eos else []
            ids = (prompt + rest)[:max_len]
            labels.append(([IGNORE_INDEX] * len(prompt) + rest)[:max_len])
        else:
            labels.append(list(ids))
        seqs.append(ids)
    return seqs, labels


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


def anchor_kl(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(base || adapted) of the next-token distributions, summed over the real positions of a padded batch,
    and the number of positions. ``model`` is a PeftModel; the base is the same model with its adapters
    disabled (no copy of the weights). Keeps an update from moving the model where it was not asked to."""
    device = model_device(model)
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    with torch.no_grad(), model.disable_adapter():
        ref = model(input_ids=ids, attention_mask=mask).logits
    out = model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    log_q = F.log_softmax(ref[real].float(), dim=-1)
    log_p = F.log_softmax(out[real].float(), dim=-1)
    kl = (log_q.exp() * (log_q - log_p)).sum(-1)
    return kl.sum(), real.sum()


def default_max_tokens(device: torch.device) -> int:
    """Training micro-batch budget: rows × padded length per forward/backward (gradients accumulate).

    Activation memory grows with it: SmolLM2-135M in float32 took ~4.4 MB per token of a training pass
    (logits and their gradient included). CPU: 1024, so that a batched group of 8 at batch 8 peaked at
    5.7 GB against the sequential engine's 5.8 GB (a 16k budget had reached ~20 GB). GPU: 8192, one pass
    per step for K = 64 adapters × one ~100-token sequence.
    """
    return 8192 if device.type == "cuda" else 1024


def default_overhead(device: torch.device) -> int:
    """Cost of one more forward/backward pass, in padded tokens.

    GPU: launch-bound, so a pass costs thousands of tokens' worth (few big batches). CPU (SmolLM2-135M in bf16,
    2 threads): a 1×8-token pass took 0.18 s, 1×150 0.83 s and 16×64 3.2 s, i.e. ~3.3 ms a token and a pass
    ~50 tokens' worth.
    """
    return 4096 if device.type == "cuda" else 64


def _split(rows: list[int], width: int, max_tokens: int) -> list[list[int]]:
    per = max(1, max_tokens // max(1, width))
    return [rows[i : i + per] for i in range(0, len(rows), per)]


def micro_batches(lengths: Sequence[int], max_tokens: int, overhead: int) -> list[list[int]]:
    """Partition rows (by index) into micro-batches minimising padded tokens + ``overhead`` per forward pass.

    Rows are sorted longest first and cut only where the length (rounded up to 8) changes; a dynamic
    program picks the cuts (cost of a micro-batch = overhead + rows × its longest row), and any
    micro-batch over ``max_tokens`` is split. overhead ≈ what one extra forward/backward costs in tokens:
    large on a GPU (launch-bound: few big batches), small on a CPU (compute-bound: no padding).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if not order:
        return []
    key = [-(-lengths[i] // 8) for i in order]
    cuts = [0] + [p for p in range(1, len(order)) if key[p] != key[p - 1]] + [len(order)]
    best = [0.0] + [math.inf] * (len(cuts) - 1)
    prev = [0] * len(cuts)
    for b in range(1, len(cuts)):
        for a in range(b):
            rows, width = cuts[b] - cuts[a], lengths[order[cuts[a]]]
            passes = math.ceil(rows / max(1, max_tokens // max(1, width)))
            cost = best[a] + passes * overhead + rows * width
            if cost < best[b]:
                best[b], prev[b] = cost, a
    out, b = [], len(cuts) - 1
    while b > 0:
        a = prev[b]
        out[:0] = _split(order[cuts[a] : cuts[b]], lengths[order[cuts[a]]], max_tokens)
        b = a
    return out


def training_autocast(model, mode: str):
    """The forward-pass autocast context for training ``model``: ``mode`` auto | bf16 | off.

    auto = bf16 autocast for a float32 model on a CPU with native bf16 (avx512_bf16/AMX): measured on a 2-core
    AVX-512 machine, 10 epochs of the 135M model on a 17-text self-edit took 26 s against 37 s in float32.
    Inference stays float32 (greedy answers must not depend on the batch). On a GPU the models load in bf16;
    float32 there is a deliberate choice (exact sweeps), so auto leaves it. Adapters and optimizer state stay
    float32 either way.
    """
    param = next(model.parameters())
    if mode == "bf16":
        on = True
    elif mode == "auto":
        on = param.device.type == "cpu" and param.dtype == torch.float32 and bf16_native_cpu()
    else:
        on = False
    return torch.autocast(param.device.type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


def bf16_native_cpu() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN's own check); without it bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
