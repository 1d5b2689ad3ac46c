"""The house's doors: tui -> agent -> {teacher, student}; inside agent/, the product never imports the lab."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("agent", "teacher", "student", "tui")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of the project modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ROOMS}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for room in ROOMS for p in (ROOT / room).rglob("*.py")}
    return {name: {m for m in imports(p) if m in files} for name, p in files.items()}


def test_doors_go_one_way():
    allowed = {"tui": {"tui", "agent"}, "agent": {"agent", "teacher", "student"},
               "teacher": {"teacher"}, "student": {"student"}}
    wrong = [(m, i) for m, deps in graph().items() for i in deps if i.split(".")[0] not in allowed[m.split(".")[0]]]
    assert wrong == []


def test_the_product_never_imports_the_lab():
    wrong = [(m, i) for m, deps in graph().items()
             if m.startswith("agent") and not m.startswith("agent.lab") for i in deps if i.startswith("agent.lab")]
    assert wrong == []


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing its own modules is not a cycle of the house
    cycles = [c for c in cycles if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))]
    assert cycles == []
