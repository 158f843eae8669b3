"""The monorepo model: discovery of projects, their local (path/file/workspace) dependencies,
classification into shared packages and services, and the publish order.

Everything here is read-only and collects problems instead of raising, so one broken
``pyproject.toml`` never hides the rest of the monorepo. ``audit`` reports the model;
``publish``, ``rewrite`` and ``deploy`` execute plans built from it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.errors import TomlError
from nexusify.files import find_line, parse_toml

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "node_modules", "__pycache__",
    "build", "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".nexusify", "site-packages", ".eggs", ".idea", ".vscode", ".cache", "htmlcov", ".pdm-build",
})
SHARED_GLOBS = ("shared/packages/*", "libs/*", "packages/*")
SERVICE_GLOBS = ("services/*", "apps/*", "projects/*", "jobs/*")
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"

DepKind = Literal["poetry-path", "pep508-file", "uv-path", "uv-workspace"]
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity, "code": self.code, "path": self.path,
            "line": self.line, "message": self.message, "hint": self.hint,
        }

    def __str__(self) -> str:
        loc = self.path or ""
        if self.line:
            loc += f":{self.line}"
        text = f"{loc}: {self.severity}[{self.code}]: {self.message}" if loc else f"{self.severity}[{self.code}]: {self.message}"
        return text + (f" (hint: {self.hint})" if self.hint else "")


@dataclass
class LocalDependency:
    """A dependency on another project of the monorepo, by path, file URL or workspace.

    ``location`` says where it is written, for the writers:
    - ("poetry", table_path, key): a Poetry dependency table entry, e.g.
      (("tool","poetry","group","dev","dependencies"), "maestro-x")
    - ("pep508", array_path, index): a requirement string in a PEP 621/735 array
    ``source_key`` names the ``[tool.uv.sources]`` entry when the path lives there.
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

    @property
    def target(self) -> str:
        return self.normalized


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

    @property
    def is_virtual(self) -> bool:
        """Not installable as a package (Poetry package-mode = false, uv workspace root)."""
        return not self.package_mode or (bool(self.workspace_members) and not self.has_build_system)

    def rel(self, root: Path) -> str:
        return relpath(self.path, root)

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

    @property
    def shared(self) -> list[Project]:
        return [p for p in self.projects if p.role == "shared"]

    @property
    def services(self) -> list[Project]:
        return [p for p in self.projects if p.role == "service"]

    def project_at(self, folder: Path) -> Project | None:
        folder = folder.resolve()
        for p in self.projects:
            if p.path == folder:
                return p
        return None

    def dependencies_of(self, name: str, runtime_only: bool = True) -> list[str]:
        p = self.by_name.get(name)
        if p is None:
            return []
        return [n for n in p.internal_names(runtime_only) if n in self.by_name]

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
        deps = {n: [d for d in self.dependencies_of(n, True) if d in names] for n in names}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str, trail: list[str]) -> None:
            s = state.get(n)
            if s == 2:
                return
            if s == 1:
                cycle = [*trail[trail.index(n):], n]
                raise CycleError(cycle)
            state[n] = 1
            for d in sorted(deps[n]):
                visit(d, [*trail, n])
            state[n] = 2
            order.append(n)

        for n in names:
            visit(n, [])
        return order


class CycleError(Exception):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def relpath(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return path.as_posix()


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
            if _matches(sub, excl):
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
    """Discover and classify every project under ``root``; problems are collected, not raised."""
    root = root.resolve()
    problems: list[Problem] = []
    projects: list[Project] = []
    for pp in iter_pyprojects(root, exclude):
        project = _read_project(pp, root, problems, resolve_dynamic)
        if project is not None:
            projects.append(project)
    projects.sort(key=lambda p: p.path.as_posix())

    by_path = {p.path: p for p in projects}
    by_name: dict[str, Project] = {}
    for p in projects:
        if not p.normalized:
            continue
        other = by_name.get(p.normalized)
        if other is not None:
            problems.append(Problem(
                "error", "duplicate-name", relpath(p.pyproject, root), _name_line(p),
                f"{p.name!r} has the same normalised name as {relpath(other.pyproject, root)}",
                "rename one of them: an index holds one project per normalised name",
            ))
            continue
        by_name[p.normalized] = p

    aliases = dict(path_aliases or {})
    for p in projects:
        for dep in p.local_deps:
            _resolve_dependency(dep, p, root, by_path, by_name, aliases, problems)

    ws = Workspace(root, projects, problems, by_name)
    _classify(ws, list(shared_globs), list(service_globs))
    for p in projects:
        p.dockerfiles = sorted(
            f for f in p.path.iterdir()
            if f.is_file() and (f.name == "Dockerfile" or f.name.startswith("Dockerfile.") or f.name.endswith(".Dockerfile"))
        )
    _check_targets(ws)
    return ws


def _name_line(p: Project) -> int | None:
    return find_line(p.text, r"^\s*name\s*=")


def _read_project(pp: Path, root: Path, problems: list[Problem], resolve_dynamic: bool) -> Project | None:
    rel = relpath(pp, root)
    try:
        text = pp.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem("error", "unreadable", rel, None, f"cannot read: {exc}"))
        return None
    try:
        data = parse_toml(text, Path(rel))
    except TomlError as exc:
        problems.append(Problem("error", "invalid-toml", rel, exc.line, exc.message,
                                f"column {exc.column}: fix the syntax; the rest of the monorepo was still audited"
                                if exc.column else "fix the syntax"))
        return None
    project = Project(path=pp.parent.resolve(), pyproject=pp.resolve(), data=data, text=text)
    _read_metadata(project, rel, problems, resolve_dynamic)
    _read_poetry_deps(project, rel, problems)
    _read_pep621_deps(project, rel, problems)
    return project


