"""Roles by use, not by folder: which projects are shared packages and which consume them.

The one definition every verb asks (through :meth:`Workspace.shared` and
:meth:`Workspace.consumers`):

- **shared**: a named, installable project that another project of the monorepo depends on, in
  any folder: by path, file URL or uv workspace, or by name and version (after a rewrite). The
  development groups of an aggregator (the monorepo root, a uv workspace root) that no Dockerfile
  builds list members for local work: they make a library (a project that takes no other project
  at run time) shared, never a consumer. An aggregator a Dockerfile builds installs its groups in
  the image (``poetry install --only app``): what they take is shared like any dependency. A library that nothing depends on yet is shared when it sits in a shared folder
  (the configured ``shared`` globs, else ``shared/packages/*``, ``libs/*``, ``packages/*``): it is
  published for others. A deployable project in such a folder that nothing depends on and that
  takes shared code is a consumer, not a shared package.
- **consumer**: a project that installs shared code, wherever it lives, the root included: it
  depends on a shared package other than itself where it runs (its main dependencies, extras, a
  Poetry application's installed groups), or, when a Dockerfile builds it or it is an aggregator
  (the monorepo root, a uv workspace root: the environment its tool builds for everyone), in any
  group its tool installs by default (``uv sync``, ``pdm install`` and ``poetry install`` take the
  dev groups too: a nameless PDM root whose dev group takes its sub-packages). A uv workspace's
  consumers that only take members stay in it (:mod:`.staying`). A shared package is a consumer
  too when it is deployed itself (a Dockerfile builds it) and needs shared packages at run time: a
  server that sibling servers extend is both; so is an application only aggregators no Dockerfile
  builds depend on (the root listing it for local work: Kiln's desktop app) that takes shared
  packages at run time (it stays in its uv workspace: :mod:`.staying`). Development groups alone elsewhere (tests, tools)
  make nothing a consumer. A project whose image copies a shared package's folder (a Dockerfile
  that installs shared code its manifest never names) is one too.

Folder globs in the configuration narrow or widen the search (``exclude``, the ``services`` globs
that find requirements-only consumers, the ``shared`` globs that publish a library nothing uses
yet); they never turn a project others depend on into something else, or a consumer into a library.
"""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.model.dockerfiles import copied_folders, installed_names
from nexusify.model.paths import matches_glob
from nexusify.model.project import SHARED_GLOBS, Project
from nexusify.model.workspace import Workspace
from nexusify.syntax.requirements import file_group, requirement_name
from nexusify.syntax.toml import subtable


def declared_names(project: Project) -> dict[str, set[str]]:
    """Every dependency name the project declares, by group ("main" or a group name)."""
    data = project.data
    out: dict[str, set[str]] = {}
    poetry = subtable(data, "tool", "poetry")
    if isinstance(poetry.get("dependencies"), dict):
        out.setdefault("main", set()).update(canonicalize_name(k) for k in poetry["dependencies"])
    for g, body in (poetry.get("group") or {}).items():
        if isinstance(body, dict) and isinstance(body.get("dependencies"), dict):
            out.setdefault(g, set()).update(canonicalize_name(k) for k in body["dependencies"])

    def names(arr: object) -> set[str]:
        return {n for item in (arr if isinstance(arr, list) else []) if (n := requirement_name(item))}

    out.setdefault("main", set()).update(names(subtable(data, "project").get("dependencies")))
    groups = data.get("dependency-groups")
    for g, arr in (groups if isinstance(groups, dict) else {}).items():
        out.setdefault(g, set()).update(names(arr))
    for path, parsed in project.requirement_files.items():
        group = file_group(path)[0]
        out.setdefault(group, set()).update(n for n, _ in parsed.names)
    return out


def is_aggregator(p: Project, root: Path) -> bool:
    """The monorepo's root project or a uv workspace root: its dev groups list members for local
    development (libraries and services alike), which makes none of them a shared package."""
    return p.path == root or bool(p.workspace_members)


def depended_upon(ws: Workspace, *, aggregators: bool = False) -> dict[Path, list[Project]]:
    """project folder -> the projects that depend on it (by path or by name); the development
    groups of an aggregator no Dockerfile builds left out unless ``aggregators`` (a deployed one
    installs them in its image)."""
    root = ws.root
    out: dict[Path, list[Project]] = {}
    for p in ws.projects:
        aggregator = is_aggregator(p, root) and not p.docker_builds and not aggregators
        local = set()
        for d in p.local_deps:
            if d.resolved is not None:
                local.add(d.resolved)
                if d.resolved != p.path and not (aggregator and not d.runtime):
                    out.setdefault(d.resolved, []).append(p)
        # after `nexusify rewrite`, consumers name shared packages by version instead of path
        for group, names in declared_names(p).items():
            if group != "main" and aggregator:
                continue
            for n in names:
                target = ws.by_name.get(n)
                if target is not None and target is not p and target.path not in local:
                    out.setdefault(target.path, []).append(p)
        for i in p.index_deps:
            target = ws.by_name.get(i.normalized)
            if target is not None and target is not p and target.path not in local and not (aggregator and not i.runtime):
                out.setdefault(target.path, []).append(p)
    return out


