"""``nexusify audit``: the monorepo model as a report, with every problem collected.

The report holds the shared packages, the services and their shared dependencies, the publish
order, and problems (errors and warnings) from every check:

- the monorepo model (:mod:`nexusify.model`): TOML syntax, names, versions, build systems,
  paths, virtual projects, duplicates;
- dependency cycles among shared packages (each strongly connected component, named);
- services' Dockerfiles that COPY/ADD shared code into the image;
- with an index configured and reachable: which local versions are published, which are not,
  and whether a published version's files differ from the local sources;
- with ``check_public``: shared package names that also exist on the public index
  (dependency-confusion hazard).

Nothing here prints; network failures become warnings, never crashes. This module builds the
report; beside it: :mod:`.published` (the index status and the published-vs-local comparison),
:mod:`.public` (``--check-public``), :mod:`.graph` (Mermaid and dot rendering).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nexusify.audit.messages import reason, shown_url
from nexusify.audit.public import check_public_names
from nexusify.audit.published import index_status
from nexusify.config import Settings
from nexusify.errors import HasProblems, NexusifyError, Problem
from nexusify.model import CycleError, Project, Workspace, relpath, workspace_for


@dataclass
class AuditReport(HasProblems):
    workspace: Workspace
    publish_order: list[str]
    problems: list[Problem]
    index: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def shared_names(self, project: Project, runtime_only: bool = False) -> list[str]:
        """``project``'s direct dependencies that are shared packages (all groups by default)."""
        ws = self.workspace
        return [n for n in project.internal_names(runtime_only)
                if n in ws.by_name and ws.by_name[n].role == "shared"]

    def to_dict(self) -> dict[str, Any]:
        ws = self.workspace
        root = ws.root

        def deps(p: Project) -> list[dict[str, Any]]:
            return [
                {
                    "name": d.name, "kind": d.kind, "group": d.group, "runtime": d.runtime,
                    "path": d.raw_path, "resolved": relpath(d.resolved, root) if d.resolved else None,
                    "mapped_from": d.mapped_from, "line": d.line, "extras": d.extras, "markers": d.markers,
                    "editable": d.editable,
                }
                for d in p.local_deps
            ]

        return {
            "root": str(root),
            "packages": [
                {
                    "name": p.name,
                    "normalized_name": p.normalized,
                    "version": p.version,
                    "path": p.rel(root),
                    "build_backend": p.build_backend,
                    "depends_on": self.shared_names(p),
                    "runtime_depends_on": self.shared_names(p, runtime_only=True),
                    "dependencies": deps(p),
                }
                for p in ws.shared
            ],
            "services": [
                {
                    "name": p.name,
                    "path": p.rel(root),
                    "version": p.version,
                    "shared_dependencies": self.shared_names(p),
                    "transitive_shared_dependencies": [
                        n for n in ws.transitive(p, runtime_only=False) if ws.by_name[n].role == "shared"
                    ],
                    "dockerfiles": [relpath(d, root) for d in p.dockerfiles],
                    "dependencies": deps(p),
                }
                for p in ws.services
            ],
            "publish_order": self.publish_order,
            "problems": [p.to_dict() for p in self.problems],
            "summary": {"errors": len(self.errors), "warnings": len(self.warnings)},
            "index": self.index,
            "public": self.public,
        }


