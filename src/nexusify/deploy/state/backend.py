"""The two :class:`~nexusify.deploy.protocols.StateBackend` implementations, and the one place a
deploy, rollback or down takes hold of its environment.

- :class:`WorkingCopyState` (an environment served by a local nginx): ``state.json``, the
  ``flock`` of :mod:`~nexusify.deploy.state.lock` and ``history.jsonl``, all in the working copy;
- :class:`HostState` (state on the hosts, ``Placement.state_on_hosts``): the same files (one
  ``state.json`` per host), plus the lock container on the primary host
  (:mod:`~nexusify.deploy.state.hostlock`) and a copy of each record on every host
  (:mod:`~nexusify.deploy.state.hosthistory`), read back merged by record id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.deploy.config.placement import Placement
from nexusify.deploy.protocols import StateBackend
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state import history as hist
from nexusify.deploy.state.hosthistory import append_on_hosts, merge_records, read_on_hosts
from nexusify.deploy.state.hostlock import HostLock, environment_lock
from nexusify.deploy.state.hostset import Host, connected_hosts
from nexusify.deploy.state.lock import DeployLock, LockHolder
from nexusify.deploy.state.store import StateStore


class WorkingCopyState:
    """The environment's state in the working copy (``<state>/deploy/<environment>/``)."""

    def __init__(self, state_path: Path, environment: str, site: str = "", env: Mapping[str, str] | None = None) -> None:
        self.state_path = state_path
        self.environment = environment
        self.site = site
        self.env = env
        self.store = StateStore(state_path, environment, site or None)

    def service(self, name: str) -> dict[str, Any]:
        return self.store.service(name)

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        self.store.save_service(name, entry)

    def at(self, site: str) -> WorkingCopyState:
        return WorkingCopyState(self.state_path, self.environment, site, self.env)

    @contextlib.contextmanager
    def hold(self, *, wait: float, action: str,
             on_wait: Callable[[LockHolder | None], None] | None = None) -> Iterator[LockHolder | None]:
        # a flock dies with its process: nothing a dead one left is ever taken over
        with DeployLock(self.state_path, self.environment, wait=wait, action=action, on_wait=on_wait, env=self.env):
            yield None

    def append(self, record: hist.DeploymentRecord,
               secrets: SecretBundle | None = None) -> tuple[hist.DeploymentRecord, list[str]]:
        return hist.append_record(self.state_path, record, secrets=secrets), []

    def records(self) -> tuple[list[hist.DeploymentRecord], list[str]]:
        return hist.read_history(self.state_path, self.environment), []


class HostState(WorkingCopyState):
    """The working copy's state, plus the lock on the primary host and the history on every host
    (``hosts``: connected, in the configuration's order; the primary first once held)."""

    def __init__(self, state_path: Path, placement: Placement, hosts: Sequence[Host], site: str = "",
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(state_path, placement.environment, site, env)
        self.placement = placement
        self.hosts = list(hosts)

    def at(self, site: str) -> HostState:
        other = HostState(self.state_path, self.placement, (), site, self.env)
        other.hosts = self.hosts  # the same list: ordered once the lock is held
        return other

    @contextlib.contextmanager
    def hold(self, *, wait: float, action: str,
             on_wait: Callable[[LockHolder | None], None] | None = None) -> Iterator[LockHolder | None]:
        with environment_lock(self.state_path, self.placement, self.hosts, wait=wait, action=action,
                              on_wait=on_wait, env=self.env) as (lock, ordered):
            self.hosts[:] = ordered
            yield lock.recovered if isinstance(lock, HostLock) else None

    def append(self, record: hist.DeploymentRecord,
               secrets: SecretBundle | None = None) -> tuple[hist.DeploymentRecord, list[str]]:
        rec, _ = super().append(record, secrets)
        return rec, append_on_hosts(self.hosts, rec, secrets)

    def records(self) -> tuple[list[hist.DeploymentRecord], list[str]]:
        local, _ = super().records()
        found = read_on_hosts(self.hosts, self.environment)
        unread = [f"host {h.host}: history not read: {h.error}" for h in found if h.error]
        return merge_records(local, *(h.records for h in found)), unread


def state_backend(settings: Settings, placement: Placement, hosts: Sequence[Host],
                  env: Mapping[str, str] | None = None) -> StateBackend:
    """The environment's state: on its hosts (connected: ``hosts``) when it keeps it there."""
    if placement.state_on_hosts:
        return HostState(settings.state_path, placement, hosts, env=env)
    return WorkingCopyState(settings.state_path, placement.environment, env=env)


@dataclass(frozen=True)
class Held:
    """An environment held by a deploy, rollback or down: where it runs, its state (lock held), and
    the hosts connected for it, the primary first (none when its state is the working copy's)."""

    placement: Placement
    state: StateBackend
    hosts: list[Host] = field(default_factory=list)


@contextlib.contextmanager
def held_environment(placement: Placement, settings: Settings, env: Mapping[str, str], *,
                     wait: float, action: str,
                     on_wait: Callable[[LockHolder | None], None] | None = None,
                     on_recovered: Callable[[LockHolder], None] | None = None) -> Iterator[Held]:
    """Hold the environment for a deploy, rollback or down (:class:`Held`). ``on_recovered(holder)``:
    the lock a dead process left was taken over (said in the result, so nobody wonders where it went)."""
    with contextlib.ExitStack() as stack:
        hosts: list[Host] = stack.enter_context(connected_hosts(placement, env)) if placement.state_on_hosts else []
        backend = state_backend(settings, placement, hosts, env)
        recovered = stack.enter_context(backend.hold(wait=wait, action=action, on_wait=on_wait))
        if recovered is not None and on_recovered is not None:
            on_recovered(recovered)
        yield Held(placement, backend, backend.hosts if isinstance(backend, HostState) else [])


__all__ = ["Held", "HostState", "WorkingCopyState", "held_environment", "state_backend"]
