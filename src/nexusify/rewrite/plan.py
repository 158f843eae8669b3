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
* its Dockerfiles, through the one shared-code rule (:mod:`nexusify.formats.dockerfile_rules`, also
  behind audit's warnings) and :mod:`nexusify.rewrite.dockerfile_patch`: COPY/ADD of shared code
  dropped, installs of what they copied name the package by version, install
  steps read ``$NEXUS_INDEX_URL``, and credentials come from a BuildKit secret when the index
  needs them;
* lockfiles: re-locked by their own tool so that only the shared packages' entries change
  (:mod:`nexusify.rewrite.lock`); with ``lock=False`` (``--no-lock``), or when that fails, reported as stale;
* a uv workspace member is moved out of its workspace onto the index (:mod:`nexusify.rewrite.uv_move`:
  the root's ``exclude``, path sources for it elsewhere in the workspace, and its root-context
  Dockerfiles built alone, :mod:`nexusify.rewrite.uv_move_dockerfile`); its two locks (the root's
  re-lock, the member's new one) are lock jobs like any other.

Versions come from the shared packages' own ``pyproject.toml``, or with ``from_index`` from
what the index has published (the highest release on its PEP 503 page).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.config import Settings
from nexusify.credentials import Credentials
from nexusify.errors import NexusifyError, Problem
from nexusify.formats.dockerfile_checks import CODES as CHECK_CODES
from nexusify.formats.dockerfile_checks import uv_package_problems
from nexusify.formats.dockerfile_rules import (
    JudgedDockerfile,
    SharedCode,
    judge_dockerfile,
    judge_project,
)
from nexusify.formats.edits import Edit
from nexusify.formats.lockfiles import path_pins
from nexusify.formats.pyproject_edit import (
    AddedDependency,
    SourceSpec,
    edit_pyproject,
    sources_outdated,
)
from nexusify.formats.workspace_stay import stay_problems
from nexusify.model import Project, Workspace, declared_names, relpath, stays_in_workspace
from nexusify.model.by_name import by_name_only, by_name_problem
from nexusify.model.staying import workspace_of
from nexusify.rewrite.apply import apply_plan
from nexusify.rewrite.compose_contexts import drop_unused_contexts
from nexusify.rewrite.dockerfile_patch import patch as patch_dockerfile
from nexusify.rewrite.lock import LockJob
from nexusify.rewrite.lock import relock as relock_jobs
from nexusify.rewrite.plan_data import FilePlan, RewritePlan, ServicePlan
from nexusify.rewrite.requirements_plan import drop_repeated_files, plan_requirements
from nexusify.rewrite.targets import select_services
from nexusify.rewrite.uv_move import (
    leftover_workspace_sources,
    merge_compose_files,
    moves_out,
    plan_workspace_edits,
    stale_move_locks,
)
from nexusify.rewrite.uv_move_dockerfile import move_dockerfile
from nexusify.rewrite.versions import (
    transitive_additions,
    versions_from_index,
    versions_from_pyproject,
)
from nexusify.syntax.constraints import pep440_specifier


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
    url = settings.install_index_url("rewritten services need the URL of the index to install from")
    ws = workspace or workspace_for(settings)
    services = select_services(ws, targets, cwd)
    creds = settings.credentials(env)
    auth = creds.present if index_auth is None else index_auth
    source = SourceSpec(settings.source_name, url, settings.priority, auth=auth)
    plan = RewritePlan(ws.root, source, settings.constraint, {}, "index" if from_index else "pyproject",
                       index_auth=auth)
    root = ws.root

    # problems of the targets (and of the shared packages they need) block the rewrite
    needed: set[str] = set()
    for project in services:
        needed.update(d.normalized for d in project.local_deps if d.resolved is not None)
        needed.update(ws.closure([project], runtime=False))
    shared_code = SharedCode.from_workspace(ws, settings.path_aliases)
    judged_by_path: dict[Path, list[JudgedDockerfile]] = {}  # each service's Dockerfiles, judged once
    if dockerfiles:
        # a Dockerfile may copy and install a shared package its manifest never names: it gets
        # installed by version from the index, so its version must be known too
        for project in services:
            judged_by_path[project.path] = judge_project(project, root, shared_code)
            for judged in judged_by_path[project.path]:
                needed.update(canonicalize_name(i.name) for i in judged.verdict.installs)
    # the one gate: every error in anything the targets reach, directly or transitively (an
    # unreadable shared package included), and every graph error among them
    plan.problems.extend(ws.errors_reaching(services))
    if not targets:  # "every service": a folder whose manifest cannot be read may be one of them
        # ... or take a shared package that has no name (a computed setup(name=...)) by path
        plan.problems.extend(p for p in ws.unreadable_errors() + ws.unnamed_shared_errors() if p not in plan.problems)

    if versions is not None:
        plan.versions = {canonicalize_name(k): v for k, v in versions.items()}
    elif from_index:
        found, problems = versions_from_index(sorted(needed), url, creds if creds.present else None,
                                              timeout=float(settings.timeout))
        plan.versions = found
        plan.problems.extend(problems)
    else:
        plan.versions = {k: v for k, v in versions_from_pyproject(ws).items() if k in needed}

    shared_names = {p.normalized for p in ws.shared() if p.normalized}
    ctx = _PlanContext(ws, settings, source, plan.versions, shared_code,
                       shared_names, url, auth, dockerfiles, judged_by_path)
    for sp, problems in _plan_services(services, ctx):
        plan.services.append(sp)
        plan.problems.extend(problems)
    drop_repeated_files(plan)
    merge_compose_files(plan)
    if dockerfiles:
        drop_unused_contexts(plan, ws)
    by_path = {p.path: p for p in services}
    moving = [(by_path[sp.path], sp) for sp in plan.services
              if sp.path in by_path and moves_out(by_path[sp.path], shared_names)]
    plan.problems.extend(plan_workspace_edits(ws, moving))
    stale_move_locks(ws, plan, services)
    if not targets:  # every consumer: those that stay in their uv workspace keep working as is
        for project in ws.projects:
            wroot = workspace_of(project)
            if wroot is not None and stays_in_workspace(project, ws):
                plan.staying.append(project.rel(root))
                if dockerfiles:
                    if project.path not in judged_by_path:
                        judged_by_path[project.path] = judge_project(project, root, shared_code)
                    plan.problems.extend(stay_problems(project.name or project.rel(root), wroot,
                                                       judged_by_path[project.path]))
    plan.judged = judged_by_path
    if not plan.errors:
        _relock(plan, env, creds if creds.present else None, lock, which)
    return plan


def _relock(plan: RewritePlan, env: Mapping[str, str], creds: Credentials | None, lock: bool,
            which: Callable[[str], str | None]) -> None:
    """Each lock job of the plan (a rewritten consumer's lockfile; a uv workspace move's root lock
    and the member's new one), re-locked against the index (:mod:`nexusify.rewrite.lock`): the new
    ones join the plan; one that is not re-locked (``lock`` False: ``--no-lock``, a dry run) or
    cannot be is a warning with the exact command."""
    overrides = {f.path: f.new for f in plan.files}

    def manifest(job: LockJob) -> str | None:
        data = overrides.get(job.folder / "pyproject.toml")
        return data.decode("utf-8", "replace") if data is not None else None

    for sp in plan.services:
        if not sp.lock_jobs:
            continue
        if not lock:
            for job in sp.lock_jobs:
                sp.stale_lockfiles.append(relpath(job.lockfile, plan.root))
                plan.problems.append(job.warning(plan.root, job.stale or "it was not re-locked (--no-lock or a dry run)",
                                                 manifest(job)))
            continue
        changes, warnings = relock_jobs(sp.lock_jobs, plan.root, plan.source.name, env, creds, overrides=overrides,
                                        which=which)
        sp.stale_lockfiles.extend(p.path or "" for p in warnings)
        plan.problems.extend(warnings)
        for job, new in changes:
            lrel = relpath(job.lockfile, plan.root)
            old = job.lockfile.read_bytes() if job.lockfile.is_file() else b""
            shown = " && ".join(" ".join(c) for c in job.commands(manifest(job), old.decode("utf-8") if old else None))
            sp.files.append(FilePlan(job.lockfile, lrel, "lockfile", sp.name, old, new,
                                     [Edit(1, "", "", f"{'re-' if old else ''}locked with `{shown}` against "
                                                      f"{plan.source.name}")]))
    stale = set(plan.stale_lockfiles)
    for sp in plan.services:
        if sp.move is not None:
            sp.move.locked = [rel for rel in sp.move.locks if lock and rel not in stale]


@dataclass
class _PlanContext:
    """What every service's plan reads (shared, read-only)."""

    ws: Workspace
    settings: Settings
    source: SourceSpec
    versions: dict[str, str]
    shared_code: SharedCode
    shared_names: set[str]
    url: str
    auth: bool
    dockerfiles: bool
    judged_by_path: dict[Path, list[JudgedDockerfile]]

    def judged(self, project: Project) -> list[JudgedDockerfile]:
        """The verdicts on ``project``'s Dockerfiles (judged once per plan)."""
        found = self.judged_by_path.get(project.path)
        if found is None:
            found = self.judged_by_path[project.path] = judge_project(project, self.ws.root, self.shared_code)
        return found

    def requirement(self, name: str, extras: str) -> str | None:
        """What a Dockerfile installs instead of a copied shared package: ``name[extras]<spec>``."""
        version = self.versions.get(canonicalize_name(name))
        return None if version is None else f"{name}{extras}{pep440_specifier(version, self.settings.constraint)}"


PARALLEL_FROM = 200  # services; below this, forking costs more than it saves
_FORKED: tuple[Sequence[Project], _PlanContext] | None = None


def _worker_signals() -> None:
    """A worker leaves interrupts to the parent: the handlers it inherits through fork would turn
    the pool's SIGTERM (sent when the pool closes) into an exception a worker blocked on the
    pool's queue can survive, and the parent would wait for it forever; Ctrl-C reaches the whole
    process group, and the parent alone stops (closing the pool ends the workers)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        with multiprocessing.get_context("fork").Pool(cpus, initializer=_worker_signals) as pool:
            return pool.map(_plan_nth, range(len(services)), chunksize=max(1, len(services) // (cpus * 4)))
    finally:
        _FORKED = None


def _copies_shared_code(project: Project, ctx: _PlanContext) -> bool:
    """Whether a Dockerfile of ``project`` copies shared code (or cannot be judged), even though its
    manifest names no shared package: audit warns about it, so rewrite patches it."""
    for judged in ctx.judged(project) if ctx.dockerfiles else ():
        if judged.verdict.changes:
            return True
    return False


def _plan_service(project: Project, ctx: _PlanContext) -> tuple[ServicePlan, list[Problem]]:
    """The edits for one service (pure: reads files, writes nothing)."""
    ws, root, settings, source = ctx.ws, ctx.ws.root, ctx.settings, ctx.source
    url, auth, dockerfiles = ctx.url, ctx.auth, ctx.dockerfiles
    shared_names = ctx.shared_names
    sp = ServicePlan(project.name or project.rel(root), project.rel(root), project.path)
    problems: list[Problem] = []
    deps = [d for d in project.local_deps
            if d.resolved is not None and ws.is_shared(d.normalized)]
    bare = by_name_only(project, shared_names)
    sp.by_name = sorted({d.normalized for d in bare})
    problems.extend(by_name_problem(project, d, root, ctx.versions, settings.source_name) for d in bare)
    sp.by_version = sorted(n for names in declared_names(project).values() for n in names
                           if n in shared_names and n not in {d.normalized for d in deps} and n not in sp.by_name)
    if not deps and not sp.by_version and not sp.by_name and not _copies_shared_code(project, ctx):
        return sp, problems  # nothing to do: the service is left byte-identical
    sp.shared = sorted({d.normalized for d in deps})
    req_deps = [d for d in deps if d.kind == "requirements"]
    deps = [d for d in deps if d.kind != "requirements"]
    if req_deps or project.requirement_files:
        files, more = plan_requirements(project, req_deps, ctx.versions, settings.constraint, url, root,
                                        {n for n in ctx.shared_names if n})
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
            sp.added = [a.name for a in add if a.via]  # transitive ones; the others only get the source
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
    moving = moves_out(project, shared_names)
    if moving:  # taken out of its uv workspace (rewrite.uv_move): nothing of it may stay there
        problems.extend(leftover_workspace_sources(sp, project, root))
    if dockerfiles:
        for judged in ctx.judged(project):
            df, drel, content, verdict = judged.path, judged.rel, judged.content, judged.verdict
            if content is None:
                problems.extend(_untouched(p) for p in verdict.problems)
                continue
            if moving and any(p.code == "dockerfile-uv-workspace" for p in verdict.problems):
                problems.extend(_plan_moved_dockerfile(sp, project, judged, ctx))
                continue
            if moving and (gone := _syncs_moved_member(project, judged, root)):
                problems.extend(gone)  # `uv sync --package <it>` over the workspace it leaves: refused
                continue
            patched = patch_dockerfile(Path(drel), content.decode("utf-8"), verdict, index_url=url, auth=auth,
                                       requirement=ctx.requirement)
            needed = bool(verdict.copies or verdict.installs or verdict.filters)
            for problem in patched.problems:
                # only the index URL could not be added: the shared code is gone already (a build inside
                # a uv workspace still has it: that stays an error)
                lesser = not needed and problem.code != "dockerfile-uv-workspace" and problem.code not in CHECK_CODES
                problems.append(_untouched(problem, warning=lesser))
            if patched.changed:
                sp.files.append(FilePlan(df, drel, "dockerfile", sp.name, content, patched.text.encode("utf-8"),
                                         patched.edits))
    own = [lf for lf in ws.lockfiles_of(project) if lf.parent == project.path]  # a workspace's lock: uv_move
    sp.lock_jobs = _lock_jobs(own, sp, frozenset(n for n in shared_names if n))
    return sp, problems


def _untouched(problem: Problem, *, warning: bool = False) -> Problem:
    """A Dockerfile problem as rewrite reports it for one consumer: the rule's hint, and that the
    file was left alone (``warning``: lowered to a warning). A copy, never the judged one: a
    Dockerfile is judged once per rewrite and its problems are shared by every consumer it builds."""
    hint = (problem.hint + "; " if problem.hint else "") + "this Dockerfile was left untouched"
    return replace(problem, hint=hint, severity="warning" if warning else problem.severity)


def _lock_jobs(lockfiles: list[Path], sp: ServicePlan, shared: frozenset[str]) -> list[LockJob]:
    """The service's own lockfiles to re-lock: every one when the rewrite changes what it resolves,
    else those that still pin a shared package from a path (rewritten before with ``--no-lock``,
    or a re-lock that failed): re-running ``rewrite`` finishes the job, and ``--check`` sees it."""
    rewritten = any(f.changed and f.kind != "dockerfile" for f in sp.files)
    jobs: list[LockJob] = []
    for lockfile in lockfiles:
        name = lockfile.name
        names = set(sp.shared) | set(sp.added)
        if not rewritten:
            try:
                text = lockfile.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            stale = {pin.name for pin in path_pins(text, name, shared)}
            if not stale:
                continue
            names |= stale | set(sp.by_version)
        jobs.append(LockJob(sp.name, lockfile.parent, lockfile, tuple(sorted(names)), shared))
    return jobs


def _syncs_moved_member(project: Project, judged: JudgedDockerfile, root: Path) -> list[Problem]:
    """The lines of a Dockerfile building ``project`` (about to leave its uv workspace) that run
    ``uv sync/run --package <it>`` over that workspace: the rule ``rewrite --check`` and verify
    apply after the move (:func:`~nexusify.formats.dockerfile_checks.uv_package_problems`), asked
    before it."""
    df, context = judged.verdict.dockerfile, judged.verdict.context
    if df is None or context is None or project.workspace_root is None or not project.normalized:
        return []
    arg_sets = [dict(b.build_args) for b in project.docker_builds if b.dockerfile == judged.path] or [{}]
    return [p for p in uv_package_problems(judged.rel, df, context=context, root=root, arg_sets=arg_sets,
                                           leaving={project.workspace_root: {project.normalized}})
            if p.code == "dockerfile-uv-move"]


def _plan_moved_dockerfile(sp: ServicePlan, project: Project, judged: JudgedDockerfile,
                           ctx: _PlanContext) -> list[Problem]:
    """A moved member's Dockerfile that built inside the workspace: built alone
    (:mod:`nexusify.rewrite.uv_move_dockerfile`), then patched like any other (index URL, secret)."""
    root, content = ctx.ws.root, judged.content
    assert content is not None and project.workspace_root is not None
    builds = [b for b in project.docker_builds if b.dockerfile == judged.path]
    moved = move_dockerfile(judged.rel, content.decode("utf-8"), judged.verdict, project, project.workspace_root,
                            builds, root, ctx.url)
    if moved.problems:
        return moved.problems
    verdict = judge_dockerfile(judged.rel, moved.text, project_dir=project.path, root=root, shared=ctx.shared_code,
                               context=moved.context)
    patched = patch_dockerfile(Path(judged.rel), moved.text, verdict, index_url=ctx.url, auth=ctx.auth,
                               requirement=ctx.requirement)
    if patched.problems:
        return patched.problems
    sp.files.append(FilePlan(judged.path, judged.rel, "dockerfile", sp.name, content, patched.text.encode("utf-8"),
                             moved.edits + patched.edits))
    for path, old, new, edits in moved.compose:
        sp.files.append(FilePlan(path, relpath(path, root), "compose", sp.name, old.encode("utf-8"),
                                 new.encode("utf-8"), edits))
    return []


__all__ = [
    "FilePlan", "RewritePlan", "ServicePlan", "apply_plan", "plan_rewrite", "select_services",
    "transitive_additions", "versions_from_index", "versions_from_pyproject",
]
