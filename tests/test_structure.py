"""Structure checks of issue 15, read from the source with `ast` (nothing here imports the app in-process).

- No import loop among the module-level imports of `consult`, `ner_engine`, `config` and `tools` (imports under
  `if TYPE_CHECKING:` never run and are left out). None is allowed.
- Counting the imports inside functions too (they hide loops: each side imports the other on call), the loops
  that are not broken yet are named in KNOWN_CYCLES with the reason; the test fails on any other loop, and on
  a known one that changed or went away (so that its entry is removed).
- `ner_engine` never imports Django, Celery or `consult` (checked in a fresh interpreter's `sys.modules`).
- Nothing in `consult` but `consult/extraction.py` imports `ner_engine` (the one door to the model).
- Selectors (`consult/selectors/`) never import a service (`consult/services/`): reads do not write.
- No function or method in `consult`, `ner_engine`, `config` or `tools` is longer than MAX_FUNCTION_LINES.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("consult", "ner_engine", "config", "tools")

# Loops through imports inside functions, not broken yet: the loop's modules -> why it is still there.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str:
    """The longest prefix of a dotted name that is one of our modules ("" when it is not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return ""


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(module-level imports, imports inside functions) of one module, as (imported name, line).

    Relative imports are made absolute, and `from package import module` names the submodule."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    top: list[tuple[str, int]] = []
    inner: list[tuple[str, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[:len(package) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                         for alias in child.names]
            (inner if in_function else top).extend((name, child.lineno) for name in names)
            visit(child, nested)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return top, inner


def _graph(*, inside_functions: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        top, inner = _imports(module)
        for name, _ in [*top, *(inner if inside_functions else [])]:
            target = _resolve(name)
            if target and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
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
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_graph_builder_sees_the_app():
    graph = _graph()
    assert "consult.extraction" in graph and "ner_engine.extractor" in graph
    assert "consult.models" in graph["consult.services.review"]  # `from consult.models import ...`
    assert "consult.extraction" in graph["consult.services.review"]  # `from consult import extraction`
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_cycle_among_module_level_imports():
    found = _cycles(_graph())
    assert not found, f"import loops among module-level imports: {[sorted(cycle) for cycle in found]}"


def test_no_new_import_cycle_counting_imports_inside_functions():
    found = set(_cycles(_graph(inside_functions=True)))
    new = [sorted(cycle) for cycle in found if cycle not in KNOWN_CYCLES]
    assert not new, f"import loops (counting imports inside functions) not in KNOWN_CYCLES: {new}"
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in found]
    assert not gone, f"loops in KNOWN_CYCLES that no longer exist as listed (update their entries): {gone}"


def test_nothing_but_extraction_imports_ner_engine():
    offenders = [
        f"{MODULES[module].relative_to(ROOT)}:{line} imports {name}"
        for module in MODULES if module.startswith("consult") and module != "consult.extraction"
        for name, line in [*_imports(module)[0], *_imports(module)[1]]
        if name == "ner_engine" or name.startswith("ner_engine.")
    ]
    assert not offenders, "only consult/extraction.py may import ner_engine:\n" + "\n".join(offenders)


def test_ner_engine_never_imports_django_celery_or_consult():
    # ner_engine and the submodules the extractor and the app use, in a fresh interpreter.
    imported = [
        "ner_engine", "ner_engine.types", "ner_engine.triplets", "ner_engine.model_card", "ner_engine.extractor",
        "ner_engine.backbones", "ner_engine.context", "ner_engine.context.assertion", "ner_engine.context.language",
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {imported!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(Path.home())})
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    forbidden = [name for name in modules if name.split(".")[0] in {"django", "celery", "consult", "rest_framework"}]
    assert not forbidden, f"importing ner_engine pulled in {forbidden}"


def test_selectors_never_import_services():
    offenders = [
        f"{MODULES[module].relative_to(ROOT)}:{line} imports {name}"
        for module in MODULES if module.startswith("consult.selectors")
        for name, line in [*_imports(module)[0], *_imports(module)[1]]
        if _resolve(name).startswith("consult.services")
    ]
    assert not offenders, "a selector imports a service:\n" + "\n".join(offenders)


MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_the_limit():
    # Lines from the `def` (decorators excluded) to the last line of the body, docstring and comments included.
    too_long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not too_long, (f"functions over {MAX_FUNCTION_LINES} lines (split them at their seams):\n"
                          + "\n".join(too_long))
