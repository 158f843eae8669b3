"""The tools the consumers' lockfiles need: rewrite re-locks each lockfile with the tool that
wrote it, verify checks it with that tool. audit lists them before any rewrite, with the
missing ones and the command that installs each (:attr:`nexusify.tools.Tool.install`, the one
that verify's hints give too)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nexusify.model.project import LOCK_TOOLS, Project
from nexusify.tools import TOOLS

#: tool -> the command that installs it (uv comes with nexusify, but a re-lock runs it from PATH)
INSTALL: dict[str, str] = {name: tool.install for name, tool in TOOLS.items()}


@dataclass(frozen=True)
class NeededTool:
    tool: str
    consumers: tuple[str, ...]  # folders relative to the root
    found: bool

    @property
    def install(self) -> str:
        return INSTALL.get(self.tool, f"pip install {self.tool}")

    def to_dict(self) -> dict[str, object]:
        return {"tool": self.tool, "consumers": list(self.consumers), "found": self.found, "install": self.install}


def needed_tools(consumers: Iterable[Project], root: Path, env: Mapping[str, str],
                 which: Callable[..., str | None] = shutil.which) -> list[NeededTool]:
    """Each tool a lockfile of ``consumers`` needs, the consumers needing it, and whether it is on
    the ``PATH`` of ``env`` (where rewrite and verify look it up)."""
    by_tool: dict[str, set[str]] = {}
    for project in consumers:
        for lock in project.lockfiles:
            tool = LOCK_TOOLS.get(lock.name)
            if tool is not None:
                by_tool.setdefault(tool, set()).add(project.rel(root))
    return [NeededTool(tool, tuple(sorted(names)), which(tool, path=env.get("PATH")) is not None)
            for tool, names in sorted(by_tool.items())]


__all__ = ["INSTALL", "NeededTool", "needed_tools"]
