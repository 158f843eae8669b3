"""Check 2, lock: the consumer's own tool accepts its lockfile (``uv lock --check``,
``poetry check --lock``, ``pdm lock --check``). No lockfile: n/a. The tool missing: a failure
that names the install command (a lock nobody can check is not proven).

A lockfile is checked once however many consumers share it (a uv workspace root's ``uv.lock``):
:class:`LockChecker` remembers each verdict."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nexusify.credentials import Credentials
from nexusify.model import Project, relpath
from nexusify.rewrite.lock import LockJob
from nexusify.tools import Which, run_tool, tool_of_lockfile
from nexusify.verify.report import Check, Finding


@dataclass
class LockChecker:
    root: Path
    source_name: str
    creds: Credentials | None
    env: Mapping[str, str]
    which: Which
    _done: dict[Path, tuple[Finding | None, str | None]] = field(default_factory=dict)
    _locks: dict[Path, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def check(self, consumer: Project, names: tuple[str, ...] = ()) -> Check:
        """``names``: the shared packages the consumer installs (what a re-lock unlocks)."""
        locks = [lk for lk in consumer.lockfiles if (t := tool_of_lockfile(lk.name)) is not None and t.check]
        if not locks:
            return Check.na("lock", "no lockfile")
        findings: list[Finding] = []
        ran: list[str] = []
        for lock in locks:
            finding, command = self.lockfile(lock, names)
            if finding is not None:
                findings.append(finding)
            elif command:
                ran.append(command)
        return Check.of("lock", findings, "; ".join(ran) + " passed" if ran else "")

    def lockfile(self, lock: Path, names: tuple[str, ...] = ()) -> tuple[Finding | None, str | None]:
        """(why the tool refuses ``lock``, or None; the command that ran, as shown), once per file."""
        with self._guard:
            mutex = self._locks.setdefault(lock, threading.Lock())
        with mutex:
            if lock not in self._done:
                self._done[lock] = self._run(lock, names)
            return self._done[lock]

    def _run(self, lock: Path, names: tuple[str, ...]) -> tuple[Finding | None, str | None]:
        tool = tool_of_lockfile(lock.name)
        assert tool is not None and tool.check is not None  # check() takes only these
        rel = relpath(lock, self.root)
        run_env = tool.environment(self.source_name, self.creds, self.env)
        exe = tool.find(run_env, self.which)
        if exe is None:
            return Finding(f"`{tool.name}` is not installed, so {lock.name} cannot be checked", rel,
                           hint=f"install it: `{tool.install}`"), None
        result = run_tool([exe, *tool.check[1:]], lock.parent, run_env, self.creds)
        where = relpath(lock.parent, self.root)
        shown = f"`{result.command}` in {where}"
        if result.ok:
            return None, shown
        # the re-lock rewrite runs (only the shared packages unlocked: third-party pins stay)
        relock = LockJob(where, lock.parent, lock, names).command(self.root)
        return Finding(f"`{result.command}` refused it: {result.reason(2)}", rel,
                       hint=f"re-lock: `{relock}` (or `nexusify rewrite`, which re-locks)"), shown


def lock_check(consumer: Project, root: Path, source_name: str, creds: Credentials | None,
               env: Mapping[str, str], which: Which) -> Check:
    """The lock check of one consumer (see :class:`LockChecker` for many)."""
    return LockChecker(root, source_name, creds, env, which).check(consumer)