def _table(data: dict[str, Any], *path: str) -> dict[str, Any]:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict):
            return {}
        cur = cur.get(key, {})
    return cur if isinstance(cur, dict) else {}


def _read_metadata(p: Project, rel: str, problems: list[Problem], resolve_dynamic: bool) -> None:
    data = p.data
    proj = _table(data, "project")
    poetry = _table(data, "tool", "poetry")
    bs = _table(data, "build-system")
    p.has_build_system = "build-system" in data
    p.build_backend = bs.get("build-backend") if isinstance(bs.get("build-backend"), str) else None
    reqs = bs.get("requires", [])
    p.build_requires = [r for r in reqs if isinstance(r, str)] if isinstance(reqs, list) else []
    styles = []
    if poetry.get("name") or poetry.get("dependencies"):
        styles.append("poetry")
    if proj:
        styles.append("pep621")
    p.style = "+".join(styles) or "unknown"
    name = proj.get("name") or poetry.get("name")
    if isinstance(name, str) and name:
        p.name = name
        p.normalized = canonicalize_name(name)
    if poetry.get("package-mode") is False:
        p.package_mode = False
    version = proj.get("version") if "version" in proj else None
    if version is None and poetry.get("version") is not None:
        version = poetry.get("version")
    dynamic = proj.get("dynamic", [])
    if isinstance(version, str):
        p.version = version
    elif isinstance(dynamic, list) and "version" in dynamic:
        p.version_dynamic = True
        if resolve_dynamic:
            from nexusify.dynamic_version import resolve_dynamic_version

            p.version = resolve_dynamic_version(p)
    members = _table(data, "tool", "uv", "workspace").get("members", [])
    if isinstance(members, list):
        for pattern in members:
            if isinstance(pattern, str):
                p.workspace_members.extend(
                    d.resolve() for d in sorted(p.path.glob(pattern)) if (d / "pyproject.toml").is_file()
                )


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


def _header_line(text: str, table: tuple[str, ...]) -> int:
    dotted = r"\.".join(rf"[\"']?{re.escape(t)}[\"']?" for t in table)
    return find_line(text, rf"^\s*\[\s*{dotted}\s*\]") or 1


