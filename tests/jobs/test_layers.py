"""Imports inside jobs run one way, down the flow (see the style guide):
no module imports, even lazily, a module that imports it back."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import jobs

PACKAGE = Path(jobs.__file__).parent

#: Modules that may import jobs modules inside a function, and why.
DEFERRED_ON_PURPOSE = {
    "jobs": "the public API is imported lazily: Django imports the package before models",
    "jobs.apps": "ready() registers the checks once the app registry is ready",
    "jobs.backends": "a TASKS entry must load (and its check report) without jobs installed",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_jobs_modules(path: Path):
    """(module imported, whether inside a function) for each jobs import in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            targets = [source] if node.module else [f"{source}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "jobs" or target.startswith("jobs."):
                yield target, id(node) in nested


def import_graph():
    graph, deferred = {}, {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = module_name(path)
        imports = list(imported_jobs_modules(path))
        graph[name] = {target for target, _ in imports if target != name}
        deferred[name] = {target for target, inside in imports if inside}
    return graph, deferred


def test_jobs_imports_form_no_cycle():
    graph, _ = import_graph()
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_lower_layers_know_nothing_of_higher_ones():
    graph, _ = import_graph()
    assert "jobs.claiming" not in graph["jobs.models"]
    assert "jobs.backends" not in graph["jobs.payload"]
    assert not graph["jobs.payload"] & {"jobs.running", "jobs.enqueueing", "jobs.taskcalls"}


def test_no_import_is_hidden_in_a_function_to_dodge_a_cycle():
    _, deferred = import_graph()
    hidden = {name: targets for name, targets in deferred.items() if targets}
    assert set(hidden) <= set(DEFERRED_ON_PURPOSE), hidden
