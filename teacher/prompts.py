"""Self-edit prompts: SEAL's prompt families as a small table, rendered raw or through the chat template.

Raw (SEAL, base models): "{instruction}\\n\\nPassage:\\n{title}\\n{passage}\\n\\n{header}" and the model continues
after the header. Chat (instruct models): the instruction and the passage are the user turn
(``apply_chat_template(add_generation_prompt=True)``) and the header is pre-filled as the start of the assistant
turn, so both modes end on the same header and the completion has the same shape (a list right after
"Implications:", a question right after "Question 1: ").
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptFamily:
    name: str
    instruction: str
    header: str  # ends the prompt; the completion continues it (SEAL: "Implications:\n", "Question 1: ")
    qa: bool = False  # completions are question/answer pairs (parsed pair-wise, not line-wise)


# SEAL's texts (knowledge-incorporation make_squad_data.py, MAKE_SQUAD_DATA_TEMPLATES_BASE).
_READ = "Let's read the following passage and "
_TABLE = (
    PromptFamily(
        "implications",
        _READ + "produce a list of implications derived directly or indirectly from the content.",
        "Implications:\n",
    ),
    PromptFamily(
        "implications-long",
        _READ + "produce a long list of implications derived directly or indirectly from the content.",
        "Implications:\n",
    ),
    PromptFamily(
        "rewrite",
        _READ + "rewrite it in a few different ways, each one separated by a newline.",
        "Rewritten passages:\n",
    ),
    PromptFamily(
        "self-qa",
        _READ + "rewrite it in a question-answer format.",
        "Question 1: ",
        qa=True,
    ),
)

FAMILY_TABLE: dict[str, PromptFamily] = {f.name: f for f in _TABLE}
FAMILIES: tuple[str, ...] = tuple(FAMILY_TABLE)

# Headers a model may echo back; parsing drops lines equal to these.
ECHO_HEADERS: tuple[str, ...] = ("implications:", "passage:", "rewritten passages:", "rewritten passage:")


def get_family(name: str) -> PromptFamily:
    try:
        return FAMILY_TABLE[name]
    except KeyError:
        raise ValueError(f"unknown self-edit family {name!r}; choose one of {', '.join(FAMILIES)}") from None


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def resolve_chat(tokenizer, use_chat) -> bool:
    """None = auto: chat when the tokenizer has a chat template. True without a template falls back to raw."""
    if use_chat is None:
        return has_chat_template(tokenizer)
    return bool(use_chat) and has_chat_template(tokenizer)


def render(tokenizer, user_text: str, prefill: str, use_chat) -> str:
    """``user_text`` + ``prefill`` raw, or ``user_text`` as the chat user turn followed by ``prefill`` as the start
    of the assistant turn."""
    if resolve_chat(tokenizer, use_chat):
        messages = [{"role": "user", "content": user_text}]
        chat = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return chat + prefill
    return user_text + "\n\n" + prefill


def build_prompt(tokenizer, family: str, title: str, passage: str, use_chat=None) -> str:
    fam = get_family(family)
    user = f"{fam.instruction}\n\nPassage:\n{title}\n{passage}"
    return render(tokenizer, user, fam.header, use_chat)


PROBE_INSTRUCTION = (
    "Let's read the following passage and write {n} questions about it, each followed by its answer. "
    "Each answer must be a short phrase copied exactly from the passage. "
    "Write them in the format:\nQuestion: ...\nAnswer: ..."
)
PROBE_HEADER = "Question 1: "


def probe_prompt(tokenizer, title: str, passage: str, n: int, use_chat=None) -> str:
    """Prompt asking for ``n`` question-answer pairs whose short answers are copied from the passage."""
    user = f"{PROBE_INSTRUCTION.format(n=n)}\n\nPassage:\n{title}\n{passage}"
    return render(tokenizer, user, PROBE_HEADER, use_chat)
