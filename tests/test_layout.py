"""The package layout stays a map of the system (issue 10), checked from the sources with ``ast``:

- no module under ``src/nexusify`` is over 500 lines;
- no import cycle between nexusify modules (imports at the top of a module and inside functions
  both count; imports under ``if TYPE_CHECKING:`` never run, so they do not make a cycle);
- no lower layer imports a higher one (:data:`LAYERS`, every import counts, also the
  TYPE_CHECKING ones: a type is a dependency too);
- one description per verb: no module in ``commands/`` defines its own ``HELP`` text (the one
  table is ``commands/verbs.py``).

Every failure names the file and line of the import (or the module) to change.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_LINES = 500

# Low to high: a module may import its own layer and the layers below it, never one above.
# Names are what follows ``nexusify.``: a subpackage or a top-level module, or a dotted module
# inside a subpackage when it sits lower than the rest of it (the longest name matching a module
# wins); "__init__" is ``nexusify/__init__.py``. Edit this table when the layout changes.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "files", "transaction", "gitsteps", "interrupts", "processes", "extras", "credentials",
     "config"),
    # the parsers the model reads with
    ("syntax", "tools"),
    ("model",),
    # the editors and the shared-code rule work on the model's projects
    ("formats", "index", "dists"),
    ("audit", "publish", "rewrite", "init"),
    ("affected", "release"),
    ("deploy",),
    ("verify",),
    ("demo",),
    ("ui",),
    ("commands",),
    ("cli", "docs", "__main__"),
)


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. nexusify.audit.report
    target: str  # imported nexusify module
    where: str  # file:line of the import statement
    type_only: bool  # under `if TYPE_CHECKING:`


def _modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package under ``src``: dotted name -> file."""
    out = {}
    for path in sorted((src / "nexusify").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement anywhere in ``node`` (module level, functions, classes)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, type_only
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), type_only)
        else:
            yield from _walk(child, type_only)


def _imports(modules: dict[str, Path], src: Path = SRC) -> list[Import]:
    out: list[Import] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, type_only in _walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from . import x, from ..a import b
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                while target and target not in modules:  # `import nexusify.a.b` of a name inside a module
                    target = target.rpartition(".")[0]
                if target.startswith("nexusify") and target != name:
                    out.append(Import(name, target, f"{path.relative_to(src).as_posix()}:{node.lineno}", type_only))
    return out


def _layer_of(module: str) -> int | None:
    key = module.split(".", 1)[1] if "." in module else "__init__"
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for i, names in enumerate(LAYERS):
        for name in names:
            if (key == name or key.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), i)
    return None if best is None else best[1]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
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
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_over_500_lines() -> None:
    too_long = []
    for path in _modules().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            too_long.append(f"{path.relative_to(SRC).as_posix()}: {n} lines")
    assert not too_long, f"split these modules (one concept each, under ~400 lines, none over {MAX_LINES}):\n  " \
        + "\n  ".join(too_long)


def _shortest_loop(start: str, edges: dict[str, set[str]], members: set[str]) -> list[str]:
    """The shortest import path from ``start`` back to itself inside one cycle (BFS)."""
    parent: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges.get(node, ()) & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return [start]


def test_no_import_cycle() -> None:
    imports = [i for i in _imports(_modules()) if not i.type_only]
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for i in imports:
        edges.setdefault(i.source, set()).add(i.target)
        where.setdefault((i.source, i.target), i.where)
    report = []
    for component in _cycles(edges):
        # start where the cycle leaves the lowest layer: that import is usually the one to remove
        start = min(component, key=lambda m: (_layer_of(m) if _layer_of(m) is not None else 99, m))
        loop = _shortest_loop(start, edges, set(component))
        hops = [f"{where[(a, b)]}: {a} imports {b}" for a, b in itertools.pairwise(loop)]
        report.append(" -> ".join(loop) + "\n    " + "\n    ".join(hops)
                      + f"\n    ({len(component)} modules in this cycle: {', '.join(component)})")
    assert not report, "import cycles (move the shared part into a lower module):\n  " + "\n  ".join(report)


