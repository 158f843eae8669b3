"""Resolve a dynamic ``version`` the way the project's build backend would.

Fast static readers cover the common sources (setuptools ``attr:``/``file:``, hatch ``path``,
pdm ``file``); anything else asks the backend's own ``prepare_metadata_for_build_wheel`` hook
(in this interpreter, when the backend is importable here).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexusify.model.project import Project



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
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for t in targets:
            if (isinstance(t, ast.Name) and t.id == attr
                    and isinstance(value, ast.Constant) and isinstance(value.value, str)):
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
    # the AST, as release writes it (nexusify.release.edits.replace_assignment): a docstring's
    # example `__version__ = "..."` is never the version
    return _literal_from_module(project.path / rel, "__version__")


def _hatch(project: Project) -> str | None:
    spec = project.data.get("tool", {}).get("hatch", {}).get("version", {})
    return _from_path(project, spec.get("path")) if isinstance(spec, dict) else None


def _pdm(project: Project) -> str | None:
    spec = project.data.get("tool", {}).get("pdm", {}).get("version", {})
    if isinstance(spec, dict) and spec.get("source") == "file":
        return _from_path(project, spec.get("path"))
    return None


#: what backends report when they cannot find a version (setuptools, setuptools-scm without git)
PLACEHOLDER_VERSIONS = frozenset({"0.0.0", "0.0", "0"})


def _backend_hook(project: Project) -> tuple[str | None, str | None]:
    """(version, the backend's own message when it gave none) from ``prepare_metadata_for_build_wheel``.

    A placeholder (``0.0.0``) counts as no version: setuptools reports it when a ``file`` source
    is missing, setuptools-scm when there is no git data. Nothing the backend prints reaches
    nexusify's output; its last words are kept for the problem instead."""
    if not project.build_backend:
        return None, "no build backend to ask"
    import pyproject_hooks

    said: list[str] = []

    def runner(cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None) -> None:
        env = {**os.environ, **(extra_environ or {})}
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        said.append(proc.stderr + proc.stdout)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, cmd)

    hooks = pyproject_hooks.BuildBackendHookCaller(str(project.path), project.build_backend, runner=runner)
    version: str | None = None
    with warnings.catch_warnings(record=True) as caught:  # the backend's warnings, re-raised here
        warnings.simplefilter("always")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                dist_info = hooks.prepare_metadata_for_build_wheel(tmp)
                meta = Path(tmp, dist_info, "METADATA").read_text(encoding="utf-8")
            version = Parser().parsestr(meta).get("Version")
        except Exception as exc:
            return None, _last_words("".join(said)) or f"{type(exc).__name__}: {exc}"
    if not version or (str(version) in PLACEHOLDER_VERSIONS):
        words = "; ".join(str(w.message) for w in caught)
        return None, (f"{project.build_backend} reported {version or 'no version'!s}"
                      + (f": {words}" if words else ", its placeholder for an unknown version"))
    return str(version), None


def _last_words(output: str) -> str:
    """The backend's most telling line: its last warning or error, without the traceback (no
    frame lines, an exception's module path dropped: ``PackageNotFoundError: ...``)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not _FRAME.match(ln)]
    for ln in reversed(lines):
        if any(w in ln for w in ("Error", "Warning", "error:", "warning:", "cannot", "not found", "No such")):
            return _EXC_PATH.sub("", ln)[:300]
    return _EXC_PATH.sub("", lines[-1])[:300] if lines else ""


_FRAME = re.compile(r'^\s*(Traceback \(most recent call last\)|File "[^"]*", line \d+|\^+$|~+\^*~*$)')
_EXC_PATH = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Z]\w*: )")


def static_dynamic_version(project: Project) -> str | None:
    """The dynamic version from the static readers only (no subprocess): cheap for any project."""
    for reader in (_setuptools, _hatch, _pdm):
        version = reader(project)
        if version:
            return version.strip()
    return None


def resolve_dynamic_version(project: Project, *, use_backend: bool = True) -> tuple[str | None, str | None]:
    """(version, why not): static readers first, then (``use_backend``) the backend's hook."""
    version = static_dynamic_version(project)
    if version is None and use_backend:
        return _backend_hook(project)
    return version, None


