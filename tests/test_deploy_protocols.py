"""The deploy seam: BlueGreen knows its backends by Protocols only, and every backend implements its Protocol.

A blue-green deploy, a rollback and a prune run here on in-memory backends (no engine, no nginx):
what BlueGreen needs from a runtime, a switch and a state store is all in the Protocols.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.bluegreen import BlueGreen
from nexusify.deploy.config.load import load_deploy_config
from nexusify.deploy.config.placement import Placement
from nexusify.deploy.migrations.container import ContainerMigrations
from nexusify.deploy.migrations.local import LocalMigrations
from nexusify.deploy.protocols import (
    ImageTransport,
    MigrationRunner,
    Runtime,
    ServiceRuntime,
    StateBackend,
    TrafficSwitch,
)
from nexusify.deploy.runtime.containers import ServiceContainers
from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.runtime.hosts import HostSpec
from nexusify.deploy.runtime.sdk import NotFound
from nexusify.deploy.runtime.transport import EngineTransport
from nexusify.deploy.state.backend import Held, HostState, WorkingCopyState
from nexusify.deploy.state.history import DeploymentRecord
from nexusify.deploy.state.lock import LockHolder
from nexusify.deploy.state.store import Slot
from nexusify.deploy.traffic.proxy_container import ContainerProxy
from nexusify.deploy.traffic.switch import NginxProxy, Route, Target
from nexusify.errors import DeployError, LockHeld
from tests.conftest import REPO
from tests.test_deploy_config import _project

BASE = """\
[deploy.services.api]
folder = "services/api"
container-port = 8000
public-port = 8080

[deploy.environments.prod]
"""

RT = ServiceRuntime(environment="prod", service="api", container_port=8000, keep=1, drain_timeout=0.1)


class MemoryRuntime:
    """Versions of one service as records in a dict; health as a set of versions that fail."""

    def __init__(self) -> None:
        self.slots_by_name: dict[str, Slot] = {}
        self.up: set[str] = set()
        self.unhealthy: set[str] = set()
        self.n = 0
        self.prunes = 0

    def new_slot(self, image: str, image_id: str, version: str, secret_tag: str) -> Slot:
        self.n += 1
        return Slot(container=f"api-{version}-{self.n}", version=version, image=image, image_id=image_id,
                    port=9000 + self.n, created=float(self.n), secret_versions=secret_tag)

    def run(self, slot: Slot, env: Mapping[str, str]) -> None:
        self.slots_by_name[slot.container] = slot
        self.up.add(slot.container)

    def start(self, slot: Slot) -> None:
        if slot.container not in self.slots_by_name:
            raise DeployError(f"{slot.container} is gone")
        self.up.add(slot.container)

    def wait_healthy(self, slot: Slot) -> float:
        if slot.version in self.unhealthy:
            raise DeployError(f"{slot.version} not healthy")
        return 0.01

    def check(self, slot: Slot) -> tuple[bool, str]:
        return slot.version not in self.unhealthy, "checked"

    def exists(self, name: str) -> bool:
        return name in self.slots_by_name

    def running(self, name: str) -> bool:
        return name in self.up

    def stop(self, name: str) -> None:
        self.up.discard(name)

    def remove(self, name: str) -> None:
        self.up.discard(name)
        self.slots_by_name.pop(name, None)

    def slots(self) -> list[Slot]:
        return sorted(self.slots_by_name.values(), key=lambda s: s.created, reverse=True)

    def slot_named(self, name: str) -> Slot | None:
        return self.slots_by_name.get(name)

    def target(self, slot: Slot) -> Target:
        return slot.target("10.0.0.9")

    def prune(self, keep: int, live: str | None) -> list[str]:
        self.prunes += 1
        others = [s.container for s in self.slots() if s.container != live]
        for name in others[keep:]:
            self.remove(name)
        return others[keep:]


class MemorySwitch:
    def __init__(self) -> None:
        self.serving: Target | None = None
        self.moves: list[str] = []
        self.ensured = 0

    def current(self) -> Target | None:
        return self.serving

    def point_to(self, target: Target) -> None:
        self.serving = target
        self.moves.append(target.version)

    def drain(self, timeout: float) -> bool:
        return True

    def ensure_serving(self) -> None:
        self.ensured += 1


class MemoryState:
    """Every site's records, the lock and the history of one environment, in dicts and lists."""

    def __init__(self, site: str = "", shared: MemoryState | None = None) -> None:
        self.site = site
        self.entries: dict[str, dict[str, Any]] = {}
        self.shared = shared or self
        self.history: list[DeploymentRecord] = []
        self.held: list[str] = []  # the actions holding the lock now
        self.holds = 0

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.entries.get(name, {}))

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        self.entries[name] = dict(entry)

    def at(self, site: str) -> MemoryState:
        return MemoryState(site, self.shared)

    @contextlib.contextmanager
    def hold(self, *, wait: float, action: str, on_wait: Any = None) -> Iterator[LockHolder | None]:
        if self.shared.held:
            raise LockHeld(f"held for {self.shared.held[0]}")
        self.shared.held.append(action)
        self.shared.holds += 1
        try:
            yield None
        finally:
            self.shared.held.clear()

    def append(self, record: DeploymentRecord, secrets: Any = None) -> tuple[DeploymentRecord, list[str]]:
        rec = replace(record, id=record.id or f"r{len(self.shared.history)}")
        self.shared.history.append(rec)
        return rec, []

    def records(self) -> tuple[list[DeploymentRecord], list[str]]:
        return list(self.shared.history), []


