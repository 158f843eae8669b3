"""Discovery: every ``pyproject.toml`` (and requirements-only service folder) under the root,
read once into a :class:`Project` with its metadata; the Dockerfiles beside each project."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.errors import Problem, TomlError
from nexusify.files import parse_toml, relpath
from nexusify.model.dynamic_version import static_dynamic_version
from nexusify.model.legacy import read_legacy_project, setup_metadata
from nexusify.model.paths import glob_dirs, is_inside, matches_glob
from nexusify.model.project import LOCK_TOOLS, SKIP_DIRS, Project
from nexusify.model.tree import is_virtualenv, walk
from nexusify.syntax.requirements import find_requirements_files, read_tree
from nexusify.syntax.toml import subtable

LEGACY_MANIFESTS = ("setup.py", "setup.cfg")


def iter_pyprojects(root: Path, exclude: Iterable[str] = ()) -> Iterator[Path]:
    """Every project manifest under ``root``: its ``pyproject.toml``, or ``setup.py``/``setup.cfg``
    for a library that has only those. Skips VCS, virtualenv, build and cache folders, and the
    inside of a project's Python packages (a folder with ``__init__.py`` in a project's folder): a
    ``pyproject.toml`` there (a plugin folder in a library's ``src/``) belongs to that library's
    source tree, not to the monorepo. A package folder in no project (``libs/__init__.py`` above
    the libraries) is walked."""
    excl = list(exclude)
    projects: set[Path] = set()  # project folders found so far (the root left out)
    for dirpath, dirnames, filenames in walk(root):
        here = Path(dirpath)
        found = "pyproject.toml" if "pyproject.toml" in filenames else next(
            (n for n in LEGACY_MANIFESTS if n in filenames), None)
        if found is not None:
            yield here / found
            if here != root:
                projects.add(here)
        if "__init__.py" in filenames and here != root and (here in projects or any(
                parent in projects for parent in here.parents)):
            dirnames[:] = []  # a project's own package: what is inside is its source tree
            continue
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        keep = []
        for d in sorted(dirnames):
            if d in SKIP_DIRS or d.endswith(".egg-info"):
                continue
            sub = d if rel == "." else f"{rel}/{d}"
            if excl and matches_glob(sub, excl):
                continue
            if is_virtualenv(os.path.join(dirpath, d)):
                continue
            if os.path.islink(os.path.join(dirpath, d)):  # os.walk does not enter it: a project there is
                # reported by read_project (outside the root) or found at its real place (inside)
                outside = not Path(os.path.realpath(os.path.join(dirpath, d))).is_relative_to(Path(root).resolve())
                manifest = next((here / d / n for n in ("pyproject.toml", *LEGACY_MANIFESTS) if (here / d / n).is_file()), None)
                if outside and manifest is not None:
                    yield manifest
                continue
            keep.append(d)
        dirnames[:] = keep



def read_project(pp: Path, root: Path, problems: list[Problem]) -> Project | None:
    """The project of the manifest ``pp`` (None, with a problem, when it cannot be read); ``root``: resolved."""
    rel = relpath(pp, root)
    folder = pp.parent.resolve()
    real = pp.resolve() if pp.is_symlink() else folder / pp.name  # (one resolve, not three)
    if not real.is_relative_to(root):
        problems.append(Problem("error", "outside-root", rel, None,
                                f"resolves through a symlink to {real}, outside the monorepo: nexusify neither "
                                "reads nor rewrites it",
                                "move the project into the monorepo (or replace the symlink by the folder itself)"))
        return None
    if pp.name in LEGACY_MANIFESTS:
        return read_legacy_project(pp, root, problems)
    if pp.exists() and not pp.is_file():
        problems.append(Problem("error", "unreadable", rel, None, "not a regular file (a FIFO, device or folder)",
                                "replace it with the project's pyproject.toml"))
        return None
    try:
        text = pp.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        problems.append(Problem("error", "unreadable", rel, None, f"cannot read: {exc.strerror}"))
        return None
    except UnicodeDecodeError:
        problems.append(Problem("error", "unreadable", rel, None, "not UTF-8 text", "save the file as UTF-8"))
        return None
    try:
        data = parse_toml(text, Path(rel))
    except TomlError as exc:
        problems.append(Problem(
            "error", "invalid-toml", rel, exc.line, exc.message,
            "fix the syntax at that position; the rest of the monorepo was still audited",
            column=exc.column,
        ))
        return None
    project = Project(path=folder, pyproject=folder / "pyproject.toml", data=data, text=text)
    read_metadata(project)
    if not project.name and "project" not in data and any((folder / n).is_file() for n in LEGACY_MANIFESTS):
        # a pyproject.toml with only [build-system] (and tool settings): setuptools takes the
        # metadata from setup.cfg / setup.py, so a version they compute is asked of the backend
        name, version = setup_metadata(folder)
        if name:
            project.name, project.normalized, project.style = name, canonicalize_name(name), "setuptools"
            project.version = version
            project.version_dynamic = version is None
    return project



def read_metadata(p: Project) -> None:
    data = p.data
    proj = subtable(data, "project")
    poetry = subtable(data, "tool", "poetry")
    bs = subtable(data, "build-system")
    p.has_build_system = "build-system" in data
    p.build_backend = bs.get("build-backend") if isinstance(bs.get("build-backend"), str) else None
    reqs = bs.get("requires", [])
    p.build_requires = [r for r in reqs if isinstance(r, str)] if isinstance(reqs, list) else []
    styles = []
    if poetry.get("name") or poetry.get("dependencies") or poetry.get("group"):
        styles.append("poetry")
    if proj:
        styles.append("pep621")
    p.style = "+".join(styles) or "unknown"
    name = proj.get("name") or poetry.get("name")
    if isinstance(name, str) and name.strip():
        p.name = name.strip()
        p.normalized = canonicalize_name(p.name)
    if poetry.get("package-mode") is False:
        p.package_mode = False
        p.virtual_reason = "Poetry package-mode = false"
    elif subtable(data, "tool", "uv").get("package") is False:
        p.virtual_reason = "[tool.uv] package = false"
    elif subtable(data, "tool", "pdm").get("distribution") is False:
        p.virtual_reason = "[tool.pdm] distribution = false"
    elif subtable(data, "tool", "pdm").get("package-type") == "application":
        p.virtual_reason = '[tool.pdm] package-type = "application"'
    version = proj.get("version") if "version" in proj else None
    if version is None and poetry.get("version") is not None:
        version = poetry.get("version")
    dynamic = proj.get("dynamic", [])
    if isinstance(version, str) and version.strip():
        p.version = version.strip()
    elif isinstance(dynamic, list) and "version" in dynamic:
        p.version_dynamic = True
        p.version = static_dynamic_version(p)



def requirements_only_projects(root: Path, taken: set[Path], service_globs: list[str],
                                exclude: list[str]) -> list[Project]:
    """Folders matching a service glob that hold requirements files but no pyproject.toml:
    services installed with ``pip install -r`` (named after their folder, no version)."""
    found: list[Project] = []
    for pattern in service_globs:
        for folder in glob_dirs(root, pattern.strip().strip("/")):
            rel = relpath(folder, root)
            skipped = any(part in SKIP_DIRS for part in rel.split("/")) or (exclude and matches_glob(rel, exclude))
            if folder in taken or skipped or not is_inside(folder, root) or folder == root:
                continue
            tops = find_requirements_files(folder)
            if not tops:
                continue
            taken.add(folder)
            found.append(Project(
                path=folder, pyproject=folder / "pyproject.toml", data={}, text="", name=folder.name,
                normalized=canonicalize_name(folder.name), requirements_only=True, requirement_tops=tops,
                virtual_reason="a service with requirements files only (no pyproject.toml)",
            ))
    return found


def requirements_consumers(root: Path, taken: set[Path], exclude: list[str], names: set[str]) -> list[Project]:
    """Folders anywhere in the tree (not only under the service globs) whose requirements files
    install local code (``-e ../../libs/x``, a path, a ``file:`` URL, a container path) or name a
    project of the monorepo: consumers installed with ``pip install -r``. A folder inside a
    project (a library's ``requirements-dev.txt``) belongs to that project and is not one."""
    found: list[Project] = []
    for dirpath, dirnames, _filenames in walk(root):
        here = Path(dirpath).resolve()
        rel = relpath(here, root)
        dirnames[:] = [d for d in sorted(dirnames)
                       if d not in SKIP_DIRS and not d.endswith(".egg-info")
                       and not is_virtualenv(os.path.join(dirpath, d))
                       and not (exclude and matches_glob(d if rel == "." else f"{rel}/{d}", exclude))]
        if here != root and here in taken:
            dirnames[:] = []  # a project's own folders
            continue
        tops = find_requirements_files(here) if here != root else []
        if not tops:
            continue
        files = read_tree(tops)
        if not any(f.entries or any(n in names for n, _line in f.names) for f in files.values()):
            continue
        taken.add(here)
        dirnames[:] = []
        found.append(Project(
            path=here, pyproject=here / "pyproject.toml", data={}, text="", name=here.name,
            normalized=canonicalize_name(here.name), requirements_only=True, requirement_tops=tops,
            virtual_reason="a service with requirements files only (no pyproject.toml)",
        ))
    return found


def find_lockfiles(p: Project, by_path: Mapping[Path, Project]) -> list[Path]:
    """The lockfiles that pin ``p``: its own (poetry.lock, uv.lock, pdm.lock), else, for a uv
    workspace member, the workspace root's uv.lock (one lock for the whole workspace)."""
    own = [p.path / name for name in LOCK_TOOLS if (p.path / name).is_file()]
    if own or p.workspace_root is None or p.workspace_root == p.path:
        return own
    root_lock = p.workspace_root / "uv.lock"
    return [root_lock] if root_lock.is_file() and p.workspace_root in by_path else []


def virtual_by_tool(p: Project, *, depended_upon: bool = False) -> str | None:
    """Why the tool that installs ``p`` (:attr:`Project.tool`, known once its lockfiles are) does not
    build it as a package, when its tables do not say so themselves: uv builds a project only when
    it declares a ``[build-system]`` or ``[tool.uv] package = true`` (a workspace member without
    either is a virtual project), PDM only
    when it has a name (a nameless root is an application that installs its groups). None when it
    is installable, or when another reason was already given. A project another in-repo project
    depends on is built whatever its tables say (uv locks such a member ``editable``, built by the
    setuptools legacy backend): ``depended_upon`` keeps it a package."""
    if p.virtual_reason is not None or p.requirements_only or p.legacy_manifest is not None or depended_upon:
        return p.virtual_reason
    tool = p.tool
    if tool == "uv" and not p.has_build_system and subtable(p.data, "tool", "uv").get("package") is not True:
        return "no [build-system]: uv does not build or install it (a virtual project)"
    if tool == "pdm" and not p.name:
        return "no project name: PDM installs its dependencies and groups, not the project"
    return None
