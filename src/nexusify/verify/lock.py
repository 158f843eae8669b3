"""Check 2, lock: the consumer's own tool accepts its lockfile (``uv lock --check``,
``poetry check --lock``, ``pdm lock --check``). No lockfile: n/a. The tool missing: a failure
that names the install command (a lock nobody can check is not proven)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nexusify.credentials import Credentials
from nexusify.model import Project, relpath
from nexusify.verify.report import Check, Finding
from nexusify.verify.tools import INSTALL, LOCK_CHECKS, Which, find_tool, run_tool, tool_env


def lock_check(consumer: Project, root: Path, source_name: str, creds: Credentials | None,
               env: Mapping[str, str], which: Which) -> Check:
    locks = [lk for lk in consumer.lockfiles if lk.name in LOCK_CHECKS]
    if not locks:
        return Check.na("lock", "no lockfile")
    findings: list[Finding] = []
    ran: list[str] = []
    for lock in locks:
        argv = LOCK_CHECKS[lock.name]
        tool = argv[0]
        rel = relpath(lock, root)
        run_env = tool_env(tool, source_name, creds, env)
        exe = find_tool(tool, run_env, which)
        if exe is None:
            findings.append(Finding(f"`{tool}` is not installed, so {lock.name} cannot be checked", rel,
                                    hint=f"install it: `{INSTALL[tool]}`"))
            continue
        result = run_tool([exe, *argv[1:]], lock.parent, run_env, creds)
        where = relpath(lock.parent, root)
        ran.append(f"`{result.command}` in {where}")
        if not result.ok:
            findings.append(Finding(f"`{result.command}` refused it: {result.reason(2)}", rel,
                                    hint=f"re-lock: `{'pdm update --no-sync <shared names>' if tool == 'pdm' else tool + ' lock'}`"
                                         f" in {where} (or `nexusify rewrite --lock`)"))
    return Check.of("lock", findings, "; ".join(ran) + " passed" if ran else "")
