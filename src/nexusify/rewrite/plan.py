"""``nexusify rewrite``: services depend on shared packages by version from the index.

Plan, then execute. :func:`plan_rewrite` reads the monorepo and computes, as plain data, every
edit of every file (:class:`FilePlan`: path, old and new text, edits with line/before/after/
reason) for the target services, validating all of them; it writes nothing. :func:`apply_plan`
refuses a plan with errors, checks that no file changed since it was planned, and writes every
file through one :func:`nexusify.transaction.write_files` (staged, journalled, then renamed;
a killed rewrite is completed by the next nexusify command): all files or none.

What changes, per service that depends on shared packages (a service with none is left
byte-identical):

* its ``pyproject.toml``, through :mod:`nexusify.formats.pyproject_edit` (the same core ``publish``
  uses for its staged copies): path/file/workspace dependencies on shared packages become
  version constraints from the ``source`` (name and URL from the settings);
* under ``priority = "explicit"`` (the default) the shared packages it needs transitively are
  declared too, so an explicit source covers every shared package it installs;
* its pip requirements files (``requirements*.txt``, ``requirements/*.txt`` and what they
  include): each line installing a shared package from a path or ``file:`` URL becomes
  ``name<constraint>`` (extras, markers and every other byte kept), and a file without an
  ``--index-url`` gets ``--index-url <the source URL>`` as its first line (pip has no
  per-package index, and ``--extra-index-url`` takes the highest version across indexes:
  dependency confusion). A different ``--index-url`` is an error, another
  ``--extra-index-url`` a warning;
* its Dockerfiles, through :mod:`nexusify.formats.dockerfile`: COPY/ADD of shared code dropped, install
  steps read ``$NEXUS_INDEX_URL``, and credentials come from a BuildKit secret when the index
  needs them;
* lockfiles: re-locked with ``--lock`` (in a scratch copy, then written with the rest), else
  reported as stale.

Versions come from the shared packages' own ``pyproject.toml``, or with ``from_index`` from
what the index has published (the highest release on its PEP 503 page).
"""

from __future__ import annotations

import difflib
import glob
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nexusify.config import Settings
from nexusify.credentials import Credentials, mask_url, resolve_credentials
from nexusify.errors import (
    ConfigError,
    HasProblems,
    NexusifyError,
    OperationFailed,
    Problem,
    ProblemsFound,
    UsageError,
)
from nexusify.formats.constraints import pep440_specifier
from nexusify.formats.dockerfile import SharedMatcher, guess_context
from nexusify.formats.dockerfile import patch as patch_dockerfile
from nexusify.formats.pyproject_edit import (
    AddedDependency,
    Edit,
    SourceSpec,
    edit_pyproject,
    sources_outdated,
)
from nexusify.formats.requirements import RequirementsFile, replace_lines, requirement_line, tree_of
from nexusify.model import LocalDependency, Project, Workspace, declared_names, relpath
from nexusify.transaction import write_files

LOCKFILES = ("poetry.lock", "uv.lock", "pdm.lock")
_LOCK_TOOL = {"poetry.lock": "poetry", "uv.lock": "uv", "pdm.lock": "pdm"}
_COPY_IGNORE = shutil.ignore_patterns(".venv", "venv", "node_modules", "__pycache__", ".git", "dist", "build",
                                      ".nexusify", "*.egg-info", ".mypy_cache", ".pytest_cache", ".ruff_cache")


@dataclass
class FilePlan:
    """One file the rewrite changes (or would change)."""

    path: Path
    rel: str
    kind: str  # "pyproject", "requirements", "dockerfile", "lockfile"
    service: str
    old: bytes
    new: bytes
    edits: list[Edit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        a = self.old.decode("utf-8", "replace").splitlines(keepends=True)
        b = self.new.decode("utf-8", "replace").splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, f"a/{self.rel}", f"b/{self.rel}"))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.rel, "kind": self.kind, "service": self.service, "changed": self.changed,
                "edits": [e.to_dict() for e in self.edits]}