def test_bluegreen_deploys_rolls_back_and_prunes_on_protocols_alone() -> None:
    box, switch, state = MemoryRuntime(), MemorySwitch(), MemoryState()
    assert isinstance(box, Runtime) and isinstance(switch, TrafficSwitch) and isinstance(state, StateBackend)
    # one lock for every site of the environment
    with state.hold(wait=0, action="deploy"), pytest.raises(LockHeld), state.at("web2").hold(wait=0, action="deploy"):
        pass
    bg = BlueGreen(box, switch, RT, state)
    first = bg.deploy("api:v1", "sha256:1", "v1", {})
    assert first.version == "v1"
    second = bg.deploy("api:v2", "sha256:2", "v2", {})
    assert second.previous_version == "v1" and switch.moves == ["v1", "v2"]
    assert [s.version for s in bg.kept()] == ["v1"] and not box.running(bg.kept()[0].container)
    box.unhealthy.add("v3")
    with pytest.raises(DeployError, match="v3 not healthy"):
        bg.deploy("api:v3", "sha256:3", "v3", {})
    assert switch.moves == ["v1", "v2"] and bg.live() is not None and bg.live().version == "v2"  # type: ignore[union-attr]
    prunes = box.prunes
    back = bg.rollback(None, None, None)
    assert back.version == "v1" and back.reused and switch.moves[-1] == "v1"
    assert box.prunes == prunes and back.pruned == []  # a kept container brought back: nothing new to prune
    third = bg.deploy("api:v4", "sha256:4", "v4", {})
    assert third.pruned == [first.container]  # keep = 1, newest first: v2 is kept, v1 (older) goes
    assert [s.version for s in bg.kept()] == ["v2"]


