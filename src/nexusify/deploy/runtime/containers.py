"""The containers of one service in one environment, found by nexusify's labels: list, create,
start, stop, remove, logs, and the wait until a new one is healthy."""

from __future__ import annotations

import contextlib
import re
import secrets as _random
import time
from collections.abc import Callable, Mapping
from typing import Any

from nexusify.deploy.protocols import ServiceRuntime
from nexusify.deploy.runtime.engine import (
    LABEL_CREATED,
    LABEL_ENVIRONMENT,
    LABEL_IMAGE,
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_SECRETS,
    LABEL_SERVICE,
    LABEL_VERSION,
    ROLE_HISTORY,
    ROLE_LOCK,
    ROLE_MIGRATION,
    ROLE_NETWORK,
    ROLE_PROXY,
    ROLE_SERVICE,
    Engine,
    start_retrying,
)
from nexusify.deploy.runtime.health import check_health, free_port
from nexusify.deploy.runtime.sdk import EngineError, NotFound
from nexusify.deploy.state.store import Slot
from nexusify.deploy.traffic.switch import Target
from nexusify.errors import DeployError

_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
FIRST_POLL = 0.02  # seconds between health probes during the first FAST_POLLING seconds
FAST_POLLING = 1.0


Probe = Callable[[str, int, str], tuple[bool, str]]  # (address, port, path) -> (healthy, what answered)