def run_audit(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    check_public: bool = False,
    index: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> AuditReport:
    """Audit the monorepo. ``index``: look the shared packages up on the configured index (when
    one is configured); ``check_public``: look their names up on the public index.
    ``transport`` replaces the HTTP layer (tests)."""
    ws = workspace_for(settings)
    problems = list(ws.problems)
    try:
        order = ws.publish_order()
    except CycleError:
        order = []
    shared_dirs = [(str(p.path), p) for p in ws.shared]
    for svc in ws.services:
        for dockerfile in svc.dockerfiles:
            problems.extend(shared_copies(dockerfile, svc, ws, shared_dirs))
    report = AuditReport(ws, order, problems)
    report.index = {"url": None, "reachable": None, "packages": []}
    if index and settings.upload_simple_url:
        try:
            report.index, index_problems = index_status(ws, settings, env or {}, transport)
        except (NexusifyError, httpx.HTTPError, ValueError) as exc:  # a malformed URL, an odd answer
            report.index["url"] = shown_url(settings.upload_simple_url)
            index_problems = [Problem(
                "warning", "index-unreachable", None, None,
                f"the index {shown_url(settings.upload_simple_url)} could not be read: {reason(exc)}",
                "check --index-url/--nexus-url, or pass --offline",
            )]
        problems.extend(index_problems)
    if check_public:
        try:
            report.public, public_problems = check_public_names(ws, settings, transport)
        except (NexusifyError, httpx.HTTPError, ValueError) as exc:
            report.public = {"url": shown_url(settings.public_index_url), "checked": False, "names": {}}
            public_problems = [Problem(
                "warning", "public-index-unreachable", None, None,
                f"the public index {shown_url(settings.public_index_url)} could not be read: {reason(exc)}",
                "set --public-index-url to a reachable index, or drop --check-public",
            )]
        problems.extend(public_problems)
    problems.sort(key=lambda p: (p.severity != "error", p.path or "", p.line or 0))
    return report


# --------------------------------------------------------------------------- Dockerfiles


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^git@", re.I)


def shared_copies(dockerfile: Path, service: Project, ws: Workspace,
                  shared_dirs: list[tuple[str, Project]] | None = None) -> list[Problem]:
    """Problems for every COPY/ADD in ``dockerfile`` that brings shared package code into the
    image. Sources are taken relative to the service folder (the usual build context) and,
    when they do not exist there, to the monorepo root (``docker build -f svc/Dockerfile .``)."""
    root = ws.root
    try:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [Problem("warning", "unreadable", relpath(dockerfile, root), None, f"cannot read: {exc.strerror}")]
    own = str(service.path)
    shared = [(path, p) for path, p in (shared_dirs or [(str(p.path), p) for p in ws.shared]) if path != own]
    if not shared:
        return []
    from nexusify.formats.dockerfile import DockerfileSyntaxError, parse

    try:
        instructions = parse(text)
    except DockerfileSyntaxError as exc:
        return [Problem("warning", "dockerfile-syntax", relpath(dockerfile, root), exc.line, exc.message)]
    out: list[Problem] = []
    for instr in instructions:
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from"):
            continue
        for src in instr.sources:
            if _URL.match(src) or src.startswith("<<") or "$" in src:
                continue
            hits, outside = _copied_packages(src, service.path, root, shared)
            if not hits:
                continue
            names = sorted(p.name or p.rel(root) for p in hits)
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            msg = f"{instr.keyword} {src} copies shared code ({shown}) into the image"
            if outside:
                msg += f"; it is outside the build context {service.rel(root)}"
            out.append(Problem(
                "warning", "dockerfile-copies-shared", relpath(dockerfile, root), instr.start, msg,
                "install the shared packages from the index instead: `nexusify publish`, then `nexusify rewrite`",
            ))
    return out


def _glob_free(path: str) -> str:
    """The leading part of ``path`` before its first segment holding a glob character."""
    kept = []
    for seg in path.split("/"):
        if any(c in seg for c in "*?["):
            break
        kept.append(seg)
    return "/".join(kept)


def _copied_packages(src: str, service_dir: Path, root: Path, shared: list[tuple[str, Project]]) -> tuple[list[Project], bool]:
    """The shared packages a COPY/ADD source brings in (the package folder itself, a folder
    holding it, or files inside it), and whether the source escapes the service folder."""
    cleaned = src.lstrip("/") or "."
    has_glob = any(c in cleaned for c in "*?[")
    base = _glob_free(cleaned) if has_glob else cleaned
    # the build context: the service folder, else the monorepo root when the source is there
    ctx = service_dir
    if service_dir != root and not (service_dir / base).exists() and (root / base).exists():
        ctx = root
    target = os.path.normpath(ctx / cleaned)
    prefix = os.path.normpath(ctx / base) if base else str(ctx)
    svc = str(service_dir)
    outside = ctx == service_dir and not (target == svc or target.startswith(svc + os.sep))
    if ctx == service_dir and not outside and not any(p.startswith(svc + os.sep) for p, _ in shared):
        return [], False  # inside the service folder, which holds no shared package (fast path)
    hits: list[Project] = []
    for p, project in shared:
        if has_glob:
            inside_pattern = prefix.startswith(p + os.sep) or prefix == p
            holder = p.startswith(prefix + os.sep) and (
                fnmatch.fnmatchcase(p, target)
                or any(fnmatch.fnmatchcase(str(a), target) for a in project.path.parents if str(a).startswith(prefix)))
            hit = inside_pattern or holder
        else:
            hit = p == target or p.startswith(target + os.sep) or target.startswith(p + os.sep)
        if hit:
            hits.append(project)
    return hits, outside and bool(hits)
