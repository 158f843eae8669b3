"""The monorepo model: discovery of projects, their local (path/file/workspace) dependencies,
classification into shared packages and services, and the publish order.

Everything here is read-only and collects problems instead of raising, so one broken
``pyproject.toml`` never hides the rest of the monorepo. ``audit`` reports the model;
``publish``, ``rewrite`` and ``deploy`` execute plans built from it.

Reading happens in passes, each linear in the size of the monorepo:

1. discover and parse every ``pyproject.toml`` (one read, one parse per file);
2. find uv workspaces (roots, members, root ``[tool.uv.sources]`` inherited by members);
3. read dependencies (Poetry tables, PEP 621/735 arrays, uv sources, PDM and hatch file URLs);
4. resolve every dependency to a project (relative paths, workspace members, absolute
   container paths mapped by aliases or trailing segments through an index);
5. classify (configured globs, conventional folders, then the dependency graph) and check.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nexusify.errors import TomlError
from nexusify.files import parse_toml
from nexusify.formats.requirements import (
    RequirementsFile,
    file_group,
    find_requirements_files,
    read_tree,
)

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "node_modules", "__pycache__",
    "build", "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".nexusify", "site-packages", ".eggs", ".idea", ".vscode", ".cache", "htmlcov", ".pdm-build",
})
SHARED_GLOBS = ("shared/packages/*", "libs/*", "packages/*")
SERVICE_GLOBS = ("services/*", "apps/*", "projects/*", "jobs/*")
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
DOCKERFILE_DIRS = ("", "docker", "deploy", ".docker")

DepKind = Literal["poetry-path", "pep508-file", "uv-path", "uv-workspace", "requirements"]
Role = Literal["shared", "service", "other"]
Severity = Literal["error", "warning"]


@dataclass
class Problem:
    severity: Severity
    code: str
    path: str | None
    line: int | None
    message: str
    hint: str | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity, "code": self.code, "path": self.path,
            "line": self.line, "column": self.column, "message": self.message, "hint": self.hint,
        }

    @property
    def location(self) -> str:
        loc = self.path or ""
        if loc and self.line:
            loc += f":{self.line}"
            if self.column:
                loc += f":{self.column}"
        return loc

    def __str__(self) -> str:
        loc = self.location
        text = f"{loc}: {self.severity}[{self.code}]: {self.message}" if loc else f"{self.severity}[{self.code}]: {self.message}"
        return text + (f" (hint: {self.hint})" if self.hint else "")


class HasProblems:
    """For reports holding a ``problems`` list: its errors and warnings."""

    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass
class LocalDependency:
    """A dependency on another project of the monorepo, by path, file URL or workspace.

    ``location`` says where it is written, for the writers:
    - ("poetry", table_path, key): a Poetry dependency table entry, e.g.
      (("tool","poetry","group","dev","dependencies"), "maestro-x")
    - ("pep508", array_path, index): a requirement string in a PEP 621/735 array
    - ("requirements", (), line): a line of a pip requirements file (``file``), whose path is
      resolved relative to that file's folder; a bare path gets its name from the project it
      resolves to
    ``source_key`` names the ``[tool.uv.sources]`` entry when the path lives there;
    ``source_file`` is the file holding that entry when it is inherited from a uv workspace root.
    """

    name: str
    normalized: str
    kind: DepKind
    raw_path: str | None
    resolved: Path | None
    group: str  # "main", "dev", a Poetry/PEP 735 group, or "extra:<name>"
    runtime: bool
    file: Path
    line: int | None
    location: tuple[str, tuple[str, ...], str | int]
    extras: list[str] = field(default_factory=list)
    markers: str | None = None
    editable: bool = False
    optional: bool = False
    specifier: str = ""
    source_key: str | None = None
    mapped_from: str | None = None  # an absolute container path mapped onto the monorepo
    source_line: int | None = None  # line of the [tool.uv.sources] entry
    source_file: Path | None = None  # file of the [tool.uv.sources] entry (a workspace root's)
    written: str | None = None  # the path or URL exactly as written

    @property
    def target(self) -> str:
        return self.normalized

    @property
    def path_line(self) -> int | None:
        """The line where the path itself is written (the uv source entry, else the dependency)."""
        if self.source_line is not None and (self.source_file is None or self.source_file == self.file):
            return self.source_line
        return self.line


@dataclass
class Project:
    path: Path  # folder
    pyproject: Path
    data: dict[str, Any]
    text: str
    name: str | None = None
    normalized: str | None = None
    version: str | None = None
    version_dynamic: bool = False
    build_backend: str | None = None
    build_requires: list[str] = field(default_factory=list)
    has_build_system: bool = False
    style: str = "unknown"  # "poetry", "pep621", "poetry+pep621"
    package_mode: bool = True
    workspace_members: list[Path] = field(default_factory=list)
    local_deps: list[LocalDependency] = field(default_factory=list)
    dockerfiles: list[Path] = field(default_factory=list)
    role: Role = "other"
    workspace_root: Path | None = None  # the uv workspace this project is a member of
    virtual_reason: str | None = None  # why it is not installable, when it is not
    requirements_only: bool = False  # a service folder with requirements files and no pyproject.toml
    requirement_tops: list[Path] = field(default_factory=list)  # its requirements*.txt, requirements/*.txt
    requirement_files: dict[Path, RequirementsFile] = field(default_factory=dict)  # those and their includes
    _lines: _Lines | None = field(default=None, repr=False, compare=False)

    @property
    def is_virtual(self) -> bool:
        """Not installable as a package (Poetry package-mode = false, uv workspace root...)."""
        return (self.virtual_reason is not None or not self.package_mode
                or (bool(self.workspace_members) and not self.has_build_system))

    @property
    def lines(self) -> _Lines:
        if self._lines is None:
            self._lines = _Lines(self.text)
        return self._lines

    def rel(self, root: Path) -> str:
        return relpath(self.path, root)

    @property
    def manifest(self) -> Path:
        """The file that declares the project: its pyproject.toml, or for a requirements-only
        service its first requirements file."""
        if self.requirements_only and self.requirement_tops:
            return self.requirement_tops[0]
        return self.pyproject

    def internal_names(self, runtime_only: bool = False) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.local_deps:
            if d.resolved is not None and (d.runtime or not runtime_only):
                seen.setdefault(d.normalized, None)
        return list(seen)


@dataclass
class Workspace:
    root: Path
    projects: list[Project]
    problems: list[Problem]
    by_name: dict[str, Project]
    _by_path: dict[Path, Project] = field(default_factory=dict, repr=False)
    _deps_cache: dict[tuple[str, bool], list[str]] = field(default_factory=dict, repr=False)

    @property
    def shared(self) -> list[Project]:
        return [p for p in self.projects if p.role == "shared"]

    @property
    def services(self) -> list[Project]:
        return [p for p in self.projects if p.role == "service"]

    def project_at(self, folder: Path) -> Project | None:
        if not self._by_path:
            self._by_path = {p.path: p for p in self.projects}
        return self._by_path.get(Path(os.path.normpath(folder.resolve())))

    def dependencies_of(self, name: str, runtime_only: bool = True) -> list[str]:
        key = (name, runtime_only)
        cached = self._deps_cache.get(key)
        if cached is not None:
            return cached
        p = self.by_name.get(name)
        out = [] if p is None else [n for n in p.internal_names(runtime_only) if n in self.by_name]
        self._deps_cache[key] = out
        return out

    def transitive(self, project: Project, runtime_only: bool = True) -> list[str]:
        """Every shared package ``project`` needs, direct and indirect (runtime edges beyond
        the first hop; the first hop honours ``runtime_only``)."""
        out: dict[str, None] = {}
        stack = [n for n in project.internal_names(runtime_only) if n in self.by_name]
        while stack:
            n = stack.pop()
            if n in out:
                continue
            out[n] = None
            stack.extend(d for d in self.dependencies_of(n, True) if d not in out)
        return sorted(out)

    def publish_order(self) -> list[str]:
        """Topological order of shared packages by runtime internal dependencies.

        Ties are broken by name so the order is stable. A cycle raises CycleError.
        """
        names = sorted(p.normalized for p in self.shared if p.normalized)
        known = set(names)
        deps = {n: sorted(d for d in self.dependencies_of(n, True) if d in known) for n in names}
        order: list[str] = []
        state: dict[str, int] = {}
        for start in names:
            if state.get(start):
                continue
            # iterative depth-first search (deep chains must not hit the recursion limit)
            state[start] = 1
            trail = [start]
            stack: list[Iterator[str]] = [iter(deps[start])]
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    done = trail.pop()
                    state[done] = 2
                    order.append(done)
                    continue
                s = state.get(nxt)
                if s == 2:
                    continue
                if s == 1:
                    raise CycleError([*trail[trail.index(nxt):], nxt])
                state[nxt] = 1
                trail.append(nxt)
                stack.append(iter(deps[nxt]))
        return order

    def cycles(self) -> list[list[str]]:
        """Every dependency cycle among shared packages (runtime edges), one per strongly
        connected component, each as a closed path ``[a, b, ..., a]``."""
        names = sorted(p.normalized for p in self.shared if p.normalized)
        known = set(names)
        deps = {n: sorted(d for d in self.dependencies_of(n, True) if d in known) for n in names}
        out: list[list[str]] = []
        for comp in _strongly_connected(names, deps):
            if len(comp) == 1 and comp[0] not in deps[comp[0]]:
                continue
            members = set(comp)
            start = min(comp)
            out.append(_cycle_through(start, deps, members))
        return sorted(out)

    def edges(self, runtime_only: bool = False) -> list[tuple[str, str, bool]]:
        """(from, to, runtime) for every resolved internal dependency, services included."""
        result: dict[tuple[str, str], bool] = {}
        for p in self.projects:
            if not p.normalized or p.role == "other":
                continue
            for d in p.local_deps:
                if d.resolved is None or d.normalized not in self.by_name:
                    continue
                if runtime_only and not d.runtime:
                    continue
                key = (p.normalized, d.normalized)
                result[key] = result.get(key, False) or d.runtime
        return [(a, b, r) for (a, b), r in sorted(result.items())]


class CycleError(Exception):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def _strongly_connected(names: list[str], deps: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for root in names:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(deps[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(deps[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                comps.append(sorted(comp))
    return comps


def _cycle_through(start: str, deps: dict[str, list[str]], members: set[str]) -> list[str]:
    """A shortest closed path from ``start`` back to itself inside one component."""
    prev: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt_frontier = []
        for n in frontier:
            for d in deps[n]:
                if d not in members:
                    continue
                if d == start:
                    path = [n]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
                if d not in seen:
                    seen.add(d)
                    prev[d] = n
                    nxt_frontier.append(d)
        frontier = nxt_frontier
    return [start, start]  # pragma: no cover - a component always closes


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form ("." for the root itself); ``path`` unchanged
    when it is outside. String arithmetic: called for every project, dependency and problem."""
    p, r = str(path), str(root)
    if p == r:
        return "."
    if p.startswith(r) and p[len(r):len(r) + 1] == os.sep:
        rel = p[len(r) + 1:]
    elif r == os.sep and p.startswith(r):
        rel = p[1:]
    else:
        return path.as_posix()
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