class ServiceContainers:
    """The managed containers of ``runtime.service`` in ``runtime.environment`` on one engine."""

    def __init__(self, engine: Engine, runtime: ServiceRuntime, redact: Callable[[str], str] | None = None,
                 probe: Probe | None = None) -> None:
        self.engine = engine
        self.client = engine.client
        self.rt = runtime
        self._redact = redact or (lambda s: s)
        self._probe = probe

    def address(self, slot: Slot) -> tuple[str, int]:
        """Where the proxy reaches ``slot``: a loopback port, or (network mode) the container's IP on
        the environment's network, read now (a restarted container may have a new one)."""
        if self.rt.network is None:
            return self.rt.host, slot.port
        c = self.get(slot.container)
        networks = ((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}) if c is not None else {}
        ip = str((networks.get(self.rt.network) or {}).get("IPAddress") or "")
        if not ip:
            raise DeployError(f"{self.rt.service}: {slot.container} has no address on {self.rt.network}",
                              hint="is it running? see the engine's log")
        return ip, self.rt.container_port

    def target(self, slot: Slot) -> Target:
        host, port = self.address(slot)
        return Target(host=host, port=port, name=slot.container, version=slot.version)

    def check(self, slot: Slot, timeout: float = 2.0) -> tuple[bool, str]:
        """One health probe of ``slot`` (from here, or from inside the proxy in network mode)."""
        if self.rt.network is None or self._probe is None:
            return check_health(self.rt.host, slot.port, self.rt.health_path, timeout=timeout)
        try:
            host, port = self.address(slot)
        except DeployError as exc:
            return False, exc.message
        return self._probe(host, port, self.rt.health_path)

    def labels_filter(self) -> dict[str, Any]:
        return {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_ENVIRONMENT}={self.rt.environment}",
                          f"{LABEL_SERVICE}={self.rt.service}"]}

    def find(self, filters: dict[str, Any]) -> list[Any]:
        """Containers matching ``filters``, skipping any removed between the list and the inspect."""
        found = []
        for row in self.client.api.containers(all=True, filters=filters):
            with contextlib.suppress(NotFound):
                found.append(self.client.containers.get(row["Id"]))
        return found

    def containers(self) -> list[Any]:
        """Every container nexusify made for this service and environment, newest first."""
        found = self.find(self.labels_filter())
        return sorted(found, key=lambda c: float((c.labels or {}).get(LABEL_CREATED, 0) or 0), reverse=True)

    def get(self, name: str) -> Any | None:
        try:
            return self.client.containers.get(name)
        except NotFound:  # also Podman's 500 "no such container" while it is removed
            return None

    def slot_of(self, container: Any) -> Slot | None:
        labels = container.labels or {}
        port = self.rt.container_port if self.rt.network else _host_port(container, self.rt.container_port)
        if port is None:
            return None
        image_id = str(container.attrs.get("Image", ""))
        image = labels.get(LABEL_IMAGE) or str(container.attrs.get("Config", {}).get("Image", "")) or image_id
        return Slot(container=container.name, version=labels.get(LABEL_VERSION, ""), image=image, image_id=image_id,
                    port=port, created=float(labels.get(LABEL_CREATED, 0) or 0),
                    secret_versions=labels.get(LABEL_SECRETS, ""))

    def used_ports(self) -> set[int]:
        ports = set()
        for c in self.find({"label": f"{LABEL_MANAGED}=true"}):
            p = _host_port(c, None)
            if p:
                ports.add(p)
        return ports

    def new_slot(self, image: str, image_id: str, version: str, secret_tag: str) -> Slot:
        created = time.time()
        name = _NAME_SAFE.sub("-", f"nx-{self.rt.environment}-{self.rt.service}-{version}-{_random.token_hex(3)}")
        port = self.rt.container_port if self.rt.network else free_port(self.rt.host, self.used_ports())
        slot = Slot(container=name, version=version, image=image, image_id=image_id, port=port, created=created,
                    secret_versions=secret_tag)
        return slot

    def run(self, slot: Slot, env: Mapping[str, str]) -> None:
        labels = {
            LABEL_MANAGED: "true", LABEL_ENVIRONMENT: self.rt.environment, LABEL_SERVICE: self.rt.service,
            LABEL_VERSION: slot.version, LABEL_CREATED: f"{slot.created:.6f}", LABEL_SECRETS: slot.secret_versions,
            LABEL_IMAGE: slot.image, LABEL_ROLE: ROLE_SERVICE,
        }
        full_env = {"APP_VERSION": slot.version, "NEXUSIFY_VERSION": slot.version,
                    "NEXUSIFY_ENVIRONMENT": self.rt.environment, "NEXUSIFY_SERVICE": self.rt.service}
        full_env.update(env)
        where: dict[str, Any] = ({"network": self.rt.network} if self.rt.network
                                 else {"ports": {f"{self.rt.container_port}/tcp": (self.rt.host, slot.port)}})
        def create_and_start() -> None:
            c = self.client.containers.create(
                slot.image_id or slot.image, name=slot.container, environment=full_env, labels=labels,
                restart_policy={"Name": "unless-stopped"}, **where,
            )
            start_retrying(c.start)

        try:
            create_and_start()
        except EngineError as exc:
            with contextlib.suppress(EngineError):
                c = self.get(slot.container)
                if c is not None:
                    c.remove(force=True)
            raise DeployError(f"{self.rt.service}: could not start {slot.container}: {self._redact(exc.message)}",
                              hint="see the engine's log; traffic did not move") from None

    def start(self, slot: Slot) -> None:
        """Start the kept container of ``slot`` again (a rollback); DeployError when it cannot."""
        c = self.get(slot.container)
        if c is None:
            raise DeployError(f"{self.rt.service}: container {slot.container} ({slot.version}) is gone",
                              hint="deploy again")
        if str((c.attrs.get("State") or {}).get("Status", c.status)) == "running":
            return  # already running (a rollback to a container left running): nothing to start
        try:
            start_retrying(c.start)
        except EngineError as exc:
            raise DeployError(f"{self.rt.service}: could not start {slot.container}: {self._redact(exc.message)}",
                              hint="is its port taken? roll back with --to another version, or deploy it again") from None

    def exists(self, name: str) -> bool:
        return self.get(name) is not None

    def slots(self) -> list[Slot]:
        """Every version of this service on this engine (running or kept), newest first. The list
        call alone says it all (one engine call, not one per container), except the published port
        of a stopped container on dockerd, which only its inspect data holds (Podman lists it)."""
        found = []
        for row in self.client.api.containers(all=True, filters=self.labels_filter()):
            port = self.rt.container_port if self.rt.network else _listed_port(row, self.rt.container_port)
            if port is not None:
                found.append(_listed_slot(row, port))
                continue
            with contextlib.suppress(NotFound):
                if (slot := self.slot_of(self.client.containers.get(row["Id"]))) is not None:
                    found.append(slot)
        return sorted(found, key=lambda s: s.created, reverse=True)

    def slot_named(self, name: str) -> Slot | None:
        c = self.get(name)
        return self.slot_of(c) if c is not None else None

    def prune(self, keep: int, live: str | None) -> list[str]:
        """Remove this service's containers beyond the newest ``keep`` (never ``live``), and their
        images once no container uses them."""
        others = [c for c in self.containers() if c.name != live]
        removed: list[str] = []
        for c in others[keep:]:
            image_id = str(c.attrs.get("Image", ""))
            with contextlib.suppress(EngineError):
                c.remove(force=True)
                removed.append(c.name)
            if image_id and not self.find({"ancestor": image_id}):
                with contextlib.suppress(EngineError):  # another tag or container may still hold it
                    self.client.images.remove(image_id)
        return removed

    def remove(self, name: str) -> None:
        c = self.get(name)
        if c is not None:
            with contextlib.suppress(EngineError):
                c.remove(force=True)

    def stop(self, name: str) -> None:
        """Stop ``name`` (one engine call, no inspect first); one that is gone counts as stopped."""
        with contextlib.suppress(EngineError):  # NotFound included
            self.client.api.stop(name, timeout=self.rt.stop_timeout)

    def running(self, name: str) -> bool:
        c = self.get(name)
        if c is None:
            return False
        return str(c.attrs.get("State", {}).get("Status", c.status)) == "running"

    def logs_tail(self, name: str, lines: int = 15) -> str:
        c = self.get(name)
        if c is None:
            return ""
        try:
            raw = c.logs(tail=lines)
        except EngineError:
            return ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return self._redact(text.strip())

    def wait_healthy(self, slot: Slot) -> float:
        """Poll the health path until 2xx/3xx; DeployError on timeout or if the container exits."""
        start = time.monotonic()
        deadline = start + self.rt.health_timeout
        # a (re)started app listens within a few tenths of a second: probe often at first (a probe on
        # loopback costs a connect), then back off to the configured interval
        delay = min(FIRST_POLL, self.rt.health_interval)
        last = "no answer yet"
        look = start + 0.5  # when to ask the engine whether the container exited (not on every probe)
        while True:
            ok, last = self.check(slot, timeout=max(0.5, min(2.0, self.rt.health_timeout)))
            if ok:
                return time.monotonic() - start
            if time.monotonic() >= look:
                look = time.monotonic() + 0.5
                if not self.running(slot.container):
                    logs = self.logs_tail(slot.container)
                    raise DeployError(f"{self.rt.service} {slot.version}: the container exited before it was healthy"
                                      + (f"; its last lines:\n{logs}" if logs else ""),
                                      hint="fix the service; traffic did not move")
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"{self.rt.service} {slot.version}: {self.rt.health_path} of {slot.container} was not healthy "
                    f"within {self.rt.health_timeout:g}s (last: {last})",
                    hint="traffic did not move; fix the service or raise `health-timeout`",
                )
            time.sleep(delay)
            if time.monotonic() - start >= FAST_POLLING:
                delay = min(self.rt.health_interval, max(delay, 0.05) * 2)



