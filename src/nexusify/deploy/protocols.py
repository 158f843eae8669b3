"""The seams of deploy: what blue-green switching needs from a backend, as Protocols.

:class:`~nexusify.deploy.bluegreen.BlueGreen` depends on these only. Today's implementations:

- :class:`Runtime`: containers of one service on one engine (:class:`~nexusify.deploy.runtime.containers.ServiceContainers`,
  Docker's API or Podman's); a Kubernetes namespace would be another;
- :class:`StateBackend`: the live version and the transition in progress of each service
  (:class:`~nexusify.deploy.state.store.StateStore`, a JSON file per environment and host);
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nexusify.credentials import Secret
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state.history import DeploymentRecord
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
class StateBackend(Protocol):
    """The recorded live version and transition of each service of an environment on one site."""

    def service(self, name: str) -> dict[str, Any]: ...

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        """Write atomically: a deploy killed at any point leaves a record the next one finishes or undoes."""


@runtime_checkable
class HistoryBackend(Protocol):
    """Where an environment's deployment records live and are read from, whoever reads them: the
    ConfigMap ``nexusify-history`` of a Kubernetes namespace
    (:class:`~nexusify.deploy.kubernetes.history.ConfigMapHistory`). Records never hold a secret value."""

    def records(self) -> list[DeploymentRecord]:
        """The environment's records, oldest first."""

    def append(self, record: DeploymentRecord, *, secrets: SecretBundle | None = None) -> DeploymentRecord:
        """Add ``record``, any value of ``secrets`` in it replaced by ``<hidden>``; returns it with its id."""


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
