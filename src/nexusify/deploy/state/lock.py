"""Per-environment deploy lock: one deploy or rollback of an environment at a time.

``<state_path>/deploy/<environment>/lock`` is held with ``fcntl.flock``; ``holder.json`` beside
it (written atomically once the lock is taken) says who holds it, with which pid on which host,
since when. The kernel drops a flock when its process dies, so a deploy killed at any point
leaves a lock the next deploy simply takes (its stale ``holder.json`` is replaced). A second
deploy waits up to ``lock-wait`` seconds (0: refuses at once) and then fails with
:class:`LockHeld` naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from nexusify.deploy.state.history import utc_now, who
from nexusify.errors import DeployError, LockHeld
from nexusify.files import confined, write_atomic
from nexusify.processes import pid_alive

POLL = 0.1
HOLDER_GRACE = 1.0  # seconds a refusal waits to learn who holds the lock


@dataclass(frozen=True)
class LockHolder:
    who: str  # user@host
    pid: int
    host: str
    since: str  # ISO 8601 UTC
    action: str = "deploy"  # "deploy" | "rollback"

    def describe(self) -> str:
        """e.g. ``alice@build1 (pid 4242, deploy) since 2026-01-02T03:04:05Z``."""
        return f"{self.who} (pid {self.pid} on {self.host}, {self.action}) since {self.since}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _read_holder(path: Path) -> LockHolder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(who=str(data["who"]), pid=int(data["pid"]), host=str(data["host"]),
                          since=str(data["since"]), action=str(data.get("action", "deploy")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not environment or "/" in environment or environment in (".", ".."):
            raise DeployError(f"invalid environment name {environment!r}")
        self.environment = environment
        self.dir = confined(state_path, Path("deploy", environment), source=str(Path(state_path, "deploy", environment)),
                            what="deploy lock folder", plain=True)
        self.wait = max(0.0, float(wait))
        self.action = action
        self.on_wait = on_wait
        self._env = env
        self._fd: int | None = None
        self.holder: LockHolder | None = None
        self.recovered: LockHolder | None = None  # the dead holder whose lock this one took over

    @property
    def path(self) -> Path:
        return self.dir / "lock"

    @property
    def holder_path(self) -> Path:
        return self.dir / "holder.json"

    def _refuse(self, holder: LockHolder | None) -> LockHeld:
        if holder is None:
            return LockHeld(
                f"environment `{self.environment}` is locked by another deploy",
                path=self.path,
                hint="wait for it to finish, or pass --lock-wait SECONDS to wait for it",
            )
        stale = ""
        if holder.host == socket.gethostname() and not pid_alive(holder.pid):
            stale = (f" (its pid {holder.pid} is gone, but a child process still holds the lock file; "
                     f"find it with `fuser {self.path}`)")
        waited = f" after waiting {self.wait:g}s" if self.wait else ""
        return LockHeld(
            f"environment `{self.environment}` is being deployed by {holder.describe()}{stale}; refused{waited}",
            path=self.path,
            hint="wait for it to finish, or pass --lock-wait SECONDS to queue behind it",
        )

    def acquire(self) -> LockHolder:
        if self._fd is not None:
            raise DeployError(f"the deploy lock of `{self.environment}` is already held by this process")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DeployError(f"cannot create the deploy lock: {exc.strerror}", path=self.path) from exc
        deadline = time.monotonic() + self.wait
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _read_holder(self.holder_path)
                    now = time.monotonic()
                    if now >= deadline:
                        if holder is None and now < deadline + HOLDER_GRACE:
                            # the holder writes who it is right after taking the lock: give it
                            # a moment, so the refusal can name it
                            time.sleep(0.02)
                            continue
                        raise self._refuse(holder) from None
                    if not told and self.on_wait is not None:
                        self.on_wait(holder)
                        told = True
                    time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
        except BaseException:
            os.close(fd)
            raise
        # We hold the flock: any holder.json left behind belongs to a process that died.
        previous = _read_holder(self.holder_path)
        if previous is not None and not (previous.pid == os.getpid() and previous.host == socket.gethostname()):
            self.recovered = previous
        holder = LockHolder(who=who(self._env), pid=os.getpid(), host=socket.gethostname(), since=utc_now(),
                            action=self.action)
        try:
            write_atomic(self.holder_path, json.dumps(holder.to_dict(), indent=2) + "\n")
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd
        self.holder = holder
        return holder

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            current = _read_holder(self.holder_path)
            if current is not None and current == self.holder:
                self.holder_path.unlink(missing_ok=True)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self.holder = None

    def __enter__(self) -> LockHolder:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def current_holder(state_path: Path, environment: str) -> LockHolder | None:
    """Who holds the environment's lock right now (None when free)."""
    lock = DeployLock(state_path, environment)
    if not lock.path.exists():
        return None
    try:
        fd = os.open(lock.path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(lock.holder_path) or LockHolder("unknown", 0, "unknown", "unknown")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


__all__ = ["DeployLock", "LockHolder", "current_holder"]
