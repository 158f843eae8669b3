"""The one model of the monorepo that every verb reads.

``workspace_for(settings)`` (or ``load_workspace(root, ...)``) discovers every project, reads its
local dependencies with one reader per tool, resolves them, decides by use which projects are
shared packages and which consume them (:mod:`.roles`), and checks them; problems are collected,
never raised. The :class:`Workspace` answers every question about the monorepo in one place:
``shared()``, ``consumers()``, ``closure()``, ``dependents()``, ``dockerfiles_of()``,
``lockfiles_of()``, publish order and cycles.
"""

from nexusify.files import relpath
from nexusify.model.load import load_workspace, read_local_dependencies, workspace_for
from nexusify.model.project import (
    SERVICE_GLOBS,
    SHARED_GLOBS,
    DockerBuild,
    LocalDependency,
    Project,
)
from nexusify.model.roles import declared_names
from nexusify.model.staying import STAYS, rewrite_targets, stays_in_workspace
from nexusify.model.workspace import CycleError, Workspace

__all__ = [
    "SERVICE_GLOBS", "SHARED_GLOBS", "STAYS", "CycleError", "DockerBuild", "LocalDependency", "Project", "Workspace",
    "declared_names", "load_workspace", "read_local_dependencies", "relpath", "rewrite_targets", "stays_in_workspace", "workspace_for",
]
