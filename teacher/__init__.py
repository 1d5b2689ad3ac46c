"""Teacher room: writes self-edits (training texts + update directives) for documents.

Never imports student/, agent/, tui/ or UI libraries; it receives a loaded model + tokenizer (through a backend).

Names are imported lazily (PEP 562): ``import teacher.config`` must not pull in torch (the CLI and the TUI start
in well under a second only if torch loads when a model is first needed).
"""
from importlib import import_module

_WHERE = {
    "GenerationBackend": "backend", "TransformersBackend": "backend", "VLLMBackend": "backend",
    "ParseSettings": "config", "TeacherSettings": "config",
    "parse_completion": "parsing", "parse_directives": "parsing", "parse_probes": "parsing",
    "passage_text": "parsing",
    "FAMILIES": "prompts", "build_prompt": "prompts",
    "SelfEdit": "selfedit", "Teacher": "selfedit", "filter_probes": "selfedit", "passage_share": "selfedit",
    "self_edit_from_completion": "selfedit",
    "SPA_TEMPLATES": "study", "StudyTemplate": "study", "StudyText": "study", "compression_ratio": "study",
    "continuation_pairs": "study", "cue_questions": "study", "parse_questions": "study", "sentence_cues": "study",
    "write_questions": "study", "write_study_texts": "study",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
