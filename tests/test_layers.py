"""The layers of the Python package, read from the source: the import graph of lobfast/ has
no cycles, lobfast modules are imported at module level (not inside functions, where an
import hides a cycle), and the bottom layer (errors, times) imports nothing of lobfast but
the C module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lobfast"

# the bottom layer: what every other module may import
BOTTOM = {"lobfast.errors": {"lobfast._core"}, "lobfast.times": set()}

# lobfast modules imported inside a function: only those that import an optional dependency at
# module level, so that lobfast works without it
LAZY = {
    ("lobfast.figures", "lobfast._figure"): "subclasses matplotlib's Figure: matplotlib loads with the first figure",
    ("lobfast.cli", "lobfast.demo"): "needs PyTorch: the other commands work without it; `lobfast demo` says so",
}


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (``lobfast.sim`` for lobfast/sim/__init__.py)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if not (path.parent / "__init__.py").exists():
            continue
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _targets(node: ast.Import | ast.ImportFrom, module: str, package: str) -> set[str]:
    """The lobfast modules an import statement loads (the root package itself left out: every
    module's import runs it first)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [source] + [f"{source}.{a.name}" for a in node.names]
    out = set()
    for name in names:
        while name and name not in MODULES:  # lobfast.x.attr -> lobfast.x
            name = name.rpartition(".")[0]
        if name and name != "lobfast":
            out.add(name)
    out.discard(module)
    return out


def _dynamic_target(node: ast.Call) -> str | None:
    """The name ``__import__("lobfast...")`` / ``importlib.import_module(".x", ...)`` imports, as
    written; None for other calls and names that are not lobfast's (optional dependencies)."""
    func = ast.unparse(node.func)
    if func not in ("__import__", "importlib.import_module", "import_module") or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.JoinedStr) and arg.values:  # f"lobfast.{name}"
        arg = arg.values[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith(("lobfast", ".")):
        return ast.unparse(node.args[0])
    return None


def _imports() -> tuple[dict[str, set[str]], dict[str, set[tuple[str, int]]]]:
    """(module-level imports, imports inside functions) of lobfast modules, per module."""
    top: dict[str, set[str]] = {m: set() for m in MODULES}
    inner: dict[str, set[tuple[str, int]]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        todo: list[tuple[ast.AST, bool]] = [(ast.parse(path.read_text(), str(path)), False)]
        while todo:  # (node, inside a function)
            node, in_function = todo.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, module, package):
                    if in_function:
                        inner[module].add((target, node.lineno))
                    else:
                        top[module].add(target)
            elif isinstance(node, ast.Call) and (target := _dynamic_target(node)) is not None:
                inner[module].add((target, node.lineno))
            nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            todo.extend((child, nested) for child in ast.iter_child_nodes(node))
    return top, inner


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := dfs(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)) is not None:
            return found
    return None


def test_the_scan_sees_the_package():
    top, _ = _imports()
    assert {"lobfast", "lobfast.readers", "lobfast.sim", "lobfast.sim.market", *BOTTOM} <= set(MODULES)
    assert "lobfast.readers" in top["lobfast"] and "lobfast.sim.flow" in top["lobfast.sim.market"]


def test_cycle_finder():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    top, inner = _imports()
    graph = {m: set(t) for m, t in top.items()}
    for module, found in inner.items():  # imports inside functions close cycles too, when they run
        graph[module] |= {t for t, _ in found if (module, t) not in LAZY}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_lobfast_modules_are_imported_at_module_level():
    _, inner = _imports()
    found = sorted(
        f"{MODULES[m].relative_to(ROOT.parent)}:{line}: {t}"
        for m, targets in inner.items()
        for t, line in targets
        if (m, t) not in LAZY
    )
    assert not found, "imports of lobfast modules inside functions:\n" + "\n".join(found)
    used = {(m, t) for m, targets in inner.items() for t, _ in targets}
    assert set(LAZY) <= used, f"allowed lazy imports that no longer exist: {sorted(set(LAZY) - used)}"


@pytest.mark.parametrize("module", sorted(BOTTOM))
def test_the_bottom_layer_imports_nothing_of_lobfast(module):
    assert module in MODULES, f"{module} is missing"
    top, inner = _imports()
    imported = top[module] | {t for t, _ in inner[module]}
    assert imported <= BOTTOM[module], f"{module} imports {sorted(imported - BOTTOM[module])}"


def test_import_lobfast_loads_no_optional_dependency():
    """matplotlib and torch load only with the modules that need them, pandas only when called."""
    code = (
        "import sys, lobfast, lobfast.plots, lobfast.evaluate, lobfast.backtest, lobfast.sim, lobfast.cli\n"
        "print(sorted(m for m in ('matplotlib', 'torch', 'pandas') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
