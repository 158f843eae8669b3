"""Re-locking rewritten services (``rewrite --lock``): each lockfile is re-made by its own tool in a
scratch copy holding the rewritten files, so the new lockfile joins the plan and is written with
everything else, or not at all. A tool that fails or does not finish in time is an error of the plan."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from nexusify.credentials import Credentials, redact
from nexusify.errors import Problem
from nexusify.formats.pyproject_edit import Edit, SourceSpec
from nexusify.rewrite.plan_data import FilePlan, RewritePlan

LOCK_TIMEOUT = 600.0  # seconds one lock command may take
_COPY_IGNORE = shutil.ignore_patterns(".venv", "venv", "node_modules", "__pycache__", ".git", "dist", "build",
                                      ".nexusify", "*.egg-info", ".mypy_cache", ".pytest_cache", ".ruff_cache")


def _lock_env(tool: str, source: SourceSpec, creds: Credentials | None, base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("NEXUS_PASSWORD", "TWINE_PASSWORD")}
    env.setdefault("PATH", os.environ.get("PATH", ""))
    env.setdefault("HOME", os.environ.get("HOME", "/root"))
    auth = creds.auth() if creds else None
    if auth:
        key = source.name.upper().replace("-", "_").replace(".", "_")
        if tool == "poetry":
            env[f"POETRY_HTTP_BASIC_{key}_USERNAME"], env[f"POETRY_HTTP_BASIC_{key}_PASSWORD"] = auth
        elif tool == "uv":
            env[f"UV_INDEX_{key}_USERNAME"], env[f"UV_INDEX_{key}_PASSWORD"] = auth
        elif tool == "pdm":
            env[f"PDM_SOURCE_{key}_USERNAME"], env[f"PDM_SOURCE_{key}_PASSWORD"] = auth  # pragma: no cover
    return env


def _run(cmd: list[str], cwd: Path, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=dict(env), timeout=timeout)


def relock(plan: RewritePlan, env: Mapping[str, str], creds: Credentials | None, *,
           timeout: float | None = None) -> None:
    """Re-lock each service in a scratch copy holding the rewritten files; the new lockfiles join
    the plan, so they are written with everything else (or not at all). A lock command that fails,
    cannot start or takes longer than ``timeout`` seconds (default :data:`LOCK_TIMEOUT`) is an
    error of the plan."""
    limit = LOCK_TIMEOUT if timeout is None else timeout
    secret = creds.password if creds else None
    for sp in plan.services:
        for lrel, tool in sp.lock_tools:
            lockfile = plan.root / lrel
            cmd = {"poetry": ["poetry", "lock"], "uv": ["uv", "lock"], "pdm": ["pdm", "lock"]}[tool]
            shown = " ".join(cmd)
            with tempfile.TemporaryDirectory(prefix="nexusify-lock-") as tmp:
                scratch = Path(tmp) / sp.path.name
                shutil.copytree(sp.path, scratch, ignore=_COPY_IGNORE)
                for f in sp.files:
                    if f.path.parent == sp.path:
                        (scratch / f.path.name).write_bytes(f.new)
                lock_env = _lock_env(tool, plan.source, creds, env)
                try:
                    proc = _run(cmd, scratch, lock_env, limit)
                    if proc.returncode != 0 and (scratch / lockfile.name).exists():
                        # an old lock the tool refuses (hand-edited, another tool version): lock afresh
                        (scratch / lockfile.name).unlink()
                        proc = _run(cmd, scratch, lock_env, limit)
                except subprocess.TimeoutExpired:
                    plan.problems.append(Problem(
                        "error", "lock-timeout", lrel, None,
                        f"`{shown}` did not finish within {limit:g} s in {sp.rel}, so {lrel} could not be "
                        "re-locked; nothing was written",
                        f"check that the index answers and serves every package the service needs, run `{shown}` in "
                        f"{sp.rel} by hand to see where it waits, or rewrite without --lock"))
                    continue
                except OSError as exc:
                    plan.problems.append(Problem("error", "lock-failed", lrel, None,
                                                 f"`{shown}` could not start in {sp.rel}: {exc.strerror or exc}",
                                                 f"install {tool}, or rewrite without --lock"))
                    continue
                if proc.returncode != 0:
                    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
                    plan.problems.append(Problem("error", "lock-failed", lrel, None,
                                                 f"`{shown}` failed in {sp.rel}:\n{redact(tail, secret)}",
                                                 "check that every shared package is published (nexusify publish)"))
                    continue
                new = (scratch / lockfile.name).read_bytes()
            old = lockfile.read_bytes()
            if new != old:
                sp.files.append(FilePlan(lockfile, lrel, "lockfile", sp.name, old, new,
                                         [Edit(1, "", "", f"re-locked with `{tool} lock` against {plan.source.name}")]))


_LOCK_COMMANDS = {"poetry": ["poetry", "lock"], "uv": ["uv", "lock"], "pdm": ["pdm", "lock"]}
_LOCK_NAMES = {"poetry": "poetry.lock", "uv": "uv.lock", "pdm": "pdm.lock"}


def lock_copy(folder: Path, scratch: Path, overlay: Mapping[Path, bytes], tool: str, source: SourceSpec,
              creds: Credentials | None, env: Mapping[str, str], *, seed: bytes | None = None,
              timeout: float | None = None) -> tuple[bytes | None, str]:
    """Lock a copy of ``folder`` (at ``scratch``) holding the planned files (``overlay``: path -> new
    bytes, those under ``folder`` count) with ``tool``'s lock command: (the new lockfile, "") or
    (None, why not). ``seed``: a lockfile to start from (its pins are kept where they still fit).
    The one place a lock of a planned rewrite is made outside ``--lock`` (uv workspace moves)."""
    limit = LOCK_TIMEOUT if timeout is None else timeout
    name, cmd = _LOCK_NAMES[tool], _LOCK_COMMANDS[tool]
    shutil.copytree(folder, scratch, ignore=_COPY_IGNORE)
    for path, data in overlay.items():
        if path.is_relative_to(folder):
            target = scratch / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    if seed is not None:
        (scratch / name).write_bytes(seed)
    lock_env = _lock_env(tool, source, creds, env)
    try:
        proc = _run(cmd, scratch, lock_env, limit)
        if proc.returncode != 0 and (scratch / name).exists():
            (scratch / name).unlink()  # a seed or an old lock the tool refuses: lock afresh
            proc = _run(cmd, scratch, lock_env, limit)
    except subprocess.TimeoutExpired:
        return None, f"`{' '.join(cmd)}` did not finish within {limit:g} s"
    except OSError as exc:
        return None, f"`{' '.join(cmd)}` could not start: {exc.strerror or exc}"
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        return None, f"`{' '.join(cmd)}` failed: {redact(tail, creds.password if creds else None)}"
    return (scratch / name).read_bytes(), ""


__all__ = ["LOCK_TIMEOUT", "lock_copy", "relock"]
