"""The house's structure, read from the code: imports point one way (tuning -> recipes ->
modelzoo), and no module of recipes/, tuning/ or benchmarks/ imports itself back through others.

Every import counts, including those inside functions (they are still a dependency, only a
later one)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("modelzoo", "recipes", "tuning", "benchmarks")
CHECKED = ("recipes", "tuning", "benchmarks")


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _target(name: str, modules: dict) -> str | None:
    """The project module an import of ``name`` loads: the longest prefix that is one."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _imports(path: Path, modules: dict) -> set[str]:
    """The project modules one file imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {t for t in (_target(n, modules) for n in names) if t}
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]], within: tuple[str, ...]) -> list[list[str]]:
    """Each strongly connected group of two or more modules under ``within`` (Tarjan's algorithm)."""
    nodes = [n for n in graph if n.split(".")[0] in within]
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt.split(".")[0] not in within:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_a_cycle_and_only_cycles():
    graph = {"recipes.a": {"recipes.b"}, "recipes.b": {"recipes.c"}, "recipes.c": {"recipes.a"}}
    graph["recipes.d"] = {"recipes.a"}
    assert cycles(graph, ("recipes",)) == [["recipes.a", "recipes.b", "recipes.c"]]
    assert cycles({"recipes.a": {"recipes.b"}, "recipes.b": set()}, ("recipes",)) == []


def test_the_graph_sees_function_level_and_package_imports():
    graph = import_graph()
    # a function-level import (the CLI imports the classification task only when it runs)
    assert "recipes.tasks.classify" in graph["recipes.train"]
    # ``from recipes.data import pipeline`` is the module, not the package
    assert "recipes.data.pipeline" in graph["recipes.tasks.classify"]


def test_no_import_cycle_in_recipes_tuning_or_benchmarks():
    assert cycles(import_graph(), CHECKED) == []


def test_imports_point_one_way():
    """modelzoo imports neither recipes nor tuning; recipes does not import tuning."""
    above = {"modelzoo": ("recipes", "tuning", "benchmarks"), "recipes": ("tuning", "benchmarks")}
    wrong = [
        (module, target)
        for module, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] in above.get(module.split(".")[0], ())
    ]
    assert wrong == []


MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 49  # "under 50"


def _sizes():
    """(lines, where) of every module and every function (decorators included) under CHECKED."""
    modules, functions = [], []
    for package in CHECKED:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            where = str(path.relative_to(ROOT))
            modules.append((len(text.splitlines()), where))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    functions.append((node.end_lineno - first + 1, f"{where}:{node.name}"))
    return modules, functions


def test_no_module_over_450_lines_and_every_function_under_50():
    """Measured on the tree as ``ruff format`` leaves it (CI checks the format first)."""
    modules, functions = _sizes()
    assert len(modules) > 40 and len(functions) > 400  # the walk saw the tree
    assert [m for m in modules if m[0] > MAX_MODULE_LINES] == []
    assert [f for f in functions if f[0] > MAX_FUNCTION_LINES] == []


def _readme_layout() -> list[str]:
    """The paths README's Layout section lists, one per line of its code block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def test_readme_layout_matches_the_tree():
    listed = _readme_layout()
    assert [p for p in listed if not (ROOT / p).exists()] == []
    files = [
        str(p.relative_to(ROOT))
        for package in (*CHECKED, "modelzoo")
        for p in sorted((ROOT / package).rglob("*.py"))
        if p.name != "__init__.py" and "models" not in p.relative_to(ROOT).parts[:2]
    ]
    assert [f for f in files if f not in listed] == []


def _serializable_classes() -> list[tuple[str, str]]:
    """(package, class name) of every class the project registers with Keras's serialization."""
    found = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and getattr(deco.func, "attr", "") == "register_keras_serializable"
                ):
                    package = next((k.value.value for k in deco.keywords if k.arg == "package"), "Custom")
                    found.append((package, node.name))
    return found


def test_no_two_serializable_classes_share_a_keras_name():
    """Keras keys its registry by ``package>ClassName`` and a second class of the same name silently
    replaces the first: saved models of the first then load the wrong layer (two
    ``PositionEmbedding`` layers, ViT's and BERT's, once did)."""
    names = [f"{package}>{name}" for package, name in _serializable_classes()]
    assert len(names) > 10  # the walk saw the layers
    assert sorted({n for n in names if names.count(n) > 1}) == []
