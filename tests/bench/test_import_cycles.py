"""No import circles among the modules of bench/ and the twin (infra/twin/).

The graph is built from the source with `ast`, not by importing anything: every `import` and
`from ... import` statement counts, wherever it stands (module level, inside a function, under
`if TYPE_CHECKING:`), because a circle hidden in a function body is still a circle a reader has
to untangle, and it turns into an import-time failure as soon as someone hoists the import.

Nodes are the first-party modules of the repository (bench, infra, tests, media_fleet, and
`townhall`, `handlers` under functions/), so a circle that leaves bench/ or the twin and comes
back through another package is found too. An edge goes to the most specific module named:
`from bench.load import clip` is an edge to `bench.load.clip`, `from bench.load.clip import
STAMP` too. The parent packages that Python also runs on the way are not edges; otherwise
every `__init__.py` that imports one of its submodules would count as a circle.

A strongly connected component of more than one module that contains a module of bench/ or
infra/twin/ fails the test, with the imports that make it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Top-level package -> the folder it is imported from (pyproject's pythonpath: functions, .).
PACKAGES = {
    "bench": ROOT / "bench",
    "infra": ROOT / "infra",
    "tests": ROOT / "tests",
    "media_fleet": ROOT / "media_fleet",
    "contracts": ROOT / "contracts",
    "townhall": ROOT / "functions" / "townhall",
    "handlers": ROOT / "functions" / "handlers",
}
CHECKED = ("bench", "infra.twin")


@dataclass(frozen=True)
class Import:
    """One import statement's edge: `source` imports `target` at `path`:`line`."""

    source: str
    target: str
    path: Path
    line: int


def module_files(packages: Mapping[str, Path]) -> dict[str, Path]:
    """Module name -> its file, for every .py file under the packages' folders."""
    modules: dict[str, Path] = {}
    for package, folder in packages.items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """The first-party modules `name` (the file at `path`) imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str | None, line: int) -> None:
        # The longest prefix that is a module of ours: `a.b.attribute` -> `a.b`.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.append(Import(name, target, path, line))

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # Relative: each dot strips one component of the module's name; an
                # `__init__.py` is its own package, so one fewer.
                anchor = name.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from package import module` names a module; `from module import name` not.
                member = f"{base}.{alias.name}"
                add(member if member in modules else base, node.lineno)
    return found


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on a long chain of imports)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def import_cycles(packages: Mapping[str, Path], checked: Iterable[str]) -> list[str]:
    """One description per circle that touches a module under `checked`, with its imports."""
    modules = module_files(packages)
    edges = [edge for name, path in modules.items() for edge in imports_of(name, path, modules)]
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for edge in edges:
        graph[edge.source].add(edge.target)
    prefixes = tuple(checked)

    def is_checked(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    cycles = []
    for component in strongly_connected(graph):
        if len(component) < 2 or not any(is_checked(m) for m in component):
            continue
        inside = set(component)
        lines = [
            f"    {e.source} -> {e.target}  ({shown(e.path)}:{e.line})"
            for e in edges
            if e.source in inside and e.target in inside
        ]
        cycles.append(" <-> ".join(component) + "\n" + "\n".join(sorted(set(lines))))
    return cycles


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def test_no_import_cycles_in_bench_or_the_twin() -> None:
    cycles = import_cycles(PACKAGES, CHECKED)
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_the_check_finds_a_circle_through_a_function_level_import(tmp_path: Path) -> None:
    # A small tree with the shape bench/ once had: a -> b at module level, b -> c through a
    # relative import, c -> a only inside a function.
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from . import c\nfrom .c import helper\n")
    (package / "sub" / "c.py").write_text("def helper():\n    from pkg.a import x\n    return x\n")
    (package / "d.py").write_text("import pkg.a\n")  # imports into the circle, not part of it
    cycles = import_cycles({"pkg": package}, ["pkg"])
    assert len(cycles) == 1, cycles
    assert cycles[0].startswith("pkg.a <-> pkg.sub.b <-> pkg.sub.c\n")
    assert "pkg.sub.c -> pkg.a" in cycles[0] and "c.py:2)" in cycles[0]
    assert "pkg.d" not in cycles[0]
    assert import_cycles({"pkg": package}, ["pkg.d"]) == []
