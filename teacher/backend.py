"""Generation backends: ``n`` sampled completions per prompt in one batched call, with optional streaming.

``TransformersBackend`` (default, CPU or GPU) drives ``model.generate``; ``VLLMBackend`` drives vLLM's offline
``LLM`` engine for large-scale sampling on GPUs (optional extra ``seal-agent[vllm]``).
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

import torch
from transformers import GenerationConfig, LogitsProcessorList
from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor
from transformers.generation.streamers import BaseStreamer

OnText = Callable[[int, int, str], None]  # on_text(prompt_idx, sample_idx, text_so_far)


@runtime_checkable
class GenerationBackend(Protocol):
    def generate(
        self,
        prompts: list[str],
        n: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        on_text: Optional[OnText] = None,
        no_repeat_ngram: int = 0,
    ) -> list[list[str]]:
        """Return ``n`` completions (new text only) per prompt: ``out[prompt_idx][sample_idx]``.

        ``temperature <= 0`` means greedy decoding. ``on_text(prompt_idx, sample_idx, text_so_far)`` is called with
        the growing text of each sample while it is generated, and once more with the final text.
        ``no_repeat_ngram`` > 0: no run of that many tokens occurs twice in one completion (the prompt not counted)."""
        ...


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids of a prompt string. A prompt that already starts with the BOS token (chat templates often render
    it) is encoded without adding special tokens again, so BOS is never doubled."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def eos_ids(tokenizer, model=None) -> list[int]:
    """All end-of-sequence ids: the tokenizer's eos plus the model's generation_config eos (may be a list)."""
    ids: list[int] = []
    candidates = [getattr(tokenizer, "eos_token_id", None)]
    gen_cfg = getattr(model, "generation_config", None) if model is not None else None
    if gen_cfg is not None:
        candidates.append(gen_cfg.eos_token_id)
    for c in candidates:
        for i in c if isinstance(c, (list, tuple)) else [c]:
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


def pad_id(tokenizer, eos: Sequence[int]) -> int:
    if getattr(tokenizer, "pad_token_id", None) is not None:
        return int(tokenizer.pad_token_id)
    if eos:
        return int(eos[0])
    return 0


class NoRepeatNGramInCompletion(NoRepeatNGramLogitsProcessor):
    """transformers' n-gram ban applied to the generated tokens only. The built-in one (``no_repeat_ngram_size``)
    also counts the prompt, which would forbid copying any run of the passage into a self-edit; here the rows
    are cut at ``start``, the padded prompt width, before the parent class looks for repeats."""

    def __init__(self, ngram_size: int, start: int):
        super().__init__(ngram_size)
        self.start = int(start)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return super().__call__(input_ids[:, self.start:], scores)


class _RowStreamer(BaseStreamer):
    """Receives the prompt batch once, then one new token per row per step (rows are prompt-major:
    row = prompt_idx * n + sample_idx). Decodes at most every ``every`` steps (and when a row finishes), so that
    streaming costs little next to the forward passes; ``end()`` flushes every row's final text."""

    def __init__(self, decode: Callable[[list[int]], str], eos: Sequence[int], n: int, on_text: OnText,
                 every: int = 4, min_interval: float = 0.0):
        self.decode = decode
        self.eos = set(int(e) for e in eos)
        self.n = n
        self.on_text = on_text
        self.every = max(1, int(every))
        self.min_interval = float(min_interval)
        self.tokens: Optional[list[list[int]]] = None
        self.done: list[bool] = []
        self.sent: list[Optional[str]] = []
        self.steps = 0
        self.seen_prompt = False
        self.last_emit = 0.0

    def _emit(self, row: int) -> None:
        text = self.decode(self.tokens[row])
        if text != self.sent[row]:
            self.sent[row] = text
            self.on_text(row // self.n, row % self.n, text)

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:  # the first call carries the (expanded) prompt ids
            self.seen_prompt = True
            rows = value.shape[0] if value.dim() > 1 else 1
            self.tokens = [[] for _ in range(rows)]
            self.done = [False] * rows
            self.sent = [None] * rows
            return
        toks = value.reshape(-1).tolist()
        finished_now = []
        for row, tok in enumerate(toks):
            if self.done[row]:
                continue
            if tok in self.eos:
                self.done[row] = True
                finished_now.append(row)
            else:
                self.tokens[row].append(tok)
        self.steps += 1
        for row in finished_now:
            self._emit(row)
        now = time.monotonic()
        if self.steps % self.every == 0 and now - self.last_emit >= self.min_interval:
            self.last_emit = now
            for row in range(len(self.tokens)):
                if not self.done[row]:
                    self._emit(row)

    def end(self) -> None:
        if self.tokens is None:
            return
        for row in range(len(self.tokens)):
            self._emit(row)


class TransformersBackend:
    """Batched sampling with ``model.generate``: prompts left-padded into one batch, ``num_return_sequences=n``,
    seeded with ``torch.manual_seed(seed)`` inside a forked RNG (the caller's global RNG state is untouched), stops
    at eos, returns only the new tokens, decoded with special tokens skipped.

    Reproducibility: the same prompts, n, settings and seed give the same samples on the same device.
    ``stream_every``: decode for streaming at most every this many generated tokens."""

    def __init__(self, model, tokenizer, stream_every: int = 4, stream_min_interval: float = 0.0):
        self.model = model
        self.tokenizer = tokenizer
        self.stream_every = stream_every
        self.stream_min_interval = stream_min_interval

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    @torch.no_grad()
    def generate(self, prompts, n, max_new_tokens, temperature, top_p, seed, on_text=None, no_repeat_ngram=0):
        prompts = list(prompts)
        if not prompts or n < 1:
            return [[] for _ in prompts]
        tok = self.tokenizer
        eos = eos_ids(tok, self.model)
        pad = pad_id(tok, eos)
        encoded = [encode_prompt(tok, p) for p in prompts]
        width = max(len(e) for e in encoded)
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, ids in enumerate(encoded):  # left padding
            if ids:
                input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
                attention[i, width - len(ids):] = 1
        device = next(self.model.parameters()).device
        input_ids, attention = input_ids.to(device), attention.to(device)

        sample = temperature is not None and temperature > 0
        k = int(n) if sample else 1  # greedy: one sequence per prompt, repeated n times below
        gen_cfg = GenerationConfig(
            max_new_tokens=int(max_new_tokens),
            do_sample=sample,
            # Explicit values: None would be filled from the model's generation_config / global defaults (top_k=50).
            temperature=float(temperature) if sample else None,
            top_p=(float(top_p) if top_p is not None else 1.0) if sample else None,
            top_k=0 if sample else None,  # disabled, as in SEAL's vLLM sampling (top_k=-1)
            repetition_penalty=1.0,
            num_return_sequences=k,
            eos_token_id=eos or None,
            pad_token_id=pad,
            bos_token_id=getattr(tok, "bos_token_id", None),
        )
        streamer = None
        if on_text is not None:
            def fan_out(p_idx, _s_idx, text):
                for s_idx in range(n):
                    on_text(p_idx, s_idx, text)

            streamer = _RowStreamer(self._decode, eos, k, on_text if k == n else fan_out,
                                    self.stream_every, self.stream_min_interval)

        was_training = self.model.training
        self.model.eval()
        devices = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(seed))
                out = self.model.generate(
                    input_ids=input_ids, attention_mask=attention, generation_config=gen_cfg, streamer=streamer,
                    logits_processor=LogitsProcessorList(
                        [NoRepeatNGramInCompletion(no_repeat_ngram, width)] if no_repeat_ngram else []),
                )
        finally:
            if was_training:
                self.model.train()

        new = out[:, width:].tolist()
        results: list[list[str]] = [[] for _ in prompts]
        eos_set = set(eos)
        for row, ids in enumerate(new):
            cut = next((j for j, t in enumerate(ids) if t in eos_set), len(ids))  # stop at eos
            results[row // k].append(self._decode(ids[:cut]))
        if k != n:
            results = [texts * n for texts in results]
        return results


class VLLMBackend:
    """The same interface on vLLM's offline engine (``vllm.LLM`` + ``SamplingParams``), for GPU-scale sampling.

    NOTE: written against vLLM's documented offline API (LLM.generate(prompts, sampling_params, use_tqdm=...,
    lora_request=...), SamplingParams(n, temperature, top_p, max_tokens, seed, stop_token_ids), TokensPrompt dicts,
    LoRARequest(name, int_id, path)) but it CANNOT be run in this project's CPU environment (vLLM has no CPU build
    and pins other torch/transformers versions), so it is untested here.

    ``model``: a model name/path (an engine is built with ``llm_kwargs``) or an existing ``vllm.LLM``.
    ``lora_path``: an optional PEFT adapter folder (the teacher's policy adapter) applied to every request;
    change it with :meth:`set_lora` after each ReST-EM round (vLLM then loads the new adapter under a new id).
    Streaming: the offline engine returns whole completions, so ``on_text`` is called once per sample, with the
    final text.
    """

    def __init__(self, model, tokenizer=None, lora_path: Optional[str] = None, **llm_kwargs):
        try:
            import vllm  # noqa: F401
            from vllm import LLM, SamplingParams
        except ImportError as exc:  # one line, actionable
            raise RuntimeError("vLLM is not installed: pip install 'seal-agent[vllm]'") from exc
        self._SamplingParams = SamplingParams
        if isinstance(model, str):
            if lora_path is not None:
                llm_kwargs.setdefault("enable_lora", True)
                llm_kwargs.setdefault("max_lora_rank", 64)
            self.llm = LLM(model=model, **llm_kwargs)
        else:
            self.llm = model
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()
        self._lora_request = None
        self._lora_counter = 0
        if lora_path is not None:
            self.set_lora(lora_path)

    def set_lora(self, path: Optional[str]) -> None:
        """Use the PEFT adapter at ``path`` for later calls (None: the base model)."""
        if path is None:
            self._lora_request = None
            return
        from vllm.lora.request import LoRARequest

        self._lora_counter += 1  # a fresh int id, so vLLM does not serve a cached older adapter
        self._lora_request = LoRARequest(f"teacher-{self._lora_counter}", self._lora_counter, str(path))

    def generate(self, prompts, n, max_new_tokens, temperature, top_p, seed, on_text=None, no_repeat_ngram=0):
        if no_repeat_ngram:  # vLLM's sampling parameters have no n-gram ban
            raise ValueError("teacher.no_repeat_ngram is not available with vLLM; use the transformers backend")
        prompts = list(prompts)
        if not prompts or n < 1:
            return [[] for _ in prompts]
        sample = temperature is not None and temperature > 0
        stop_ids = eos_ids(self.tokenizer)
        # Greedy samples are all the same, and older vLLM versions refuse n > 1 with temperature 0:
        # ask for one and repeat it. top_k is left at vLLM's default (disabled), as in SEAL.
        k = int(n) if sample else 1
        params = self._SamplingParams(
            n=k,
            temperature=float(temperature) if sample else 0.0,
            top_p=float(top_p) if sample and top_p is not None else 1.0,
            max_tokens=int(max_new_tokens),
            seed=int(seed),
            stop_token_ids=stop_ids or None,
            skip_special_tokens=True,
        )
        # Token-id prompts: the same BOS rule as TransformersBackend (vLLM would add BOS to chat-rendered text).
        inputs = [{"prompt_token_ids": encode_prompt(self.tokenizer, p)} for p in prompts]
        kwargs = {"use_tqdm": False}
        if self._lora_request is not None:
            kwargs["lora_request"] = self._lora_request
        outputs = self.llm.generate(inputs, params, **kwargs)
        results: list[list[str]] = []
        for p_idx, req in enumerate(outputs):  # vLLM returns outputs in input order
            texts = [c.text for c in sorted(req.outputs, key=lambda c: c.index)]
            if len(texts) < n:
                texts = (texts * n)[:n]
            results.append(texts)
            if on_text is not None:
                for s_idx, text in enumerate(texts):
                    on_text(p_idx, s_idx, text)
        return results
