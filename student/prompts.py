"""Question prompts: SEAL's evaluation text, raw or through the chat template; closed-book, or open-book with a
context (the document) placed before the question in the same user turn."""

from __future__ import annotations

from typing import Optional

from .config import QUESTION_FORMATS

RAW_QUESTION_TEMPLATE = "Let's answer a question directly and concisely.\nQuestion: {question}\nAnswer:\n"
CONTEXT_SEPARATOR = "\n\n"  # between an open-book prompt's context and its question


def uses_chat(tokenizer, fmt: str) -> bool:
    """True when ``fmt`` is "chat" and the tokenizer has a chat template (else raw is used)."""
    if fmt not in QUESTION_FORMATS:
        raise ValueError(f"question format must be one of {QUESTION_FORMATS}, got {fmt!r}")
    return fmt == "chat" and bool(getattr(tokenizer, "chat_template", None))


def open_book(context: str, text: str) -> str:
    """``text`` with ``context`` before it (the user turn of an open-book prompt): "{context}\n\n{text}"."""
    return f"{context}{CONTEXT_SEPARATOR}{text}"


def user_prompt(tokenizer, user: str, fmt: str) -> str:
    """``user`` as it is, or as the user turn of a chat ending with the assistant's header."""
    if not uses_chat(tokenizer, fmt):
        return user
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
    )


def question_prompt(tokenizer, question: str, fmt: str, context: Optional[str] = None) -> str:
    """Prompt text for ``question``: SEAL's raw text, or that text as the user turn of a chat. With a ``context``
    (e.g. "{title}\n{passage}") the question is asked open-book: "{context}\n\n" comes first in the same turn."""
    raw = RAW_QUESTION_TEMPLATE.format(question=question)
    return user_prompt(tokenizer, raw if context is None else open_book(context, raw), fmt)


def prompt_ids(tokenizer, question: str, fmt: str, context: Optional[str] = None) -> list[int]:
    """Token ids of the prompt; chat prompts already carry their special tokens."""
    text = question_prompt(tokenizer, question, fmt, context)
    return list(tokenizer(text, add_special_tokens=not uses_chat(tokenizer, fmt))["input_ids"])
