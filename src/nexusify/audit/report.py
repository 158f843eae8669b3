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
from typing import TYPE_CHECKING, Any

from nexusify.audit.messages import reason, shown_url
from nexusify.audit.public import check_public_names
from nexusify.audit.published import index_status
from nexusify.config import Settings
from nexusify.errors import HasProblems, NexusifyError, Problem
from nexusify.files import find_line
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
from nexusify.model.by_name import by_name_only, by_name_problem
from nexusify.model.load import stay_folders
from nexusify.model.staying import workspace_of
from nexusify.model.tools import NeededTool, needed_tools

if TYPE_CHECKING:  # audit --offline never talks HTTP: httpx is imported when a request is made
    import httpx


@dataclass
class AuditReport(HasProblems):
    workspace: Workspace
    publish_order: list[str]
    problems: list[Problem]
    index: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)
    tools: list[NeededTool] = field(default_factory=list)

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
            """How each shared dependency is declared: "path" (in the monorepo), "index" (by version or
            from a named index) or "name" (no version, no index: :func:`by_name_only`)."""
            out = {d.normalized: "path" for d in p.local_deps if d.resolved is not None}
            bare = {i.normalized for i in by_name_only(p, ws.by_name)}
            for i in p.index_deps:
                out.setdefault(i.normalized, "name" if i.normalized in bare else "index")
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
                    "shared_dependencies": self.shared_names(p) or ws.takes(p),  # or what its image takes
                    "runtime_shared_dependencies": self.shared_names(p, runtime_only=True) or ws.takes(p),
                    "transitive_shared_dependencies": sorted(
                        n for n in ws.reached(p, runtime=False) if ws.is_shared(n)),
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
            "tools": [t.to_dict() for t in self.tools],
        }


def uv_workspace_strategy(p: Project, ws: Workspace) -> dict[str, Any] | None:
    """How a uv workspace member consumer is migrated (README "uv workspaces: the strategy"): it
    stays in the workspace until a rewrite names it (or rewrites every service), which moves it out
    onto the index (:mod:`nexusify.rewrite.uv_move`); a consumer no rewrite moves that only takes
    workspace members stays and keeps working as is. None for a project outside any workspace."""
    wroot = workspace_of(p)
    if wroot is not None and stays_in_workspace(p, ws):
        return {"root": relpath(wroot, ws.root), "strategy": STAYS, **({"configured": True} if p.path in ws.stay else {})}
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
    shared = {p.normalized: p.version for p in ws.shared() if p.normalized}
    for project in ws.consumers():
        problems.extend(by_name_problem(project, d, ws.root, shared, settings.source_name)
                        for d in by_name_only(project, shared))
    report = AuditReport(ws, order, problems)
    problems.extend(stay_setting_problems(ws, settings))
    report.tools = needed_tools(ws.consumers(), ws.root, env or {})
    problems.extend(Problem("warning", "tool-missing", None, None,
                            f"`{t.tool}` is not installed: rewrite cannot re-lock, and verify cannot check, the "
                            f"lockfiles of {', '.join(t.consumers)}", f"install it: `{t.install}`")
                    for t in report.tools if not t.found)
    report.index = {"url": None, "reachable": None, "packages": []}
    if index and settings.upload_simple_url:
        import httpx

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
        import httpx

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


def stay_setting_problems(ws: Workspace, settings: Settings) -> list[Problem]:
    """A warning for each ``stay-in-workspace`` glob that names no folder, and each folder it names
    that cannot stay in a uv workspace (no project, a shared package, not a member, or it takes a
    shared package by version or by path)."""
    if not settings.stay_in_workspace:
        return []
    where = relpath(settings.config_path, ws.root) if settings.config_path else None
    text = settings.config_path.read_text(encoding="utf-8") if settings.config_path else ""
    line = find_line(text, r"^\s*[\"']?stay-in-workspace[\"']?\s*=") if text else None
    out: list[Problem] = []

    def warn(pattern: str, why: str) -> None:
        out.append(Problem("warning", "stay-in-workspace", where, line, f"stay-in-workspace: `{pattern}` {why}",
                           "list uv workspace members that take shared packages with `{ workspace = true }`"))

    for pattern in settings.stay_in_workspace:
        folders = stay_folders(ws.root, pattern)
        if not folders:
            warn(pattern, "names no folder")
        for folder in folders:
            project = ws.project_at(folder)
            rel = relpath(folder, ws.root)
            if project is None:
                warn(pattern, f"names {rel}, which holds no project")
            elif ws.is_shared(project):
                warn(pattern, f"names {rel}, a shared package (only consumers stay)")
            elif not stays_in_workspace(project, ws):
                warn(pattern, f"names {rel}, which cannot stay: it is no uv workspace member, or it takes a shared "
                              "package by version or by path")
    return out


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
