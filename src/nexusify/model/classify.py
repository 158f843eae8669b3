"""Classification: which projects are shared packages, which are services (configured globs,
conventional folders, then the dependency graph)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.formats.requirements import file_group
from nexusify.model.paths import matches_glob, relpath
from nexusify.model.project import SERVICE_GLOBS, SHARED_GLOBS, Project
from nexusify.model.workspace import Workspace

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


def is_aggregator(p: Project, root: Path) -> bool:
    """The monorepo's root project or a uv workspace root: its dev groups list members for local
    development (libraries and services alike), which makes none of them a shared package."""
    return p.path == root or bool(p.workspace_members)


def classify(ws: Workspace, shared_globs: list[str], service_globs: list[str]) -> None:
    root = ws.root
    depended: dict[Path, list[Project]] = {}
    for p in ws.projects:
        for d in p.local_deps:
            if d.resolved is not None and d.resolved != p.path and not (is_aggregator(p, root) and not d.runtime):
                depended.setdefault(d.resolved, []).append(p)
    # After `nexusify rewrite`, services name shared packages by version instead of path:
    # a dependency by name on a project of the monorepo counts for classification too.
    named_runtime: set[Path] = set()
    for p in ws.projects:
        local = {d.resolved for d in p.local_deps}
        for group, names in declared_names(p).items():
            if group != "main" and is_aggregator(p, root):
                continue
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
            if matches_glob(rel, shared_globs):
                p.role = "shared"
            elif matches_glob(rel, service_globs):
                p.role = "service"
            continue
        if matches_glob(rel, SHARED_GLOBS):
            p.role = "other" if p.is_virtual else "shared"  # a virtual project cannot be published
        elif p.path in depended:
            # a project others depend on is a shared package, even in a service folder
            p.role = "other" if p.is_virtual else "shared"
            if not p.is_virtual and matches_glob(rel, SERVICE_GLOBS):
                users = ", ".join(sorted({u.rel(root) for u in depended[p.path]}))
                ws.problems.append(Problem(
                    "warning", "service-depended-upon", relpath(p.manifest, root), None,
                    f"{p.name or rel} is in a services folder but {users} depend(s) on it by path: "
                    "treated as a shared package",
                    'set `shared = [...]` and `services = [...]` in nexusify.toml to classify it yourself',
                ))
        elif matches_glob(rel, SERVICE_GLOBS) or looks_like_service(p, root) or (
            p.path in named_runtime and p.name and not p.workspace_members and p.path != root
        ):
            p.role = "service"
    if configured:
        for path, dependants in depended.items():
            target = ws.project_at(path)
            if target is not None and target.role != "shared" and not target.is_virtual:
                ws.problems.append(Problem(
                    "warning", "unclassified-dependency", relpath(target.manifest, root), None,
                    f"{', '.join(sorted({u.rel(root) for u in dependants}))} depend(s) on {target.rel(root)} by path, "
                    "but it matches no `shared` glob: it will not be published",
                    "add its folder to `shared` in nexusify.toml",
                ))


def looks_like_service(p: Project, root: Path) -> bool:
    """Classified by the graph: a named project that depends at runtime on other projects.

    Not a service: a uv workspace root, a project whose local dependencies are all dev-time (a
    tool or test harness), the monorepo's own root project unless it has a Dockerfile. An
    application that is not a package itself (Poetry ``package-mode = false``) is a service."""
    if not p.name or p.workspace_members:
        return False
    if p.path == root and not p.dockerfiles:
        return False
    return any(d.resolved is not None and d.resolved != p.path and d.runtime for d in p.local_deps)