@dataclass
class ServicePlan:
    name: str
    rel: str
    path: Path
    shared: list[str] = field(default_factory=list)  # direct shared dependencies by path/file/workspace
    by_version: list[str] = field(default_factory=list)  # shared packages already declared by version
    added: list[str] = field(default_factory=list)  # transitive ones declared for the explicit source
    files: list[FilePlan] = field(default_factory=list)
    stale_lockfiles: list[str] = field(default_factory=list)
    lock_tools: list[tuple[str, str]] = field(default_factory=list)  # (lockfile rel, tool)

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.rel, "changed": self.changed, "shared_dependencies": self.shared,
                "shared_by_version": self.by_version,
                "transitive_declared": self.added, "files": [f.rel for f in self.files if f.changed],
                "stale_lockfiles": self.stale_lockfiles}


@dataclass
class RewritePlan(HasProblems):
    root: Path
    source: SourceSpec
    constraint: str
    versions: dict[str, str]
    version_source: str  # "pyproject" or "index"
    services: list[ServicePlan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    index_auth: bool = False

    @property
    def files(self) -> list[FilePlan]:
        return [f for s in self.services for f in s.files if f.changed]

    @property
    def changed(self) -> bool:
        return bool(self.files)

    def diff(self) -> str:
        return "".join(f.diff() for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "source": {"name": self.source.name, "url": self.source.url, "priority": self.source.priority},
            "constraint": self.constraint,
            "version_source": self.version_source,
            "versions": self.versions,
            "index_auth": self.index_auth,
            "changed": self.changed,
            "services": [s.to_dict() for s in self.services],
            "files": [f.to_dict() for f in self.files],
            "problems": [p.to_dict() for p in self.problems],
        }


# --------------------------------------------------------------------------- targets


def select_services(ws: Workspace, targets: Sequence[str], cwd: Path | None = None) -> list[Project]:
    """The projects named by ``targets`` (folders, pyproject.toml files or globs, relative to
    ``cwd`` or the root); every service of the workspace when none is given."""
    if not targets:
        # a project others declare by name is a shared package even when nothing depends on it
        # by path any more (after a rewrite): never a default target
        named: dict[str, set[Path]] = {}
        for p in ws.projects:
            for names in declared_names(p).values():
                for n in names:
                    named.setdefault(n, set()).add(p.path)
        return [p for p in ws.services if not (named.get(p.normalized or "", set()) - {p.path})]
    cwd = cwd or Path.cwd()
    chosen: dict[Path, Project] = {}
    unknown: list[str] = []
    for target in targets:
        matches: list[Path] = []
        for base in (cwd, ws.root):
            pattern = target if os.path.isabs(target) else str(base / target)
            found = [Path(m) for m in sorted(glob.glob(pattern))] if glob.has_magic(target) else (
                [Path(pattern)] if os.path.exists(pattern) else [])
            if found:
                matches = found
                break
        projects: list[Project] = []
        for m in matches:
            folder = m.parent if m.name == "pyproject.toml" or m.is_file() else m
            project = ws.project_at(folder)
            if project is not None:
                projects.append(project)
            elif not glob.has_magic(target):
                unknown.append(f"{target}: no pyproject.toml there (not a project of {ws.root})")
        if not matches:
            unknown.append(f"{target}: no such file or folder")
        for project in projects:
            if project.role == "shared":
                if glob.has_magic(target):
                    continue
                raise UsageError(
                    f"{target} is a shared package ({project.name}), not a service",
                    hint="shared packages keep their path dependencies in the monorepo; "
                         "`nexusify publish` rewrites its staged copy",
                )
            chosen[project.path] = project
    if unknown:
        service_paths = [p.rel(ws.root) for p in ws.services]
        near = [n for t in targets for n in difflib.get_close_matches(t.strip("/"), service_paths, n=2, cutoff=0.6)]
        raise UsageError("unknown target(s):\n  " + "\n  ".join(unknown),
                         hint=(f"did you mean {', '.join(sorted(set(near)))}? " if near else "")
                         + f"services found: {', '.join(service_paths) or '(none)'}")
    return sorted(chosen.values(), key=lambda p: p.path.as_posix())


# --------------------------------------------------------------------------- versions


def versions_from_pyproject(ws: Workspace) -> dict[str, str]:
    return {p.normalized: p.version for p in ws.shared if p.normalized and p.version}


def versions_from_index(names: Sequence[str], simple_url: str, credentials: Credentials | None,
                        timeout: float = 30.0) -> tuple[dict[str, str], list[Problem]]:
    """The highest version the index holds for each name (a release if there is one)."""
    from nexusify.index.nexus import SimpleIndex, make_client, origin

    found: dict[str, str] = {}
    problems: list[Problem] = []
    scheme, host, port = origin(simple_url)
    with make_client(timeout=timeout, credentials=credentials,
                     auth_origins=(f"{scheme}://{host}:{port}",)) as client:
        index = SimpleIndex(client, simple_url)
        for name in sorted(set(names)):
            files = index.project_files(name)
            versions: list[Version] = []
            for f in files:
                if f.yanked or f.version is None:
                    continue
                try:
                    versions.append(Version(f.version))
                except InvalidVersion:
                    continue
            releases = [v for v in versions if not v.is_prerelease and not v.is_devrelease]
            best = max(releases or versions, default=None)
            if best is None:
                problems.append(Problem("error", "not-published", None, None,
                                        f"{name} is not on the index {simple_url}",
                                        "run `nexusify publish` first, or drop --from-index"))
            else:
                found[name] = str(best)
    return found, problems


# --------------------------------------------------------------------------- planning


def _closure(ws: Workspace, start: Sequence[tuple[str, frozenset[str]]]) -> dict[str, str]:
    """Shared packages reached from ``start`` [(name, extras requested)], each with the package
    it came through. An optional dependency counts only when its extra is requested."""
    via: dict[str, str] = {}
    stack = [(n, e, n) for n, e in start]
    seen: set[str] = set()
    while stack:
        name, extras, origin = stack.pop()
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        project = ws.by_name.get(name)
        if project is None:
            continue
        for dep in project.local_deps:
            if not dep.runtime or dep.resolved is None or dep.normalized not in ws.by_name:
                continue
            if dep.group.startswith("extra:"):
                if not set(dep.group[len("extra:"):].split(",")) & extras:
                    continue
            elif dep.optional:
                continue
            via.setdefault(dep.normalized, origin)
            stack.append((dep.normalized, frozenset(canonicalize_name(x) for x in dep.extras), origin))
    return via


def transitive_additions(ws: Workspace, project: Project, deps: Sequence[LocalDependency]) -> tuple[list[AddedDependency], list[Problem]]:
    """The shared packages to declare so an explicit source covers every one the service needs."""
    declared = declared_names(project)
    main_declared = declared.get("main", set())
    additions: list[AddedDependency] = []
    problems: list[Problem] = []
    groups: dict[str, list[LocalDependency]] = {}
    for d in deps:
        groups.setdefault(d.group, []).append(d)
    taken: set[tuple[str, str]] = set()
    for group, members in groups.items():
        via = _closure(ws, [(d.normalized, frozenset(canonicalize_name(x) for x in d.extras)) for d in members])
        direct = {d.normalized for d in members}
        missing = {n: v for n, v in via.items() if n not in direct}
        if group.startswith("extra:"):
            if missing:
                problems.append(Problem(
                    "warning", "optional-transitive", relpath(project.pyproject, ws.root),
                    members[0].line,
                    f"optional shared dependencies ({', '.join(d.name for d in members)}) need "
                    f"{', '.join(sorted(missing))}, which are not declared with the source",
                    "declare them in the same extra with the source, or use --priority supplemental",
                ))
            continue
        target = group
        for name in sorted(missing):
            if target != "main" and name in main_declared:
                continue
            if (name, target) in taken:
                continue
            if target != "main" and any(n == name and g == "main" for n, g in taken):
                continue
            taken.add((name, target))
            display = ws.by_name[name].name or name
            additions.append(AddedDependency(display, target, ws.by_name[via[name]].name or via[name]))
    return additions, problems


def _container_paths(ws: Workspace, settings: Settings) -> list[str]:
    paths = set(settings.path_aliases)
    for p in ws.projects:
        for d in p.local_deps:
            if d.mapped_from:
                paths.add(d.mapped_from)
    return sorted(paths)


def plan_rewrite(
    settings: Settings,
    targets: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    from_index: bool = False,
    index_auth: bool | None = None,
    dockerfiles: bool = True,
    lock: bool = False,
    cwd: Path | None = None,
    workspace: Workspace | None = None,
    versions: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> RewritePlan:
    """Compute every edit for the target services; writes nothing (see the module docstring)."""
    from nexusify.model import workspace_for

    env = env or {}
    url = settings.simple_url
    if not url:
        raise ConfigError("no index URL: rewritten services need the URL of the index to install from",
                          hint="set nexus-url (and repository) or index-url in nexusify.toml, "
                               "or pass --nexus-url/--index-url")
    if mask_url(url) != url:
        raise ConfigError("the index URL holds credentials, and rewrite writes it into pyproject.toml and Dockerfiles",
                          hint="give the URL without user:password@ and set NEXUS_USERNAME/NEXUS_PASSWORD; "
                               "builds get them from a BuildKit secret")
    ws = workspace or workspace_for(settings)
    services = select_services(ws, targets, cwd)
    creds = resolve_credentials(settings.username, url, env, url_password=settings.url_password)
    auth = creds.present if index_auth is None else index_auth
    source = SourceSpec(settings.source_name, url, settings.priority)
    plan = RewritePlan(ws.root, source, settings.constraint, {}, "index" if from_index else "pyproject",
                       index_auth=auth)
    root = ws.root

    # problems of the targets (and of the shared packages they need) block the rewrite
    needed: set[str] = set()
    for project in services:
        needed.update(d.normalized for d in project.local_deps if d.resolved is not None)
        needed.update(ws.transitive(project, runtime_only=False))
    blocking_files = {relpath(p.pyproject, root) for p in services}
    blocking_files |= {relpath(f, root) for p in services for f in p.requirement_files}
    blocking_files |= {relpath(ws.by_name[n].pyproject, root) for n in needed if n in ws.by_name}
    for problem in ws.problems:
        if problem.path in blocking_files and problem.severity == "error":
            plan.problems.append(problem)

    if versions is not None:
        plan.versions = {canonicalize_name(k): v for k, v in versions.items()}
    elif from_index:
        found, problems = versions_from_index(sorted(needed), url, creds if creds.present else None,
                                              timeout=float(settings.timeout))
        plan.versions = found
        plan.problems.extend(problems)
    else:
        plan.versions = {k: v for k, v in versions_from_pyproject(ws).items() if k in needed}

    shared_dirs = SharedMatcher([*(p.path for p in ws.shared), *_container_paths(ws, settings)])
    shared_names = {p.normalized for p in ws.shared}
    ctx = _PlanContext(ws, settings, source, plan.versions, shared_dirs, shared_names, url, auth, dockerfiles,
                       lock, which)
    for sp, problems in _plan_services(services, ctx):
        plan.services.append(sp)
        plan.problems.extend(problems)
    _drop_repeated_files(plan)
    if lock and not plan.errors:
        _relock(plan, env, creds)
    return plan


@dataclass
class _PlanContext:
    """What every service's plan reads (shared, read-only)."""

    ws: Workspace
    settings: Settings
    source: SourceSpec
    versions: dict[str, str]
    shared_dirs: SharedMatcher
    shared_names: set[str | None]
    url: str
    auth: bool
    dockerfiles: bool
    lock: bool
    which: Callable[[str], str | None]


PARALLEL_FROM = 200  # services; below this, forking costs more than it saves
_FORKED: tuple[Sequence[Project], _PlanContext] | None = None


def _plan_nth(i: int) -> tuple[ServicePlan, list[Problem]]:
    assert _FORKED is not None
    services, ctx = _FORKED
    return _plan_service(services[i], ctx)


def _plan_services(services: Sequence[Project], ctx: _PlanContext) -> list[tuple[ServicePlan, list[Problem]]]:
    """Plan every service; large monorepos are planned on every core (forked workers inherit
    the workspace, so nothing is re-read; only the plans travel back). In order, either way."""
    global _FORKED
    cpus = os.cpu_count() or 1
    if (len(services) < PARALLEL_FROM or cpus < 2 or threading.active_count() > 1
            or "fork" not in multiprocessing.get_all_start_methods()):
        return [_plan_service(p, ctx) for p in services]
    _FORKED = (services, ctx)
    try:
        with multiprocessing.get_context("fork").Pool(cpus) as pool:
            return pool.map(_plan_nth, range(len(services)), chunksize=max(1, len(services) // (cpus * 4)))
    finally:
        _FORKED = None


def _plan_service(project: Project, ctx: _PlanContext) -> tuple[ServicePlan, list[Problem]]:
    """The edits for one service (pure: reads files, writes nothing)."""
    ws, root, settings, source = ctx.ws, ctx.ws.root, ctx.settings, ctx.source
    url, auth, dockerfiles, lock, which = ctx.url, ctx.auth, ctx.dockerfiles, ctx.lock, ctx.which
    shared_dirs, shared_names = ctx.shared_dirs, ctx.shared_names
    sp = ServicePlan(project.name or project.rel(root), project.rel(root), project.path)
    problems: list[Problem] = []
    deps = [d for d in project.local_deps
            if d.resolved is not None and d.normalized in ws.by_name and ws.by_name[d.normalized].role == "shared"]
    sp.by_version = sorted(n for names in declared_names(project).values() for n in names
                           if n in shared_names and n not in {d.normalized for d in deps})
    if not deps and not sp.by_version:
        return sp, problems  # nothing to do: the service is left byte-identical
    sp.shared = sorted({d.normalized for d in deps})
    req_deps = [d for d in deps if d.kind == "requirements"]
    deps = [d for d in deps if d.kind != "requirements"]
    if req_deps:
        files, more = plan_requirements(project, req_deps, ctx.versions, settings.constraint, url, root)
        sp.files.extend(files)
        problems.extend(more)
    rel = relpath(project.pyproject, root)
    if not deps and not project.requirements_only and sources_outdated(project.data, source):  # rewritten before, with other settings
        raw = project.pyproject.read_bytes()
        try:
            current = raw.decode("utf-8")
            result = edit_pyproject(current, [], ctx.versions, mode=settings.constraint, source=source,
                                    path=Path(rel), reconcile=True,
                                    data=project.data if current == project.text else None)
        except (NexusifyError, UnicodeDecodeError) as exc:
            problems.append(Problem("error", "pyproject-unrewritable", rel, None, str(exc)))
            return sp, problems
        if result.changed:
            sp.files.append(FilePlan(project.pyproject, rel, "pyproject", sp.name, raw,
                                     result.text.encode("utf-8"), result.edits))
    if deps:
        add: list[AddedDependency] = []
        if source.explicit:
            add, more = transitive_additions(ws, project, deps)
            problems.extend(more)
            sp.added = [a.name for a in add]
        old = project.pyproject.read_bytes()
        try:
            text = old.decode("utf-8")
            result = edit_pyproject(text, deps, ctx.versions, mode=settings.constraint, source=source, add=add,
                                    path=Path(rel), data=project.data if text == project.text else None)
        except NexusifyError as exc:
            problems.append(Problem("error", "pyproject-unrewritable", rel, exc.line, exc.message, exc.hint))
            return sp, problems
        except UnicodeDecodeError:
            problems.append(Problem("error", "unreadable", rel, None, "not UTF-8 text"))
            return sp, problems
        sp.files.append(FilePlan(project.pyproject, rel, "pyproject", sp.name, old,
                                 result.text.encode("utf-8"), result.edits))
        wroot = getattr(project, "workspace_root", None)
        if wroot is not None and wroot != project.path and any(d.kind == "uv-workspace" for d in deps):
            wrel = relpath(wroot / "pyproject.toml", root)
            problems.append(Problem(
                "warning", "uv-workspace-member", wrel, None,
                f"{sp.rel} stays a member of the uv workspace at {relpath(wroot, root)}; uv wants members to "
                "depend on each other with `workspace = true`",
                f'add "{project.rel(wroot)}" to [tool.uv.workspace] exclude so `uv sync` at the root resolves '
                "its shared packages from the index"))
    if dockerfiles:
        for df in project.dockerfiles:
            drel = relpath(df, root)
            raw = df.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(Problem("warning", "dockerfile-unpatchable", drel, None,
                                             "not UTF-8 text; this Dockerfile was left untouched"))
                continue
            context = guess_context(text, project.path, root)
            ws_line = _copies_workspace_root(text, root) if context == root else None
            if ws_line is not None:
                problems.append(Problem(
                    "warning", "dockerfile-unpatchable", drel, ws_line,
                    "builds the service inside the uv workspace at the monorepo root (it copies the root "
                    "pyproject.toml), so it needs the shared packages' folders",
                    f"after the rewrite, build from the service folder instead (docker build {project.rel(root)}) "
                    "with `uv pip install` or `uv sync` of the service; this Dockerfile was left untouched"))
                continue
            patched = patch_dockerfile(Path(drel), text, shared_dirs, index_url=url, auth=auth, context=context)
            for problem in patched.problems:
                problem.severity = "warning"
                problem.hint = (problem.hint + "; " if problem.hint else "") + "this Dockerfile was left untouched"
                problems.append(problem)
            if patched.changed:
                sp.files.append(FilePlan(df, drel, "dockerfile", sp.name, raw, patched.text.encode("utf-8"),
                                         patched.edits))
    changed = any(f.changed for f in sp.files)
    for name in LOCKFILES:
        lockfile = project.path / name
        if not lockfile.is_file() or not changed:
            continue
        lrel = relpath(lockfile, root)
        if lock:
            tool = _LOCK_TOOL[name]
            if which(tool) is None:
                problems.append(Problem("error", "lock-tool-missing", lrel, None,
                                             f"--lock needs `{tool}` to re-lock {lrel}, and it is not installed",
                                             f"install {tool} (pip install {tool}), or run without --lock"))
            else:
                sp.lock_tools.append((lrel, tool))
            continue
        text = lockfile.read_text(encoding="utf-8", errors="replace")
        mentions = [d.raw_path for d in deps if d.raw_path and d.raw_path.rstrip("/") in text]
        why = f"it still records the path(s) {', '.join(sorted(set(mentions)))}" if mentions else \
            "pyproject.toml changed after it was locked"
        sp.stale_lockfiles.append(lrel)
        problems.append(Problem("warning", "stale-lockfile", lrel, None, f"{lrel} is stale: {why}",
                                     f"re-lock: `{_LOCK_TOOL[name]} lock` in {sp.rel}, or `nexusify rewrite --lock`"))
    return sp, problems


def _copies_workspace_root(text: str, root: Path) -> int | None:
    """The line where a root-context Dockerfile copies the root pyproject.toml of a uv workspace."""
    from nexusify.formats.dockerfile import DockerfileSyntaxError, parse

    root_pyproject = root / "pyproject.toml"
    if not root_pyproject.is_file() or "[tool.uv.workspace]" not in root_pyproject.read_text(encoding="utf-8",
                                                                                          errors="replace"):
        return None
    try:
        instructions = parse(text)
    except DockerfileSyntaxError:
        return None
    for instr in instructions:
        copies = instr.keyword in ("COPY", "ADD") and not instr.has_flag("from")
        if copies and any(src.removeprefix("./").strip("/") in ("pyproject.toml", ".") for src in instr.sources):
            return instr.start
    return None


# --------------------------------------------------------------------------- requirements files


def _same_index(a: str, b: str) -> bool:
    return mask_url(a.strip().strip("'\"")).rstrip("/") == mask_url(b).rstrip("/")


def plan_requirements(project: Project, deps: Sequence[LocalDependency], versions: Mapping[str, str], mode: str,
                      url: str, root: Path) -> tuple[list[FilePlan], list[Problem]]:
    """The edits of ``project``'s requirements files: each line of ``deps`` (all in those
    files) becomes ``name<constraint>``; a file without an ``--index-url`` gets one."""
    problems: list[Problem] = []
    by_file: dict[Path, list[LocalDependency]] = {}
    for d in deps:
        by_file.setdefault(d.file, []).append(d)
    files = project.requirement_files
    problems.extend(_index_problems(project, set(by_file), url, root))
    plans: list[FilePlan] = []
    for path, file_deps in by_file.items():
        parsed = files.get(path)
        if parsed is None:  # pragma: no cover - every requirements dependency comes from a parsed file
            continue
        has_index = any(o for f in tree_of(path, files) for o in f.index_urls())
        plan, more = _plan_requirements_file(parsed, file_deps, versions, mode, url, root,
                                             project.name or project.rel(root), add_index=not has_index)
        problems.extend(more)
        if plan is not None:
            plans.append(plan)
    return plans, problems


def _index_problems(project: Project, rewritten: set[Path], url: str, root: Path) -> list[Problem]:
    """A different ``--index-url`` in a file pip reads along with a rewritten line (an error:
    the shared packages would not be found) and an ``--extra-index-url`` elsewhere (a warning)."""
    files = project.requirement_files
    seen: set[tuple[Path, int]] = set()
    problems: list[Problem] = []
    tops = [t.resolve() for t in project.requirement_tops]
    for top in [*tops, *rewritten]:
        tree = tree_of(top, files)
        if not rewritten & {f.path for f in tree}:
            continue
        for f in tree:
            for option in [*f.index_urls(), *f.extra_index_urls()]:
                if (f.path, option.line) in seen or _same_index(option.value, url):
                    continue
                seen.add((f.path, option.line))
                problems.append(_index_problem(f, option.option, option.value, option.line, url, root))
    return problems


def _index_problem(f: RequirementsFile, option: str, value: str, line: int, url: str, root: Path) -> Problem:
    rel = relpath(f.path, root)
    shown = mask_url(value.strip("'\""))
    if option == "--index-url":
        return Problem(
            "error", "requirements-index-conflict", rel, line,
            f"installs from --index-url {shown}, but the shared packages are on {url}: pip reads one index, "
            "so it would not find them",
            f"change the line to `--index-url {url}` (a Nexus group repository that proxies PyPI serves every "
            "package) or delete it so nexusify adds it; nothing was written")
    return Problem(
        "warning", "requirements-extra-index", rel, line,
        f"--extra-index-url {shown}: pip takes the highest version of a name across every index, so a package "
        "there with a shared package's name would be installed instead (dependency confusion)",
        f"delete the line and let {url} (a Nexus group repository) proxy the other index")


def _plan_requirements_file(parsed: RequirementsFile, deps: Sequence[LocalDependency], versions: Mapping[str, str],
                            mode: str, url: str, root: Path, service: str,
                            add_index: bool) -> tuple[FilePlan | None, list[Problem]]:
    rel = relpath(parsed.path, root)
    problems: list[Problem] = []
    try:
        old = parsed.path.read_bytes()
    except OSError as exc:
        return None, [Problem("error", "unreadable", rel, None, f"cannot read: {exc.strerror}")]
    bom = old.startswith(b"\xef\xbb\xbf")
    if old.decode("utf-8-sig", "replace") != parsed.text:
        return None, [Problem("error", "requirements-changed", rel, None, "changed while the monorepo was read",
                              "re-run the rewrite; nothing was written")]
    entries = {e.line: e for e in parsed.entries}
    replacements: dict[int, tuple[int, str]] = {}
    edits: list[Edit] = []
    for d in sorted(deps, key=lambda d: d.line or 0):
        entry = entries.get(d.line or 0)
        version = versions.get(d.normalized)
        if entry is None or version is None:
            problems.append(Problem("error", "version-unknown", rel, d.line,
                                    f"{d.name}: no version known for this shared package",
                                    "give it a version in its pyproject.toml, or publish it (--from-index)"))
            continue
        try:
            specifier = pep440_specifier(version, mode)
            new = requirement_line(d.name, specifier, entry)
        except (NexusifyError, InvalidRequirement) as exc:
            problems.append(Problem("error", "requirements-unrewritable", rel, d.line,
                                    f"{d.name}: cannot write a requirement for it: {exc}", "fix the line by hand"))
            continue
        replacements[entry.line] = (entry.end, new)
        edits.append(Edit(entry.line, "\n".join(parsed.text.splitlines()[entry.line - 1:entry.end]), new,
                          f"{d.name}: local path {d.written} -> version {specifier} from the index"))
    if problems:
        return None, problems
    first = f"--index-url {url}" if add_index else None
    if first is not None:
        edits.insert(0, Edit(1, "", first, f"pip installs from {url} only (credentials come from ~/.netrc or "
                                           "keyring, never from this file)"))
    text = replace_lines(parsed.text, replacements, first)
    new_bytes = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    return FilePlan(parsed.path, rel, "requirements", service, old, new_bytes, edits), problems


def _drop_repeated_files(plan: RewritePlan) -> None:
    """A requirements file several services include is planned once (by the first)."""
    seen: set[Path] = set()
    for sp in plan.services:
        kept = []
        for f in sp.files:
            if f.kind == "requirements" and f.path in seen:
                continue
            seen.add(f.path)
            kept.append(f)
        sp.files = kept


# --------------------------------------------------------------------------- locking


def _lock_env(tool: str, source: SourceSpec, creds: Credentials | None, base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("NEXUS_PASSWORD", "TWINE_PASSWORD")}
    env.setdefault("PATH", os.environ.get("PATH", ""))
    env.setdefault("HOME", os.environ.get("HOME", "/root"))
    auth = creds.auth() if creds else None
    if auth:
        key = source.name.upper().replace("-", "_").replace(".", "_")
        if tool == "poetry":
            env[f"POETRY_HTTP_BASIC_{key}_USERNAME"], env[f"POETRY_HTTP_BASIC_{key}_PASSWORD"] = auth
        elif tool == "uv":
            env[f"UV_INDEX_{key}_USERNAME"], env[f"UV_INDEX_{key}_PASSWORD"] = auth
        elif tool == "pdm":
            env[f"PDM_SOURCE_{key}_USERNAME"], env[f"PDM_SOURCE_{key}_PASSWORD"] = auth  # pragma: no cover
    return env


def _relock(plan: RewritePlan, env: Mapping[str, str], creds: Credentials | None) -> None:
    """Re-lock each service in a scratch copy holding the rewritten files; the new lockfiles join
    the plan, so they are written with everything else (or not at all)."""
    for sp in plan.services:
        for lrel, tool in sp.lock_tools:
            lockfile = plan.root / lrel
            with tempfile.TemporaryDirectory(prefix="nexusify-lock-") as tmp:
                scratch = Path(tmp) / sp.path.name
                shutil.copytree(sp.path, scratch, ignore=_COPY_IGNORE)
                for f in sp.files:
                    if f.path.parent == sp.path:
                        (scratch / f.path.name).write_bytes(f.new)
                cmd = {"poetry": ["poetry", "lock"], "uv": ["uv", "lock"], "pdm": ["pdm", "lock"]}[tool]
                lock_env = _lock_env(tool, plan.source, creds, env)
                proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True, check=False,
                                      env=lock_env, timeout=600)
                if proc.returncode != 0 and (scratch / lockfile.name).exists():
                    # an old lock the tool refuses (hand-edited, another tool version): lock afresh
                    (scratch / lockfile.name).unlink()
                    proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True, check=False,
                                          env=lock_env, timeout=600)
                if proc.returncode != 0:
                    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
                    secret = creds.password if creds else None
                    from nexusify.credentials import redact

                    plan.problems.append(Problem("error", "lock-failed", lrel, None,
                                                 f"`{' '.join(cmd)}` failed in {sp.rel}:\n{redact(tail, secret)}",
                                                 "check that every shared package is published (nexusify publish)"))
                    continue
                new = (scratch / lockfile.name).read_bytes()
            old = lockfile.read_bytes()
            if new != old:
                sp.files.append(FilePlan(lockfile, lrel, "lockfile", sp.name, old, new,
                                         [Edit(1, "", "", f"re-locked with `{tool} lock` against {plan.source.name}")]))


# --------------------------------------------------------------------------- applying


def apply_plan(plan: RewritePlan) -> list[FilePlan]:
    """Write every changed file of ``plan`` atomically, or nothing (see the module docstring)."""
    if plan.errors:
        raise ProblemsFound(
            f"{len(plan.errors)} problem(s) prevent the rewrite; nothing was written:\n  "
            + "\n  ".join(str(p) for p in plan.errors),
            hint="fix them and re-run; `nexusify rewrite --json` lists every edit and problem",
        )
    files = plan.files
    for f in files:
        try:
            current = f.path.read_bytes()
        except OSError as exc:
            raise OperationFailed(f"{f.rel}: cannot read it again before writing ({exc.strerror})",
                                  path=f.rel, hint="nothing was written") from exc
        if current != f.old:
            raise OperationFailed(f"{f.rel} changed while the rewrite was being planned", path=f.rel,
                                  hint="nothing was written; re-run the rewrite")
    write_files(plan.root, [(f.path, f.new) for f in files], command="rewrite")
    return files


__all__ = [
    "FilePlan", "RewritePlan", "ServicePlan", "apply_plan", "plan_rewrite", "select_services",
    "transitive_additions", "versions_from_index", "versions_from_pyproject",
]
