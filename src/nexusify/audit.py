"""``nexusify audit``: the monorepo model as a report, with every problem collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nexusify.config import Settings
from nexusify.workspace import CycleError, Problem, Workspace, load_workspace, relpath


@dataclass
class AuditReport:
    workspace: Workspace
    publish_order: list[str]
    problems: list[Problem]
    index: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        ws = self.workspace
        root = ws.root
        return {
            "root": str(root),
            "packages": [
                {
                    "name": p.name,
                    "normalized_name": p.normalized,
                    "version": p.version,
                    "path": p.rel(root),
                    "build_backend": p.build_backend,
                    "depends_on": p.internal_names(runtime_only=False),
                    "runtime_depends_on": p.internal_names(runtime_only=True),
                }
                for p in ws.shared
            ],
            "services": [
                {
                    "name": p.name,
                    "path": p.rel(root),
                    "shared_dependencies": p.internal_names(runtime_only=False),
                    "transitive_shared_dependencies": ws.transitive(p, runtime_only=False),
                    "dockerfiles": [relpath(d, root) for d in p.dockerfiles],
                    "dependencies": [
                        {
                            "name": d.name, "kind": d.kind, "group": d.group, "runtime": d.runtime,
                            "path": d.raw_path, "resolved": relpath(d.resolved, root) if d.resolved else None,
                            "line": d.line, "extras": d.extras, "markers": d.markers, "editable": d.editable,
                        }
                        for d in p.local_deps
                    ],
                }
                for p in ws.services
            ],
            "publish_order": self.publish_order,
            "problems": [p.to_dict() for p in self.problems],
            "index": self.index,
        }


def workspace_for(settings: Settings) -> Workspace:
    """Load the monorepo with the settings' discovery overrides."""
    return load_workspace(
        settings.root,
        shared_globs=settings.shared,
        service_globs=settings.services,
        exclude=settings.exclude,
        path_aliases=settings.path_aliases,
    )


def run_audit(settings: Settings) -> AuditReport:
    ws = workspace_for(settings)
    problems = list(ws.problems)
    try:
        order = ws.publish_order()
    except CycleError as exc:
        order = []
        problems.append(Problem(
            "error", "dependency-cycle", None, None,
            f"shared packages depend on each other in a cycle: {' -> '.join(exc.cycle)}",
            "break the cycle: move the shared code into a package both can depend on",
        ))
    return AuditReport(ws, order, problems)
