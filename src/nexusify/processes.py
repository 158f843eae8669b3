"""Processes nexusify left running (a local pypiserver, a deploy lock's holder): the one answer to
"is this pid still alive"."""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """The process exists (under any user) and is not a zombie (exited, waiting for its parent to
    reap it). Without ``/proc`` (macOS) a zombie counts as alive."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    fields = stat.rsplit(")", 1)[-1].split()
    return not fields or fields[0] not in ("Z", "X")


__all__ = ["pid_alive"]
