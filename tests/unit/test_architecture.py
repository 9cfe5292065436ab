"""The structure the import-linter contracts (pyproject.toml, docs/architecture.md) cannot say
alone: no import cycle between the subpackages of fastlims (imports inside functions included),
no capability importing another's private names, no module past 600 lines without a reason.

The import graph is grimp's, built from the source files, so an import inside a function counts
as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

import fastlims

PACKAGE_DIR = Path(fastlims.__file__).parent
MAX_LINES = 600
ONE_IDEA = "One idea:"  # how a longer module's docstring says why it is not split


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("fastlims", cache_dir=None)


def children(graph: grimp.ImportGraph, package: str) -> list[str]:
    return sorted(m for m in graph.modules if m.rsplit(".", 1)[0] == package and m != package)


def cycles_between(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The import cycles between the children of ``package`` (each child with everything in it),
    as the strongly connected groups of two or more children."""
    kids = children(graph, package)
    owner = {}
    for kid in kids:
        owner[kid] = kid
        for descendant in graph.find_descendants(kid):
            owner[descendant] = kid
    edges: dict[str, set[str]] = defaultdict(set)
    for module, kid in owner.items():
        for imported in graph.find_modules_directly_imported_by(module):
            other = owner.get(imported)
            if other is not None and other != kid:
                edges[kid].add(other)
    return strongly_connected(kids, edges)


def strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; only the groups with more than one node (a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def describe(graph: grimp.ImportGraph, group: list[str]) -> str:
    """Every import from one member of a cycle into another, with file line and code."""
    members = set(group)
    lines = []
    for module in sorted(graph.modules):
        source = next((m for m in members if module == m or module.startswith(m + ".")), None)
        if source is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            target = next((m for m in members if imported == m or imported.startswith(m + ".")), None)
            if target is not None and target != source:
                for detail in graph.get_import_details(importer=module, imported=imported):
                    lines.append(f"  {module}:{detail['line_number']} {detail['line_contents']}")
    return "\n".join(lines)


def packages(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if (PACKAGE_DIR.parent / m.replace(".", "/") / "__init__.py").is_file())


def test_the_graph_has_the_imports_made_inside_functions(graph: grimp.ImportGraph) -> None:
    # benches.registry imports the scheduling core only inside its functions (so the solvers load
    # when a schedule is made): a graph without function-level imports would not have this edge.
    source = (PACKAGE_DIR / "benches" / "registry.py").read_text()
    assert "    from fastlims.scheduling import Bench\n" in source
    assert graph.direct_import_exists(importer="fastlims.benches.registry", imported="fastlims.scheduling")


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    synthetic = grimp.ImportGraph()
    for module in ("app", "app.a", "app.a.x", "app.b", "app.b.y", "app.c"):
        synthetic.add_module(module)
    synthetic.add_import(importer="app.a.x", imported="app.b.y", line_number=3, line_contents="import app.b.y")
    synthetic.add_import(importer="app.b.y", imported="app.a", line_number=40, line_contents="    from app import a")
    synthetic.add_import(importer="app.c", imported="app.a", line_number=1, line_contents="import app.a")
    assert cycles_between(synthetic, "app") == [["app.a", "app.b"]]
    assert "app.b.y:40     from app import a" in describe(synthetic, ["app.a", "app.b"])


def test_no_import_cycle_between_the_subpackages_of_fastlims(graph: grimp.ImportGraph) -> None:
    found = cycles_between(graph, "fastlims")
    assert not found, "import cycles between subpackages of fastlims:\n" + "\n\n".join(
        f"{' <-> '.join(group)}:\n{describe(graph, group)}" for group in found
    )


def test_no_import_cycle_inside_any_package(graph: grimp.ImportGraph) -> None:
    found = {package: cycles_between(graph, package) for package in packages(graph) if package != "fastlims"}
    found = {package: groups for package, groups in found.items() if groups}
    assert not found, "import cycles between the modules of a package:\n" + "\n\n".join(
        f"{' <-> '.join(group)}:\n{describe(graph, group)}" for groups in found.values() for group in groups
    )


def capability_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_the_private_names_of_another_subpackage() -> None:
    offences = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        module = "fastlims." + ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("fastlims"):
                continue
            if capability_of(node.module or "") == capability_of(module):
                continue
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if private:
                offences.append(
                    f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno} imports {private} from {node.module}"
                )
    assert not offences, "\n".join(offences)


def test_no_module_is_longer_than_600_lines_without_saying_why_it_is_one_idea() -> None:
    long = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES and ONE_IDEA not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{path.relative_to(PACKAGE_DIR.parent)}: {lines} lines")
    assert not long, (
        f"modules over {MAX_LINES} lines: split them where their section banners are, or say in the"
        f" module docstring ({ONE_IDEA!r}) why they are one idea:\n" + "\n".join(long)
    )