# --------------------------------------------------------------------------- line lookup


_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]+?)\s*\]")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for raw in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', dotted):
        part = raw.strip()
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


class _Lines:
    """A file's lines with an index of its table headers, built once."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: dict[tuple[str, ...], int] = {}
        self.header_numbers: list[int] = []
        for number, line in enumerate(self.lines, start=1):
            if "[" not in line:
                continue
            m = _HEADER.match(line)
            if m:
                self.headers.setdefault(_split_key(m.group(1)), number)
                self.header_numbers.append(number)
            elif line.lstrip().startswith("[["):
                self.header_numbers.append(number)

    def header(self, table: tuple[str, ...]) -> int | None:
        return self.headers.get(table)

    def _section_end(self, start: int) -> int:
        for n in self.header_numbers:
            if n > start:
                return n - 1
        return len(self.lines)

    def key(self, table: tuple[str, ...], key: str) -> int | None:
        """The line of ``key = `` in ``[table]``, else of a dotted ``...key =`` anywhere."""
        candidates = (key, f'"{key}"', f"'{key}'")
        start = self.header(table)
        if start is not None:
            for n in range(start + 1, self._section_end(start) + 1):
                s = self.lines[n - 1].lstrip()
                for c in candidates:
                    if s.startswith(c) and s[len(c):].lstrip().startswith("="):
                        return n
        # a sub-table header ([tool.uv.sources.name]) or a dotted key (sources.name = ...)
        sub = self.header((*table, key))
        if sub is not None:
            return sub
        for n, line in enumerate(self.lines, start=1):
            s = line.lstrip()
            for c in candidates:
                i = s.find(c)
                if i > 0 and s[i - 1] == "." and s[i + len(c):].lstrip().startswith("="):
                    return n
        return None

    def string(self, value: str, after: int | None = None) -> int | None:
        """The line of the quoted string ``value``, searching from ``after`` first."""
        needles = (f'"{value}"', f"'{value}'", value)
        start = after or 1
        for needle in needles:
            for n in range(start, len(self.lines) + 1):
                if needle in self.lines[n - 1]:
                    return n
        if start > 1:
            return self.string(value)
        return None

    def pattern(self, rx: re.Pattern[str]) -> int | None:
        for n, line in enumerate(self.lines, start=1):
            if rx.search(line):
                return n
        return None


_NAME_KEY = re.compile(r"^\s*name\s*=")
_DYNAMIC_KEY = re.compile(r"^\s*dynamic\s*=")


# --------------------------------------------------------------------------- discovery


def iter_pyprojects(root: Path, exclude: Iterable[str] = ()) -> Iterator[Path]:
    """Every pyproject.toml under ``root``, skipping VCS, virtualenv, build and cache folders."""
    excl = list(exclude)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        keep = []
        for d in sorted(dirnames):
            if d in SKIP_DIRS or d.endswith(".egg-info"):
                continue
            sub = d if rel == "." else f"{rel}/{d}"
            if excl and _matches(sub, excl):
                continue
            if os.path.isfile(os.path.join(dirpath, d, "pyvenv.cfg")):
                continue
            keep.append(d)
        dirnames[:] = keep
        if "pyproject.toml" in filenames:
            yield Path(dirpath) / "pyproject.toml"


def _matches(rel: str, globs: Iterable[str]) -> bool:
    """Glob match segment by segment: ``*`` never crosses a ``/``; ``**`` matches any depth."""
    parts = rel.split("/")
    for g in globs:
        pattern = g.strip().strip("/")
        if not pattern:
            continue
        if "**" in pattern:
            if fnmatch.fnmatchcase(rel, pattern.replace("**/", "*").replace("**", "*")):
                return True
            continue
        gparts = pattern.split("/")
        if len(gparts) == len(parts) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, gparts, strict=True)):
            return True
    return False


def load_workspace(
    root: Path,
    *,
    shared_globs: Iterable[str] = (),
    service_globs: Iterable[str] = (),
    exclude: Iterable[str] = (),
    path_aliases: dict[str, str] | None = None,
    resolve_dynamic: bool = True,
) -> Workspace:
    """Discover and classify every project under ``root``; problems are collected, not raised.

    ``resolve_dynamic`` allows asking a build backend for a dynamic version (a subprocess) when
    the fast static readers cannot tell it; this is only ever done for shared packages.
    """
    root = root.resolve()
    service_globs = list(service_globs)
    exclude = list(exclude)
    problems: list[Problem] = []
    projects: list[Project] = []
    broken: set[Path] = set()
    for pp in iter_pyprojects(root, exclude):
        project = _read_project(pp, root, problems)
        if project is None:
            broken.add(pp.parent.resolve())
        else:
            projects.append(project)
    taken = {p.path for p in projects} | broken
    projects.extend(_requirements_only_projects(root, taken, service_globs or list(SERVICE_GLOBS), exclude))
    projects.sort(key=lambda p: p.path.as_posix())

    by_path = {p.path: p for p in projects}
    by_name: dict[str, Project] = {}
    for p in projects:
        if not p.normalized:
            continue
        other = by_name.get(p.normalized)
        if other is not None:
            problems.append(Problem(
                "error", "duplicate-name", relpath(p.manifest, root), p.lines.pattern(_NAME_KEY),
                f"{p.name!r} has the same normalised name ({p.normalized}) as {other.name!r} in "
                f"{relpath(other.manifest, root)}",
                "rename one of them: an index holds one project per normalised name",
            ))
            continue
        by_name[p.normalized] = p

    roots = _link_workspaces(projects, by_path)
    for p in projects:
        _read_poetry_deps(p, root, problems)
        _read_pep621_deps(p, root, problems, roots.get(p.workspace_root) if p.workspace_root else None)
        _read_requirements_deps(p, root, problems)

    mapper = _PathMapper(root, by_path, dict(path_aliases or {}))
    for p in projects:
        for dep in p.local_deps:
            _resolve_dependency(dep, p, root, by_path, by_name, mapper, broken, exclude, problems)
            _adopt_target_name(dep, by_path)
        # `-e .` in a project's own requirements file installs the project itself
        p.local_deps = [d for d in p.local_deps if not (d.kind == "requirements" and d.resolved == p.path)]

    ws = Workspace(root, projects, problems, by_name, by_path)
    for p in projects:
        p.dockerfiles = _find_dockerfiles(p.path)
    _classify(ws, list(shared_globs), list(service_globs))
    for p in projects:
        if p.role == "shared" and p.version is None and p.version_dynamic and resolve_dynamic:
            from nexusify.model.dynamic_version import resolve_dynamic_version

            p.version = resolve_dynamic_version(p)
    _check_targets(ws)
    return ws


def _find_dockerfiles(folder: Path) -> list[Path]:
    found: list[Path] = []
    for sub in DOCKERFILE_DIRS:
        d = folder / sub if sub else folder
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            n = e.name
            if (n == "Dockerfile" or n.startswith("Dockerfile.") or n.endswith(".Dockerfile")
                    or n.lower() == "containerfile") and e.is_file():
                found.append(Path(e.path))
    return sorted(found)


def _read_project(pp: Path, root: Path, problems: list[Problem]) -> Project | None:
    rel = relpath(pp, root)
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
    folder = pp.parent.resolve()
    project = Project(path=folder, pyproject=folder / "pyproject.toml", data=data, text=text)
    _read_metadata(project)
    return project


def _table(data: dict[str, Any], *path: str) -> dict[str, Any]:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict):
            return {}
        cur = cur.get(key, {})
    return cur if isinstance(cur, dict) else {}


def _read_metadata(p: Project) -> None:
    data = p.data
    proj = _table(data, "project")
    poetry = _table(data, "tool", "poetry")
    bs = _table(data, "build-system")
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
    elif _table(data, "tool", "uv").get("package") is False:
        p.virtual_reason = "[tool.uv] package = false"
    elif _table(data, "tool", "pdm").get("distribution") is False:
        p.virtual_reason = "[tool.pdm] distribution = false"
    version = proj.get("version") if "version" in proj else None
    if version is None and poetry.get("version") is not None:
        version = poetry.get("version")
    dynamic = proj.get("dynamic", [])
    if isinstance(version, str) and version.strip():
        p.version = version.strip()
    elif isinstance(dynamic, list) and "version" in dynamic:
        p.version_dynamic = True
        from nexusify.model.dynamic_version import static_dynamic_version

        p.version = static_dynamic_version(p)


# --------------------------------------------------------------------------- requirements files


def _requirements_only_projects(root: Path, taken: set[Path], service_globs: list[str],
                                exclude: list[str]) -> list[Project]:
    """Folders matching a service glob that hold requirements files but no pyproject.toml:
    services installed with ``pip install -r`` (named after their folder, no version)."""
    found: list[Project] = []
    for pattern in service_globs:
        for folder in _glob_dirs(root, pattern.strip().strip("/")):
            rel = relpath(folder, root)
            skipped = any(part in SKIP_DIRS for part in rel.split("/")) or (exclude and _matches(rel, exclude))
            if folder in taken or skipped or not _inside(folder, root) or folder == root:
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


def _read_requirements_deps(p: Project, root: Path, problems: list[Problem]) -> None:
    """Local entries of the project's requirements files (and the files they include) as
    LocalDependency objects; every issue found while reading becomes a Problem (file:line)."""
    if not p.requirements_only:
        p.requirement_tops = find_requirements_files(p.path)
    if not p.requirement_tops:
        return
    p.requirement_files = read_tree(p.requirement_tops)
    for path, parsed in p.requirement_files.items():
        rel = relpath(path, root)
        for issue in parsed.issues:
            problems.append(Problem(issue.severity, issue.code, rel, issue.line or None, issue.message, issue.hint))
        group, runtime = file_group(path)
        for entry in parsed.entries:
            raw = file_url_to_path(entry.written, path.parent) if entry.is_url else entry.written
            name = entry.name or entry.written
            p.local_deps.append(LocalDependency(
                name=name, normalized=canonicalize_name(entry.name) if entry.name else "", kind="requirements",
                raw_path=raw, resolved=None, group=group, runtime=runtime, file=path, line=entry.line,
                location=("requirements", (), entry.line), extras=list(entry.extras), markers=entry.markers,
                editable=entry.editable, written=entry.written,
            ))


def _adopt_target_name(dep: LocalDependency, by_path: dict[Path, Project]) -> None:
    """A bare path in a requirements file is named by the project it resolves to."""
    if dep.normalized or dep.resolved is None:
        return
    target = by_path.get(dep.resolved)
    if target is not None and target.name and target.normalized:
        dep.name, dep.normalized = target.name, target.normalized


# --------------------------------------------------------------------------- uv workspaces


@dataclass
class _WorkspaceRoot:
    project: Project
    sources: dict[str, tuple[str, Any, int | None]]  # normalised name -> (key, entry, line)


def _link_workspaces(projects: list[Project], by_path: dict[Path, Project]) -> dict[Path, _WorkspaceRoot]:
    """Find uv workspace roots, their members (globs minus ``exclude``) and root sources."""
    roots: dict[Path, _WorkspaceRoot] = {}
    for p in projects:
        ws = _table(p.data, "tool", "uv", "workspace")
        if not ws:
            continue
        members = ws.get("members")
        excludes = ws.get("exclude")
        excluded: set[Path] = set()
        for pattern in excludes if isinstance(excludes, list) else []:
            excluded.update(_glob_dirs(p.path, pattern))
        found: list[Path] = []
        for pattern in members if isinstance(members, list) else []:
            for d in _glob_dirs(p.path, pattern):
                if d in excluded or d == p.path or d in found:
                    continue
                if d in by_path or (d / "pyproject.toml").is_file():
                    found.append(d)
        p.workspace_members = found
        if not p.has_build_system and p.virtual_reason is None:
            p.virtual_reason = "a uv workspace root without [build-system]"
        sources = _table(p.data, "tool", "uv", "sources")
        roots[p.path] = _WorkspaceRoot(p, {
            canonicalize_name(k): (k, v, p.lines.key(("tool", "uv", "sources"), k)) for k, v in sources.items()
        })
        p.workspace_root = p.path
        for m in found:
            member = by_path.get(m)
            if member is not None and member.workspace_root is None:
                member.workspace_root = p.path
    return roots


def _glob_dirs(base: Path, pattern: Any) -> list[Path]:
    """Folders matching a workspace glob (relative to ``base``; absolute or ``..`` allowed)."""
    if not isinstance(pattern, str) or not pattern.strip():
        return []
    try:
        hits = glob.glob(os.path.join(str(base), pattern.strip().rstrip("/")))
    except (ValueError, OSError):
        return []
    return sorted(Path(os.path.normpath(h)) for h in hits if os.path.isdir(h))


# --------------------------------------------------------------------------- dependency readers


def _poetry_tables(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(table path, group name, runtime?) for every Poetry dependency table."""
    poetry = _table(data, "tool", "poetry")
    if isinstance(poetry.get("dependencies"), dict):
        yield ("tool", "poetry", "dependencies"), "main", True
    if isinstance(poetry.get("dev-dependencies"), dict):
        yield ("tool", "poetry", "dev-dependencies"), "dev", False
    groups = poetry.get("group", {})
    if isinstance(groups, dict):
        for g, body in groups.items():
            if isinstance(body, dict) and isinstance(body.get("dependencies"), dict):
                yield ("tool", "poetry", "group", g, "dependencies"), g, False


