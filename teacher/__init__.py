"""Teacher room: writes self-edits (training texts + update directives) for documents.

Never imports student/, agent/, tui/ or UI libraries; it receives a loaded model + tokenizer (through a backend)."""
from .backend import GenerationBackend, TransformersBackend, VLLMBackend
from .config import ParseSettings, TeacherSettings
from .parsing import parse_completion, parse_directives, parse_probes
from .prompts import FAMILIES, build_prompt
from .selfedit import SelfEdit, Teacher, filter_probes, self_edit_from_completion

__all__ = [
    "FAMILIES", "GenerationBackend", "ParseSettings", "SelfEdit", "Teacher", "TeacherSettings",
    "TransformersBackend", "VLLMBackend", "build_prompt", "filter_probes", "parse_completion",
    "parse_directives", "parse_probes", "self_edit_from_completion",
]
