"""``nexusify audit``: the monorepo model as a report, with every problem collected.

The report holds the shared packages, the consumers (``services`` in JSON) and their shared dependencies, the publish
order, and problems (errors and warnings) from every check:

- the monorepo model (:mod:`nexusify.model`): TOML syntax, names, versions, build systems,
  paths, virtual projects, duplicates;
- dependency cycles among shared packages (each strongly connected component, named);
- consumers' Dockerfiles that COPY/ADD shared code into the image (the one rule rewrite patches
  from: :mod:`nexusify.formats.dockerfile_rules`);
- with an index configured and reachable: which local versions are published, which are not,
  and whether a published version's files differ from the local sources;
- with ``check_public``: shared package names that also exist on the public index
  (dependency-confusion hazard).

Nothing here prints; network failures become warnings, never crashes. This module builds the
report; beside it: :mod:`.published` (the index status and the published-vs-local comparison),
:mod:`.public` (``--check-public``), :mod:`.graph` (Mermaid and dot rendering).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from nexusify.audit.messages import reason, shown_url
from nexusify.audit.public import check_public_names
from nexusify.audit.published import index_status
from nexusify.config import Settings
from nexusify.errors import HasProblems, NexusifyError, Problem
from nexusify.formats.dockerfile_rules import judge_project
from nexusify.formats.shared_code import SharedCode
from nexusify.formats.workspace_stay import stay_problems
from nexusify.model import (
    STAYS,
    CycleError,
    Project,
    Workspace,
    relpath,
    rewrite_targets,
    stays_in_workspace,
    workspace_for,
)
from nexusify.model.staying import workspace_of


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
        return [n for n in project.internal_names(runtime_only) if ws.is_shared(n)]

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

        def index_deps(p: Project) -> list[dict[str, Any]]:
            return [
                {"name": i.name, "specifier": i.specifier, "group": i.group, "runtime": i.runtime,
                 "source": i.source, "file": relpath(i.file, root), "line": i.line}
                for i in p.index_deps
            ]

        def kinds(p: Project) -> dict[str, str]:
            """How each shared dependency is declared: "path" (in the monorepo) or "index" (by version)."""
            out = {d.normalized: "path" for d in p.local_deps if d.resolved is not None}
            for i in p.index_deps:
                out.setdefault(i.normalized, "index")
            return {n: k for n, k in out.items() if ws.is_shared(n)}

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
                for p in ws.shared()
            ],
            "services": [
                {
                    "name": p.name,
                    "path": p.rel(root),
                    "version": p.version,
                    "shared_dependencies": self.shared_names(p),
                    "transitive_shared_dependencies": sorted(
                        n for n in ws.closure([p], runtime=False) if ws.is_shared(n)),
                    "shared": ws.is_shared(p),
                    "why": ws.why_consumer(p),
                    "dockerfiles": sorted({relpath(b.dockerfile, root) for b in ws.dockerfiles_of(p)}),
                    "builds": [{"dockerfile": relpath(b.dockerfile, root), "context": relpath(b.context, root),
                                "origin": b.origin} for b in ws.dockerfiles_of(p)],
                    "lockfiles": [relpath(f, root) for f in ws.lockfiles_of(p)],
                    "dependencies": deps(p),
                    "index_dependencies": index_deps(p),
                    "shared_dependency_kinds": kinds(p),
                    "uv_workspace": uv_workspace_strategy(p, ws),
                }
                for p in ws.consumers()
            ],
            "publish_order": self.publish_order,
            "problems": [p.to_dict() for p in self.problems],
            "summary": {"errors": len(self.errors), "warnings": len(self.warnings)},
            "index": self.index,
            "public": self.public,
        }


def uv_workspace_strategy(p: Project, ws: Workspace) -> dict[str, str] | None:
    """How a uv workspace member consumer is migrated (README "uv workspaces: the strategy"): it
    stays in the workspace until a rewrite names it (or rewrites every service), which moves it out
    onto the index (:mod:`nexusify.rewrite.uv_move`); a consumer no rewrite moves that only takes
    workspace members stays and keeps working as is. None for a project outside any workspace."""
    wroot = workspace_of(p)
    if wroot is not None and stays_in_workspace(p, ws):
        return {"root": relpath(wroot, ws.root), "strategy": STAYS}
    if p.workspace_root is None or p.workspace_root == p.path:
        return None
    from_workspace = [d.name for d in p.local_deps if d.kind == "uv-workspace" and d.normalized in ws.by_name
                      and ws.is_shared(d.normalized)]
    strategy = ("stays in the workspace (builds from a context holding the workspace); "
                f"`nexusify rewrite {p.rel(ws.root)}` moves it to the index") if from_workspace else \
        "stays in the workspace (takes no shared package from it)"
    return {"root": relpath(p.workspace_root, ws.root), "strategy": strategy}


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
    problems.extend(dockerfile_problems(ws, settings))
    report = AuditReport(ws, order, problems)
    report.index = {"url": None, "reachable": None, "packages": []}
    if index and settings.upload_simple_url:
        try:
            status, index_problems = index_status(ws, settings, env or {}, transport)
            report.index = status.to_dict()
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


def dockerfile_problems(ws: Workspace, settings: Settings) -> list[Problem]:
    """Every service Dockerfile's shared-code verdict (the rule rewrite patches from): a warning
    per COPY/ADD of shared code, and the lines nobody can decide with certainty."""
    shared = SharedCode.from_workspace(ws, settings.path_aliases)
    problems: list[Problem] = []
    for svc in rewrite_targets(ws):
        for judged in judge_project(svc, ws.root, shared):
            problems.extend(judged.verdict.audit_problems())
    for p in ws.projects:
        wroot = workspace_of(p)
        if wroot is not None and stays_in_workspace(p, ws):
            # a warning like every Dockerfile finding of audit; rewrite --check and verify fail it
            problems.extend(replace(x, severity="warning") for x in
                            stay_problems(p.name or p.rel(ws.root), wroot, judge_project(p, ws.root, shared)))
    return problems
