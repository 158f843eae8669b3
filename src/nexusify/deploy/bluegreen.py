"""Blue-green switching of one service: start green beside blue, check it, move traffic, keep blue.

A deploy (or rollback) of one service walks these phases; before each, the environment's state
file (``<state>/deploy/<env>/state.json``) is rewritten atomically, so a deploy killed at any
point leaves a record the next deploy or rollback finishes or undoes (:meth:`BlueGreen.recover`):

1. ``start``  green is created (or a kept container restarted) on a free loopback port;
2. health     its health path must answer 2xx/3xx within the timeout, else green is removed,
              traffic never moved, and :class:`DeployError` is raised (exit 1);
3. ``switch`` the traffic switch points at green (nginx: upstream file, ``nginx -t``, reload);
4. ``drain``  green is live; requests still on blue finish (old nginx workers exit);
5.            blue is stopped but kept, with the last ``keep`` versions, for rollback; older
              containers are pruned (never the live one, never a kept one).

Recovery rule: the switch is the truth. If it names green and green answers its health check,
the move is completed; otherwise traffic goes (or stays) on blue and green is removed (or, for a
rollback target, stopped again).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import secrets as _random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexusify.deploy.engine import (
    LABEL_CREATED,
    LABEL_ENVIRONMENT,
    LABEL_IMAGE,
    LABEL_MANAGED,
    LABEL_SECRETS,
    LABEL_SERVICE,
    LABEL_VERSION,
    Engine,
)
from nexusify.deploy.switch import Target, TrafficSwitch
from nexusify.errors import DeployError
from nexusify.files import write_atomic

STATE_VERSION = 1
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

Event = Callable[[str], None]


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


@dataclass(frozen=True)
class Slot:
    """A container that serves, served, or is about to serve a version of a service."""

    container: str  # container name
    version: str
    image: str  # reference (tag) it was created from
    image_id: str
    port: int
    created: float = 0.0
    secret_versions: str = ""

    def target(self, host: str) -> Target:
        return Target(host=host, port=self.port, name=self.container, version=self.version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Slot | None:
        if not data:
            return None
        return cls(container=str(data["container"]), version=str(data["version"]), image=str(data.get("image", "")),
                   image_id=str(data.get("image_id", "")), port=int(data["port"]),
                   created=float(data.get("created", 0.0)), secret_versions=str(data.get("secret_versions", "")))


@dataclass
class SwitchResult:
    service: str
    action: str  # "deploy" | "rollback"
    version: str
    previous_version: str | None
    container: str
    port: int
    image: str
    image_id: str
    health_seconds: float = 0.0
    switch_seconds: float = 0.0  # from "point the proxy" until old requests drained
    total_seconds: float = 0.0
    drained: bool = True
    reused: bool = False  # rollback restarted a kept container (no new container)
    pruned: list[str] = field(default_factory=list)
    recovered: str | None = None  # what was done about a transition a killed deploy left behind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StateStore:
    """``<state_path>/deploy/<environment>/state.json``, rewritten atomically before each transition."""

    def __init__(self, state_path: Path, environment: str) -> None:
        self.path = Path(state_path) / "deploy" / environment / "state.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            return {"version": STATE_VERSION, "services": {}}
        return data

    def service(self, name: str) -> dict[str, Any]:
        entry = self.load()["services"].get(name)
        return dict(entry) if isinstance(entry, dict) else {"live": None, "transition": None}

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        data = self.load()
        data["services"][name] = dict(entry)
        data["version"] = STATE_VERSION
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not avoid or port not in avoid:
            return port
    raise DeployError("no free port found on the host")  # pragma: no cover


def check_health(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[bool, str]:
    """One GET of the health path on a fresh connection: (2xx/3xx?, short description)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", "User-Agent": "nexusify-health"})
        resp = conn.getresponse()
        resp.read()
        return 200 <= resp.status < 400, f"HTTP {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


@dataclass
class Prepared:
    """A green container started and healthy, not yet serving (see :meth:`BlueGreen.prepare`)."""

    green: Slot
    blue: Slot | None
    transition: dict[str, Any]
    health: float
    t0: float


