"""The one model of the monorepo that every verb reads.

``workspace_for(settings)`` (or ``load_workspace(root, ...)``) discovers every project, reads its
local dependencies with one reader per tool, resolves them, classifies shared packages and
services, and checks them; problems are collected, never raised. The :class:`Workspace` answers
the graph's questions (publish order, cycles, transitive closure) in one place.
"""

from nexusify.model.classify import declared_names
from nexusify.model.load import load_workspace, read_local_dependencies, workspace_for
from nexusify.model.paths import relpath
from nexusify.model.project import SERVICE_GLOBS, SHARED_GLOBS, LocalDependency, Project
from nexusify.model.staying import STAYS, stays_in_workspace
from nexusify.model.workspace import CycleError, Workspace

__all__ = [
    "SERVICE_GLOBS", "SHARED_GLOBS", "STAYS", "CycleError", "LocalDependency", "Project", "Workspace",
    "declared_names", "load_workspace", "read_local_dependencies", "relpath", "stays_in_workspace", "workspace_for",
]
