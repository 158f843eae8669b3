"""Refreshing the lockfiles of re-pinned consumers, once the new versions are on the index.

A lock resolves against the index, so it can only be refreshed after ``--publish``; this reuses
``rewrite``'s re-lock (a scratch copy of the consumer's folder, the tool's own ``lock``, the
index credentials in the tool's environment variables). A lock that cannot be refreshed (no
publish, the tool is missing, the tool fails) is a warning with the exact command to run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nexusify.config import Settings
from nexusify.errors import Problem
from nexusify.model.project import LOCK_TOOLS

COMMANDS = {"poetry": "poetry lock", "uv": "uv lock --upgrade-package {names}", "pdm": "pdm update --no-sync {names}"}


@dataclass(frozen=True)
class StaleLock:
    consumer: str
    folder: Path  # the consumer's folder
    lockfile: Path
    names: tuple[str, ...]  # the re-pinned shared packages

    @property
    def tool(self) -> str:
        return LOCK_TOOLS[self.lockfile.name]

    def command(self, root: Path) -> str:
        from nexusify.model import relpath

        cmd = COMMANDS[self.tool].format(names=" ".join(self.names))
        return f"cd {relpath(self.lockfile.parent, root)} && {cmd}"

    def warning(self, root: Path, why: str) -> Problem:
        from nexusify.model import relpath

        return Problem("warning", "stale-lockfile", relpath(self.lockfile, root), None,
                       f"{self.lockfile.name} still pins the old version(s) of {', '.join(self.names)} ({why})",
                       f"refresh it: `{self.command(root)}`")


def refresh(settings: Settings, stale: list[StaleLock], env: Mapping[str, str],
            which: Callable[[str], str | None] = shutil.which) -> tuple[list[tuple[Path, bytes]], list[Problem]]:
    """New contents for each stale lockfile ([(path, bytes)] of those that changed), and a warning
    for each one that could not be refreshed."""
    from nexusify.credentials import resolve_credentials
    from nexusify.formats.pyproject_edit import SourceSpec
    from nexusify.model import relpath
    from nexusify.rewrite.lock import relock
    from nexusify.rewrite.plan_data import RewritePlan, ServicePlan

    root = settings.root
    url = settings.simple_url or ""
    source = SourceSpec(settings.source_name, url, settings.priority)
    plan = RewritePlan(root, source, settings.constraint, {}, "pyproject")
    problems: list[Problem] = []
    by_lock: dict[str, StaleLock] = {}
    for s in stale:
        if s.lockfile.parent != s.folder:  # a uv workspace root's lock: not this consumer's alone
            problems.append(s.warning(root, "it is the uv workspace's lock"))
            continue
        if which(s.tool) is None:
            problems.append(s.warning(root, f"`{s.tool}` is not installed"))
            continue
        lrel = relpath(s.lockfile, root)
        by_lock[lrel] = s
        plan.services.append(ServicePlan(s.consumer, relpath(s.folder, root), s.folder, lock_tools=[(lrel, s.tool)]))
    creds = resolve_credentials(settings.username, url, env) if url else None
    relock(plan, env, creds if creds is not None and creds.present else None)
    for p in plan.problems:
        failed = by_lock.get(p.path or "")
        problems.append(failed.warning(root, f"`{failed.tool} lock` failed: {p.message}") if failed is not None else p)
    return [(f.path, f.new) for f in plan.files if f.kind == "lockfile"], problems
