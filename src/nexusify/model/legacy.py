"""Libraries with only ``setup.py`` / ``setup.cfg`` (no ``pyproject.toml``): packages all the same.

Name and version come from ``setup.cfg``'s ``[metadata]`` or literal ``setup(name=..., version=...)``
arguments; anything else (a version computed in ``setup.py``) is asked of the backend
(``setuptools.build_meta:__legacy__``, as pip and build do for such a folder) when the library is
a shared package.
"""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.model.paths import relpath
from nexusify.model.project import LEGACY_BACKEND, Project


def read_legacy_project(manifest: Path, root: Path, problems: list[Problem]) -> Project | None:
    folder = manifest.parent.resolve()
    name, version = _from_setup_cfg(folder / "setup.cfg")
    if (folder / "setup.py").is_file() and (name is None or version is None):
        try:
            py_name, py_version = _from_setup_py((folder / "setup.py").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            problems.append(Problem("error", "unreadable", relpath(folder / "setup.py", root), getattr(exc, "lineno", None),
                                    f"cannot read setup.py: {exc}", "fix it, or give the library a pyproject.toml"))
            return None
        name, version = name or py_name, version or py_version
    project = Project(
        path=folder, pyproject=folder / "pyproject.toml", data={}, text="", legacy_manifest=folder / manifest.name,
        build_backend=LEGACY_BACKEND, build_requires=["setuptools>=40.8.0"], has_build_system=True, style="setuptools",
    )
    if name:
        project.name, project.normalized = name, canonicalize_name(name)
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


def _from_setup_py(text: str) -> tuple[str | None, str | None]:
    """Literal ``name=``/``version=`` keywords of the ``setup(...)`` call."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "setup":
            found: dict[str, str] = {}
            for kw in node.keywords:
                if kw.arg in ("name", "version") and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    found[kw.arg] = kw.value.value
            return found.get("name"), found.get("version")
    return None, None