def _rel_of(p: Project, root: Path | str) -> str:
    return root if isinstance(root, str) else relpath(p.pyproject, root)


def read_local_dependencies(project: Project, problems: list[Problem] | None = None, rel: str = "pyproject.toml") -> list[LocalDependency]:
    """Read ``project``'s local dependencies (all forms) without resolving them: for tools that
    look at one file (``rewrite``). Workspace-inherited uv sources are not applied here."""
    problems = [] if problems is None else problems
    project.local_deps = []
    _read_poetry_deps(project, rel, problems)
    _read_pep621_deps(project, rel, problems)
    return project.local_deps


def _read_poetry_deps(p: Project, root: Path | str, problems: list[Problem]) -> None:
    poetry = _table(p.data, "tool", "poetry")
    if not poetry:
        return
    rel = _rel_of(p, root)
    extras_of: dict[str, list[str]] = {}
    extras = _table(p.data, "tool", "poetry", "extras")
    for extra, members in extras.items():
        if isinstance(members, list):
            for m in members:
                if isinstance(m, str):
                    extras_of.setdefault(canonicalize_name(m), []).append(extra)
    for table_path, group, runtime in _poetry_tables(p.data):
        table = _table(p.data, *table_path)
        for key, spec in table.items():
            if key == "python":
                continue
            entries = spec if isinstance(spec, list) else [spec]
            for entry in entries:
                if not isinstance(entry, dict) or "path" not in entry:
                    continue
                line = p.lines.key(table_path, key)
                raw = entry.get("path")
                if not isinstance(raw, str) or not raw.strip():
                    problems.append(Problem("error", "bad-path", rel, line, f"{key}: `path` must be a non-empty string"))
                    continue
                extras_list = entry.get("extras", [])
                optional = bool(entry.get("optional", False))
                g = group
                if optional and canonicalize_name(key) in extras_of:
                    g = "extra:" + ",".join(extras_of[canonicalize_name(key)])
                p.local_deps.append(LocalDependency(
                    name=key, normalized=canonicalize_name(key), kind="poetry-path", raw_path=raw,
                    resolved=None, group=g, runtime=runtime, file=p.pyproject,
                    line=line, location=("poetry", table_path, key),
                    extras=[e for e in extras_list if isinstance(e, str)] if isinstance(extras_list, list) else [],
                    markers=entry.get("markers") if isinstance(entry.get("markers"), str) else None,
                    editable=bool(entry.get("develop", False)), optional=optional, written=raw,
                ))


