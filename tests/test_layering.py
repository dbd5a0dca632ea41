"""The layering of DESIGN.md, checked on the source: every import of every kwsc module, read from its AST.

Rules (imports inside functions count too: a lazy import is still a dependency):
  * kwsc.ir imports only the standard library, numpy and the leaf modules kwsc.errors / fileio / limits (and
    networkx, lazily, for the to_networkx view);
  * nothing under kwsc.ir, kwsc.passes or kwsc.frontends imports kwsc.backends;
  * nothing outside kwsc.commands and kwsc.cli imports kwsc.commands;
  * torch is imported only under kwsc.train;
  * no import circles between kwsc modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

KWSC = Path(__file__).resolve().parents[1] / "kwsc"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(KWSC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(KWSC.rglob("*.py")) if "runtime" not in p.parts}
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports (resolved: ``from kwsc.ir import tables`` is kwsc.ir.tables)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if name in PACKAGES else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


IMPORTS = {name: _imports(name) for name in MODULES}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violations(importer, forbidden) -> list[str]:
    """``"<module> imports <target>"`` for every import of a module matching ``importer`` that is ``forbidden``."""
    return sorted(f"{name} imports {target}" for name, targets in IMPORTS.items() if importer(name)
                  for target in targets if forbidden(target))


def test_the_ir_imports_only_numpy_and_the_leaf_modules():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    # networkx: Graph.to_networkx(), the optional analysis view DESIGN.md describes (imported only when called)
    allowed = ("kwsc.ir", "kwsc.errors", "kwsc.fileio", "kwsc.limits", "numpy", "networkx")
    assert _violations(lambda n: _within(n, "kwsc.ir"), lambda t: t.split(".")[0] not in stdlib
                       and not any(_within(t, a) for a in allowed)) == []


def test_passes_and_frontends_never_import_a_backend():
    lower = ("kwsc.ir", "kwsc.passes", "kwsc.frontends")
    assert _violations(lambda n: any(_within(n, p) for p in lower), lambda t: _within(t, "kwsc.backends")) == []


def test_only_the_command_line_imports_the_commands():
    assert _violations(lambda n: not (_within(n, "kwsc.commands") or n == "kwsc.cli"),
                       lambda t: _within(t, "kwsc.commands")) == []


def test_torch_only_under_train():
    assert _violations(lambda n: not _within(n, "kwsc.train"), lambda t: t.split(".")[0] == "torch") == []


def _edges() -> dict[str, set[str]]:
    """Module → kwsc modules it makes Python execute: the target and, from outside it, the target's packages."""
    edges: dict[str, set[str]] = {}
    for name, targets in IMPORTS.items():
        out = edges.setdefault(name, set())
        for target in targets:
            if target not in MODULES:
                continue
            parts = target.split(".")
            for k in range(2, len(parts) + 1):
                step = ".".join(parts[:k])
                if step in MODULES and not _within(name, step) and step != name:
                    out.add(step)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_no_import_circles():
    assert _cycles(_edges()) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_circle_finder_finds_circles(edges, expected):
    assert _cycles(edges) == expected


def test_the_import_reader_sees_lazy_and_package_imports():
    """The reader must see what the rules are about, or the tests above would pass vacuously."""
    assert "kwsc.ir.tables" in IMPORTS["kwsc.ir.op_dsp"]  # `from kwsc.ir import tables`
    assert "kwsc.ir.semantics" in IMPORTS["kwsc.passes.fold_constants"]
    assert any(_within(t, "kwsc.commands") for t in IMPORTS["kwsc.cli"])
    assert any(t.startswith("kwsc.backends.c") for t in IMPORTS["kwsc.commands.compile"])  # imported in a function
