"""No import cycles inside `zipfstage`, counting imports inside functions too.

A cycle hidden by a function-level import still ties the modules together: neither can be
understood, tested or moved without the other. The graph is built from the source with `ast`, so
it sees every import whether or not it runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zipfstage

PACKAGE = "zipfstage"
ROOT = Path(zipfstage.__file__).parent


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ImportFrom names (resolving `from . import x`)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """Intra-package modules `module` imports anywhere in its source (functions included)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = absolute(node, module, is_package)
            for alias in node.names:  # `from pkg import sub` is an import of pkg.sub
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {name for name in found if name in modules and name != module}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    names = set(modules)
    return {name: imports_of(name, path, names) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None; iterative depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_cycle_finder_reports_a_hidden_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_graph_sees_function_level_and_submodule_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from zipfstage import config\n"
        "def f():\n"
        "    from zipfstage.collect import runner\n"
        "    import zipfstage.errors\n"
    )
    modules = {"zipfstage", "zipfstage.config", "zipfstage.collect", "zipfstage.collect.runner"}
    modules |= {"zipfstage.errors", "zipfstage.m"}
    found = imports_of("zipfstage.m", source, modules)
    assert found == {"zipfstage.config", "zipfstage.collect.runner", "zipfstage.errors"}


def test_only_the_ablate_stage_and_commands_import_ablate_s_torch_modules() -> None:
    """report, compare, plotting and store read ablate.json through store.ablation; nothing
    below the stages imports zipfstage.ablate (which loads torch and the model)."""
    graph = import_graph()
    below = ("zipfstage.report", "zipfstage.compare", "zipfstage.plotting", "zipfstage.store")
    offenders = {
        (module, imported)
        for module, imports in graph.items()
        if module.startswith(below)
        for imported in imports
        if imported.startswith("zipfstage.ablate")
    }
    assert not offenders, offenders
    assert "zipfstage.store.ablation" in graph["zipfstage.report.content"]
    assert "zipfstage.ablate.stage" in graph["zipfstage.demo"]


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert "zipfstage.collect.runner" in graph, "the graph covers the package"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
