"""A build inside the uv workspace at the monorepo root (the build context itself is decided once,
by the model: :func:`nexusify.model.dockerfiles.decide_context`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nexusify.errors import Problem
from nexusify.formats.dockerfile_runs import command, segments
from nexusify.model.paths import glob_free, is_local
from nexusify.syntax.dockerfile_parse import Dockerfile


def uv_workspace_build(path: str, df: Dockerfile, root: Path, context: Path | None = None,
                       additional: Mapping[str, Path] | None = None) -> Problem | None:
    """A build that copies the root pyproject.toml of a uv workspace (from the build context,
    ``.`` of the root included, or from a named context) needs the members' folders: dropping
    them breaks it (``uv sync`` reads the whole workspace), keeping them keeps the shared code."""
    root_pyproject = root / "pyproject.toml"
    try:
        if "[tool.uv.workspace]" not in root_pyproject.read_text(encoding="utf-8", errors="replace"):
            return None
    except OSError:
        return None
    named = additional or {}
    sync = next((i for i in df.instructions if i.keyword == "RUN" and not i.json_form
                 and any(command(seg.words)[0] == "uv sync" for seg in segments(i.args))), None)
    for instr in df.instructions:
        if instr.keyword not in ("COPY", "ADD"):
            continue
        src_from = instr.flag("from")
        folder = (context or root) if src_from is None else named.get(src_from)
        if folder is None:
            continue
        for src in instr.sources:
            if not is_local(src):
                continue
            host = Path(os.path.normpath(os.path.join(str(folder), glob_free(src).lstrip("/"))))
            if host != root_pyproject and not (host == root or str(root).startswith(str(host) + os.sep)):
                continue
            uses = (f"; `uv sync` at line {sync.start} reads that workspace, which cannot work without them"
                    if sync is not None else "")
            return Problem(
                "error", "dockerfile-uv-workspace", path, instr.start,
                "builds inside the uv workspace at the monorepo root (it copies the root pyproject.toml), so it "
                "needs the shared packages' folders; removing them would break the build" + uses,
                "a workspace member: `nexusify rewrite <its folder>` moves it out of the workspace and builds it "
                "alone; otherwise build from the service folder, with `uv pip install` or `uv sync` of the service "
                "(or pass --no-dockerfiles)")
    return None


__all__ = ["uv_workspace_build"]
