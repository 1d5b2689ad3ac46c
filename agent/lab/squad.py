"""SQuAD-format passages (SEAL's layout) and reference self-edit completions.

A data file is a JSON list of ``{title, context, questions: [{question, answer}]}`` with optional
``completions`` (a list of self-edit completion strings). Reference completions come from the shipped files in
``agent/data/squad`` (shortcuts ``gpt4.1``, ``qwen-base``, ``seal-rl``), from any SEAL-format file with
``completions``, or from the data file itself (condition ``ref``). They are matched to passages by context text.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "squad"
DEFAULT_DATA = SHIPPED / "passages.json"
REFERENCES = {"gpt4.1": "ref-gpt4.1.json", "qwen-base": "ref-qwen-base.json", "seal-rl": "ref-seal-rl.json"}
ALIASES = {"gpt-4.1": "gpt4.1", "gpt4_1": "gpt4.1", "gpt41": "gpt4.1", "base": "qwen-base", "qwen": "qwen-base",
           "base_val": "qwen-base", "seal": "seal-rl", "iter2": "seal-rl", "iter2_val": "seal-rl", "rl": "seal-rl"}
DATA_REF = "data"  # `ref` / `ref:data`: the completions stored in the data file itself


@dataclass
class Passage:
    index: int  # position in the data file
    title: str
    context: str
    questions: list[str]
    golds: list[str]
    completions: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The passage as a training text (SEAL: "{title}\\n{context}")."""
        return f"{self.title}\n{self.context}"


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not a {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None


def _passage(path: Path, i: int, item) -> Passage:
    where = f"{path}: passage {i}"
    if not isinstance(item, dict):
        raise BadInput(f"{where}: expected an object with title, context, questions")
    title, context, questions = item.get("title"), item.get("context"), item.get("questions")
    if not isinstance(title, str):
        raise BadInput(f"{where}: 'title' must be a string")
    if not isinstance(context, str) or not context.strip():
        raise BadInput(f"{where}: 'context' must be a non-empty string")
    if not isinstance(questions, list) or not questions:
        raise BadInput(f"{where}: 'questions' must be a non-empty list of {{question, answer}}")
    qs, golds = [], []
    for j, q in enumerate(questions):
        if not (isinstance(q, dict) and isinstance(q.get("question"), str) and isinstance(q.get("answer"), str)
                and q["question"].strip() and q["answer"].strip()):
            raise BadInput(f"{where}, question {j}: needs non-empty string 'question' and 'answer'")
        qs.append(q["question"])
        golds.append(q["answer"])
    completions = item.get("completions", [])
    if not isinstance(completions, list) or not all(isinstance(c, str) for c in completions):
        raise BadInput(f"{where}: 'completions' must be a list of strings")
    return Passage(i, title, context, qs, golds, list(completions))


def load_passages(path: Path) -> list[Passage]:
    """The passages of a SEAL/SQuAD-format file; BadInput on anything malformed."""
    path = Path(path).expanduser()
    data = _read_json(path, "data file")
    if not isinstance(data, list) or not data:
        raise BadInput(f"{path}: expected a non-empty JSON list of {{title, context, questions}}")
    return [_passage(path, i, item) for i, item in enumerate(data)]


def data_digest(passages: list[Passage]) -> str:
    """A short hash of the passages and questions (resume refuses to mix results from different data)."""
    h = hashlib.sha256()
    for p in passages:
        h.update(json.dumps([p.title, p.context, p.questions, p.golds]).encode())
    return h.hexdigest()[:16]


def reference_name(name: str) -> str:
    """Canonical shortcut for a reference name ("gpt-4.1" -> "gpt4.1"), or the name unchanged (a path)."""
    if name in ("", DATA_REF):
        return DATA_REF
    key = name.lower()
    return key if key in REFERENCES else ALIASES.get(key, name)


def _completions_by_context(name: str) -> tuple[dict[str, list[str]], str]:
    """context -> completions, and the prompt family the completions were written with.

    Two layouts: SEAL's (a list of passages with ``completions``) and the shipped one (``{"passages": FILE,
    "completions": {index: [...]}, "family": ...}``, FILE relative to the reference file)."""
    path = SHIPPED / REFERENCES[name] if name in REFERENCES else Path(name).expanduser()
    if not path.exists():
        raise BadInput(f"ref:{name}: no such reference (shortcuts: {', '.join(REFERENCES)}) and no such file")
    doc = _read_json(path, "reference file")
    if isinstance(doc, dict) and isinstance(doc.get("completions"), dict) and isinstance(doc.get("passages"), str):
        contexts = [p.context for p in load_passages(path.parent / doc["passages"])]
        try:
            found = {contexts[int(i)]: list(c) for i, c in doc["completions"].items()}
        except (ValueError, IndexError, TypeError):
            raise BadInput(f"{path}: 'completions' must map passage indices of {doc['passages']} to lists") from None
        return found, str(doc.get("family", "implications"))
    if not isinstance(doc, list):
        raise BadInput(f"{path}: a reference file is a list of {{title, context, questions, completions}}")
    return {p.context: p.completions for p in (_passage(path, i, x) for i, x in enumerate(doc)) if p.completions}, \
        "implications"


def load_reference(name: str, passages: list[Passage]) -> tuple[list[list[str]], str]:
    """Completions for each passage (same order) from reference ``name``, and their prompt family."""
    name = reference_name(name)
    if name == DATA_REF:
        found, family = {p.context: p.completions for p in passages if p.completions}, "implications"
    else:
        found, family = _completions_by_context(name)
    missing = [p.index for p in passages if not found.get(p.context)]
    if missing:
        raise BadInput(f"ref:{name}: no completions for {len(missing)} of {len(passages)} passages "
                       f"(first: passage {missing[0]})")
    return [list(found[p.context]) for p in passages], family
