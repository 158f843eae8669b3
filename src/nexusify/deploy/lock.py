"""Per-environment deploy lock. INTERFACE (in progress).

``<state_path>/deploy/<environment>/lock`` is held with ``fcntl.flock``; ``holder.json`` beside it
says who holds it. A lock whose process died is free again (the kernel drops the flock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class LockHolder:
    who: str  # user@host
    pid: int
    host: str
    since: str  # ISO 8601 UTC
    action: str = "deploy"  # "deploy" | "rollback"

    def describe(self) -> str:
        """e.g. ``alice@build1 (pid 4242, deploy) since 2026-01-02T03:04:05Z``."""
        raise NotImplementedError


class DeployLock:
    """Context manager: ``with DeployLock(state_path, "production", wait=30): ...``.

    ``wait`` seconds to wait for another holder (0 = refuse at once) before raising LockHeld
    naming the holder and since when. ``on_wait(holder)`` is called once when waiting starts.
    Not re-entrant: a process must not take the same environment's lock twice.
    """

    def __init__(
        self,
        state_path: Path,
        environment: str,
        *,
        wait: float = 0.0,
        action: str = "deploy",
        on_wait: Callable[[LockHolder | None], None] | None = None,
    ) -> None:
        raise NotImplementedError

    @property
    def path(self) -> Path:
        raise NotImplementedError

    def acquire(self) -> LockHolder:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> LockHolder:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def current_holder(state_path: Path, environment: str) -> LockHolder | None:
    """Who holds the environment's lock right now (None when free)."""
    raise NotImplementedError
