"""The deploy lock of an environment with hosts: a named container on its primary host.

Two machines (a laptop and CI, two operators) deploying the same environment share no files,
only the hosts. Creating a container named ``nexusify-ENV-lock`` is atomic in the engine: of two
creates, one gets the name and the other a conflict. The container is never started; its labels
say who holds the lock (``user@host``), with which pid on which machine, since when, and for what
(deploy, rollback, down). Releasing removes it (also on failure and Ctrl-C, by the context
manager). A deploy killed with SIGKILL leaves it behind: the next deploy from the same machine
sees the pid is gone and takes it over; from anywhere else it is refused with the holder and
``nexusify deploy unlock --environment ENV`` to release it once nobody deploys.

:func:`environment_lock` is what ``HostState.hold`` (:mod:`~nexusify.deploy.state.backend`, the one
entry for deploy, rollback and down) takes: the local ``flock`` of :mod:`~nexusify.deploy.state.lock`
(the working copy's state files), plus this lock on the primary host.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from nexusify.config import Settings
from nexusify.deploy.config.placement import Placement, placement_of
from nexusify.deploy.config.types import DeployConfig
from nexusify.deploy.runtime.engine import LABEL_PREFIX, ROLE_LOCK, Engine
from nexusify.deploy.runtime.objects import (
    create_marker_container,
    inspect_container,
    lock_name,
    object_labels,
    remove_container,
)
from nexusify.deploy.runtime.sdk import Conflict, EngineError
from nexusify.deploy.state.history import utc_now, who
from nexusify.deploy.state.hostset import Host, connected_hosts
from nexusify.deploy.state.lock import DeployLock, LockHolder, current_holder
from nexusify.deploy.state.primary import check_alone, primary_first
from nexusify.errors import DeployError, LockHeld
from nexusify.processes import pid_alive

POLL = 0.5  # seconds between two attempts while waiting (each is an engine round trip)
VANISH_GRACE = 5.0  # seconds a lock may keep vanishing and reappearing between create and inspect
LABEL_HOLDER = f"{LABEL_PREFIX}.lock.holder"
LABEL_PID = f"{LABEL_PREFIX}.lock.pid"
LABEL_MACHINE = f"{LABEL_PREFIX}.lock.machine"
LABEL_SINCE = f"{LABEL_PREFIX}.lock.since"
LABEL_ACTION = f"{LABEL_PREFIX}.lock.action"


def unlock_command(environment: str) -> str:
    return f"nexusify deploy unlock --environment {environment}"


def took_over(holder: LockHolder) -> str:
    """What a deploy says when it took over the lock a dead process left."""
    return f"lock: took over the lock left by {holder.describe()} (that process is gone)"


def holder_labels(holder: LockHolder) -> dict[str, str]:
    return {LABEL_HOLDER: holder.who, LABEL_PID: str(holder.pid), LABEL_MACHINE: holder.host,
            LABEL_SINCE: holder.since, LABEL_ACTION: holder.action}


def holder_of(labels: Mapping[str, str] | None) -> LockHolder:
    """The holder a lock container's labels name (unknown fields say so rather than guess)."""
    labels = labels or {}
    try:
        pid = int(labels.get(LABEL_PID, "0"))
    except ValueError:
        pid = 0
    return LockHolder(who=labels.get(LABEL_HOLDER, "unknown"), pid=pid, host=labels.get(LABEL_MACHINE, "unknown"),
                      since=labels.get(LABEL_SINCE, "unknown"), action=labels.get(LABEL_ACTION, "deploy"))


def read_lock(engine: Engine, environment: str) -> tuple[str, LockHolder] | None:
    """(container id, holder) of the environment's lock on this host, or None when it is free."""
    data = inspect_container(engine, lock_name(environment))
    if data is None:
        return None
    return str(data.get("Id", "")), holder_of((data.get("Config") or {}).get("Labels"))


def left_by_dead_process(holder: LockHolder) -> bool:
    """A lock whose holder ran on this machine with a pid that no longer exists: nobody deploys."""
    return holder.host == socket.gethostname() and holder.pid > 0 and not pid_alive(holder.pid)


