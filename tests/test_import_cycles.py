"""No import cycle among the project's own modules (top-level modules and the simulator package).

A cycle makes start-up order matter and turns a refactoring into a puzzle. The graph is read from the
source with ``ast``: every import counts, the ones inside functions too, except those that never run when
another module imports this one (``if TYPE_CHECKING:`` and the ``if __name__ == "__main__":`` entry point).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_files() -> dict[str, Path]:
    files = {path.stem: path for path in ROOT.glob("*.py")}
    for path in (ROOT / "simulator").glob("*.py"):
        files["simulator" if path.stem == "__init__" else f"simulator.{path.stem}"] = path
    return files


def _never_runs_on_import(node: ast.If) -> bool:
    test = ast.unparse(node.test)
    return (
        test in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
        or test.replace("'", '"') == '__name__ == "__main__"'
    )


def _imported_names(module: str, tree: ast.AST) -> Iterable[str]:
    """Every module name an import statement in ``tree`` may load, skipping never-run blocks."""
    package = module.rpartition(".")[0] if "." in module else ""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _never_runs_on_import(node):
            for branch in node.orelse:
                yield from _imported_names(module, ast.Module(body=[branch], type_ignores=[]))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: inside the simulator package
                base = f"{package}.{base}".strip(".") if base else package
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imported_names(module, node)


def import_graph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        names = _imported_names(module, ast.parse(path.read_text(encoding="utf-8")))
        graph[module] = {name for name in names if name in files and name != module}
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_the_project_has_no_import_cycle() -> None:
    graph = import_graph(_module_files())
    assert {"main", "cli", "config", "simulator.app"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cli_reaches_the_server_and_main_imports_cli_only_as_the_program() -> None:
    graph = import_graph(_module_files())
    assert "main" in graph["cli"]  # `flightctl-mcp serve` runs main.serve
    assert "cli" not in graph["main"]  # only under `if __name__ == "__main__":`


@pytest.mark.parametrize(
    ("source", "cycle"),
    [
        ({"a": "import b\n", "b": "def f():\n    import a\n"}, ["a", "b", "a"]),
        ({"a": "from b import x\n", "b": "import c\n", "c": "import a\n"}, ["a", "b", "c", "a"]),
        ({"a": "import b\n", "b": "if TYPE_CHECKING:\n    import a\n"}, None),
        ({"a": "import b\n", "b": 'if __name__ == "__main__":\n    import a\n'}, None),
    ],
    ids=["lazy-import-counts", "three-modules", "type-checking-only", "entry-point-only"],
)
def test_the_cycle_check_sees_what_it_should(
    tmp_path: Path, source: dict[str, str], cycle: list[str] | None
) -> None:
    files = {}
    for name, text in source.items():
        files[name] = tmp_path / f"{name}.py"
        files[name].write_text(text, encoding="utf-8")
    assert find_cycle(import_graph(files)) == cycle
