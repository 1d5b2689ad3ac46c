"""Closed-book question prompts (SEAL's evaluation text, raw or through the chat template)."""

from __future__ import annotations

from .config import QUESTION_FORMATS

RAW_QUESTION_TEMPLATE = "Let's answer a question directly and concisely.\nQuestion: {question}\nAnswer:\n"


def uses_chat(tokenizer, fmt: str) -> bool:
    """True when ``fmt`` is "chat" and the tokenizer has a chat template (else raw is used)."""
    if fmt not in QUESTION_FORMATS:
        raise ValueError(f"question format must be one of {QUESTION_FORMATS}, got {fmt!r}")
    return fmt == "chat" and bool(getattr(tokenizer, "chat_template", None))


def question_prompt(tokenizer, question: str, fmt: str) -> str:
    """Prompt text for ``question``: SEAL's raw text, or that text as the user turn of a chat."""
    raw = RAW_QUESTION_TEMPLATE.format(question=question)
    if not uses_chat(tokenizer, fmt):
        return raw
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": raw}], tokenize=False, add_generation_prompt=True
    )


def prompt_ids(tokenizer, question: str, fmt: str) -> list[int]:
    """Token ids of the prompt; chat prompts already carry their special tokens."""
    text = question_prompt(tokenizer, question, fmt)
    return list(tokenizer(text, add_special_tokens=not uses_chat(tokenizer, fmt))["input_ids"])