def _package(module: str) -> str:
    """The package a module belongs to (``nexusify.syntax.toml`` -> ``formats``), or the top-level
    module itself (``nexusify.config`` -> ``config``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_package_cycle() -> None:
    """Packages form a map too: no two packages import each other, through any chain (every import
    counts, TYPE_CHECKING ones included: a type is a dependency too)."""
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for i in _imports(_modules()):
        a, b = _package(i.source), _package(i.target)
        if a != b:
            edges.setdefault(a, set()).add(b)
            where.setdefault((a, b), f"{i.where}: {i.source} imports {i.target}")
    report = []
    for component in _cycles(edges):
        loop = _shortest_loop(min(component), edges, set(component))
        report.append(" -> ".join(loop) + "\n    " + "\n    ".join(where[(a, b)] for a, b in itertools.pairwise(loop)))
    assert not report, "package cycles (move the shared part into a lower package):\n  " + "\n  ".join(report)


def test_the_layer_table_names_packages() -> None:
    """Each layer holds whole packages (or top-level modules): a package split across layers is two
    concerns in one folder."""
    split = [name for names in LAYERS for name in names if "." in name]
    assert not split, f"split these packages so each sits in one layer: {', '.join(split)}"


def test_lower_layers_never_import_higher_ones() -> None:
    modules = _modules()
    unplaced = sorted({m.split(".")[1] if "." in m else "__init__" for m in modules if _layer_of(m) is None})
    assert not unplaced, f"add these to LAYERS in {Path(__file__).name}: {', '.join(unplaced)}"
    wrong = []
    for i in _imports(modules):
        low, high = _layer_of(i.source), _layer_of(i.target)
        assert low is not None and high is not None
        if high > low:
            wrong.append(f"{i.where}: {i.source} (layer {low}) imports {i.target} (layer {high})")
    wrong = list(dict.fromkeys(wrong))  # `from x import a, b` is one line
    assert not wrong, "a lower layer imports a higher one (move the code down, or pass it in):\n  " + "\n  ".join(wrong)


def test_one_description_per_verb() -> None:
    defined = []
    for path in sorted((SRC / "nexusify" / "commands").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HELP" for t in node.targets):
                defined.append(f"{path.relative_to(SRC).as_posix()}:{node.lineno}")
    assert not defined, "a verb's summary lives only in commands/verbs.py; remove HELP at:\n  " + "\n  ".join(defined)


# --------------------------------------------------------------------------- the checker itself


def test_the_checker_finds_cycles_relative_imports_and_type_only_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "nexusify"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from nexusify.model import load\n")  # function level, upward
    (pkg / "model" / "__init__.py").write_text("from .load import x\n")
    (pkg / "model" / "load.py").write_text("import nexusify.errors\nx = 1\n")
    (pkg / "model" / "types.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nexusify.model.load import x\n")
    imports = {(i.source, i.target, i.where, i.type_only) for i in _imports(_modules(tmp_path), tmp_path)}
    assert imports == {
        ("nexusify.errors", "nexusify.model.load", "nexusify/errors.py:2", False),
        ("nexusify.model", "nexusify.model.load", "nexusify/model/__init__.py:1", False),
        ("nexusify.model.load", "nexusify.errors", "nexusify/model/load.py:1", False),
        ("nexusify.model.types", "nexusify.model.load", "nexusify/model/types.py:3", True),
    }
    edges: dict[str, set[str]] = {}
    for source, target, _where, type_only in imports:
        if not type_only:
            edges.setdefault(source, set()).add(target)
    assert _cycles(edges) == [["nexusify.errors", "nexusify.model.load"]]
    members = {"nexusify.errors", "nexusify.model.load"}
    assert _shortest_loop("nexusify.errors", edges, members) == ["nexusify.errors", "nexusify.model.load",
                                                                 "nexusify.errors"]
    assert _layer_of("nexusify.errors") == 0 and _layer_of("nexusify.model.load") == 2
