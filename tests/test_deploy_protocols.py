"""The deploy seam: BlueGreen knows its backends by Protocols only, and every backend implements its Protocol.

A blue-green deploy, a rollback and a prune run here on in-memory backends (no engine, no nginx):
what BlueGreen needs from a runtime, a switch and a state store is all in the Protocols.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.bluegreen import BlueGreen
from nexusify.deploy.config.load import load_deploy_config
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
from nexusify.deploy.runtime.sdk import NotFound
from nexusify.deploy.runtime.transport import EngineTransport
from nexusify.deploy.state.store import Slot, StateStore
from nexusify.deploy.traffic.proxy_container import ContainerProxy
from nexusify.deploy.traffic.switch import NginxProxy, Route, Target
from nexusify.errors import DeployError
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
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.entries.get(name, {}))

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        self.entries[name] = dict(entry)


def test_bluegreen_deploys_rolls_back_and_prunes_on_protocols_alone() -> None:
    box, switch, state = MemoryRuntime(), MemorySwitch(), MemoryState()
    assert isinstance(box, Runtime) and isinstance(switch, TrafficSwitch) and isinstance(state, StateBackend)
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
    assert isinstance(StateStore(tmp_path, "prod"), StateBackend)
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
