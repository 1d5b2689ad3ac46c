"""The student: a base LM plus one in-memory knowledge LoRA that absorbs texts and answers questions."""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer

from .adapters import AdapterStore
from .batching import IGNORE_INDEX, batch_nll, model_device, pad_batch, pad_id_of, tokenize_texts
from .config import AnswerSettings, LoraSettings, TrainSettings
from .prompts import prompt_ids
from .trainer import StepCallback, TrainResult, train_adapter

ADAPTER_NAME = "knowledge"


def _chunks(order: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(order), size):
        yield order[i : i + size]


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
        target = self.lora.target_modules
        config = LoraConfig(
            r=self.lora.r,
            lora_alpha=self.lora.alpha,
            lora_dropout=self.lora.dropout,
            target_modules=target if isinstance(target, str) else list(target),
            bias="none",
            task_type="CAUSAL_LM",
            init_lora_weights=True,  # B = 0: the fresh adapter is the identity update
        )
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
    ) -> TrainResult:
        """Train the in-memory adapter on ``texts`` plus ``replay`` texts."""
        self.model.set_adapter(ADAPTER_NAME)
        return train_adapter(
            self.model, self.tokenizer, [*texts, *replay], settings or TrainSettings(), on_step
        )

    # inference -----------------------------------------------------------
    def _adapter(self, base: bool):
        return self.model.disable_adapter() if base else contextlib.nullcontext()

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
        return sorted(i for i in ids if i is not None)

    def _generation_config(self):
        config = copy.deepcopy(self.model.generation_config)
        config.do_sample = False
        config.temperature = None
        config.top_p = None
        config.top_k = None
        config.num_beams = 1
        config.max_new_tokens = self.answer_settings.max_new_tokens
        config.max_length = None
        config.eos_token_id = self._eos_ids()
        config.pad_token_id = pad_id_of(self.tokenizer)
        return config

    @torch.inference_mode()
    def answer(self, questions: Sequence[str], base: bool = False) -> list[str]:
        """Closed-book greedy answers, batched with left padding; only new tokens, decoded and stripped."""
        fmt = self.answer_settings.question_format
        prompts = [prompt_ids(self.tokenizer, q, fmt) for q in questions]
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        config = self._generation_config()
        device = self.device
        self.model.eval()
        with self._adapter(base):
            for idx in _chunks(order, self.answer_settings.batch_size):
                batch = pad_batch([prompts[i] for i in idx], config.pad_token_id, side="left")
                out = self.model.generate(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    generation_config=config,
                )
                new = out[:, batch["input_ids"].shape[1] :]
                texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
                for i, text in zip(idx, texts):
                    answers[i] = text.strip()
        return answers

    @torch.inference_mode()
    def _nll(self, seqs: list[list[int]], labels: list[list[int]], base: bool) -> tuple[list[float], list[int]]:
        """Per-sequence (NLL sum, target count), batched by length."""
        sums, counts = [0.0] * len(seqs), [0] * len(seqs)
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        pad_id = pad_id_of(self.tokenizer)
        self.model.eval()
        with self._adapter(base):
            for idx in _chunks(order, self.answer_settings.batch_size):
                batch = pad_batch([seqs[i] for i in idx], pad_id, labels=[labels[i] for i in idx])
                total, count = batch_nll(self.model, batch)
                for j, i in enumerate(idx):
                    sums[i], counts[i] = float(total[j]), int(count[j])
        return sums, counts

    def answer_nll(self, questions: Sequence[str], answers: Sequence[str], base: bool = False) -> list[float]:
        """Mean NLL per gold-answer token given the question prompt (nan for an empty answer)."""
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        fmt = self.answer_settings.question_format
        seqs, labels = [], []
        for q, a in zip(questions, answers):
            p = prompt_ids(self.tokenizer, q, fmt)
            ids = list(self.tokenizer(a, add_special_tokens=False)["input_ids"])
            seqs.append(p + ids)
            labels.append([IGNORE_INDEX] * len(p) + ids)
        sums, counts = self._nll(seqs, labels, base)
        return [s / c if c else math.nan for s, c in zip(sums, counts)]

    def text_nll(self, texts: Sequence[str], base: bool = False, max_len: int = 1024) -> float:
        """Mean NLL per token over ``texts`` (eos appended, as in training); perplexity = exp(value)."""
        seqs = tokenize_texts(self.tokenizer, texts, max_len, add_eos=True)
        if not seqs:
            return math.nan
        sums, counts = self._nll(seqs, seqs, base)
        total = sum(counts)
        return sum(sums) / total if total else math.nan