def _pep621_arrays(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, bool, list[Any]]]:
    proj = _table(data, "project")
    deps = proj.get("dependencies")
    if isinstance(deps, list):
        yield ("project", "dependencies"), "main", True, deps
    opt = proj.get("optional-dependencies")
    if isinstance(opt, dict):
        for extra, arr in opt.items():
            if isinstance(arr, list):
                yield ("project", "optional-dependencies", extra), f"extra:{extra}", True, arr
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for g, arr in groups.items():
            if isinstance(arr, list):
                yield ("dependency-groups", g), g, False, arr
    uv_dev = _table(data, "tool", "uv").get("dev-dependencies")
    if isinstance(uv_dev, list):
        yield ("tool", "uv", "dev-dependencies"), "dev", False, uv_dev
    pdm_dev = _table(data, "tool", "pdm", "dev-dependencies")
    for g, arr in pdm_dev.items():
        if isinstance(arr, list):
            yield ("tool", "pdm", "dev-dependencies", g), g, False, arr


_REQ_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_HATCH_ROOT = re.compile(r"\{root((?::parent)*)(?::real)?:uri\}")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")


def expand_url(url: str, project_dir: Path) -> str:
    """Expand PDM's ``${PROJECT_ROOT}`` and hatch's ``{root:uri}`` / ``{root:parent:uri}``."""
    base = project_dir.as_posix()
    url = url.replace("${PROJECT_ROOT}", base).replace("$PROJECT_ROOT", base)

    def hatch(m: re.Match[str]) -> str:
        d = project_dir
        for _ in range(m.group(1).count(":parent")):
            d = d.parent
        return "file://" + d.as_posix()

    return _HATCH_ROOT.sub(hatch, url)