def _key_line(text: str, table: tuple[str, ...], key: str) -> int | None:
    start = _header_line(text, table)
    return find_line(text, rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", start)


def _string_line(text: str, value: str) -> int | None:
    return find_line(text, re.escape(value))


def _read_poetry_deps(p: Project, rel: str, problems: list[Problem]) -> None:
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
                raw = entry.get("path")
                if not isinstance(raw, str):
                    problems.append(Problem("error", "bad-path", rel, _key_line(p.text, table_path, key),
                                            f"{key}: `path` must be a string"))
                    continue
                extras_list = entry.get("extras", [])
                optional = bool(entry.get("optional", False))
                g = group
                if optional and canonicalize_name(key) in extras_of:
                    g = "extra:" + ",".join(extras_of[canonicalize_name(key)])
                p.local_deps.append(LocalDependency(
                    name=key, normalized=canonicalize_name(key), kind="poetry-path", raw_path=raw,
                    resolved=None, group=g, runtime=runtime, file=p.pyproject,
                    line=_key_line(p.text, table_path, key), location=("poetry", table_path, key),
                    extras=list(extras_list) if isinstance(extras_list, list) else [],
                    markers=entry.get("markers") if isinstance(entry.get("markers"), str) else None,
                    editable=bool(entry.get("develop", False)), optional=optional,
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


def file_url_to_path(url: str, project_dir: Path) -> str:
    """The filesystem path of a ``file:`` URL, with PDM's ``${PROJECT_ROOT}`` expanded."""
    url = url.replace("${PROJECT_ROOT}", project_dir.as_posix()).replace("$PROJECT_ROOT", project_dir.as_posix())
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc and parts.netloc not in ("", "localhost"):
        path = f"/{parts.netloc}{path}"
    return path


def _read_pep621_deps(p: Project, rel: str, problems: list[Problem]) -> None:
    sources = _table(p.data, "tool", "uv", "sources")
    norm_sources = {canonicalize_name(k): (k, v) for k, v in sources.items()}
    for array_path, group, runtime, arr in _pep621_arrays(p.data):
        for index, item in enumerate(arr):
            if not isinstance(item, str):
                continue  # {include-group = ...}
            line = _string_line(p.text, item)
            try:
                req = Requirement(item)
            except InvalidRequirement as exc:
                if "${PROJECT_ROOT}" in item or "file:" in item:
                    name_part, _, url = item.partition("@")
                    try:
                        req = Requirement(f"{name_part.strip()} @ file:///placeholder")
                    except InvalidRequirement:
                        problems.append(Problem("error", "bad-requirement", rel, line, f"{item!r}: {exc}"))
                        continue
                    req.url = url.strip().split(";")[0].strip()
                else:
                    problems.append(Problem("warning", "bad-requirement", rel, line, f"{item!r}: {exc}"))
                    continue
            norm = canonicalize_name(req.name)
            common = {
                "name": req.name, "normalized": norm, "group": group, "runtime": runtime,
                "file": p.pyproject, "line": line, "location": ("pep508", array_path, index),
                "extras": sorted(req.extras), "markers": str(req.marker) if req.marker else None,
                "specifier": str(req.specifier),
            }
            if req.url:
                if req.url.startswith("file:"):
                    p.local_deps.append(LocalDependency(
                        kind="pep508-file", raw_path=file_url_to_path(req.url, p.path), resolved=None, **common,
                    ))
                continue
            if norm in norm_sources:
                key, src = norm_sources[norm]
                entries = src if isinstance(src, list) else [src]
                for entry in entries:
                    if not isinstance(entry, dict):
                        continue
                    if isinstance(entry.get("path"), str):
                        p.local_deps.append(LocalDependency(
                            kind="uv-path", raw_path=entry["path"], resolved=None, source_key=key,
                            editable=bool(entry.get("editable", False)), **common,
                        ))
                        break
                    if entry.get("workspace") is True:
                        p.local_deps.append(LocalDependency(
                            kind="uv-workspace", raw_path=None, resolved=None, source_key=key, **common,
                        ))
                        break


# --------------------------------------------------------------------------- resolution


def _resolve_dependency(
    dep: LocalDependency,
    owner: Project,
    root: Path,
    by_path: dict[Path, Project],
    by_name: dict[str, Project],
    aliases: dict[str, str],
    problems: list[Problem],
) -> None:
    rel = relpath(owner.pyproject, root)
    if dep.kind == "uv-workspace":
        target = by_name.get(dep.normalized)
        if target is None:
            problems.append(Problem(
                "error", "workspace-member-missing", rel, dep.line,
                f"{dep.name} is declared `workspace = true` but no workspace member has that name",
                "add the member to [tool.uv.workspace] members, or fix the name",
            ))
            return
        dep.resolved = target.path
        return
    raw = dep.raw_path or ""
    candidate = Path(raw) if os.path.isabs(raw) else (owner.path / raw)
    candidate = Path(os.path.normpath(candidate))
    if candidate in by_path or ((candidate / "pyproject.toml").is_file() and _inside(candidate, root)):
        dep.resolved = candidate
    elif os.path.isabs(raw) or not candidate.exists():
        mapped = _map_path(raw, root, by_path, aliases)
        if isinstance(mapped, Path):
            dep.resolved = mapped
            if os.path.isabs(raw):
                dep.mapped_from = raw
            else:
                problems.append(Problem(
                    "warning", "path-remapped", rel, dep.line,
                    f"{dep.name}: {raw} does not exist; taken to be {relpath(mapped, root)}",
                    "fix the path, or let `nexusify rewrite` replace it with a version",
                ))
        elif mapped == "ambiguous":
            problems.append(Problem(
                "error", "ambiguous-path", rel, dep.line,
                f"{dep.name}: {raw} matches several projects of the monorepo",
                'add a path alias: path-aliases = {"<prefix>" = "<folder>"} in nexusify.toml',
            ))
        else:
            problems.append(Problem(
                "error", "missing-path", rel, dep.line,
                f"{dep.name}: path {raw} does not exist and matches no project of the monorepo",
                'fix the path, or map container paths with path-aliases = {"/shared/packages" = "shared/packages"}',
            ))
    else:
        problems.append(Problem(
            "error", "not-a-project", rel, dep.line,
            f"{dep.name}: {raw} has no pyproject.toml", "point the dependency at a project folder",
        ))
    if dep.resolved is not None and dep.resolved in by_path:
        target = by_path[dep.resolved]
        if target.normalized and target.normalized != dep.normalized:
            problems.append(Problem(
                "error", "name-mismatch", rel, dep.line,
                f"{dep.name} points at {relpath(target.path, root)}, whose project is named {target.name!r}",
                f"rename the dependency to {target.name}",
            ))
    elif dep.resolved is not None and dep.resolved not in by_path:
        problems.append(Problem(
            "error", "outside-monorepo", rel, dep.line,
            f"{dep.name}: {raw} is outside the monorepo root", "run nexusify with --root at the monorepo's top folder",
        ))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _map_path(raw: str, root: Path, by_path: dict[Path, Project], aliases: dict[str, str]) -> Path | str | None:
    """Map a path that does not exist here (e.g. ``/shared/packages/x`` inside a container)
    onto a project: configured aliases first, then the longest matching trailing segments."""
    posix = raw.replace("\\", "/").rstrip("/")
    for prefix, target in sorted(aliases.items(), key=lambda kv: -len(kv[0])):
        pre = prefix.rstrip("/")
        if posix == pre or posix.startswith(pre + "/"):
            cand = Path(os.path.normpath(root / target / posix[len(pre):].lstrip("/")))
            if cand in by_path:
                return cand
    parts = [s for s in PurePosixPath(posix).parts if s not in ("/", ".", "..")]
    best: list[Path] = []
    best_len = 0
    for path in by_path:
        rel_parts = path.relative_to(root).parts if _inside(path, root) else ()
        n = 0
        while n < min(len(parts), len(rel_parts)) and parts[-1 - n] == rel_parts[-1 - n]:
            n += 1
        if n == 0:
            continue
        if n > best_len:
            best, best_len = [path], n
        elif n == best_len:
            best.append(path)
    if len(best) == 1:
        return best[0]
    if len(best) > 1:
        return "ambiguous"
    return None


# --------------------------------------------------------------------------- classification


def _classify(ws: Workspace, shared_globs: list[str], service_globs: list[str]) -> None:
    root = ws.root
    depended: set[Path] = set()
    for p in ws.projects:
        for d in p.local_deps:
            if d.resolved is not None:
                depended.add(d.resolved)
    for p in ws.projects:
        rel = p.rel(root)
        if shared_globs or service_globs:
            if _matches(rel, shared_globs):
                p.role = "shared"
            elif _matches(rel, service_globs):
                p.role = "service"
            continue
        if _matches(rel, SHARED_GLOBS):
            p.role = "shared"
        elif _matches(rel, SERVICE_GLOBS):
            p.role = "service"
        elif p.path in depended and not p.is_virtual:
            p.role = "shared"
        elif p.path in depended:
            p.role = "other"
        elif p.local_deps and not p.workspace_members:
            p.role = "service"
        elif p.local_deps and p.workspace_members and p.has_build_system:
            p.role = "service"
    # a project in a service folder that others depend on is still shared
    if not (shared_globs or service_globs):
        for p in ws.projects:
            if p.role == "service" and p.path in depended and not p.is_virtual:
                p.role = "shared"


def _check_targets(ws: Workspace) -> None:
    root = ws.root
    by_path = {p.path: p for p in ws.projects}
    for p in ws.projects:
        rel = relpath(p.pyproject, root)
        if p.role == "shared":
            if not p.name:
                ws.problems.append(Problem("error", "name-missing", rel, None,
                                           "shared package has no name", "set [project] name or [tool.poetry] name"))
            if p.version is None:
                if p.version_dynamic:
                    ws.problems.append(Problem(
                        "error", "version-unresolved", rel, find_line(p.text, r"^\s*dynamic\s*="),
                        f"{p.name}: the dynamic version could not be resolved",
                        "set a static version, or make the backend's version source readable (attr:, file, hatch path)",
                    ))
                else:
                    ws.problems.append(Problem(
                        "error", "version-missing", rel, _name_line(p),
                        f"{p.name}: no version", "add version = \"0.1.0\" to [project] or [tool.poetry]",
                    ))
            if not p.has_build_system and not p.is_virtual:
                ws.problems.append(Problem(
                    "warning", "no-build-system", rel, 1,
                    f"{p.name}: no [build-system]; builders fall back to {LEGACY_BACKEND}",
                    'declare one, e.g. [build-system] requires = ["poetry-core>=1.0"] build-backend = "poetry.core.masonry.api"',
                ))
        for d in p.local_deps:
            target = by_path.get(d.resolved) if d.resolved else None
            if target is not None and target.is_virtual:
                why = "package-mode = false" if not target.package_mode else "a uv workspace root without [build-system]"
                ws.problems.append(Problem(
                    "error", "virtual-dependency", rel, d.line,
                    f"{d.name} depends on {relpath(target.path, root)}, which is not a package ({why})",
                    "give it a [build-system] and package metadata, or move the shared code into a real package",
                ))
