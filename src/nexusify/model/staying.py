"""Which consumers stay in their uv workspace and keep working as they are (README "uv workspaces:
the strategy"): asked by audit (the consumer and its strategy), ``rewrite --check`` (nothing to
rewrite for it, said so) and ``verify`` (n/a, with this reason): one answer for all three."""

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
    """A consumer that no rewrite moves (not a service: the root project, a tool) of a uv workspace,
    which reaches every shared package it takes with ``{ workspace = true }`` while that package is
    still a member of the same workspace: uv installs them from the workspace, and publishing
    changes nothing for it. A service is a rewrite target (it moves out) unless the
    ``stay-in-workspace`` setting lists it (:attr:`Workspace.stay`); a consumer that names a
    shared package by version, or by a path, does not stay."""
    wroot = workspace_of(project)
    if wroot is None or project.role == "shared" or (project.role == "service" and project.path not in ws.stay):
        return False
    shared = {p.normalized for p in ws.shared if p.normalized}
    if any(i.normalized in shared for i in project.index_deps):
        return False
    reached = False
    for d in project.local_deps:
        target = ws.project_at(d.resolved) if d.resolved is not None else None
        if target is None or target.role != "shared":
            continue
        if d.kind != "uv-workspace" or workspace_of(target) != wroot or target.path == wroot:
            return False
        reached = True
    return reached


__all__ = ["STAYS", "stays_in_workspace", "workspace_of"]
