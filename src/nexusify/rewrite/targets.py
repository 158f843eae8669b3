"""Which consumers a rewrite targets: folders, pyproject.toml files or globs, or every consumer
that does not stay in its uv workspace (:func:`nexusify.model.rewrite_targets`)."""

from __future__ import annotations

import difflib
import glob
import os
from collections.abc import Sequence
from pathlib import Path

from nexusify.errors import ProblemsFound, UsageError
from nexusify.model import Project, Workspace, rewrite_targets


def select_services(ws: Workspace, targets: Sequence[str], cwd: Path | None = None) -> list[Project]:
    """The projects named by ``targets`` (folders, pyproject.toml files or globs, relative to
    ``cwd`` or the root); every consumer a rewrite moves when none is given (the model's one
    definition: :func:`nexusify.model.rewrite_targets`)."""
    if not targets:
        return rewrite_targets(ws)
    cwd = cwd or Path.cwd()
    chosen: dict[Path, Project] = {}
    unknown: list[str] = []
    for target in targets:
        matches: list[Path] = []
        for base in (cwd, ws.root):
            pattern = target if os.path.isabs(target) else str(base / target)
            found = [Path(m) for m in sorted(glob.glob(pattern))] if glob.has_magic(target) else (
                [Path(pattern)] if os.path.exists(pattern) else [])
            if found:
                matches = found
                break
        projects: list[Project] = []
        for m in matches:
            folder = m.parent if m.name == "pyproject.toml" or m.is_file() else m
            project = ws.project_at(folder)
            if project is not None:
                projects.append(project)
            elif Path(os.path.normpath(folder.resolve())) in ws.broken:
                why = [str(p) for p in ws.problems if p.path is not None
                       and ws.owner_of(ws.root / p.path) == Path(os.path.normpath(folder.resolve()))]
                raise ProblemsFound(f"{target}: its project file cannot be read:\n  " + "\n  ".join(why),
                                    hint="fix it first (`nexusify audit` lists every problem); nothing was written")
            elif not glob.has_magic(target):
                unknown.append(f"{target}: no pyproject.toml there (not a project of {ws.root})")
        if not matches:
            unknown.append(f"{target}: no such file or folder")
        for project in projects:
            if ws.is_shared(project) and not ws.is_consumer(project):
                if glob.has_magic(target):
                    continue
                raise UsageError(
                    f"{target} is a shared package ({project.name}), not a consumer",
                    hint="shared packages keep their path dependencies in the monorepo; "
                         "`nexusify publish` rewrites its staged copy",
                )
            chosen[project.path] = project
    if unknown:
        service_paths = [p.rel(ws.root) for p in ws.consumers()]
        near = [n for t in targets for n in difflib.get_close_matches(t.strip("/"), service_paths, n=2, cutoff=0.6)]
        raise UsageError("unknown target(s):\n  " + "\n  ".join(unknown),
                         hint=(f"did you mean {', '.join(sorted(set(near)))}? " if near else "")
                         + f"consumers found: {', '.join(service_paths) or '(none)'}")
    return sorted(chosen.values(), key=lambda p: p.path.as_posix())


__all__ = ["select_services"]