def file_url_to_path(url: str, project_dir: Path) -> str:
    """The filesystem path of a ``file:`` URL, with PDM's ``${PROJECT_ROOT}`` and hatch's
    ``{root:uri}`` expanded. A relative ``file:../x`` stays relative."""
    url = expand_url(url, project_dir)
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc and parts.netloc not in ("", "localhost"):
        path = f"/{parts.netloc}{path}"
    while path.startswith("//"):  # file:///${PROJECT_ROOT} gives file:////abs/...
        path = path[1:]
    return path


def _is_project_relative(url: str) -> bool:
    return "PROJECT_ROOT" in url or "{root" in url


def _parse_requirement(item: str) -> tuple[Requirement | None, bool, str | None]:
    """(requirement, editable, error) for a PEP 508 string, PDM's ``-e`` forms included."""
    text = item.strip()
    editable = False
    if text.startswith("-e ") or text.startswith("--editable "):
        editable = True
        text = text.split(None, 1)[1].strip()
        if "@" not in text.split(";")[0] and text.startswith(("file:", "{root", "${PROJECT_ROOT}")):
            # -e file:///${PROJECT_ROOT}/x#egg=name
            m = _EGG.search(text)
            if not m:
                return None, editable, "an editable file URL needs #egg=<name>"
            url = _EGG.sub("", text)
            text = f"{m.group(1)} @ {url}"
    try:
        return Requirement(text), editable, None
    except InvalidRequirement as exc:
        name_part, sep, url = text.partition("@")
        if sep and ("PROJECT_ROOT" in url or "{root" in url):
            # ${PROJECT_ROOT} / {root:uri} are not valid URL characters until expanded
            try:
                req = Requirement(f"{name_part.strip()} @ file:///placeholder")
            except InvalidRequirement:
                return None, editable, str(exc)
            url, _, marker = url.partition(";")
            req.url = url.strip()
            if marker.strip():
                with contextlib.suppress(InvalidRequirement):
                    req.marker = Requirement(f"x; {marker.strip()}").marker
            return req, editable, None
        return None, editable, str(exc)


