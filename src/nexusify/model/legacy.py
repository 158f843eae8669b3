"""Libraries with only ``setup.py`` / ``setup.cfg`` (no ``pyproject.toml``): packages all the same.

Name and version come from ``setup.cfg``'s ``[metadata]`` or literal ``setup(name=..., version=...)``
arguments, dependencies from ``install_requires`` written the same ways (:func:`legacy_requirements`); anything else (a version computed in ``setup.py``) is asked of the backend
(``setuptools.build_meta:__legacy__``, as pip and build do for such a folder) when the library is
a shared package.
"""

from __future__ import annotations

import ast
import configparser
from collections.abc import Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.project import LEGACY_BACKEND, IndexDependency, Project


def read_legacy_project(manifest: Path, root: Path, problems: list[Problem]) -> Project | None:
    folder = manifest.parent.resolve()
    name, version = _from_setup_cfg(folder / "setup.cfg")
    name_computed = None
    if (folder / "setup.py").is_file() and (name is None or version is None):
        try:
            py_name, py_version, computed = _setup_py_fields((folder / "setup.py").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            problems.append(Problem("error", "unreadable", relpath(folder / "setup.py", root), getattr(exc, "lineno", None),
                                    f"cannot read setup.py: {exc}", "fix it, or give the library a pyproject.toml"))
            return None
        name, version = name or py_name, version or py_version
        name_computed = computed if name is None else None
    project = Project(
        path=folder, pyproject=folder / "pyproject.toml", data={}, text="", legacy_manifest=folder / manifest.name,
        build_backend=LEGACY_BACKEND, build_requires=["setuptools>=40.8.0"], has_build_system=True, style="setuptools",
    )
    if name:
        project.name, project.normalized = name, canonicalize_name(name)
    project.name_computed = name_computed
    if version:
        project.version = version
    else:
        project.version_dynamic = True  # computed in setup.py: the backend is asked for shared packages
    return project


def setup_metadata(folder: Path) -> tuple[str | None, str | None]:
    """Name and version that ``setup.cfg`` / a literal ``setup(...)`` in ``folder`` state, for a
    ``pyproject.toml`` that holds only ``[build-system]`` (setuptools reads the metadata from them)."""
    name, version = _from_setup_cfg(folder / "setup.cfg")
    if (folder / "setup.py").is_file() and (name is None or version is None):
        try:
            py_name, py_version = _from_setup_py((folder / "setup.py").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            return name, version  # the backend tells the rest, or audit reports it missing
        name, version = name or py_name, version or py_version
    return name, version


def _from_setup_cfg(path: Path) -> tuple[str | None, str | None]:
    if not path.is_file():
        return None, None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None, None
    name = parser.get("metadata", "name", fallback=None)
    version = parser.get("metadata", "version", fallback=None)
    if version and version.strip().startswith(("attr:", "file:")):
        version = None  # resolved by the backend
    return (name.strip() if name else None), (version.strip() if version else None)


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound once, to a string literal (``PACKAGE = "micro.common"``): as literal
    as the string itself, wherever ``setup()`` uses them."""
    stores: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            stores[node.id] = stores.get(node.id, 0) + 1
    out: dict[str, str] = {}
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
                and stores.get(stmt.targets[0].id) == 1):
            out[stmt.targets[0].id] = stmt.value.value
    return out


def _keywords(call: ast.Call, tree: ast.Module) -> tuple[list[tuple[str, ast.expr]], ast.expr | None]:
    """The ``setup(...)`` call's keyword arguments, a ``**SETUP`` of a module-level dict written
    once as a literal (``SETUP = {"name": ..., ...}``) spread into them; and the first ``**``
    argument that cannot be read that way (None: none)."""
    dicts: dict[str, ast.Dict] = {}
    stores: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            stores[node.id] = stores.get(node.id, 0) + 1
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Dict)):
            dicts[stmt.targets[0].id] = stmt.value
    out: list[tuple[str, ast.expr]] = []
    opaque = None
    for kw in call.keywords:
        if kw.arg is not None:
            out.append((kw.arg, kw.value))
            continue
        spread = dicts.get(kw.value.id) if isinstance(kw.value, ast.Name) and stores.get(kw.value.id) == 1 else None
        if spread is None or any(not (isinstance(k, ast.Constant) and isinstance(k.value, str)) for k in spread.keys):
            opaque = opaque or kw.value
            continue
        out.extend((str(k.value), v) for k, v in zip(spread.keys, spread.values, strict=True)
                   if isinstance(k, ast.Constant))
    return out, opaque


def _literal(expr: ast.expr, constants: Mapping[str, str]) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.Name):
        return constants.get(expr.id)
    return None


def _from_setup_py(text: str) -> tuple[str | None, str | None]:
    """Literal ``name=``/``version=`` keywords of the ``setup(...)`` call."""
    name, version, _computed = _setup_py_fields(text)
    return name, version


def _setup_py_fields(text: str) -> tuple[str | None, str | None, tuple[int, str] | None]:
    """Literal ``name=``/``version=`` of the ``setup(...)`` call (a string, or a module-level name
    bound once to one), and (line, source) of a ``name=`` that is computed."""
    tree = ast.parse(text)
    constants = _constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "setup":
            found: dict[str, str] = {}
            computed = None
            keywords, opaque = _keywords(node, tree)
            for arg, expr in keywords:
                if arg in ("name", "version"):
                    value = _literal(expr, constants)
                    if value is not None:
                        found[arg] = value
                    elif arg == "name":
                        computed = (expr.lineno, ast.get_source_segment(text, expr) or "?")
            if "name" not in found and computed is None and opaque is not None:
                computed = (opaque.lineno, "**" + (ast.get_source_segment(text, opaque) or "?"))
            return found.get("name"), found.get("version"), computed
    return None, None, None


def legacy_requirements(folder: Path) -> tuple[list[tuple[str, Path, int | None]], tuple[Path, int | None] | None]:
    """The runtime requirements a setuptools library in ``folder`` declares outside pyproject.toml:
    ``setup.cfg [options] install_requires`` and a literal ``setup(install_requires=[...])``, each
    with its file and line; and where ``install_requires`` is not a literal list (computed in
    setup.py, ``file:``, ``**kwargs``), which nobody can read without running setup.py (None: none)."""
    out: list[tuple[str, Path, int | None]] = []
    dynamic: tuple[Path, int | None] | None = None
    cfg = folder / "setup.cfg"
    if cfg.is_file():
        parser = configparser.RawConfigParser()
        try:
            text = cfg.read_text(encoding="utf-8")
            parser.read_string(text)
        except (OSError, UnicodeDecodeError, configparser.Error):
            text = ""
        value = parser.get("options", "install_requires", fallback=None) if text else None
        if value is not None:
            lines = text.splitlines()
            at = next((i for i, ln in enumerate(lines) if ln.split("=", 1)[0].strip() == "install_requires"), 0)
            if value.strip().startswith(("file:", "attr:")):
                dynamic = (cfg, at + 1)
            for item in value.splitlines() if dynamic is None else []:
                req = item.split(" #", 1)[0].strip()
                if not req or req.startswith(("#", ";")):
                    continue
                line = next((i + 1 for i in range(at, len(lines)) if lines[i].strip().startswith(req)), None)
                out.append((req, cfg, line))
    py = folder / "setup.py"
    if py.is_file():
        try:
            tree = ast.parse(py.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            return out, dynamic or (py, None)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "setup"):
                continue
            keywords, opaque = _keywords(node, tree)
            value = next((v for arg, v in keywords if arg == "install_requires"), None)
            if value is None:
                if opaque is not None:  # setup(**kwargs): may hold install_requires
                    dynamic = dynamic or (py, node.lineno)
                continue
            items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else None
            constants = _constants(tree)
            if items is None or any(_literal(e, constants) is None for e in items):
                dynamic = dynamic or (py, value.lineno)
                continue
            out.extend((str(_literal(e, constants)), py, e.lineno) for e in items)
    return out, dynamic


def legacy_index_dependencies(p: Project, known: Mapping[str, object]) -> tuple[list[IndexDependency],
                                                                                 tuple[Path, int | None] | None]:
    """The dependencies on monorepo packages (``known``: normalised names) of a library whose
    metadata lives in setup.cfg / setup.py (:func:`legacy_requirements`), as by-name dependencies
    at runtime, so the graph (publish order, affected, release) sees them; and where its
    ``install_requires`` cannot be read (None: it can)."""
    tool = p.data.get("tool")
    if "project" in p.data or (isinstance(tool, dict) and "poetry" in tool) or p.requirements_only:
        return [], None
    reqs, dynamic = legacy_requirements(p.path)
    out: list[IndexDependency] = []
    for text, file, line in reqs:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        norm = canonicalize_name(req.name)
        if norm == p.normalized or norm not in known or req.url:
            continue
        out.append(IndexDependency(name=req.name, normalized=norm, specifier=str(req.specifier), group="main",
                                   runtime=True, file=file, line=line, location=("setuptools", (), line or 0)))
    return out, dynamic
