"""State on the hosts, with the real engine: the lock container and the history volume.

The stack's Podman plays the (first) host; a second process plays the other machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from nexusify.credentials import Secret
from nexusify.deploy.runtime.engine import LABEL_ENVIRONMENT, Engine, connect
from nexusify.deploy.runtime.objects import (
    create_marker_container,
    history_volume,
    lock_name,
    object_labels,
)
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state.history import DeploymentRecord, ServiceRecord, new_record_id
from nexusify.deploy.state.hosthistory import append_on_hosts, merge_records, read_on_hosts
from nexusify.deploy.state.hostlock import HostLock, holder_labels, read_lock, unlock
from nexusify.deploy.state.lock import LockHolder
from nexusify.errors import LockHeld
from tests.conftest import REPO


def remove_environment(client: Any, environment: str) -> None:
    """Every container and volume labelled with ``environment`` (what a test left)."""
    flt = {"label": f"{LABEL_ENVIRONMENT}={environment}"}
    for c in client.api.containers(all=True, filters=flt):
        with contextlib.suppress(Exception):
            client.api.remove_container(c["Id"], force=True)
    for v in (client.api.volumes(filters=flt) or {}).get("Volumes") or []:
        with contextlib.suppress(Exception):
            client.api.remove_volume(v["Name"], force=True)


@pytest.fixture
def host(docker_client: Any) -> Iterator[tuple[str, Engine, str]]:
    """(display name, engine, a fresh environment name); everything labelled with it is removed after."""
    environment = "t" + secrets.token_hex(4)
    engine = connect(None, os.environ)
    try:
        yield "host-1", engine, environment
    finally:
        remove_environment(docker_client, environment)
        engine.close()


_HOLD = textwrap.dedent("""\
    import os, sys, time
    from nexusify.deploy.runtime.engine import connect
    from nexusify.deploy.state.hostlock import HostLock
    lock = HostLock(connect(None, os.environ), sys.argv[1], "host-1", env={"NEXUSIFY_DEPLOYER": "bob@ci"})
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def _other_machine(environment: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, environment],
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_deployer_is_refused_naming_the_holder_then_takes_over_a_dead_one(host: tuple[str, Engine, str]) -> None:
    name, engine, environment = host
    proc = _other_machine(environment)
    try:
        found = read_lock(engine, environment)
        assert found is not None and (found[1].who, found[1].pid) == ("bob@ci", proc.pid)
        with pytest.raises(LockHeld) as info:
            HostLock(engine, environment, name).acquire()
        msg = str(info.value)
        assert f"bob@ci (pid {proc.pid}" in msg and f"since {found[1].since}" in msg and lock_name(environment) in msg
        assert f"nexusify deploy unlock --environment {environment}" in (info.value.hint or "")
        assert info.value.exit_code == 1
        # the lock is a created, never started container carrying the holder in its labels
        state = engine.client.api.inspect_container(lock_name(environment))["State"]
        assert state["Status"] in ("created", "configured") and not state["Running"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # killed: its lock stays on the host; a deploy from the same machine sees the pid is gone
    assert read_lock(engine, environment) is not None
    lock = HostLock(engine, environment, name, action="rollback")
    with lock as mine:
        assert lock.recovered is not None and lock.recovered.pid == proc.pid
        now = read_lock(engine, environment)
        assert now is not None and now[1] == mine and mine.action == "rollback"
    assert read_lock(engine, environment) is None  # released at the end


def test_a_lock_from_another_machine_is_released_by_unlock(host: tuple[str, Engine, str]) -> None:
    name, engine, environment = host
    elsewhere = LockHolder(who="carol@laptop", pid=4242, host="laptop", since="2026-11-30T10:00:00Z")
    create_marker_container(engine, lock_name(environment), object_labels(environment, "lock", holder_labels(elsewhere)))
    with pytest.raises(LockHeld, match=r"carol@laptop .*since 2026-11-30T10:00:00Z"):
        HostLock(engine, environment, name, wait=0.6).acquire()
    assert unlock(engine, environment) == elsewhere
    assert unlock(engine, environment) is None  # already free
    with HostLock(engine, environment, name), pytest.raises(LockHeld, match="still running on this machine"):
        unlock(engine, environment)  # our own live lock is not taken away


def _record(environment: str, version: str, started: str, error: str | None = None) -> DeploymentRecord:
    return DeploymentRecord(environment=environment, action="deploy", outcome="success" if not error else "failed",
                            started_at=started, finished_at=started, duration=1.0, who="alice@build1",
                            services=(ServiceRecord("app", version),), secret_versions={"env-file": "abc"},
                            error=error, id=new_record_id())


def test_history_records_live_on_the_host_one_file_each(host: tuple[str, Engine, str], docker_client: Any) -> None:
    name, engine, environment = host
    secret = "sk-" + secrets.token_hex(8)
    bundle = SecretBundle({"API_KEY": Secret(secret)}, {"env-file": "abc"})
    first = _record(environment, "v1", "2026-11-30T10:00:00Z")
    second = _record(environment, "v2", "2026-11-30T11:00:00Z", error=f"boom with {secret}")
    assert append_on_hosts([(name, engine)], second, bundle) == []
    assert append_on_hosts([(name, engine)], first) == []
    volume = docker_client.api.inspect_volume(history_volume(environment))
    assert volume["Labels"][LABEL_ENVIRONMENT] == environment
    [found] = read_on_hosts([(name, engine)], environment)
    assert found.error is None and {r.id for r in found.records} == {first.id, second.id}
    stored = next(r for r in found.records if r.id == second.id)
    assert stored.error is not None and secret not in stored.error and "<hidden>" in stored.error
    # no helper container is left behind
    assert [c["Names"] for c in docker_client.api.containers(all=True, filters={
        "label": f"{LABEL_ENVIRONMENT}={environment}"})] == []
    # merged with local records by id, oldest first
    local = [replace(second, error="local copy"), _record(environment, "v0", "2026-11-30T09:00:00Z")]
    merged = merge_records(local, found.records)
    assert [r.services[0].version for r in merged] == ["v0", "v1", "v2"] and merged[2].error == "local copy"


def test_history_of_a_host_without_records_is_empty(host: tuple[str, Engine, str]) -> None:
    name, engine, environment = host
    [found] = read_on_hosts([(name, engine)], environment)
    assert found.records == () and found.error is None
