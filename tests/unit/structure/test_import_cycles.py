"""No import cycle among the project's modules: the layer (``layers/``), the local tools (``src/``) and the
handlers (``functions/``), counting imports inside functions too (they run later, but still in a circle);
only ``if TYPE_CHECKING:`` imports, which never run, are left out."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = (ROOT / "layers" / "pipeline", ROOT / "src", ROOT / "functions")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if root.name == "functions":  # every handler is app.py: name it by its function folder
        parts.insert(0, "functions")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            modules[_module_name(root, path)] = path
    return modules


def _imported(
    node: ast.AST, module: str, is_package: bool, known: set[str] | dict[str, Path]
) -> Iterator[str]:
    """The project modules one import statement needs: ``import a.b`` needs ``a.b``; ``from a import b``
    needs the module ``a.b`` when there is one (Python imports it even while ``a`` is half-initialised),
    else ``a`` (where the name ``b`` is defined)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        for alias in node.names:
            submodule = f"{target}.{alias.name}"
            yield submodule if submodule in known else target


def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        typing_only = {
            id(inner) for node in ast.walk(tree) if _is_type_checking(node) for inner in ast.walk(node)
        }
        for node in ast.walk(tree):  # every import, at module level or inside a function or class
            if id(node) in typing_only:  # ``if TYPE_CHECKING:`` blocks never run
                continue
            for name in _imported(node, module, is_package, modules):
                if name in modules and name != module:
                    edges.add(name)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_walk_sees_the_project() -> None:
    graph = import_graph(project_modules())
    assert "retrain_pipeline.retrain_steps" in graph["functions.upload.app"]
    assert "retrain_pipeline.step" in graph["retrain_pipeline.failures"]
    assert {"prediction_one", "p1_retrain.cli", "p1_retrain.local.stack"} <= set(graph)


def test_a_cycle_is_found_even_through_an_import_inside_a_function() -> None:
    sample = {
        "pkg.a": "from pkg import b\n",
        "pkg.b": "def later():\n    from pkg.c import thing\n",
        "pkg.c": "import pkg.a\nthing = 1\n",
    }
    graph = {
        name: {
            target
            for node in ast.walk(ast.parse(text))
            for target in _imported(node, name, False, sample)
            if target in sample and target != name
        }
        for name, text in sample.items()
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert find_cycle({**graph, "pkg.c": set()}) is None


def test_no_module_imports_itself_in_a_circle() -> None:
    cycle = find_cycle(import_graph(project_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