def _read_pep621_deps(p: Project, root: Path | str, problems: list[Problem], ws_root: _WorkspaceRoot | None = None) -> None:
    rel = _rel_of(p, root)
    own_sources = _table(p.data, "tool", "uv", "sources")
    sources: dict[str, tuple[str, Any, int | None, Path | None]] = {}
    if ws_root is not None and ws_root.project is not p:
        for norm, (k, v, line) in ws_root.sources.items():
            sources[norm] = (k, v, line, ws_root.project.pyproject)
    for k, v in own_sources.items():
        sources[canonicalize_name(k)] = (k, v, None, None)
    for array_path, group, runtime, arr in _pep621_arrays(p.data):
        table, key = array_path[:-1], array_path[-1]
        array_line = p.lines.key(table, key)
        for index, item in enumerate(arr):
            if not isinstance(item, str):
                continue  # {include-group = ...}
            if "@" not in item and "file:" not in item:
                # a plain requirement: local only through a uv source (fast path, no parse)
                m = _REQ_NAME.match(item)
                if m is None or canonicalize_name(m.group(1)) not in sources:
                    continue
            req, editable, error = _parse_requirement(item)
            if req is None:
                line = p.lines.string(item, array_line)
                local = "file:" in item or "PROJECT_ROOT" in item or "{root" in item
                problems.append(Problem(
                    "error" if local else "warning", "bad-requirement", rel, line,
                    f"{item!r} is not a valid requirement: {error}",
                    "write it as `name @ file:///${PROJECT_ROOT}/../folder`" if local else None,
                ))
                continue
            norm = canonicalize_name(req.name)
            if not req.url and norm not in sources:
                continue
            line = p.lines.string(item, array_line)
            common: dict[str, Any] = {
                "name": req.name, "normalized": norm, "group": group, "runtime": runtime,
                "file": p.pyproject, "line": line, "location": ("pep508", array_path, index),
                "extras": sorted(req.extras), "markers": str(req.marker) if req.marker else None,
                "specifier": str(req.specifier),
            }
            if req.url:
                if req.url.startswith("file:") or _is_project_relative(req.url):
                    p.local_deps.append(LocalDependency(
                        kind="pep508-file", raw_path=file_url_to_path(req.url, p.path), resolved=None,
                        editable=editable, written=req.url, **common,
                    ))
                continue
            key, src, src_line, src_file = sources[norm]
            if src_line is None:
                src_line = p.lines.key(("tool", "uv", "sources"), key)
            entries = src if isinstance(src, list) else [src]
            for entry in entries:
                if not isinstance(entry, dict):
                    continue
                if isinstance(entry.get("path"), str):
                    p.local_deps.append(LocalDependency(
                        kind="uv-path", raw_path=entry["path"], resolved=None, source_key=key,
                        editable=bool(entry.get("editable", False)), source_line=src_line,
                        source_file=src_file, written=entry["path"], **common,
                    ))
                    break
                if entry.get("workspace") is True:
                    p.local_deps.append(LocalDependency(
                        kind="uv-workspace", raw_path=None, resolved=None, source_key=key,
                        source_line=src_line, source_file=src_file, editable=True, **common,
                    ))
                    break


# --------------------------------------------------------------------------- resolution


class _PathMapper:
    """Maps a path that does not exist here (``/shared/packages/x`` inside a container) onto a
    project: configured aliases first, then the longest matching trailing segments (indexed,
    so each lookup costs the depth of the path, not the number of projects)."""

    def __init__(self, root: Path, by_path: dict[Path, Project], aliases: dict[str, str]) -> None:
        self.root = root
        self.by_path = by_path
        self.aliases = sorted(aliases.items(), key=lambda kv: -len(kv[0]))
        self.suffixes: dict[tuple[str, ...], list[Path]] = {}
        for path in by_path:
            try:
                parts = path.relative_to(root).parts
            except ValueError:
                continue
            for n in range(1, len(parts) + 1):
                self.suffixes.setdefault(parts[-n:], []).append(path)

    def map(self, raw: str) -> Path | str | None:
        posix = raw.replace("\\", "/").rstrip("/")
        for prefix, target in self.aliases:
            pre = prefix.rstrip("/")
            if posix == pre or posix.startswith(pre + "/"):
                cand = Path(os.path.normpath(self.root / target / posix[len(pre):].lstrip("/")))
                if cand in self.by_path:
                    return cand
        parts = tuple(s for s in PurePosixPath(posix).parts if s not in ("/", ".", ".."))
        for n in range(len(parts), 0, -1):
            hits = self.suffixes.get(parts[-n:])
            if hits:
                return hits[0] if len(hits) == 1 else "ambiguous"
        return None


