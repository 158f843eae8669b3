"""Resolve a dynamic ``version`` the way the project's build backend would.

Fast static readers cover the common sources (setuptools ``attr:``/``file:``, hatch ``path``,
pdm ``file``); anything else asks the backend's own ``prepare_metadata_for_build_wheel`` hook
(in this interpreter, when the backend is importable here).
"""

from __future__ import annotations

import ast
import re
import tempfile
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexusify.workspace import Project

_VERSION_ASSIGN = re.compile(r"""^\s*__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.M)


def _module_file(base: Path, dotted: str, package_dirs: list[Path]) -> Path | None:
    parts = dotted.split(".")
    for d in package_dirs:
        cand = d.joinpath(*parts)
        for f in (cand.with_suffix(".py"), cand / "__init__.py"):
            if f.is_file():
                return f
    return None


def _literal_from_module(path: Path, attr: str) -> str | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        targets: list[Any] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Name) and t.id == attr:
                value = node.value  # type: ignore[union-attr]
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return value.value
    return None


def _setuptools(project: Project) -> str | None:
    tool = project.data.get("tool", {}).get("setuptools", {})
    spec = tool.get("dynamic", {}).get("version")
    if not isinstance(spec, dict):
        return None
    if isinstance(spec.get("attr"), str):
        dotted, _, attr = spec["attr"].rpartition(".")
        dirs = [project.path]
        find = tool.get("packages", {})
        if isinstance(find, dict):
            for w in find.get("find", {}).get("where", []) or []:
                dirs.insert(0, project.path / w)
        pkg_dir = tool.get("package-dir", {})
        if isinstance(pkg_dir, dict) and isinstance(pkg_dir.get(""), str):
            dirs.insert(0, project.path / pkg_dir[""])
        dirs.append(project.path / "src")
        mod = _module_file(project.path, dotted, dirs)
        return _literal_from_module(mod, attr) if mod else None
    if spec.get("file"):
        files = spec["file"] if isinstance(spec["file"], list) else [spec["file"]]
        try:
            return "".join((project.path / f).read_text(encoding="utf-8") for f in files).strip() or None
        except OSError:
            return None
    return None


def _from_path(project: Project, rel: Any) -> str | None:
    if not isinstance(rel, str):
        return None
    try:
        text = (project.path / rel).read_text(encoding="utf-8")
    except OSError:
        return None
    m = _VERSION_ASSIGN.search(text)
    return m.group(1) if m else None


def _hatch(project: Project) -> str | None:
    spec = project.data.get("tool", {}).get("hatch", {}).get("version", {})
    return _from_path(project, spec.get("path")) if isinstance(spec, dict) else None


def _pdm(project: Project) -> str | None:
    spec = project.data.get("tool", {}).get("pdm", {}).get("version", {})
    if isinstance(spec, dict) and spec.get("source") == "file":
        return _from_path(project, spec.get("path"))
    return None


def _backend_hook(project: Project) -> str | None:
    if not project.build_backend:
        return None
    try:
        import pyproject_hooks
    except ImportError:  # pragma: no cover
        return None
    hooks = pyproject_hooks.BuildBackendHookCaller(
        str(project.path), project.build_backend, runner=pyproject_hooks.quiet_subprocess_runner
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dist_info = hooks.prepare_metadata_for_build_wheel(tmp)
            meta = Path(tmp, dist_info, "METADATA").read_text(encoding="utf-8")
    except Exception:
        return None
    version = Parser().parsestr(meta).get("Version")
    return str(version) if version else None


def resolve_dynamic_version(project: Project) -> str | None:
    for reader in (_setuptools, _hatch, _pdm, _backend_hook):
        version = reader(project)
        if version:
            return version
    return None
