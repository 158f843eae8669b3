"""uv workspaces: roots, their members (globs minus ``exclude``) and the root's sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.model.paths import glob_dirs
from nexusify.model.project import Project
from nexusify.syntax.toml import subtable


@dataclass
class UvWorkspaceRoot:
    project: Project
    sources: dict[str, tuple[str, Any, int | None]]  # normalised name -> (key, entry, line)


def link_uv_workspaces(projects: list[Project], by_path: dict[Path, Project]) -> dict[Path, UvWorkspaceRoot]:
    """Find uv workspace roots, their members (globs minus ``exclude``) and root sources."""
    roots: dict[Path, UvWorkspaceRoot] = {}
    for p in projects:
        ws = subtable(p.data, "tool", "uv", "workspace")
        if not ws:
            continue
        members = ws.get("members")
        excludes = ws.get("exclude")
        excluded: set[Path] = set()
        for pattern in excludes if isinstance(excludes, list) else []:
            excluded.update(glob_dirs(p.path, pattern))
        found: list[Path] = []
        for pattern in members if isinstance(members, list) else []:
            for d in glob_dirs(p.path, pattern):
                if d in excluded or d == p.path or d in found:
                    continue
                if d in by_path or (d / "pyproject.toml").is_file():
                    found.append(d)
        p.workspace_members = found
        if not p.has_build_system and p.virtual_reason is None:
            p.virtual_reason = "a uv workspace root without [build-system]"
        sources = subtable(p.data, "tool", "uv", "sources")
        roots[p.path] = UvWorkspaceRoot(p, {
            canonicalize_name(k): (k, v, p.lines.key(("tool", "uv", "sources"), k)) for k, v in sources.items()
        })
        p.workspace_root = p.path
        for m in found:
            member = by_path.get(m)
            if member is not None and member.workspace_root is None:
                member.workspace_root = p.path
    return roots
