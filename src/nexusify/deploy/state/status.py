"""What runs where: per host, per service, the live and kept versions and the live one's health.

Read from the hosts themselves (the labels of the containers nexusify made there), never from
the working copy, so every clone sees the same answer. A service container that is running is
live; a stopped one is kept for rollback. Hosts that disagree (one serves another version, or
nothing) are a problem the next deploy or rollback repairs, as is a live container that fails
its health probe; both make ``nexusify status`` exit 1.

With a proxy container (``proxy.kind = "container"``) the live version is the container its
upstream names, and the health probe runs from inside the proxy, as a deploy's does; with the
private nginx, the container its upstream file names (``switched_to``). Either way the record of
the switch decides: a container that is running but was never switched to (a deploy killed
while waiting for its health) is "running, not serving", never live. Without such a record
every running container is live, probed over its published port when the engine is on this
machine, else inside the container through the engine's exec (``wget``, ``curl`` or
``python3``, whichever the image has): a remote host's ports are not reachable from here.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from nexusify.deploy.runtime.containers import ServiceContainers, ServiceRuntime
from nexusify.deploy.runtime.engine import LABEL_ROLE, LABEL_VERSION, ROLE_SERVICE, Engine
from nexusify.deploy.runtime.sdk import EngineError
from nexusify.deploy.state.hostlock import read_lock
from nexusify.deploy.state.hostset import Host
from nexusify.deploy.traffic.proxy_container import ContainerProxy
from nexusify.errors import DeployError

PROBE_TIMEOUT = 3
MEANT_TO_SERVE = ("running", "paused", "restarting")  # a live container, whatever its health
NO_PROBE_TOOL = 127


@dataclass(frozen=True)
class ServiceOnHost:
    host: str
    service: str
    live: tuple[str, ...] = ()  # versions of the running containers (one, except mid-deploy)
    kept: tuple[str, ...] = ()  # versions of the stopped ones, newest first
    health: str = ""  # "healthy (HTTP 200)", "UNHEALTHY: ...", "not probed: ...", "" when nothing is live
    healthy: bool | None = None  # None: nothing live, or could not be probed
    containers: tuple[str, ...] = ()  # the live containers' names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EnvironmentStatus:
    environment: str
    hosts: list[str]
    services: list[ServiceOnHost] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # "host: why"
    lock: str | None = None  # who holds the deploy lock, when someone does

    @property
    def deployed(self) -> bool:
        return any(s.live or s.kept for s in self.services)

    @property
    def unhealthy(self) -> list[ServiceOnHost]:
        return [s for s in self.services if s.healthy is False]

    @property
    def problems(self) -> list[str]:
        out = list(self.disagreements)
        out += [f"{s.service} on {s.host}: {s.health}" for s in self.unhealthy]
        out += [f"host {u}" for u in self.unreachable]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "hosts": self.hosts, "deployed": self.deployed,
                "services": [s.to_dict() for s in self.services], "disagreements": self.disagreements,
                "unreachable": self.unreachable, "lock": self.lock, "problems": self.problems}


def _probe_command(port: int, path: str) -> list[str]:
    url = f"http://127.0.0.1:{port}{path}"
    py = f"import urllib.request; urllib.request.urlopen({url!r}, timeout={PROBE_TIMEOUT})"
    script = (f"if command -v wget >/dev/null 2>&1; then wget -q -T {PROBE_TIMEOUT} -O /dev/null {shlex.quote(url)}; "
              f"elif command -v curl >/dev/null 2>&1; then curl -fsS -m {PROBE_TIMEOUT} -o /dev/null {shlex.quote(url)}; "
              f"elif command -v python3 >/dev/null 2>&1; then python3 -c {shlex.quote(py)}; "
              f"else exit {NO_PROBE_TOOL}; fi")
    return ["sh", "-c", script]


def _exec_probe(box: ServiceContainers, container: Any) -> tuple[bool | None, str]:
    rt = box.rt
    try:
        code, output = container.exec_run(_probe_command(rt.container_port, rt.health_path))
    except EngineError as exc:
        return None, f"not probed: the engine could not exec in {container.name}: {exc.message}"
    if code == 0:
        return True, f"healthy: {rt.health_path} answered inside the container"
    if code in (NO_PROBE_TOOL, 126):
        return None, f"not probed: {container.name} has no sh with wget, curl or python3"
    text = output.decode("utf-8", "replace").strip() if isinstance(output, bytes) else str(output or "")
    return False, f"UNHEALTHY: {rt.health_path} failed inside the container (exit {code}){': ' + text[-200:] if text else ''}"


def probe(engine: Engine, box: ServiceContainers, container: Any, *, via_proxy: bool) -> tuple[bool | None, str]:
    """(healthy?, what was seen) for a running container; None when it could not be probed."""
    rt = box.rt
    slot = box.slot_of(container)
    if slot is not None and (via_proxy or (rt.network is None and engine.url.startswith("unix://"))):
        ok, seen = box.check(slot)
        return ok, f"{'healthy' if ok else 'UNHEALTHY'}: {rt.health_path} {seen}"
    return _exec_probe(box, container)


def _version(c: Any) -> str:
    return str((c.labels or {}).get(LABEL_VERSION, "?"))


def _state(c: Any) -> str:
    return str((c.attrs.get("State") or {}).get("Status", c.status))


def service_on_host(host: str, engine: Engine, runtime: ServiceRuntime,
                    proxy: ContainerProxy | None = None,
                    switched_to: Callable[[str], str | None] | None = None) -> ServiceOnHost:
    """The service on one host. The live version is the container the switch record names: the
    proxy container's upstream, or ``switched_to(service)`` (the private nginx's upstream file;
    None: never switched); without a record, every running container is live."""
    serving_name: str | None = None
    recorded = False  # a switch record was read: only the container it names serves
    proxy_up = False
    if proxy is not None:
        runtime = replace(runtime, network=proxy.network)
        pc = proxy.container()
        proxy_up = pc is not None and pc.status == "running"
        if proxy_up:
            target = proxy.targets().get(runtime.service)
            serving_name, recorded = (target.name if target is not None else None), True
    elif switched_to is not None:
        serving_name, recorded = switched_to(runtime.service), True
    box = ServiceContainers(engine, runtime, probe=proxy.probe if proxy is not None and proxy_up else None)
    live: list[Any] = []
    kept: list[str] = []
    for c in box.containers():  # newest first
        if (c.labels or {}).get(LABEL_ROLE, ROLE_SERVICE) != ROLE_SERVICE:
            continue
        running = _state(c) in MEANT_TO_SERVE
        if recorded and c.name != serving_name:
            kept.append(_version(c) + (" (running, not serving)" if running else ""))
        elif running:
            live.append(c)
        else:
            kept.append(_version(c))
    if not live:
        if not kept:
            return ServiceOnHost(host, runtime.service)
        why = (f"the proxy points at {serving_name}, which is not running" if serving_name
               else "no container of it took traffic yet" if recorded else "no container of it is running")
        return ServiceOnHost(host, runtime.service, kept=tuple(kept), healthy=False,
                             health=f"DOWN: {why} (a deploy or rollback repairs it)")
    row = ServiceOnHost(host, runtime.service, live=tuple(_version(c) for c in live), kept=tuple(kept),
                        containers=tuple(c.name for c in live))
    if proxy is not None and not proxy_up:
        return replace(row, healthy=False, health=f"UNHEALTHY: the proxy {proxy.name} is not running on this host")
    for c in live:
        if _state(c) != "running":
            return replace(row, healthy=False, health=f"UNHEALTHY: {c.name} is {_state(c)}")
    results = [probe(engine, box, c, via_proxy=proxy_up) for c in live]
    healthy: bool | None = True
    for ok, _ in results:
        if ok is False:
            healthy = False
            break
        if ok is None:
            healthy = None
    return replace(row, health="; ".join(seen for _, seen in results), healthy=healthy)


def disagreements(rows: Sequence[ServiceOnHost], hosts: Sequence[str]) -> list[str]:
    """One message per service whose hosts do not all serve the same version."""
    out: list[str] = []
    for service in dict.fromkeys(r.service for r in rows):
        serving = {r.host: "+".join(r.live) or "nothing" for r in rows if r.service == service}
        if len(hosts) < 2 or len(set(serving.values())) < 2:
            continue
        said = ", ".join(f"{h} serves {v}" for h, v in serving.items())
        out.append(f"{service}: the hosts disagree ({said}); the next deploy or rollback repairs it")
    return out


def environment_status(environment: str, hosts: Sequence[Host], runtimes: Sequence[ServiceRuntime], *,
                       proxy_for: Callable[[str, Engine], ContainerProxy] | None = None,
                       switched_to: Callable[[str], str | None] | None = None,
                       lock_on_primary: bool = False) -> EnvironmentStatus:
    """The environment as its hosts see it (``proxy_for(host, engine)``: its proxy container, in
    container mode; ``switched_to(service)``: the container the private nginx sends the service's
    traffic to; ``lock_on_primary``: the first of ``hosts`` holds the deploy lock); a host that
    does not answer is reported, not skipped."""
    report = EnvironmentStatus(environment=environment, hosts=[name for name, _ in hosts])
    answered: list[str] = []
    for name, engine in hosts:
        try:
            proxy = proxy_for(name, engine) if proxy_for is not None else None
            rows = [service_on_host(name, engine, rt, proxy, switched_to) for rt in runtimes]
        except DeployError as exc:  # the engine's typed errors included (nexusify.deploy.runtime.sdk)
            report.unreachable.append(f"{name}: {exc.message}")
            continue
        report.services.extend(rows)
        answered.append(name)
    if lock_on_primary and hosts and hosts[0][0] in answered:
        found = read_lock(hosts[0][1], environment)
        if found is not None:
            report.lock = found[1].describe()
    report.disagreements = disagreements(report.services, answered)
    return report


__all__ = ["EnvironmentStatus", "ServiceOnHost", "disagreements", "environment_status", "probe", "service_on_host"]