def describe_source(project: Project) -> str:
    """Where the project says its dynamic version comes from, for error messages; the backend's
    own message when it was asked and said why."""
    if project.version_error:
        return f"{project.version_error}; {_static_source(project)}"
    return _static_source(project)


def _static_source(project: Project) -> str:
    tool = project.data.get("tool", {})
    st = tool.get("setuptools", {}).get("dynamic", {}).get("version") if isinstance(tool.get("setuptools"), dict) else None
    if isinstance(st, dict) and st.get("attr"):
        return f"setuptools attr {st['attr']!r} has no literal string value"
    if isinstance(st, dict) and st.get("file"):
        return f"setuptools file {st['file']!r} is missing or empty"
    hv = tool.get("hatch", {}).get("version", {}) if isinstance(tool.get("hatch"), dict) else {}
    if isinstance(hv, dict) and hv.get("path"):
        return f"hatch version path {hv['path']!r} has no __version__ = \"...\""
    if isinstance(hv, dict) and hv.get("source"):
        return f"hatch version source {hv['source']!r} needs its plugin"
    pv = tool.get("pdm", {}).get("version", {}) if isinstance(tool.get("pdm"), dict) else {}
    if isinstance(pv, dict) and pv.get("source"):
        return f"pdm version source {pv['source']!r}" + (f" path {pv['path']!r}" if pv.get("path") else "") + " gave no version"
    if "setuptools_scm" in tool or "setuptools-scm" in " ".join(project.build_requires):
        return "setuptools-scm needs a git tag"
    backend = project.build_backend or "no build backend"
    return f"{backend} did not report a version"


def version_file(project: Project) -> tuple[Path, str | None] | None:
    """The file a dynamic version is read from, when nexusify can write it: (file, the attribute
    assigned in it, e.g. ``__version__``) for setuptools ``attr:``, hatch ``path`` and pdm ``file``
    sources, (file, None) for a setuptools ``file:`` holding only the version. None otherwise."""
    tool = project.data.get("tool", {})
    st = tool.get("setuptools", {}) if isinstance(tool.get("setuptools"), dict) else {}
    spec = st.get("dynamic", {}).get("version") if isinstance(st.get("dynamic"), dict) else None
    if isinstance(spec, dict) and isinstance(spec.get("attr"), str):
        dotted, _, attr = spec["attr"].rpartition(".")
        dirs = [project.path]
        find = st.get("packages", {})
        if isinstance(find, dict) and isinstance(find.get("find"), dict):
            dirs[:0] = [project.path / w for w in find["find"].get("where", []) or []]
        pkg_dir = st.get("package-dir", {})
        if isinstance(pkg_dir, dict) and isinstance(pkg_dir.get(""), str):
            dirs.insert(0, project.path / pkg_dir[""])
        dirs.append(project.path / "src")
        mod = _module_file(project.path, dotted, dirs)
        return (mod, attr) if mod is not None else None
    if isinstance(spec, dict) and isinstance(spec.get("file"), str):
        return project.path / spec["file"], None
    hv = tool.get("hatch", {}).get("version", {}) if isinstance(tool.get("hatch"), dict) else {}
    if isinstance(hv, dict) and isinstance(hv.get("path"), str) and hv.get("source", "regex") == "regex":
        return project.path / hv["path"], "__version__"
    pv = tool.get("pdm", {}).get("version", {}) if isinstance(tool.get("pdm"), dict) else {}
    if isinstance(pv, dict) and pv.get("source") == "file" and isinstance(pv.get("path"), str):
        return project.path / pv["path"], "__version__"
    return None
