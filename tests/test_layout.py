"""The package's layout as docs/architecture.md describes it: wings on floors, dependencies one
way, no cycles, lazy imports included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "hf_spam"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every hf_spam module `path` imports, at the top or inside a function."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c.startswith("hf_spam") and _exists(c))
    found.discard(name)
    return found


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    graph = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    # A package's __init__ re-exporting its modules is not a dependency of those modules on it.
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def documented_floors() -> dict[str, int]:
    """`wing -> floor` from docs/architecture.md's table (`cli`, `reporting`, ...)."""
    rows = re.findall(r"^\| (\d+) \| `([\w.]+?)/?` \|", ARCHITECTURE.read_text(), flags=re.M)
    return {wing.removesuffix(".py"): int(floor) for floor, wing in rows}


def _wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles_lazy_imports_included():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_documented_wings_are_the_package():
    """Every folder and module at the top of hf_spam has a row in docs/architecture.md, and
    every row names one."""
    actual = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert set(documented_floors()) == actual


def test_dependencies_point_down_the_documented_floors():
    """A module imports its own wing or a wing on a lower floor, never beside or above it."""
    floors = documented_floors()
    wrong = [
        f"{module} -> {dep}"
        for module, deps in _graph().items()
        if module != "hf_spam"
        for dep in deps
        if _wing(dep) != _wing(module) and floors.get(_wing(dep), 0) >= floors[_wing(module)]
    ]
    assert not wrong, wrong


def test_modeling_travels_alone():
    """modeling.py goes to the Hub for trust_remote_code: it imports only its configuration."""
    assert _imports(PACKAGE / "model" / "modeling.py") == {"hf_spam.model.configuration"}
    assert _imports(PACKAGE / "model" / "configuration.py") == set()


def test_a_push_needs_no_data_or_inference():
    graph = _graph()
    for module in ("hf_spam.hub.sharing", "hf_spam.inference.load"):
        assert not any(d.startswith("hf_spam.data") for d in graph[module]), module


def test_no_module_imports_private_names_of_another():
    """`from .x import _name` across modules: a private name is its module's own."""
    taken = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                node.level or "hf_spam" in (node.module or "")
            ):
                taken += [f"{_module_name(path)}: {a.name}" for a in node.names if a.name[0] == "_"]
    assert not taken, taken


def test_no_module_is_too_long_to_read_in_one_sitting():
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 460 and p.name != "modeling.py"
    }
    assert not long, long


def test_tests_mirror_the_packages():
    """tests/<wing>/ for a wing of hf_spam; shared code only in tests/helpers/; no test module
    imports another (or conftest)."""
    wings = set(documented_floors())
    tests = ROOT / "tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert folders - {"helpers"} <= wings, folders - {"helpers"} - wings
    loose = [p.name for p in tests.glob("*.py") if not p.name.startswith("test_")]
    assert loose == ["conftest.py"], loose
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            wrong = [n for n in names if n.startswith("test_") or n == "conftest"]
            assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"