class BlueGreen:
    """Blue-green deploys and rollbacks of one service in one environment."""

    def __init__(self, engine: Engine, switch: TrafficSwitch, runtime: ServiceRuntime, store: StateStore, *,
                 on_event: Event | None = None, redact: Callable[[str], str] | None = None) -> None:
        self.engine = engine
        self.client = engine.client
        self.switch = switch
        self.rt = runtime
        self.store = store
        self._event = on_event or (lambda _m: None)
        self._redact = redact or (lambda s: s)
        self.recovered: str | None = None

    # ------------------------------------------------------------------ state

    def _entry(self) -> dict[str, Any]:
        return self.store.service(self.rt.service)

    def _save(self, live: Slot | None, transition: dict[str, Any] | None) -> None:
        self.store.save_service(self.rt.service, {
            "live": live.to_dict() if live else None,
            "transition": transition,
        })
        self._checkpoint(transition["phase"] if transition else "done")

    def _checkpoint(self, phase: str) -> None:
        """Called after each state write; tests override it to simulate a kill at that point."""

    def live(self) -> Slot | None:
        return Slot.from_dict(self._entry().get("live"))

    # ------------------------------------------------------------------ containers

    def _labels_filter(self) -> dict[str, Any]:
        return {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_ENVIRONMENT}={self.rt.environment}",
                          f"{LABEL_SERVICE}={self.rt.service}"]}

    def _list(self, filters: dict[str, Any]) -> list[Any]:
        """Containers matching ``filters``, skipping any removed between the list and the inspect."""
        found = []
        for row in self.client.api.containers(all=True, filters=filters):
            try:
                found.append(self.client.containers.get(row["Id"]))
            except Exception as exc:  # NotFound, or Podman's 500 "no such container"
                if "no such container" in str(exc).lower() or "not found" in str(exc).lower():
                    continue
                raise
        return found

    def containers(self) -> list[Any]:
        """Every container nexusify made for this service and environment, newest first."""
        found = self._list(self._labels_filter())
        return sorted(found, key=lambda c: float((c.labels or {}).get(LABEL_CREATED, 0) or 0), reverse=True)

    def _get(self, name: str) -> Any | None:
        import docker.errors

        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:  # Podman: 500 "no such container" while it is removed
            if "no such container" in str(exc).lower():
                return None
            raise

    def _slot_of(self, container: Any) -> Slot | None:
        labels = container.labels or {}
        port = _host_port(container, self.rt.container_port)
        if port is None:
            return None
        image_id = str(container.attrs.get("Image", ""))
        image = labels.get(LABEL_IMAGE) or str(container.attrs.get("Config", {}).get("Image", "")) or image_id
        return Slot(container=container.name, version=labels.get(LABEL_VERSION, ""), image=image, image_id=image_id,
                    port=port, created=float(labels.get(LABEL_CREATED, 0) or 0),
                    secret_versions=labels.get(LABEL_SECRETS, ""))

    def kept(self) -> list[Slot]:
        """Rollback targets: managed containers of this service other than the live one, newest first."""
        live = self.live()
        slots = []
        for c in self.containers():
            if live and c.name == live.container:
                continue
            slot = self._slot_of(c)
            if slot:
                slots.append(slot)
        return slots

    def _used_ports(self) -> set[int]:
        ports = set()
        for c in self._list({"label": f"{LABEL_MANAGED}=true"}):
            p = _host_port(c, None)
            if p:
                ports.add(p)
        return ports

    def _create(self, image: str, image_id: str, version: str, secret_tag: str) -> Slot:
        created = time.time()
        name = _NAME_SAFE.sub("-", f"nx-{self.rt.environment}-{self.rt.service}-{version}-{_random.token_hex(3)}")
        port = free_port(self.rt.host, self._used_ports())
        slot = Slot(container=name, version=version, image=image, image_id=image_id, port=port, created=created,
                    secret_versions=secret_tag)
        return slot

    def _run(self, slot: Slot, env: Mapping[str, str]) -> None:
        import docker.errors

        labels = {
            LABEL_MANAGED: "true", LABEL_ENVIRONMENT: self.rt.environment, LABEL_SERVICE: self.rt.service,
            LABEL_VERSION: slot.version, LABEL_CREATED: f"{slot.created:.6f}", LABEL_SECRETS: slot.secret_versions,
            LABEL_IMAGE: slot.image,
        }
        full_env = {"APP_VERSION": slot.version, "NEXUSIFY_VERSION": slot.version,
                    "NEXUSIFY_ENVIRONMENT": self.rt.environment, "NEXUSIFY_SERVICE": self.rt.service}
        full_env.update(env)
        try:
            self.client.containers.run(
                slot.image_id or slot.image, name=slot.container, detach=True, environment=full_env, labels=labels,
                ports={f"{self.rt.container_port}/tcp": (self.rt.host, slot.port)},
                restart_policy={"Name": "unless-stopped"},
            )
        except docker.errors.APIError as exc:
            with contextlib.suppress(Exception):
                c = self._get(slot.container)
                if c is not None:
                    c.remove(force=True)
            raise DeployError(f"{self.rt.service}: could not start {slot.container}: {self._redact(str(exc))}",
                              hint="see the engine's log; traffic did not move") from None

    def _remove(self, name: str) -> None:
        c = self._get(name)
        if c is not None:
            with contextlib.suppress(Exception):
                c.remove(force=True)

    def _stop(self, name: str) -> None:
        c = self._get(name)
        if c is not None:
            with contextlib.suppress(Exception):
                c.stop(timeout=self.rt.stop_timeout)

    def _running(self, name: str) -> bool:
        c = self._get(name)
        if c is None:
            return False
        return str(c.attrs.get("State", {}).get("Status", c.status)) == "running"

    def _logs_tail(self, name: str, lines: int = 15) -> str:
        c = self._get(name)
        if c is None:
            return ""
        try:
            raw = c.logs(tail=lines)
        except Exception:
            return ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return self._redact(text.strip())

    def wait_healthy(self, slot: Slot) -> float:
        """Poll the health path until 2xx/3xx; DeployError on timeout or if the container exits."""
        start = time.monotonic()
        deadline = start + self.rt.health_timeout
        delay = 0.05
        last = "no answer yet"
        checks = 0
        while True:
            ok, last = check_health(self.rt.host, slot.port, self.rt.health_path,
                                    timeout=max(0.5, min(2.0, self.rt.health_timeout)))
            if ok:
                return time.monotonic() - start
            checks += 1
            if checks % 4 == 0 and not self._running(slot.container):
                logs = self._logs_tail(slot.container)
                raise DeployError(f"{self.rt.service} {slot.version}: the container exited before it was healthy"
                                  + (f"; its last lines:\n{logs}" if logs else ""),
                                  hint="fix the service; traffic did not move")
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"{self.rt.service} {slot.version}: {self.rt.health_path} on port {slot.port} was not healthy "
                    f"within {self.rt.health_timeout:g}s (last: {last})",
                    hint="traffic did not move; fix the service or raise `health-timeout`",
                )
            time.sleep(delay)
            delay = min(self.rt.health_interval, delay * 2)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> str | None:
        """Finish or undo a transition a killed deploy left behind; returns what was done."""
        entry = self._entry()
        transition = entry.get("transition")
        live = Slot.from_dict(entry.get("live"))
        if not transition:
            return None
        green = Slot.from_dict(transition.get("green"))
        blue = Slot.from_dict(transition.get("blue"))
        action = str(transition.get("action", "deploy"))
        serving = self.switch.current()
        assert green is not None
        if serving is not None and serving.name == green.container:
            healthy = self._running(green.container) and check_health(
                self.rt.host, green.port, self.rt.health_path)[0]
            if healthy:
                self._ensure_serving()
                self._save(green, {**transition, "phase": "drain"})
                self.switch.drain(self.rt.drain_timeout)
                if blue is not None:
                    self._stop(blue.container)
                self._save(green, None)
                return f"completed the interrupted {action} to {green.version}"
            if blue is None:
                self._discard(green, action)
                self._save(None, None)
                return f"removed the unhealthy {green.version}; nothing serves {self.rt.service}"
            self._bring_back(blue)
            self._discard(green, action)
            self._save(blue, None)
            return f"undid the interrupted {action} to {green.version}; {blue.version} serves again"
        # traffic never moved (or the switch file names blue): undo
        self._ensure_serving()
        self._discard(green, action)
        current = blue or live
        if current is not None and self._get(current.container) is None:
            current = None  # removed by hand meanwhile: nothing to bring back, the deploy starts afresh
        if current is not None and not self._running(current.container):
            self._bring_back(current)
        self._save(current, None)
        return f"undid the interrupted {action} to {green.version}" + (
            f"; {current.version} serves" if current else "")

    def _ensure_serving(self) -> None:
        ensure = getattr(self.switch, "ensure_serving", None)
        if callable(ensure):
            ensure()

    def _discard(self, slot: Slot, action: str) -> None:
        if action == "rollback":
            self._stop(slot.container)
        else:
            self._remove(slot.container)

    def _bring_back(self, slot: Slot) -> None:
        c = self._get(slot.container)
        if c is None:
            raise DeployError(f"{self.rt.service}: container {slot.container} ({slot.version}) is gone",
                              hint="deploy again")
        if not self._running(slot.container):
            c.start()
        self.wait_healthy(slot)
        if (cur := self.switch.current()) is None or cur.name != slot.container:
            self.switch.point_to(slot.target(self.rt.host))
            self.switch.drain(self.rt.drain_timeout)

    # ------------------------------------------------------------------ deploy / rollback

    def _current_blue(self) -> Slot | None:
        live = self.live()
        if live is not None and self._get(live.container) is not None:
            return live
        serving = self.switch.current()
        if serving is not None and serving.name:
            c = self._get(serving.name)
            if c is not None:
                return self._slot_of(c)
        return None

    def deploy(self, image: str, image_id: str, version: str, env: Mapping[str, str], secret_tag: str = "") -> SwitchResult:
        """Start ``image`` as green, health-check it, switch, drain, stop blue (kept), prune."""
        return self.commit(self.prepare(image, image_id, version, env, secret_tag))

    def prepare(self, image: str, image_id: str, version: str, env: Mapping[str, str],
                secret_tag: str = "") -> Prepared:
        """Start ``image`` as green and wait until it is healthy; traffic does not move yet.

        Follow with :meth:`commit` (switch) or :meth:`abandon` (remove green). A deploy killed
        in between is undone by the next one (the transition stays in its "start" phase).
        """
        t0 = time.monotonic()
        if (msg := self.recover()) is not None:
            self.recovered = msg
            self._event(f"{self.rt.service}: {msg}")
        blue = self._current_blue()
        green = self._create(image, image_id, version, secret_tag)
        transition = {"action": "deploy", "phase": "start", "green": green.to_dict(),
                      "blue": blue.to_dict() if blue else None, "started": time.time()}
        self._save(blue, transition)
        self._event(f"{self.rt.service}: starting {version} as {green.container} on port {green.port}")
        try:
            self._run(green, env)
            health = self.wait_healthy(green)
        except (DeployError, KeyboardInterrupt):  # unhealthy, or Ctrl-C/SIGTERM while waiting: undo
            self._remove(green.container)
            self._save(blue, None)
            raise
        return Prepared(green, blue, transition, health, t0)

    def commit(self, prepared: Prepared) -> SwitchResult:
        """Switch traffic to a prepared green, drain, stop blue (kept for rollback), prune."""
        p = prepared
        return self._switch_over(p.t0, "deploy", p.green, p.blue, p.transition, p.health, reused=False)

    def abandon(self, prepared: Prepared) -> None:
        """Remove a prepared green that will not be switched to; blue keeps serving."""
        self._event(f"{self.rt.service}: removing {prepared.green.version} ({prepared.green.container}); not switched")
        self._remove(prepared.green.container)
        self._save(prepared.blue, None)

    def rollback(self, to_version: str | None, env: Mapping[str, str] | None, secret_tag: str | None) -> SwitchResult:
        """Bring back a kept version: restart its container (or recreate it from its image), switch.

        ``env``/``secret_tag``: the current secrets; when the kept container was created with
        other secret versions, it is recreated from its image with the current ones (no build).
        """
        t0 = time.monotonic()
        if (msg := self.recover()) is not None:
            self.recovered = msg
            self._event(f"{self.rt.service}: {msg}")
        blue = self._current_blue()
        kept = self.kept()
        if to_version is None:
            candidates = [s for s in kept if blue is None or s.version != blue.version]
        else:
            candidates = [s for s in kept if s.version == to_version]
        if not candidates:
            have = ", ".join(dict.fromkeys(s.version for s in kept)) or "none"
            if to_version and blue is not None and blue.version == to_version:
                raise DeployError(f"{self.rt.service}: {to_version} is already live in {self.rt.environment}")
            raise DeployError(
                f"{self.rt.service}: no kept version {'to roll back to' if to_version is None else to_version!r} "
                f"in {self.rt.environment} (kept: {have})",
                hint="`nexusify history` lists what was deployed; deploy that version again to get it back",
            )
        target = candidates[0]
        reuse = env is None or secret_tag is None or secret_tag == target.secret_versions
        green = target
        if not reuse:
            fresh = self._create(target.image, target.image_id, target.version, secret_tag or "")
            green = fresh
        transition = {"action": "rollback" if reuse else "deploy", "phase": "start", "green": green.to_dict(),
                      "blue": blue.to_dict() if blue else None, "started": time.time()}
        self._save(blue, transition)
        self._event(f"{self.rt.service}: {'restarting' if reuse else 'recreating'} {green.version} ({green.container})")
        try:
            if reuse:
                c = self._get(green.container)
                assert c is not None
                try:
                    c.start()
                except Exception as exc:
                    raise DeployError(f"{self.rt.service}: could not start {green.container}: {self._redact(str(exc))}",
                                      hint="is its port taken? roll back with --to another version, or deploy it again") from None
            else:
                self._run(green, env or {})
            health = self.wait_healthy(green)
        except (DeployError, KeyboardInterrupt):
            self._discard(green, "rollback" if reuse else "deploy")
            self._save(blue, None)
            raise
        return self._switch_over(t0, "rollback", green, blue, transition, health, reused=reuse)

    def _switch_over(self, t0: float, action: str, green: Slot, blue: Slot | None, transition: dict[str, Any],
                     health: float, *, reused: bool) -> SwitchResult:
        self._save(blue, {**transition, "phase": "switch"})
        ts = time.monotonic()
        try:
            self.switch.point_to(green.target(self.rt.host))
        except DeployError:
            self._discard(green, "rollback" if reused else "deploy")
            if blue is not None and (cur := self.switch.current()) is not None and cur.name != blue.container:
                self.switch.point_to(blue.target(self.rt.host))
            self._save(blue, None)
            raise
        self._save(green, {**transition, "phase": "drain"})
        drained = self.switch.drain(self.rt.drain_timeout)
        switch_seconds = time.monotonic() - ts
        if blue is not None and blue.container != green.container:
            self._event(f"{self.rt.service}: stopping {blue.version} ({blue.container}); kept for rollback")
            self._stop(blue.container)
        self._save(green, None)
        pruned = self.prune()
        return SwitchResult(
            service=self.rt.service, action=action, version=green.version,
            previous_version=blue.version if blue else None, container=green.container, port=green.port,
            image=green.image, image_id=green.image_id, health_seconds=round(health, 3),
            switch_seconds=round(switch_seconds, 3), total_seconds=round(time.monotonic() - t0, 3),
            drained=drained, reused=reused, pruned=pruned, recovered=self.recovered,
        )

    def prune(self) -> list[str]:
        """Remove containers beyond the newest ``keep`` (never the live one), and their unused images."""
        live = self.live()
        others = [c for c in self.containers() if not (live and c.name == live.container)]
        removed: list[str] = []
        for c in others[self.rt.keep:]:
            image_id = str(c.attrs.get("Image", ""))
            with contextlib.suppress(Exception):
                c.remove(force=True)
                removed.append(c.name)
            if image_id and not self._list({"ancestor": image_id}):
                with contextlib.suppress(Exception):
                    self.client.images.remove(image_id)
        return removed


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


__all__ = ["BlueGreen", "Prepared", "ServiceRuntime", "Slot", "StateStore", "SwitchResult", "check_health", "free_port"]