class HostLock:
    """Context manager: the lock container of ``environment`` on ``engine`` (the primary host).

    ``wait`` seconds to wait for another holder (0 = refuse at once), then LockHeld naming it.
    ``on_wait(holder)`` is called once when waiting starts; ``recovered`` is the dead holder whose
    lock this one took over.
    """

    def __init__(self, engine: Engine, environment: str, host: str, *, wait: float = 0.0, action: str = "deploy",
                 on_wait: Callable[[LockHolder | None], None] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.environment = environment
        self.host = host  # display name of the host holding the lock
        self.wait = max(0.0, float(wait))
        self.action = action
        self.on_wait = on_wait
        self._env = env
        self._id: str | None = None
        self.holder: LockHolder | None = None
        self.recovered: LockHolder | None = None

    def _refuse(self, holder: LockHolder) -> LockHeld:
        waited = f" after waiting {self.wait:g}s" if self.wait else ""
        return LockHeld(
            f"environment `{self.environment}` is being deployed by {holder.describe()} "
            f"(lock {lock_name(self.environment)} on host {self.host}); refused{waited}",
            hint="wait for it to finish, or pass --lock-wait SECONDS to queue behind it; if no deploy is running "
            f"(it was killed), release the lock with `{unlock_command(self.environment)}`",
        )

    def acquire(self) -> LockHolder:
        if self._id is not None:
            raise DeployError(f"the deploy lock of `{self.environment}` is already held by this process")
        mine = LockHolder(who=who(self._env), pid=os.getpid(), host=socket.gethostname(), since=utc_now(),
                          action=self.action)
        labels = object_labels(self.environment, ROLE_LOCK, holder_labels(mine))
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            try:
                self._id = create_marker_container(self.engine, lock_name(self.environment), labels)
                break
            except Conflict:
                pass
            except EngineError as exc:
                raise DeployError(f"host {self.host}: cannot create the deploy lock "
                                  f"{lock_name(self.environment)}: {exc.message}") from None
            found = read_lock(self.engine, self.environment)
            if found is None:  # released between our create and our look: try again
                if time.monotonic() > deadline + VANISH_GRACE:
                    raise DeployError(f"host {self.host}: the name {lock_name(self.environment)} is taken, yet no "
                                      "such container can be inspected",
                                      hint=f"see `docker ps -a` on the host; `{unlock_command(self.environment)}`")
                time.sleep(0.05)
                continue
            ident, holder = found
            if left_by_dead_process(holder):
                remove_container(self.engine, ident)  # by id: never a newer holder's lock
                self.recovered = holder
                continue
            if time.monotonic() >= deadline:
                raise self._refuse(holder)
            if not told and self.on_wait is not None:
                self.on_wait(holder)
                told = True
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
        self.holder = mine
        return mine

    def release(self) -> None:
        ident, self._id = self._id, None
        self.holder = None
        if ident is not None:
            with contextlib.suppress(Exception):  # a lock that cannot be removed is reported by the next deploy
                remove_container(self.engine, ident)

    def __enter__(self) -> LockHolder:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def unlock(engine: Engine, environment: str) -> LockHolder | None:
    """Remove the environment's lock on this (primary) host; the holder it named, or None when free.

    Refused while the holder is a live process on this machine: that deploy is still running.
    """
    found = read_lock(engine, environment)
    if found is None:
        return None
    ident, holder = found
    if holder.host == socket.gethostname() and holder.pid > 0 and pid_alive(holder.pid):
        raise LockHeld(f"environment `{environment}` is locked by {holder.describe()}, which is still running "
                       "on this machine; not released", hint=f"wait for it to finish, or stop pid {holder.pid}")
    remove_container(engine, ident)
    return holder


def unlock_environment(config: DeployConfig, settings: Settings, environment: str,
                       env: Mapping[str, str]) -> tuple[str, LockHolder | None]:
    """``nexusify deploy unlock``: (where the lock is, the holder it named; None when it was free).

    With a local nginx the lock is the working copy's flock, which no killed process can leave behind:
    a live holder is reported (LockHeld), a free one is said to be free.
    """
    env_cfg = config.environment(environment)
    placement = placement_of(config, env_cfg, env)
    if not placement.state_on_hosts:
        holder = current_holder(settings.state_path, env_cfg.name)
        if holder is not None:
            raise LockHeld(f"environment `{env_cfg.name}` is being deployed by {holder.describe()}",
                           hint="with a local nginx the lock is a file lock of the working copy, released when that "
                           "process ends (it cannot outlive a killed deploy)")
        return "this working copy", None
    with connected_hosts(placement, env) as hosts:
        name, engine = primary_first(hosts, placement)[0]
        return name, unlock(engine, env_cfg.name)


@contextlib.contextmanager
def environment_lock(state_path: Path, placement: Placement, hosts: Sequence[Host], *,
                     wait: float = 0.0, action: str = "deploy",
                     on_wait: Callable[[LockHolder | None], None] | None = None,
                     env: Mapping[str, str] | None = None) -> Iterator[tuple[Any, list[Host]]]:
    """The lock a deploy, rollback or down of the environment holds: the working copy's flock, and
    the lock container on its primary host when it keeps its state on ``hosts`` (connected, in the
    configuration's order). Yields (the lock object, whose ``recovered`` says whether a dead
    holder's lock was taken over; ``hosts`` with the primary first)."""
    started = time.monotonic()
    environment = placement.environment
    local = DeployLock(state_path, environment, wait=wait, action=action, on_wait=on_wait, env=env)
    with local:
        if not placement.state_on_hosts or not hosts:
            yield local, list(hosts)
            return
        ordered = primary_first(hosts, placement)
        remaining = max(0.0, wait - (time.monotonic() - started))
        name, engine = ordered[0]
        remote = HostLock(engine, environment, name, wait=remaining, action=action, on_wait=on_wait, env=env)
        with remote:
            check_alone(ordered, placement)
            yield remote, ordered


__all__ = [
    "HostLock", "environment_lock", "holder_of", "left_by_dead_process", "read_lock", "took_over", "unlock", "unlock_command",
    "unlock_environment",
]
