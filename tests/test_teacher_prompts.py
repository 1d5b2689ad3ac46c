import ast
from pathlib import Path

import pytest

from teacher.prompts import FAMILIES, build_prompt, get_family, probe_prompt, resolve_chat

TITLE = "Super Bowl 50"
PASSAGE = "Super Bowl 50 was an American football game. The Denver Broncos defeated the Carolina Panthers 24-10."

HEADERS = {
    "implications": "Implications:\n",
    "implications-long": "Implications:\n",
    "rewrite": "Rewritten passages:\n",
    "self-qa": "Question 1: ",
}


def test_families_table():
    assert FAMILIES == ("implications", "implications-long", "rewrite", "self-qa")
    assert get_family("self-qa").qa and not get_family("rewrite").qa
    with pytest.raises(ValueError, match="unknown self-edit family"):
        get_family("poetry")


def test_raw_implications_is_seal_text(tiny_tokenizer):
    p = build_prompt(tiny_tokenizer, "implications", TITLE, PASSAGE, use_chat=False)
    assert p == (
        "Let's read the following passage and produce a list of implications derived directly or indirectly "
        f"from the content.\n\nPassage:\n{TITLE}\n{PASSAGE}\n\nImplications:\n"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_raw_prompts(tiny_tokenizer, family):
    p = build_prompt(tiny_tokenizer, family, TITLE, PASSAGE, use_chat=False)
    assert p.startswith("Let's read the following passage and ")
    assert f"\n\nPassage:\n{TITLE}\n{PASSAGE}\n\n" in p
    assert p.endswith(HEADERS[family])
    assert "<|user|>" not in p


@pytest.mark.parametrize("family", FAMILIES)
def test_chat_prompts(tiny_tokenizer, family):
    p = build_prompt(tiny_tokenizer, family, TITLE, PASSAGE, use_chat=True)
    fam = get_family(family)
    # instruction + passage are the user turn; the header pre-fills the assistant turn
    assert p == f"<|user|>{fam.instruction}\n\nPassage:\n{TITLE}\n{PASSAGE}<eos><|assistant|>{HEADERS[family]}"


def test_family_wording(tiny_tokenizer):
    assert "long list of implications" in build_prompt(tiny_tokenizer, "implications-long", TITLE, PASSAGE, False)
    assert "rewrite it in a few different ways, each one separated by a newline" in build_prompt(
        tiny_tokenizer, "rewrite", TITLE, PASSAGE, False)
    assert "question-answer format" in build_prompt(tiny_tokenizer, "self-qa", TITLE, PASSAGE, False)


def test_chat_auto_detection(tiny_tokenizer):
    assert resolve_chat(tiny_tokenizer, None) is True
    assert build_prompt(tiny_tokenizer, "rewrite", TITLE, PASSAGE, None).startswith("<|user|>")
    assert resolve_chat(tiny_tokenizer, False) is False
    tiny_tokenizer.chat_template = None
    assert resolve_chat(tiny_tokenizer, None) is False
    assert resolve_chat(tiny_tokenizer, True) is False  # no template: raw fallback
    assert build_prompt(tiny_tokenizer, "rewrite", TITLE, PASSAGE, True).startswith("Let's read")


def test_probe_prompt(tiny_tokenizer):
    raw = probe_prompt(tiny_tokenizer, TITLE, PASSAGE, 4, use_chat=False)
    assert "write 4 questions" in raw and PASSAGE in raw and TITLE in raw
    assert raw.endswith("\n\nQuestion 1: ")
    chat = probe_prompt(tiny_tokenizer, TITLE, PASSAGE, 4, use_chat=True)
    assert chat.startswith("<|user|>") and chat.endswith("<|assistant|>Question 1: ")


def test_teacher_imports_stay_in_their_room():
    forbidden = {"student", "agent", "tui", "textual", "typer", "rich", "chromadb"}
    for path in (Path(__file__).parent.parent / "teacher").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