def _listed_slot(row: Mapping[str, Any], port: int) -> Slot:
    """The slot of a container as the engine's container list shows it."""
    labels = row.get("Labels") or {}
    name = str((row.get("Names") or [row["Id"]])[0]).lstrip("/")
    image_id = str(row.get("ImageID") or "")
    return Slot(container=name, version=labels.get(LABEL_VERSION, ""),
                image=labels.get(LABEL_IMAGE) or str(row.get("Image") or "") or image_id,
                image_id=image_id, port=port, created=float(labels.get(LABEL_CREATED, 0) or 0),
                secret_versions=labels.get(LABEL_SECRETS, ""))


def _listed_port(row: Mapping[str, Any], container_port: int) -> int | None:
    """The host port publishing ``container_port``, from a container list row (None: not listed)."""
    for entry in row.get("Ports") or []:
        if entry.get("PrivatePort") == container_port and entry.get("PublicPort"):
            try:
                return int(entry["PublicPort"])
            except (TypeError, ValueError):
                continue
    return None


def _host_port(container: Any, container_port: int | None) -> int | None:
    bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for key, values in bindings.items():
        if container_port is not None and key.split("/")[0] != str(container_port):
            continue
        for b in values or []:
            try:
                return int(b.get("HostPort"))
            except (TypeError, ValueError):
                continue
    return None



__all__ = [
    "LABEL_CREATED", "LABEL_ENVIRONMENT", "LABEL_IMAGE", "LABEL_MANAGED", "LABEL_ROLE", "LABEL_SECRETS", "LABEL_SERVICE",
    "LABEL_VERSION", "ROLE_HISTORY", "ROLE_LOCK", "ROLE_MIGRATION", "ROLE_NETWORK", "ROLE_PROXY", "ROLE_SERVICE",
    "ServiceContainers", "ServiceRuntime",
]