def test_bluegreen_imports_only_the_seam() -> None:
    """No SDK, engine, nginx or proxy module behind BlueGreen: the Protocols, its state records, errors."""
    tree = ast.parse((REPO / "src" / "nexusify" / "deploy" / "bluegreen.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    nexusify = {m for m in imported if m.startswith("nexusify")}
    assert nexusify <= {"nexusify.deploy.protocols", "nexusify.deploy.state.store", "nexusify.errors"}, nexusify


def test_every_backend_implements_its_protocol(tmp_path: Path) -> None:
    engine = Engine(client=object(), url="unix:///nonexistent.sock")
    routes = {"api": Route("127.0.0.1:8080")}
    assert isinstance(ServiceContainers(engine, RT), Runtime)
    assert isinstance(WorkingCopyState(tmp_path, "prod"), StateBackend)
    placement = Placement("prod", (HostSpec("ssh://web1"),), has_hosts=True, proxy_container=True, primary_named=False)
    assert isinstance(HostState(tmp_path, placement, []).at("web1"), StateBackend)
    assert isinstance(NginxProxy(tmp_path / "nginx", routes).switch("api"), TrafficSwitch)
    assert isinstance(ContainerProxy(engine, "prod", routes, image="nginx").switch("api"), TrafficSwitch)
    assert isinstance(EngineTransport(engine, None), ImageTransport)
    assert isinstance(LocalMigrations(), MigrationRunner)
    assert isinstance(ContainerMigrations(engine, "prod", redact=lambda s: s), MigrationRunner)


@pytest.mark.parametrize(("raised", "outcome"), [
    pytest.param(KeyboardInterrupt(), "aborted", id="ctrl-c"),
    pytest.param(NotFound("no such container: nx-prod-api-v1"), "failed", id="engine-error"),
])
def test_a_rollback_interrupted_or_failed_by_the_engine_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   raised: BaseException, outcome: str) -> None:
    """As a deploy does: the history says how the rollback ended, then the error goes on."""
    import contextlib

    from nexusify.config import resolve_settings
    from nexusify.deploy import pipeline
    from nexusify.deploy.state import history as hist

    root = _project(tmp_path, BASE)
    settings = resolve_settings(root, env={})
    config = load_deploy_config(settings, env={})

    @contextlib.contextmanager
    def no_sites(*_a: Any, **_k: Any) -> Any:
        yield []

    def fails(*_a: Any, **_k: Any) -> None:
        raise raised

    monkeypatch.setattr(pipeline, "open_sites", no_sites)
    monkeypatch.setattr(pipeline, "rollback_all", fails)
    engine = Engine(client=object(), url="unix:///nonexistent.sock")
    with pytest.raises((type(raised), pipeline.DeployFailed)):
        pipeline.run_rollback(config, settings, "prod", env={}, engine=engine)
    last = hist.read_history(settings.state_path, "prod")[-1]
    assert (last.action, last.outcome) == ("rollback", outcome)
    assert outcome == "aborted" or "no such container" in (last.error or "")


def test_a_rollback_holds_and_records_through_the_state_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline knows the environment's state by the Protocol alone: the lock it holds, the
    record it writes and the store each site gets all come from the backend it is given."""
    from nexusify.config import resolve_settings
    from nexusify.deploy import pipeline

    root = _project(tmp_path, BASE)
    settings = resolve_settings(root, env={})
    config = load_deploy_config(settings, env={})
    state = MemoryState()
    seen: list[Any] = []

    @contextlib.contextmanager
    def held(placement: Any, *_a: Any, action: str, **_k: Any) -> Any:
        with state.hold(wait=0, action=action):
            yield Held(placement, state)

    @contextlib.contextmanager
    def sites(*args: Any, **_k: Any) -> Any:
        seen.append(args[6])  # open_sites(placement, settings, env_cfg, env, engine, sink, state, ...)
        yield []

    monkeypatch.setattr(pipeline, "held_environment", held)
    monkeypatch.setattr(pipeline, "open_sites", sites)
    def nothing_kept(*_a: Any, **_k: Any) -> None:
        raise DeployError("api: no kept version to roll back to")

    monkeypatch.setattr(pipeline, "rollback_all", nothing_kept)
    engine = Engine(client=object(), url="unix:///nonexistent.sock")
    with pytest.raises(pipeline.DeployFailed, match="no kept version"):  # recorded, then raised
        pipeline.run_rollback(config, settings, "prod", env={}, engine=engine)
    assert seen == [state] and state.holds == 1 and not state.held
    [rec] = state.records()[0]
    assert (rec.action, rec.environment, rec.outcome) == ("rollback", "prod", "failed")
    assert not (settings.state_path / "deploy" / "prod" / "history.jsonl").exists()  # the working copy untouched