def _resolve_dependency(
    dep: LocalDependency,
    owner: Project,
    root: Path,
    by_path: dict[Path, Project],
    by_name: dict[str, Project],
    mapper: _PathMapper,
    broken: set[Path],
    exclude: list[str],
    problems: list[Problem],
) -> None:
    rel = relpath(dep.file, root)
    where = relpath(dep.source_file, root) if dep.source_file and dep.source_file != dep.file else rel
    line = dep.path_line if where == rel else dep.source_line
    if dep.kind == "uv-workspace":
        target = by_name.get(dep.normalized)
        ws_root = by_path.get(owner.workspace_root) if owner.workspace_root else None
        members = set(ws_root.workspace_members) | {ws_root.path} if ws_root else set()
        if target is not None and target.path in members:
            dep.resolved = target.path
            return
        if ws_root is None:
            msg = f"{dep.name} is declared `workspace = true` but {relpath(owner.path, root)} is in no uv workspace"
            hint = "add [tool.uv.workspace] members = [...] to the workspace root's pyproject.toml"
        else:
            msg = f"{dep.name} is declared `workspace = true` but no member of the workspace at {relpath(ws_root.path, root)} has that name"
            hint = ("add its folder to [tool.uv.workspace] members" if target is not None
                    else "fix the name, or add the package to the workspace members")
        problems.append(Problem("error", "workspace-member-missing", where, line, msg, hint))
        return
    raw = dep.raw_path or ""
    written_abs = os.path.isabs(raw) and not (dep.written and _is_project_relative(dep.written))
    base = _requirements_base(dep, owner.path, raw) if dep.kind == "requirements" else owner.path
    candidate = Path(os.path.normpath(Path(raw) if os.path.isabs(raw) else base / os.path.expanduser(raw)))
    if candidate in by_path:
        dep.resolved = candidate
    elif candidate.is_dir():
        if candidate in broken:
            dep.resolved = candidate  # its invalid-toml problem is reported already
            return
        if dep.kind == "requirements" and _inside(candidate, owner.path):
            return  # code vendored inside the service folder ships with it: not a shared package
        if not _inside(candidate, root):
            problems.append(Problem(
                "error", "outside-monorepo", where, line,
                f"{dep.name}: {raw} is outside the monorepo root",
                "run nexusify with --root at the monorepo's top folder",
            ))
            return
        if (candidate / "pyproject.toml").is_file():
            relc = relpath(candidate, root)
            skipped = exclude and any(_matches("/".join(relc.split("/")[:i]), exclude)
                                      for i in range(1, relc.count("/") + 2))
            problems.append(Problem(
                "error", "excluded-dependency", where, line,
                f"{dep.name}: {relc} is " + ("excluded by the `exclude` setting" if skipped
                                             else "inside a folder audit skips (virtualenv, build or cache)"),
                "stop excluding it, or move the package",
            ))
            return
        legacy = (candidate / "setup.py").is_file() or (candidate / "setup.cfg").is_file()
        problems.append(Problem(
            "error", "not-a-project", where, line,
            f"{dep.name}: {relpath(candidate, root)} has no pyproject.toml" + (" (setup.py only)" if legacy else ""),
            "add a pyproject.toml with [project] name and version and a [build-system]" if legacy
            else "point the dependency at a project folder",
        ))
        return
    elif candidate.is_file():
        problems.append(Problem(
            "warning", "file-dependency", where, line,
            f"{dep.name}: {raw} is a file (a built wheel or sdist), not a project folder; nexusify leaves it alone",
            "depend on the project's folder instead, or publish that file to the index yourself",
        ))
        return
    elif written_abs:
        mapped = mapper.map(raw)
        if isinstance(mapped, Path):
            dep.resolved = mapped
            dep.mapped_from = raw
        elif mapped == "ambiguous":
            problems.append(Problem(
                "error", "ambiguous-path", where, line,
                f"{dep.name}: {raw} does not exist here and its trailing folders match several projects",
                'map it with path-aliases = {"<container prefix>" = "<monorepo folder>"} in nexusify.toml',
            ))
            return
        else:
            problems.append(Problem(
                "error", "unresolvable-path", where, line,
                f"{dep.name}: {raw} does not exist here (a path inside a container?) and matches no project of the monorepo",
                f'map it with path-aliases = {{"{PurePosixPath(raw).parent.as_posix()}" = "<monorepo folder>"}} '
                "in nexusify.toml, or fix the path",
            ))
            return
    else:
        guess = mapper.map(raw)
        by_dep_name = by_name.get(dep.normalized)
        suggestion = (relpath(guess, root) if isinstance(guess, Path)
                      else relpath(by_dep_name.path, root) if by_dep_name else None)
        problems.append(Problem(
            "error", "missing-path", where, line,
            f"{dep.name}: path {raw} does not exist" + (f" (did you mean {suggestion}?)" if suggestion else ""),
            "fix the path; it is resolved relative to the folder of the file that declares it",
        ))
        return
    target = by_path.get(dep.resolved) if dep.resolved is not None else None
    if target is not None and target.normalized and dep.normalized and target.normalized != dep.normalized:
        problems.append(Problem(
            "error", "name-mismatch", where, dep.line,
            f"{dep.name} points at {relpath(target.path, root)}, whose project is named {target.name!r}",
            f"rename the dependency to {target.name}",
        ))


def _requirements_base(dep: LocalDependency, project_dir: Path, raw: str) -> Path:
    """The folder a relative path of a requirements file is read from: the file's own folder,
    else the project folder (pip reads such paths from the current folder, which is usually
    the service's: ``requirements/prod.txt`` holding ``-e ../../libs/x``)."""
    here = dep.file.parent
    if here == project_dir or os.path.isabs(raw) or (here / raw).exists():
        return here
    return project_dir if (project_dir / raw).exists() else here


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _map_path(raw: str, root: Path, by_path: dict[Path, Project], aliases: dict[str, str]) -> Path | str | None:
    """Map a container path onto a project (see :class:`_PathMapper`)."""
    return _PathMapper(root, by_path, aliases).map(raw)


# --------------------------------------------------------------------------- classification


_REQ_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def declared_names(project: Project) -> dict[str, set[str]]:
    """Every dependency name the project declares, by group ("main" or a group name)."""
    data = project.data
    out: dict[str, set[str]] = {}
    poetry = data.get("tool", {}).get("poetry", {})
    if isinstance(poetry.get("dependencies"), dict):
        out.setdefault("main", set()).update(canonicalize_name(k) for k in poetry["dependencies"])
    for g, body in (poetry.get("group") or {}).items():
        if isinstance(body, dict) and isinstance(body.get("dependencies"), dict):
            out.setdefault(g, set()).update(canonicalize_name(k) for k in body["dependencies"])

    def names(arr: Any) -> set[str]:
        res: set[str] = set()
        for item in arr if isinstance(arr, list) else []:
            m = _REQ_NAME.match(item) if isinstance(item, str) else None
            if m:
                res.add(canonicalize_name(m.group(1)))
        return res

    project_table = data.get("project", {})
    out.setdefault("main", set()).update(names(project_table.get("dependencies")))
    for g, arr in (data.get("dependency-groups") or {}).items():
        out.setdefault(g, set()).update(names(arr))
    for path, parsed in project.requirement_files.items():
        group = file_group(path)[0]
        out.setdefault(group, set()).update(n for n, _ in parsed.names)
    return out


