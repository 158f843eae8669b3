"""The seams of deploy: what blue-green switching needs from a backend, as Protocols.

:class:`~nexusify.deploy.bluegreen.BlueGreen` depends on these only. Today's implementations:

- :class:`Runtime`: containers of one service on one engine (:class:`~nexusify.deploy.runtime.containers.ServiceContainers`,
  Docker's API or Podman's); a Kubernetes namespace would be another;
- :class:`StateBackend`: the live version and the transition in progress of each service, the
  deploy lock and the history (:mod:`~nexusify.deploy.state.backend`: the working copy's, or the
  working copy's plus the lock on the primary host and the history on every host);
- :class:`~nexusify.deploy.traffic.switch.TrafficSwitch`: where a service's traffic goes (nginx on the
  host, or the proxy container);
- :class:`HistoryBackend`: the deployment records of an environment (the ConfigMap
  ``nexusify-history`` of a Kubernetes namespace);
- :class:`ImageTransport`: how a built image reaches a host (registry pull, or streamed from the
  build engine: :mod:`~nexusify.deploy.runtime.transport`);
- :class:`MigrationRunner`: runs a service's migrations once, before the switch.

SDK objects never cross these: arguments and results are nexusify's own data (:class:`Slot`,
:class:`Target`, dicts, strings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nexusify.credentials import Secret
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state.history import DeploymentRecord
from nexusify.deploy.state.lock import LockHolder
from nexusify.deploy.state.store import Slot
from nexusify.deploy.traffic.switch import Target, TrafficSwitch


@dataclass(frozen=True)
class ServiceRuntime:
    """What blue-green needs to know about one service in one environment."""

    environment: str
    service: str
    container_port: int
    health_path: str = "/health"
    health_timeout: float = 30.0
    health_interval: float = 0.5
    drain_timeout: float = 5.0
    keep: int = 3
    host: str = "127.0.0.1"
    stop_timeout: int = 10
    network: str | None = None  # set: containers join it and publish no port (proxy container mode)


@runtime_checkable
class Runtime(Protocol):
    """Where one service's versions run on one site: start a color, health, stop/remove, kept versions, prune."""

    def new_slot(self, image: str, image_id: str, version: str, secret_tag: str) -> Slot:
        """A fresh slot (name, port) for a new container of ``image``; nothing is started yet."""

    def run(self, slot: Slot, env: Mapping[str, str]) -> None:
        """Create and start ``slot``'s container with ``env``; DeployError when it cannot."""

    def start(self, slot: Slot) -> None:
        """Start the kept, stopped container of ``slot`` again; DeployError when it cannot."""

    def wait_healthy(self, slot: Slot) -> float:
        """Seconds until ``slot`` answered its health path; DeployError on timeout or exit."""

    def check(self, slot: Slot) -> tuple[bool, str]:
        """One health probe: (healthy, what answered)."""

    def exists(self, name: str) -> bool: ...

    def running(self, name: str) -> bool: ...

    def stop(self, name: str) -> None:
        """Stop, keeping the container for a rollback (best effort)."""

    def remove(self, name: str) -> None:
        """Remove the container (best effort; gone already is fine)."""

    def slots(self) -> list[Slot]:
        """Every version of the service here (running or kept), newest first."""

    def slot_named(self, name: str) -> Slot | None: ...

    def target(self, slot: Slot) -> Target:
        """Where the traffic switch reaches ``slot``."""

    def prune(self, keep: int, live: str | None) -> list[str]:
        """Remove versions beyond the newest ``keep`` (never ``live``); the names removed."""


@runtime_checkable
class HistoryBackend(Protocol):
    """Where an environment's deployment records are kept and read, whoever reads them: the working
    copy's and the hosts' (a :class:`StateBackend`), or the ConfigMap ``nexusify-history`` of a
    Kubernetes namespace (:class:`~nexusify.deploy.kubernetes.history.ConfigMapHistory`). Records
    never hold a secret value."""

    def append(self, record: DeploymentRecord, secrets: SecretBundle | None = None) -> tuple[DeploymentRecord, list[str]]:
        """Add ``record`` (redacted with ``secrets``) to the history: (it with its id, a warning per
        copy that could not be stored: the deploy happened, a missing copy does not undo it)."""

    def records(self) -> tuple[list[DeploymentRecord], list[str]]:
        """The history, oldest first, each record once; and a warning per copy that could not be read."""


@runtime_checkable
class StateBackend(HistoryBackend, Protocol):
    """An environment's deploy state as one site sees it: the recorded live version and transition
    of each service (per site), the environment's deploy lock, and its history."""

    def service(self, name: str) -> dict[str, Any]: ...

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        """Write atomically: a deploy killed at any point leaves a record the next one finishes or undoes."""

    def at(self, site: str) -> StateBackend:
        """The same environment's state as the site ``site`` sees it ("": the single engine)."""

    def hold(self, *, wait: float, action: str,
             on_wait: Callable[[LockHolder | None], None] | None = None) -> AbstractContextManager[LockHolder | None]:
        """Hold the environment's deploy lock (LockHeld after ``wait`` seconds, naming the holder);
        the context yields the holder whose lock a dead process left and this one took over, if any."""



@runtime_checkable
class ImageTransport(Protocol):
    """How a built image reaches a site's engine."""

    def deliver(self, image: Any, dest: Any, *, host: str = "") -> str:
        """Make ``image`` (a BuiltImage) present on ``dest``; returns how: "present", "pulled" or "streamed"."""


@runtime_checkable
class MigrationRunner(Protocol):
    """Runs one service's migrations once per deploy, before traffic moves."""

    def run(self, service: Any, image: Any, url: Secret, env: Mapping[str, str]) -> Any:
        """Upgrade the database of ``service`` to head with ``image``'s migrations; a MigrationResult."""


__all__ = [
    "HistoryBackend", "ImageTransport", "MigrationRunner", "Runtime", "ServiceRuntime", "Slot", "StateBackend", "Target", "TrafficSwitch",
]
