"""The SSH master a host's connection rides on, kept for the next command.

An SSH handshake costs ~0.3 s (more on a busy machine), which is most of a rollback judged in
seconds. So, like ``ControlPersist`` in many users' ``~/.ssh/config``, nexusify keeps its master
connection to each host for :data:`PERSIST_ENV` seconds of idleness (default
:data:`DEFAULT_PERSIST`; ``0``: close it when the command ends): the next deploy, rollback or
status within that time skips the handshake. The control socket lives in a private folder
(``$XDG_RUNTIME_DIR/nexusify-ssh``, else ``~/.cache/nexusify/ssh``, mode 0700), named by a hash of
user, host and port; beside it, the host's engine address the master's first session reported.
Each command still forwards its own local socket to the engine, and cancels it when it ends.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from nexusify.errors import ConfigError

PERSIST_ENV = "NEXUSIFY_SSH_PERSIST"
DEFAULT_PERSIST = 300


def persist_seconds(env: Mapping[str, str]) -> int:
    """How long an idle master is kept (0: not kept); ConfigError for a value that is no number."""
    raw = (env.get(PERSIST_ENV) or "").strip()
    if not raw:
        return DEFAULT_PERSIST
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PERSIST_ENV}={raw!r} is not a number of seconds",
                          hint=f"set {PERSIST_ENV} to seconds (0: close the SSH connection when the command ends)") from None
    return max(0, value)


def control_folder(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_RUNTIME_DIR")
    folder = (Path(base) / "nexusify-ssh" if base else
              Path(env.get("HOME") or Path.home()) / ".cache" / "nexusify" / "ssh")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def control_path(target: str, port: int | None, env: Mapping[str, str]) -> Path:
    """The kept master's control socket for ``target`` (user@host) and ``port`` (short: sockets
    have a path limit of about 100 bytes)."""
    key = hashlib.sha256(f"{target}:{port or 22}".encode()).hexdigest()[:16]
    return control_folder(env) / f"{key}.ctl"


def alive(base: list[str], target: str) -> bool:
    """Does the master behind ``base``'s ``-S`` socket still answer?"""
    try:
        proc = subprocess.run([*base, "-O", "check", target], capture_output=True, text=True, timeout=5,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def start(base: list[str], target: str, persist: int, errors: Path, timeout: float) -> tuple[int, str]:
    """Start a master that goes to the background once logged in (``-f -N``) and stays
    ``persist`` idle seconds; returns (exit code, what ssh said). Its output goes to a file, not a
    pipe: the background master keeps what it inherited, and a pipe would never end."""
    with errors.open("wb") as fh:
        try:
            proc = subprocess.run([*base, "-f", "-N", "-M", "-o", f"ControlPersist={persist}", target],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=fh,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return 255, f"ssh did not log in within {timeout:g}s"
    return proc.returncode, errors.read_text(encoding="utf-8", errors="replace").strip()


__all__ = ["DEFAULT_PERSIST", "PERSIST_ENV", "alive", "control_path", "persist_seconds", "start"]
