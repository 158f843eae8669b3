"""The versions a rewrite writes (from the shared packages' pyproject.toml or from what the
index has published), and the transitive shared packages a service must declare."""

from __future__ import annotations

from collections.abc import Sequence

from packaging.version import InvalidVersion, Version

from nexusify.credentials import Credentials
from nexusify.errors import Problem
from nexusify.formats.pyproject_edit import AddedDependency
from nexusify.model import LocalDependency, Project, Workspace, declared_names, relpath
from nexusify.syntax.requirements import file_group


def versions_from_pyproject(ws: Workspace) -> dict[str, str]:
    return {p.normalized: p.version for p in ws.shared() if p.normalized and p.version}


def versions_from_index(names: Sequence[str], simple_url: str, credentials: Credentials | None,
                        timeout: float = 30.0) -> tuple[dict[str, str], list[Problem]]:
    """The highest version the index holds for each name (a release if there is one)."""
    from nexusify.index.client import make_client, origin
    from nexusify.index.pages import SimpleIndex

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


def _installed(ws: Workspace, members: Sequence[LocalDependency]) -> dict[str, str]:
    """What installing ``members`` installs (the model's closure, with the extras each asks):
    {shared package: the member it comes through}."""
    extras: dict[str, set[str]] = {}
    for d in members:
        extras.setdefault(d.normalized, set()).update(d.extras)
    return ws.closure(list(extras), extras=extras)


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
    # what the main group declares with the source once rewritten: its names and their closure
    main_members = groups.get("main", [])
    main_covered = set(main_declared) | set(_installed(ws, main_members))
    for group, members in groups.items():
        via = _installed(ws, members)
        direct = {d.normalized for d in members}
        missing = {n: v for n, v in via.items() if n not in direct}
        if group.startswith("extra:"):
            missing = {n: v for n, v in missing.items() if n not in main_covered}
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
    # a shared package it already names by version (Poetry `xyz_lib_a = "0.1.0"` in the main table,
    # the path entry only in its dev group) gets the source too: without it the tool takes it from
    # PyPI (`poetry install --only main` in the image), the dependency confusion the rewrite prevents
    migrated = {(d.normalized, d.group) for d in deps}
    pip_groups = {file_group(f)[0] for f in project.requirement_files}
    for group, names in declared.items():
        if group in pip_groups or group.startswith("extra:"):
            continue
        for name in sorted(names):
            target_project = ws.by_name.get(name)
            if (name, group) in migrated:
                continue
            if target_project is None or target_project is project or not ws.is_shared(target_project):
                continue
            if (name, group) not in taken:
                taken.add((name, group))
                additions.append(AddedDependency(target_project.name or name, group))
    return additions, problems


__all__ = ["transitive_additions", "versions_from_index", "versions_from_pyproject"]
