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

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nexusify.deploy.protocols import Runtime, ServiceRuntime, StateBackend, TrafficSwitch
from nexusify.deploy.state.store import Slot
from nexusify.errors import DeployError

Event = Callable[[str], None]


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



@dataclass
class Prepared:
    """A green container started and healthy, not yet serving (see :meth:`BlueGreen.prepare`)."""

    green: Slot
    blue: Slot | None
    transition: dict[str, Any]
    health: float
    t0: float
    action: str = "deploy"  # "rollback": a kept version brought back
    reused: bool = False  # a kept container restarted (not a new one)



class BlueGreen:
    """Blue-green deploys and rollbacks of one service in one environment, on one site.

    It knows its backends by their Protocols only (:mod:`nexusify.deploy.protocols`): where the
    versions run (``box``: a :class:`Runtime`), where traffic goes (``switch``) and what is recorded
    (``store``); ``runtime`` is the service's settings (health path, timeouts, keep)."""

    def __init__(self, box: Runtime, switch: TrafficSwitch, runtime: ServiceRuntime, store: StateBackend, *,
                 on_event: Event | None = None) -> None:
        self.box = box
        self.switch = switch
        self.rt = runtime
        self.store = store
        self._event = on_event or (lambda _m: None)
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

    def kept(self) -> list[Slot]:
        """Rollback targets: managed containers of this service other than the live one, newest first."""
        live = self.live()
        return [s for s in self.box.slots() if not (live and s.container == live.container)]

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
            healthy = self.box.running(green.container) and self.box.check(green)[0]
            if healthy:
                self._ensure_serving()
                self._save(green, {**transition, "phase": "drain"})
                self.switch.drain(self.rt.drain_timeout)
                if blue is not None:
                    self.box.stop(blue.container)
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
        if current is not None and not self.box.exists(current.container):
            current = None  # removed by hand meanwhile: nothing to bring back, the deploy starts afresh
        if current is not None and not self.box.running(current.container):
            self._bring_back(current)
        self._save(current, None)
        return f"undid the interrupted {action} to {green.version}" + (
            f"; {current.version} serves" if current else "")

    def _ensure_serving(self) -> None:
        self.switch.ensure_serving()

    def _discard(self, slot: Slot, action: str) -> None:
        if action == "rollback":
            self.box.stop(slot.container)
        else:
            self.box.remove(slot.container)

    def _bring_back(self, slot: Slot) -> None:
        if not self.box.running(slot.container):
            self.box.start(slot)  # DeployError when it is gone
        self.box.wait_healthy(slot)
        if (cur := self.switch.current()) is None or cur.name != slot.container:
            self.switch.point_to(self.box.target(slot))
            self.switch.drain(self.rt.drain_timeout)

    # ------------------------------------------------------------------ deploy / rollback

    def _current_blue(self) -> Slot | None:
        live = self.live()
        if live is not None and self.box.exists(live.container):
            return live
        serving = self.switch.current()
        if serving is not None and serving.name:
            return self.box.slot_named(serving.name)
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
        green = self.box.new_slot(image, image_id, version, secret_tag)
        transition = {"action": "deploy", "phase": "start", "green": green.to_dict(),
                      "blue": blue.to_dict() if blue else None, "started": time.time()}
        self._save(blue, transition)
        self._event(f"{self.rt.service}: starting {version} as {green.container} on port {green.port}")
        try:
            self.box.run(green, env)
            health = self.box.wait_healthy(green)
        except (DeployError, KeyboardInterrupt):  # unhealthy, or Ctrl-C/SIGTERM while waiting: undo
            self.box.remove(green.container)
            self._save(blue, None)
            raise
        return Prepared(green, blue, transition, health, t0)

    def commit(self, prepared: Prepared) -> SwitchResult:
        """Switch traffic to a prepared green, drain, stop blue (kept for rollback), prune."""
        p = prepared
        return self._switch_over(p.t0, p.action, p.green, p.blue, p.transition, p.health, reused=p.reused)

    def abandon(self, prepared: Prepared) -> None:
        """Remove a prepared green that will not be switched to; blue keeps serving."""
        self._event(f"{self.rt.service}: {'stopping' if prepared.reused else 'removing'} {prepared.green.version} "
                    f"({prepared.green.container}); not switched")
        self._discard(prepared.green, "rollback" if prepared.reused else "deploy")
        self._save(prepared.blue, None)

    def rollback(self, to_version: str | None, env: Mapping[str, str] | None, secret_tag: str | None) -> SwitchResult:
        """Bring back a kept version: restart its container (or recreate it from its image), switch.

        ``env``/``secret_tag``: the current secrets; when the kept container was created with
        other secret versions, it is recreated from its image with the current ones (no build).
        """
        return self.commit(self.prepare_rollback(to_version, env, secret_tag))

    def prepare_rollback(self, to_version: str | None, env: Mapping[str, str] | None,
                         secret_tag: str | None) -> Prepared:
        """The first half of :meth:`rollback`: the kept version started and healthy, traffic unmoved."""
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
            fresh = self.box.new_slot(target.image, target.image_id, target.version, secret_tag or "")
            green = fresh
        transition = {"action": "rollback" if reuse else "deploy", "phase": "start", "green": green.to_dict(),
                      "blue": blue.to_dict() if blue else None, "started": time.time()}
        self._save(blue, transition)
        self._event(f"{self.rt.service}: {'restarting' if reuse else 'recreating'} {green.version} ({green.container})")
        try:
            if reuse:
                self.box.start(green)
            else:
                self.box.run(green, env or {})
            health = self.box.wait_healthy(green)
        except (DeployError, KeyboardInterrupt):
            self._discard(green, "rollback" if reuse else "deploy")
            self._save(blue, None)
            raise
        return Prepared(green, blue, transition, health, t0, action="rollback", reused=reuse)

    def _switch_over(self, t0: float, action: str, green: Slot, blue: Slot | None, transition: dict[str, Any],
                     health: float, *, reused: bool) -> SwitchResult:
        self._save(blue, {**transition, "phase": "switch"})
        ts = time.monotonic()
        try:
            self.switch.point_to(self.box.target(green))
        except DeployError:
            self._discard(green, "rollback" if reused else "deploy")
            if blue is not None and (cur := self.switch.current()) is not None and cur.name != blue.container:
                self.switch.point_to(self.box.target(blue))
            self._save(blue, None)
            raise
        self._save(green, {**transition, "phase": "drain"})
        drained = self.switch.drain(self.rt.drain_timeout)
        switch_seconds = time.monotonic() - ts
        if blue is not None and blue.container != green.container:
            self._event(f"{self.rt.service}: stopping {blue.version} ({blue.container}); kept for rollback")
            self.box.stop(blue.container)
        self._save(green, None)
        pruned = [] if reused else self.prune()  # a kept container brought back adds nothing to prune
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
        return self.box.prune(self.rt.keep, live.container if live else None)



__all__ = ["BlueGreen", "Prepared", "SwitchResult"]