def copied_by_images(ws: Workspace) -> set[Path]:
    """The folders of libraries (named projects that take no other project at run time) that an
    image building another project copies by name (``COPY shared /app/shared``, then ``pip install
    /app/shared`` or ``PYTHONPATH``), or installs by name (``pip install 'shared>=0.1'``, after a
    rewrite): that project depends on them, though its manifest never says so. A copy of a folder holding several projects (``COPY services/ .``) names none of them, and a
    project the same Dockerfile builds (one stage per project) is not copied as a dependency."""
    named = {q.path for q in ws.projects if q.normalized and not q.is_virtual
             and not [n for n in ws.direct(q, runtime_only=True) if n != q.normalized]}  # libraries
    built_by: dict[Path, set[Path]] = {}  # Dockerfile -> the projects it builds (one per build target)
    for q in ws.projects:
        for b in q.docker_builds:
            built_by.setdefault(b.dockerfile, set()).add(q.path)
    out: set[Path] = set()
    for p in ws.projects:
        for b in p.docker_builds:
            others = named - built_by[b.dockerfile]
            out |= copied_folders(b, others, by_name=True)
            libs = {lib.normalized: lib.path for f in others
                    if (lib := ws.project_at(f)) is not None and lib.normalized}
            out |= {libs[n] for n in installed_names(b, set(libs))}
    return out


def assign_roles(ws: Workspace, shared_globs: list[str],
                 gathered: dict[Path, list[Project]] | None = None) -> set[Path]:
    """Decide :attr:`Workspace.shared_paths` and :attr:`Workspace.consumer_why` (see the module).
    Returns the folders meant to be shared packages, named or not (the checks tell a library
    without a name or version that it cannot be published). ``gathered``:
    ``depended_upon(ws, aggregators=True)`` when the caller has it."""
    depended = depended_upon(ws)
    depended.update({f: [] for f in copied_by_images(ws) if f not in depended})
    if gathered is None:
        gathered = depended_upon(ws, aggregators=True)  # by an aggregator's dev groups too
    folders = shared_globs or list(SHARED_GLOBS)
    meant: set[Path] = set()
    for p in ws.projects:
        if p.is_virtual:
            continue
        # a library takes no other project at run time; a project that does is a consumer, and an
        # aggregator's dev group listing it (for local work) makes it no library
        library = not [n for n in ws.direct(p, runtime_only=True) if n != p.normalized]
        in_folder = matches_glob(p.rel(ws.root), folders) and (library or not p.docker_builds)
        if p.path in depended or (library and p.path in gathered) or in_folder:
            meant.add(p.path)
    shared = {f for f in meant if (q := ws.project_at(f)) is not None and q.normalized}
    ws.shared_paths = frozenset(shared)
    why: dict[Path, str] = {}
    takes: dict[Path, tuple[str, ...]] = {}
    aggregated_only: set[Path] = set()
    for p in ws.projects:
        own, deployed = p.path in shared, bool(p.docker_builds)
        dependents = depended.get(p.path, [])
        # an application only the root (or a uv workspace root) lists for local work runs what it takes
        aggregated = own and not deployed and bool(dependents) and all(
            is_aggregator(q, ws.root) and not q.docker_builds for q in dependents)
        if own and not deployed and not aggregated:
            continue
        every_group = deployed or is_aggregator(p, ws.root)  # what its tool installs there by default
        names = [n for n in ws.direct(p, runtime_only=own or not every_group)
                 if ws.by_name[n].path in shared and ws.by_name[n] is not p]
        if names:
            runtime = set(ws.direct(p, runtime_only=True))
            shown = ", ".join(n + ("" if n in runtime else " (dev)") for n in names)
            what = ("" if not own else "deployed (a Dockerfile builds it) and " if deployed
                    else "an application only the monorepo or uv workspace root takes, and ")
            why[p.path] = f"{what}installs the shared package(s) {shown}"
            takes[p.path] = tuple(names)
            if aggregated:
                aggregated_only.add(p.path)
            continue
        if aggregated:
            continue
        copied = set().union(*(copied_folders(b, shared - {p.path}) for b in p.docker_builds))
        if copied:
            copies = sorted(q.normalized for f in copied if (q := ws.project_at(f)) is not None and q.normalized)
            why[p.path] = f"its image copies the shared package(s) {', '.join(copies)}"
            takes[p.path] = tuple(copies)
            continue
        names_shared = {q.normalized for f in shared - {p.path} if (q := ws.project_at(f)) is not None and q.normalized}
        installed = sorted(set().union(*(installed_names(b, names_shared) for b in p.docker_builds)))
        if installed:
            why[p.path] = f"its image installs the shared package(s) {', '.join(installed)}"
            takes[p.path] = tuple(installed)
    ws.consumer_why = why
    ws.consumer_takes = takes
    ws.aggregated_only = frozenset(aggregated_only)
    return meant


__all__ = ["assign_roles", "copied_by_images", "declared_names", "depended_upon", "is_aggregator"]
