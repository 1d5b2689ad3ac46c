"""Shared fixtures: a byte-level tokenizer and a tiny random Llama built in-process (no downloads)."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two torch threads
# spin against each other (~100x slower per step here).
torch.set_num_threads(1)

SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tiny_tokenizer(chat: bool = True, pad_is_eos: bool = False) -> PreTrainedTokenizerFast:
    """Byte-level tokenizer (one token per byte, exact round trip) with pad/eos/bos and a chat template."""
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<eos>",
        pad_token="<eos>" if pad_is_eos else "<pad>",
        bos_token="<bos>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
    )
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def make_tiny_model(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer, 32-wide random Llama sized for ``tokenizer``; same seed -> identical weights."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        # wide init: LoRA leaves lm_head frozen, and at the default 0.02 a 32-wide model cannot
        # produce confident logits, so tiny students could not learn anything in tests
        initializer_range=0.3,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.eval()


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model(tiny_tokenizer) -> LlamaForCausalLM:
    return make_tiny_model(tiny_tokenizer)


def tiny_config(home, **sections):
    """An agent Config for tiny models: fast settings; sections override fields, e.g. train={"epochs": 1}."""
    from agent.config import load_config
    from dataclasses import replace
    cfg = load_config(home)
    cfg.teacher.max_new_tokens = 24
    cfg.answer = replace(cfg.answer, max_new_tokens=8)
    cfg.lora = replace(cfg.lora, r=4, alpha=8)
    cfg.train = replace(cfg.train, epochs=2, batch_size=4, max_len=96, lr=1e-2)
    cfg.ingest.retention_probes = 8
    cfg.absorb.method = "sft"  # these tests pin next-token absorption; distillation has tests of its own
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, name), key, value)
    return cfg


def make_tiny_agent(home, cfg=None, seed: int = 0):
    """An Agent on a temp home whose student and teacher are tiny random models (no model files loaded)."""
    from agent.core import Agent
    from student.student import Student
    from teacher.backend import TransformersBackend
    from teacher.selfedit import Teacher
    cfg = cfg or tiny_config(home)
    tok = make_tiny_tokenizer()
    student = Student(make_tiny_model(tok, seed), tok, cfg.lora, cfg.answer)
    teacher_tok = make_tiny_tokenizer()
    teacher = Teacher(TransformersBackend(make_tiny_model(teacher_tok, seed + 1), teacher_tok), teacher_tok,
                      cfg.teacher, cfg.parse)
    return Agent(cfg, student=student, teacher=teacher)


@pytest.fixture
def tiny_agent(tmp_path):
    agent = make_tiny_agent(tmp_path / "home")
    yield agent
    agent.close()
