"""Which consumers stay in their uv workspace and keep working as they are (README "uv workspaces:
the strategy"): asked by audit (the consumer and its strategy), ``rewrite --check`` (nothing to
rewrite for it, said so) and ``verify`` (n/a, with this reason): one answer for all three.
:func:`rewrite_targets` is the rest: the consumers a rewrite of "everything" moves."""

from __future__ import annotations

from pathlib import Path

from nexusify.model.project import Project
from nexusify.model.workspace import Workspace

STAYS = "stays in the uv workspace: every shared package it takes is a workspace member, so it keeps working as is"


def workspace_of(project: Project) -> Path | None:
    """The uv workspace root ``project`` belongs to (its own folder for the root), or None."""
    if project.workspace_root is not None:
        return project.workspace_root
    return project.path if project.workspace_members else None


def stays_in_workspace(project: Project, ws: Workspace) -> bool:
    """A consumer of a uv workspace that no rewrite moves (the workspace root, a member that takes
    shared packages only in development groups, a tool, or a consumer the ``stay-in-workspace``
    setting lists: :attr:`Workspace.stay`), which reaches every shared package it takes with
    ``{ workspace = true }`` while that package is still a member of the same workspace: uv
    installs them from the workspace, and publishing changes nothing for it. Any other member that
    needs shared packages at run time is a rewrite target (it moves out); a consumer that names a
    shared package by version, or by a path, does not stay."""
    wroot = workspace_of(project)
    aggregated = project.path in ws.aggregated_only  # an application only the root takes, no image
    if wroot is None or not ws.is_consumer(project) or (ws.is_shared(project) and not aggregated):
        return False
    if project.path != wroot and project.path not in ws.stay and not aggregated \
            and any(ws.is_shared(n) for n in ws.direct(project, runtime_only=True)):
        return False
    if any(ws.is_shared(i.normalized) for i in project.index_deps):
        return False
    reached = False
    for d in project.local_deps:
        target = ws.project_at(d.resolved) if d.resolved is not None else None
        if target is None or not ws.is_shared(target):
            continue
        if d.kind != "uv-workspace" or workspace_of(target) != wroot or target.path == wroot:
            return False
        reached = True
    return reached


def rewrite_targets(ws: Workspace) -> list[Project]:
    """The consumers a rewrite of "everything" rewrites: every consumer but those that stay in
    their uv workspace (audit's consumers = these + the staying ones = verify's rows)."""
    return [p for p in ws.consumers() if not stays_in_workspace(p, ws)]


__all__ = ["STAYS", "rewrite_targets", "stays_in_workspace", "workspace_of"]
