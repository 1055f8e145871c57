"""The package's layout (issue #13): dependencies point one way, no cycles, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "hf_spam"


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


def test_no_import_cycles_lazy_imports_included():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_modeling_travels_alone():
    """modeling.py goes to the Hub for trust_remote_code: it imports only .configuration."""
    assert _imports(PACKAGE / "modeling.py") == {"hf_spam.configuration"}


def test_bottom_layer_and_one_way_dependencies():
    graph = _graph()
    bottom = {"hf_spam.errors", "hf_spam.constants", "hf_spam.files", "hf_spam.hardware"}
    for module in bottom:
        assert graph[module] <= bottom, (module, graph[module] - bottom)
    # The library never imports the command line; the model never imports what loads it.
    for module, deps in graph.items():
        if not module.startswith("hf_spam.cli") and module != "hf_spam":
            assert not any(d.startswith("hf_spam.cli") for d in deps), module
    assert "hf_spam.weights" not in graph["hf_spam.modeling"]
    assert not any(d.startswith("hf_spam.data") for d in graph["hf_spam.sharing"])
    assert not any(d.startswith("hf_spam.data") for d in graph["hf_spam.inference"])


def test_no_module_is_too_long_to_read_in_one_sitting():
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 460 and p.name != "modeling.py"
    }
    assert not long, long
