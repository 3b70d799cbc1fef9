"""No import cycles inside the copyloop package.

Why static: a cycle that only works because one side imports lazily (inside a function or
under TYPE_CHECKING) still means two modules cannot be understood, tested or moved apart, and
it breaks as soon as someone hoists the import. So every import statement counts, wherever it
sits in the module, and `from package import name` counts as importing the module
`package.name` when there is one. The generated stubs (copyloop.v1) are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "services"
PACKAGE = "copyloop"
GENERATED = "copyloop.v1"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SOURCE_ROOT / PACKAGE).rglob("*.py")):
        name = _module_name(path)
        if name == GENERATED or name.startswith(GENERATED + "."):
            continue
        found[name] = path
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Absolute name of the module a `from ... import` statement reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every copyloop module that `module` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
    return {t for t in targets if t in known and t != module}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components with more than one module are cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(iter(children), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A concrete path a -> b -> ... -> a inside one strongly connected component."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in previous:
                previous[child] = node
                frontier.append(child)
    return component


def cycles(prefixes: tuple[str, ...] = (PACKAGE,)) -> list[list[str]]:
    """One example cycle per strongly connected component among modules under `prefixes`."""
    graph = import_graph()

    def inside(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    graph = {m: {t for t in targets if inside(t)} for m, targets in graph.items() if inside(m)}
    return [_one_cycle(graph, c) for c in _strongly_connected(graph)]


def test_the_graph_sees_every_kind_of_import() -> None:
    """The scanner itself: absolute, relative, lazy and `from package import module` imports."""
    graph = import_graph()
    assert "copyloop.prediction.domain" in graph
    assert "copyloop.prediction.schema" in graph["copyloop.prediction.store"]  # from pkg import mod
    assert "copyloop.prediction.features.encoder" in graph["copyloop.prediction.model.esmm"]
    assert "copyloop.prediction.errors" in graph["copyloop.prediction.features.encoder"]  # lazy
    assert not any(name.startswith(GENERATED) for name in graph)


def test_cycle_finder_reports_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (component,) = _strongly_connected(graph)
    assert component == ["a", "b", "c"]
    assert _one_cycle(graph, component) == ["a", "b", "c", "a"]


def test_no_import_cycles_in_copyloop() -> None:
    found = cycles()
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)
