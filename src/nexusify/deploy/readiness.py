"""Is a service ready to be built for deploy? It must install the shared packages from the index:
no path dependency on a shared package left, no Dockerfile COPY of shared code. Both verdicts come
from the model (the workspace audit and rewrite read), so deploy, audit and rewrite agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nexusify.config import Settings
from nexusify.deploy.config.types import ServiceConfig
from nexusify.errors import DeployError
from nexusify.files import relpath
from nexusify.formats.dockerfile_rules import SharedCode, judge_file, judge_project
from nexusify.model.load import workspace_for
from nexusify.model.workspace import Workspace

REWRITE_HINT = "run `nexusify publish` and `nexusify rewrite`, commit, then deploy again"


class NotRewritten(DeployError):
    """Services that still build shared packages from source (path dependencies, Dockerfile COPY)."""

    def __init__(self, problems: list[str], *, path: Path | str | None = None, line: int | None = None) -> None:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} problems"
        super().__init__(
            f"refusing to deploy: services still use shared packages from source: {head}"
            + ("".join(f"\n  {p}" for p in problems) if len(problems) > 1 else ""),
            hint=REWRITE_HINT, path=path, line=line,
        )
        self.problems = problems


def service_problems(ws: Workspace, svc: ServiceConfig, shared: SharedCode | None = None) -> list[tuple[str, int | None, str]]:
    """(file relative to the root, line, message) for each way ``svc`` still uses shared code from
    source: its path dependencies, and what the one shared-code rule (audit's and rewrite's) finds
    in the Dockerfiles that build it."""
    root = ws.root
    shared = shared or SharedCode.from_workspace(ws)
    out: list[tuple[str, int | None, str]] = []
    project = ws.project_at(svc.folder)
    if project is not None:
        for dep in project.local_deps:
            written = dep.written or dep.raw_path or str(dep.resolved or "")
            out.append((relpath(dep.file, root), dep.path_line,
                        f"{svc.name}: depends on {dep.name} by path ({written})"))
    dockerfile = svc.folder / svc.dockerfile
    verdicts = [j.verdict for j in judge_project(project, root, shared)] if project is not None else []
    if dockerfile.is_file() and (project is None or dockerfile not in {b.dockerfile for b in ws.dockerfiles_of(project)}):
        # the Dockerfile deploy builds, even when the model matched it to no project
        verdicts.append(judge_file(dockerfile, relpath(dockerfile, root), project_dir=svc.folder, root=root,
                                   shared=shared)[1])
    for verdict in verdicts:
        for problem in verdict.audit_problems():
            out.append((problem.path or relpath(dockerfile, root), problem.line, f"{svc.name}: {problem.message}"))
    return out


def check_rewritten(settings: Settings, services: Sequence[ServiceConfig]) -> None:
    """NotRewritten (exit 1) naming file:line of every path dependency or shared COPY left."""
    ws = workspace_for(settings)
    shared = SharedCode.from_workspace(ws, settings.path_aliases)
    found = [p for svc in services for p in service_problems(ws, svc, shared)]
    if not found:
        return
    lines = [f"{f}:{line}: {msg}" if line else f"{f}: {msg}" for f, line, msg in found]
    first_file, first_line, _ = found[0]
    raise NotRewritten(lines, path=ws.root / first_file, line=first_line)


__all__ = ["NotRewritten", "check_rewritten", "service_problems"]
