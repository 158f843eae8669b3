"""``load_workspace``: the one way every verb reads the monorepo (discover, read, resolve,
classify, check), and ``workspace_for(settings)`` with the configured overrides."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.checks import NAME_KEY, check_projects
from nexusify.model.discovery import (
    find_lockfiles,
    iter_pyprojects,
    read_project,
    requirements_consumers,
    requirements_only_projects,
    virtual_by_tool,
)
from nexusify.model.dockerfiles import match_builds
from nexusify.model.dynamic_version import resolve_dynamic_version
from nexusify.model.legacy import legacy_index_dependencies
from nexusify.model.paths import PathMapper
from nexusify.model.project import SERVICE_GLOBS, LocalDependency, Project
from nexusify.model.readers.named import read_index_dependencies
from nexusify.model.readers.pep621 import check_dependency_groups, read_pep621_deps
from nexusify.model.readers.poetry import read_poetry_deps
from nexusify.model.readers.requirements import read_requirements_deps
from nexusify.model.readers.uv import link_uv_workspaces
from nexusify.model.resolve import adopt_target_name, resolve_dependency
from nexusify.model.roles import assign_roles, depended_upon
from nexusify.model.tree import listed_once
from nexusify.model.unpackaged import unpackaged_copies
from nexusify.model.workspace import Workspace

if TYPE_CHECKING:
    from nexusify.config import Settings

@listed_once  # discovery, the requirements consumers and the Dockerfile scan share one listing
def load_workspace(
    root: Path,
    *,
    shared_globs: Iterable[str] = (),
    service_globs: Iterable[str] = (),
    exclude: Iterable[str] = (),
    path_aliases: dict[str, str] | None = None,
    resolve_dynamic: bool = True,
) -> Workspace:
    """Discover every project under ``root`` and decide its roles by use (:mod:`.roles`);
    problems are collected, not raised. ``service_globs`` widen the search for consumers installed
    with requirements files only; ``shared_globs`` publish libraries nothing depends on yet.

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
        project = read_project(pp, root, problems)
        if project is None:
            folder = pp.parent.resolve()  # a symlink out of the root stays where it is in the tree
            broken.add(folder if folder.is_relative_to(root) else pp.parent)
        else:
            projects.append(project)
    taken = {p.path for p in projects} | broken
    projects.extend(requirements_only_projects(root, taken, service_globs or list(SERVICE_GLOBS), exclude))
    named = {p.normalized for p in projects if p.normalized and not p.requirements_only}
    projects.extend(requirements_consumers(root, taken, exclude, named))
    # a setup.py inside another project's folder is vendored code that ships with that project
    folders = {p.path for p in projects if p.path != root}
    projects = [p for p in projects if p.legacy_manifest is None or not any(f in folders for f in p.path.parents)]
    projects.sort(key=lambda p: p.path.as_posix())

    by_path = {p.path: p for p in projects}
    by_name: dict[str, Project] = {}
    duplicates: set[str] = set()
    for p in projects:
        if not p.normalized:
            continue
        other = by_name.get(p.normalized)
        if other is not None:
            problems.append(Problem(
                "error", "duplicate-name", relpath(p.manifest, root), p.lines.pattern(NAME_KEY),
                f"{p.name!r} has the same normalised name ({p.normalized}) as {other.name!r} in "
                f"{relpath(other.manifest, root)}",
                "rename one of them: an index holds one project per normalised name",
                subjects=(p.normalized,),
            ))
            duplicates.add(p.normalized)
            continue
        by_name[p.normalized] = p

    roots = link_uv_workspaces(projects, by_path)
    for p in projects:
        read_poetry_deps(p, root, problems)
        read_pep621_deps(p, root, problems, roots.get(p.workspace_root) if p.workspace_root else None, by_name)
        read_requirements_deps(p, root, problems)
        check_dependency_groups(p, root, problems)

    for i, problem in enumerate(problems):
        if problem.code == "bad-requirement" and problem.severity == "warning" and set(problem.subjects) & by_name.keys():
            problems[i] = replace(problem, severity="error", hint=(
                f"it names {problem.subjects[0]}, a package of this monorepo: fix the line so nexusify (and pip) "
                "can tell which version it needs"))

    mapper = PathMapper(root, by_path, dict(path_aliases or {}))
    for p in projects:
        for dep in p.local_deps:
            resolve_dependency(dep, p, root, by_path, by_name, mapper, broken, exclude, problems)
            adopt_target_name(dep, by_path)
        # `-e .` in a project's own requirements file installs the project itself
        p.local_deps = [d for d in p.local_deps if not (d.kind == "requirements" and d.resolved == p.path)]

    unreadable_requires: dict[Path, tuple[Path, int | None]] = {}
    for p in projects:
        p.index_deps = read_index_dependencies(p, by_name)
        legacy, dynamic = legacy_index_dependencies(p, by_name)
        p.index_deps += legacy
        if dynamic is not None:
            unreadable_requires[p.path] = dynamic

    ws = Workspace(root, projects, problems, by_name, broken=broken, duplicates=duplicates, _by_path=by_path)
    gathered = depended_upon(ws, aggregators=True)  # (read by the roles too: the dependencies are all read)
    builds, ws.unmatched_builds = match_builds(root, projects, set(gathered), problems)
    for p in projects:
        p.docker_builds = builds.get(p.path, [])
        p.dockerfiles = sorted({b.dockerfile for b in p.docker_builds})
        p.lockfiles = find_lockfiles(p, by_path)
        p.virtual_reason = virtual_by_tool(p, depended_upon=p.path in gathered)
    meant_shared = assign_roles(ws, list(shared_globs), gathered)
    unpackaged, taking = unpackaged_copies(root, projects)
    problems.extend(unpackaged)
    for folder, hosts in taking.items():  # what its image takes can never come from the index: refused
        if folder not in ws.consumer_why:
            ws.consumer_why[folder] = ("its image takes code with no package metadata from "
                                       + ", ".join(sorted(relpath(h, root) + "/" for h in hosts)))
    ws.unnamed_shared = frozenset(meant_shared - ws.shared_paths)
    for p in projects:
        if ws.is_shared(p) and p.version is None and p.version_dynamic and resolve_dynamic:
            p.version, p.version_error = resolve_dynamic_version(p)
    check_projects(ws, meant_shared)
    for p in projects:
        if ws.is_shared(p) and p.path in unreadable_requires:
            file, line = unreadable_requires[p.path]
            problems.append(Problem(
                "warning", "dependencies-dynamic", relpath(file, root), line,
                f"{p.name or p.rel(root)}: install_requires is not a literal list, so nexusify cannot tell which "
                "shared packages it needs: the publish order (and what affected and release pull in) may be wrong",
                "write install_requires as a literal list (setup.py) or in setup.cfg [options]"))
    for cycle in ws.cycles():
        first = ws.by_name[cycle[0]]
        problems.append(Problem(
            "error", "dependency-cycle", relpath(first.manifest, root), None,
            f"shared packages depend on each other in a cycle: {' -> '.join(cycle)}",
            "break the cycle: move the code both need into a package both depend on",
            subjects=tuple(cycle),
        ))
    return ws



def read_local_dependencies(project: Project, problems: list[Problem] | None = None, rel: str = "pyproject.toml") -> list[LocalDependency]:
    """Read ``project``'s local dependencies (all forms) without resolving them: for tools that
    look at one file (``rewrite``). Workspace-inherited uv sources are not applied here."""
    problems = [] if problems is None else problems
    project.local_deps = []
    read_poetry_deps(project, rel, problems)
    read_pep621_deps(project, rel, problems)
    return project.local_deps


def workspace_for(settings: Settings) -> Workspace:
    """Load the monorepo with the settings' discovery overrides (what every verb calls)."""
    ws = load_workspace(
        settings.root,
        shared_globs=settings.shared,
        service_globs=settings.services,
        exclude=settings.exclude,
        path_aliases=settings.path_aliases,
    )
    ws.stay = frozenset(folder for pattern in settings.stay_in_workspace for folder in stay_folders(ws.root, pattern))
    return ws


def stay_folders(root: Path, pattern: str) -> list[Path]:
    """The folders one ``stay-in-workspace`` glob names (relative to the root)."""
    import glob

    return [Path(os.path.normpath(m)) for m in sorted(glob.glob(str(root / pattern))) if os.path.isdir(m)]