def _classify(ws: Workspace, shared_globs: list[str], service_globs: list[str]) -> None:
    root = ws.root
    depended: dict[Path, list[Project]] = {}
    for p in ws.projects:
        for d in p.local_deps:
            if d.resolved is not None and d.resolved != p.path:
                depended.setdefault(d.resolved, []).append(p)
    # After `nexusify rewrite`, services name shared packages by version instead of path:
    # a dependency by name on a project of the monorepo counts for classification too.
    named_runtime: set[Path] = set()
    for p in ws.projects:
        local = {d.resolved for d in p.local_deps}
        for group, names in declared_names(p).items():
            for n in names:
                target = ws.by_name.get(n)
                if target is None or target is p or target.path in local:
                    continue
                depended.setdefault(target.path, []).append(p)
                if group == "main":
                    named_runtime.add(p.path)
    configured = bool(shared_globs or service_globs)
    for p in ws.projects:
        rel = p.rel(root)
        if configured:
            if _matches(rel, shared_globs):
                p.role = "shared"
            elif _matches(rel, service_globs):
                p.role = "service"
            continue
        if _matches(rel, SHARED_GLOBS):
            p.role = "other" if p.is_virtual else "shared"  # a virtual project cannot be published
        elif p.path in depended:
            # a project others depend on is a shared package, even in a service folder
            p.role = "other" if p.is_virtual else "shared"
            if not p.is_virtual and _matches(rel, SERVICE_GLOBS):
                users = ", ".join(sorted({u.rel(root) for u in depended[p.path]}))
                ws.problems.append(Problem(
                    "warning", "service-depended-upon", relpath(p.pyproject, root), None,
                    f"{p.name or rel} is in a services folder but {users} depend(s) on it by path: "
                    "treated as a shared package",
                    'set `shared = [...]` and `services = [...]` in nexusify.toml to classify it yourself',
                ))
        elif _matches(rel, SERVICE_GLOBS) or _looks_like_service(p, root) or (
            p.path in named_runtime and p.name and not p.workspace_members and p.path != root
        ):
            p.role = "service"
    if configured:
        for path, dependants in depended.items():
            target = ws.project_at(path)
            if target is not None and target.role != "shared" and not target.is_virtual:
                ws.problems.append(Problem(
                    "warning", "unclassified-dependency", relpath(target.pyproject, root), None,
                    f"{', '.join(sorted({u.rel(root) for u in dependants}))} depend(s) on {target.rel(root)} by path, "
                    "but it matches no `shared` glob: it will not be published",
                    "add its folder to `shared` in nexusify.toml",
                ))


def _looks_like_service(p: Project, root: Path) -> bool:
    """Classified by the graph: a named project that depends at runtime on other projects.

    Not a service: a uv workspace root, a project whose local dependencies are all dev-time (a
    tool or test harness), the monorepo's own root project unless it has a Dockerfile. An
    application that is not a package itself (Poetry ``package-mode = false``) is a service."""
    if not p.name or p.workspace_members:
        return False
    if p.path == root and not p.dockerfiles:
        return False
    return any(d.resolved is not None and d.resolved != p.path and d.runtime for d in p.local_deps)


def _check_targets(ws: Workspace) -> None:
    root = ws.root
    by_path = {p.path: p for p in ws.projects}
    for p in ws.projects:
        rel = relpath(p.pyproject, root)
        if p.role == "shared":
            _check_shared(p, rel, ws.problems)
        for d in p.local_deps:
            target = by_path.get(d.resolved) if d.resolved else None
            if target is not None and target.is_virtual and target is not p:
                ws.problems.append(Problem(
                    "error", "virtual-dependency", relpath(d.file, root), d.line,
                    f"{d.name} depends on {relpath(target.path, root)}, which is not a package ({target.virtual_reason})",
                    "give it a [build-system] and package metadata, or move the shared code into a real package",
                ))


def _check_shared(p: Project, rel: str, problems: list[Problem]) -> None:
    label = p.name or p.path.name
    if not p.name:
        problems.append(Problem("error", "name-missing", rel, None,
                                "shared package has no name", "set [project] name or [tool.poetry] name"))
    if p.version is None:
        if p.version_dynamic:
            from nexusify.model.dynamic_version import describe_source

            problems.append(Problem(
                "error", "version-unresolved", rel, p.lines.pattern(_DYNAMIC_KEY),
                f"{label}: the dynamic version could not be resolved ({describe_source(p)})",
                "set a static version, or make the backend's version source readable (attr:, file, hatch path)",
            ))
        else:
            problems.append(Problem(
                "error", "version-missing", rel, p.lines.pattern(_NAME_KEY),
                f"{label}: no version", 'add version = "0.1.0" to [project] or [tool.poetry]',
            ))
    else:
        try:
            Version(p.version)
        except InvalidVersion:
            problems.append(Problem(
                "error", "invalid-version", rel, p.lines.pattern(re.compile(r"^\s*version\s*=")),
                f"{label}: version {p.version!r} is not a PEP 440 version; an index rejects it",
                'use a version such as "1.2.0"',
            ))
    pdv = _table(p.data, "tool", "poetry-dynamic-versioning")
    if pdv.get("enable") is True:
        problems.append(Problem(
            "warning", "placeholder-version", rel, p.lines.header(("tool", "poetry-dynamic-versioning")),
            f"{label}: poetry-dynamic-versioning is enabled, so {p.version!r} is a placeholder; the published "
            "version comes from git tags at build time",
            "publish needs the real version in pyproject.toml: set it (or run the plugin) before publishing",
        ))
    if not p.has_build_system and not p.is_virtual:
        poetry_only = p.style == "poetry"
        problems.append(Problem(
            "error" if poetry_only else "warning", "no-build-system", rel, None,
            f"{label}: no [build-system]; builders fall back to {LEGACY_BACKEND}"
            + (", which cannot read [tool.poetry] metadata" if poetry_only else ""),
            'declare one, e.g. [build-system] requires = ["poetry-core>=1.0"] build-backend = "poetry.core.masonry.api"'
            if "poetry" in p.style else
            'declare one, e.g. [build-system] requires = ["hatchling"] build-backend = "hatchling.build"',
        ))
