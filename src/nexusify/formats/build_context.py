"""The build context a Dockerfile is written for, decided once for the whole file when no compose
file declares it: the monorepo root when a COPY/ADD source names the project's folder from the
root or exists only from there; the project folder when sources exist only there or climb out of
it (``../../shared``); undecidable (a problem) when sources point both ways."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nexusify.errors import Problem
from nexusify.formats.dockerfile_parse import Dockerfile, Instruction
from nexusify.formats.dockerfile_runs import command, segments
from nexusify.formats.shared_code import glob_free, is_local


def decide_context(path: str, df: Dockerfile, project_dir: Path, root: Path) -> tuple[Path | None, Problem | None]:
    try:
        rel = project_dir.relative_to(root).as_posix()
    except ValueError:
        return project_dir, None
    if rel in ("", "."):
        return project_dir, None
    from_root: Instruction | None = None
    from_project: Instruction | None = None
    for instr in df.instructions:
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from"):
            continue
        for src in instr.sources:
            if not is_local(src):
                continue
            clean = glob_free(src).removeprefix("./").strip("/")
            if clean == rel or clean.startswith(rel + "/"):
                return root, None  # names the project's own folder from the root
            if clean.startswith(".."):
                from_project = from_project or instr  # written from the project folder
                continue
            here, there = (project_dir / clean).exists(), (root / clean).exists()
            if here and not there:
                from_project = from_project or instr
            elif there and not here:
                from_root = from_root or instr
    if from_root is None:
        return project_dir, None
    if from_project is None:
        return root, None
    return None, Problem(
        "error", "dockerfile-context-unknown", path, from_root.start,
        f"the build context cannot be decided: line {from_root.start} copies a path found only from the "
        f"monorepo root, line {from_project.start} one found only in {rel}",
        f"make every COPY/ADD source relative to one context (the monorepo root: `COPY {rel}/... `, or "
        f"{rel})")


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


__all__ = ["decide_context", "uv_workspace_build"]
