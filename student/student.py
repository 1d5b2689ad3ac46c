"""The student: a base LM plus one in-memory knowledge LoRA that absorbs texts and answers questions."""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer

from .adapters import AdapterStore
from .batching import model_device, tokenize_texts
from .config import AnswerSettings, LoraSettings, TrainSettings
from .distill import StudyItem, TargetCache
from .inference import answer_sequences, generate_greedy, mean_per_token, question_prompts, sequences_nll
from .trainer import StepCallback, TrainResult, train_adapter

ADAPTER_NAME = "knowledge"


def lora_config(lora: LoraSettings) -> LoraConfig:
    """The peft config of a knowledge adapter (zero-init B: a fresh adapter is the identity update)."""
    target = lora.target_modules
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        bias="none",
        task_type="CAUSAL_LM",
        init_lora_weights=True,
    )


class Student:
    """Wraps ``model`` with peft exactly once (adapter "knowledge"); a fresh adapter equals the base model."""

    def __init__(
        self,
        model,
        tokenizer,
        lora: Optional[LoraSettings] = None,
        answer: Optional[AnswerSettings] = None,
    ) -> None:
        if isinstance(model, PeftModel):
            raise TypeError("Student wraps a plain transformers model; got a PeftModel")
        self.tokenizer = tokenizer
        self.lora = lora or LoraSettings()
        self.answer_settings = answer or AnswerSettings()
        config = lora_config(self.lora)
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.model = get_peft_model(model, config, adapter_name=ADAPTER_NAME)
        self.model.eval()
        self.reset()

    # adapter state -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def _lora_layers(self) -> Iterator[LoraLayer]:
        for module in self.model.modules():
            if isinstance(module, LoraLayer) and ADAPTER_NAME in module.lora_A:
                yield module

    def reset(self, seed: int = 0) -> None:
        """Fresh LoRA weights: A from a seeded Kaiming init, B = 0 (global RNG state left untouched)."""
        cuda = sorted({p.device.index or 0 for p in self.model.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            torch.manual_seed(seed)
            for layer in self._lora_layers():
                layer.reset_lora_parameters(ADAPTER_NAME, True)

    def state(self) -> dict[str, torch.Tensor]:
        """CPU clones of the adapter tensors (peft's state-dict keys, without the adapter name)."""
        raw = get_peft_model_state_dict(self.model, adapter_name=ADAPTER_NAME)
        return {k: v.detach().to("cpu", copy=True) for k, v in raw.items()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the adapter weights with ``state`` (keys must match exactly)."""
        expected = set(get_peft_model_state_dict(self.model, adapter_name=ADAPTER_NAME))
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(
                f"adapter state does not fit this student: missing {missing[:3]} ({len(missing)}), "
                f"unexpected {extra[:3]} ({len(extra)})"
            )
        set_peft_model_state_dict(self.model, state, adapter_name=ADAPTER_NAME)

    def save(self, store: AdapterStore, adapter_id: str, meta: Optional[dict[str, Any]] = None) -> Path:
        """Save the adapter into ``store`` (atomic; lora settings recorded in the metadata)."""
        return store.save(self.model, adapter_id, {"lora": asdict(self.lora), **(meta or {})})

    # training ------------------------------------------------------------
    def absorb(
        self,
        texts: Sequence[str],
        settings: Optional[TrainSettings] = None,
        replay: Sequence[str] = (),
        on_step: Optional[StepCallback] = None,
        anchor: Sequence[str] = (),
        side: Sequence[str] = (),
        study: Sequence[StudyItem] = (),
        targets: Optional[TargetCache] = None,
        prompt_chars: Optional[Sequence[int]] = None,
    ) -> TrainResult:
        """Train the in-memory adapter on ``texts`` and ``study`` items (context distillation against the base
        model, targets from / into ``targets``), rehearsing ``replay`` texts and learning ``side`` texts beside
        them, and holding its predictions on ``anchor`` texts to the base model's; ``prompt_chars``: per text, a
        prompt prefix not learned (see :func:`~student.trainer.train_adapter`)."""
        self.model.set_adapter(ADAPTER_NAME)
        return train_adapter(self.model, self.tokenizer, texts, settings or TrainSettings(), on_step, anchor=anchor,
                             replay=replay, side=side, study=study, targets=targets, prompt_chars=prompt_chars)

    # inference -----------------------------------------------------------
    def _adapter(self, base: bool):
        return self.model.disable_adapter() if base else contextlib.nullcontext()

    @torch.inference_mode()
    def answer(
        self, questions: Sequence[str], base: bool = False, contexts: Optional[Sequence[Optional[str]]] = None
    ) -> list[str]:
        """Greedy answers, batched with left padding; only new tokens, decoded and stripped. Closed-book, or
        open-book with ``contexts`` (one per question, e.g. "{title}\n{passage}"; see
        :func:`~student.prompts.question_prompt`)."""
        prompts = question_prompts(self.tokenizer, questions, self.answer_settings.question_format, contexts)
        self.model.eval()
        with self._adapter(base):
            return generate_greedy(
                self.model, self.tokenizer, prompts, self.answer_settings.max_new_tokens,
                self.answer_settings.batch_size,
            )

    def _nll(self, seqs: list[list[int]], labels: list[list[int]], base: bool) -> tuple[list[float], list[int]]:
        """Per-sequence (NLL sum, target count), batched by length."""
        self.model.eval()
        with self._adapter(base):
            return sequences_nll(self.model, self.tokenizer, seqs, labels, self.answer_settings.batch_size)

    def answer_nll(self, questions: Sequence[str], answers: Sequence[str], base: bool = False) -> list[float]:
        """Mean NLL per gold-answer token given the question prompt (nan for an empty answer)."""
        seqs, labels = answer_sequences(self.tokenizer, questions, answers, self.answer_settings.question_format)
        return mean_per_token(*self._nll(seqs, labels, base))

    def text_nll(self, texts: Sequence[str], base: bool = False, max_len: int = 1024) -> float:
        """Mean NLL per token over ``texts`` (eos appended, as in training); perplexity = exp(value)."""
        total, count = self.text_nll_sum(texts, base, max_len)
        return total / count if count else math.nan

    def text_nll_sum(self, texts: Sequence[str], base: bool = False, max_len: int = 1024) -> tuple[float, int]:
        """(NLL summed over the tokens of ``texts``, token count), to pool texts scored under different adapters."""
        seqs = tokenize_texts(self.tokenizer, texts, max_len, add_eos=True)
        if not seqs:
            return 0.0, 0
        sums, counts = self._nll(seqs, seqs, base)
        return float(sum(sums)), int(sum(counts))
