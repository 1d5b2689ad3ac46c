"""Batched greedy generation and per-sequence NLL, shared by the Student and the multi-LoRA inner loop.

``select(rows)`` (optional) is called with the indices of the rows of each batch right before the model runs
on it: the routed multi-LoRA uses it to point every batch row at its own adapter.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Iterator, Optional, Sequence

import torch

from .batching import IGNORE_INDEX, batch_nll, model_device, pad_batch, pad_id_of
from .prompts import prompt_ids

Select = Callable[[list[int]], None]


def chunks(order: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(order), size):
        yield order[i : i + size]


def longest_first(seqs: Sequence[Sequence[int]]) -> list[int]:
    """Indices of ``seqs`` sorted by decreasing length (batches of similar lengths pad little)."""
    return sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))


def eos_ids(model, tokenizer) -> list[int]:
    """The tokenizer's eos plus the generation config's eos ids."""
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
    return sorted(i for i in ids if i is not None)


def greedy_config(model, tokenizer, max_new_tokens: int):
    """A copy of the model's generation config set for greedy decoding up to ``max_new_tokens``."""
    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.temperature = None
    config.top_p = None
    config.top_k = None
    config.num_beams = 1
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    config.eos_token_id = eos_ids(model, tokenizer)
    config.pad_token_id = pad_id_of(tokenizer)
    return config


@torch.inference_mode()
def generate_greedy(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    batch_size: int,
    select: Optional[Select] = None,
) -> list[str]:
    """Greedy continuations of token-id prompts, batched longest first with left padding; decoded, stripped."""
    config = greedy_config(model, tokenizer, max_new_tokens)
    device = model_device(model)
    texts: list[str] = [""] * len(prompts)
    for idx in chunks(longest_first(prompts), batch_size):
        batch = pad_batch([prompts[i] for i in idx], config.pad_token_id, side="left")
        if select is not None:
            select(idx)
        out = model.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            generation_config=config,
        )
        new = out[:, batch["input_ids"].shape[1] :]
        for i, text in zip(idx, tokenizer.batch_decode(new, skip_special_tokens=True)):
            # a generation cut by max_new_tokens inside a multi-byte character decodes to U+FFFD: drop the part
            texts[i] = text.rstrip("\ufffd").strip()
    return texts


def question_prompts(
    tokenizer, questions: Sequence[str], fmt: str, contexts: Optional[Sequence[Optional[str]]] = None
) -> list[list[int]]:
    """Token ids of the prompt of each question: closed-book, or open-book with ``contexts[i]`` (one per question)."""
    if contexts is None:
        return [prompt_ids(tokenizer, q, fmt) for q in questions]
    if len(contexts) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    return [prompt_ids(tokenizer, q, fmt, c) for q, c in zip(questions, contexts)]


def answer_sequences(
    tokenizer, questions: Sequence[str], answers: Sequence[str], fmt: str
) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt + answer ids, labels on the answer tokens only) for each question/answer pair."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    seqs, labels = [], []
    for q, a in zip(questions, answers):
        p = prompt_ids(tokenizer, q, fmt)
        ids = list(tokenizer(a, add_special_tokens=False)["input_ids"])
        seqs.append(p + ids)
        labels.append([IGNORE_INDEX] * len(p) + ids)
    return seqs, labels


@torch.inference_mode()
def sequences_nll(
    model,
    tokenizer,
    seqs: Sequence[Sequence[int]],
    labels: Sequence[Sequence[int]],
    batch_size: int,
    select: Optional[Select] = None,
) -> tuple[list[float], list[int]]:
    """Per-sequence (sum of target-token NLL, number of target tokens), batched longest first."""
    sums, counts = [0.0] * len(seqs), [0] * len(seqs)
    pad_id = pad_id_of(tokenizer)
    for idx in chunks(longest_first(seqs), batch_size):
        batch = pad_batch([seqs[i] for i in idx], pad_id, labels=[labels[i] for i in idx])
        if select is not None:
            select(idx)
        total, count = batch_nll(model, batch)
        for j, i in enumerate(idx):
            sums[i], counts[i] = float(total[j]), int(count[j])
    return sums, counts


def mean_per_token(sums: Sequence[float], counts: Sequence[int]) -> list[float]:
    """sum / count per sequence (nan where a sequence has no target token)."""
    return [s / c if c else math.nan for s, c in zip(sums, counts)]
