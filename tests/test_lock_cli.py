"""The lock and teardown from the command line, with the real engine and no build: a lock a
killed deploy left on the host is reported with how to release it, `deploy unlock` releases it,
and `deploy down` asks on a terminal (and only there)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.runtime.engine import connect
from nexusify.deploy.runtime.objects import create_marker_container, lock_name, object_labels
from nexusify.deploy.state.hostlock import holder_labels
from nexusify.deploy.state.lock import LockHolder
from tests.conftest import REPO, CliResult
from tests.deploy_fixtures import DeployProject, make_project

pytestmark = [pytest.mark.engine, pytest.mark.stack]

Run = Callable[..., CliResult]
NGINX_IMAGE = os.environ.get("NEXUSIFY_TEST_NGINX_IMAGE", "localhost/nginx:stack")


@pytest.fixture
def project(tmp_path: Path, docker_client: Any) -> Iterator[DeployProject]:
    p = make_project(tmp_path)
    yield p
    p.cleanup(docker_client)


def _cli(run_cli: Run, p: DeployProject, *argv: str) -> CliResult:
    return run_cli(*argv, "--root", str(p.root), "--environment", p.environment, env=p.env)


def test_a_left_lock_is_reported_with_how_to_release_it(project: DeployProject, run_cli: Run) -> None:
    p = project
    with (p.root / "nexusify.toml").open("a") as fh:  # the proxy as a container: state lives on the engine
        fh.write(f'\n[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{NGINX_IMAGE}"\n')
    engine = connect(None, p.env)
    try:
        gone = LockHolder(who="carol@laptop", pid=4242, host="laptop", since="2026-11-30T10:00:00Z")
        create_marker_container(engine, lock_name(p.environment),
                                object_labels(p.environment, "lock", holder_labels(gone)))
    finally:
        engine.close()
    plan = _cli(run_cli, p, "deploy", "--tag", "v1", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert f"volume nexusify-{p.environment}-history" in plan.stdout and lock_name(p.environment) in plan.stdout
    refused = _cli(run_cli, p, "deploy", "--tag", "v1", "--build-arg", "BUILT_VERSION=v1")
    assert refused.exit_code == 1, refused.output
    assert "being deployed by carol@laptop (pid 4242 on laptop, deploy) since 2026-11-30T10:00:00Z" in refused.output
    assert f"nexusify deploy unlock --environment {p.environment}" in refused.output
    assert "[build]" not in refused.output  # refused before anything was built
    rollback = _cli(run_cli, p, "rollback")  # rollback takes the same lock
    assert rollback.exit_code == 1 and "carol@laptop" in rollback.output

    released = _cli(run_cli, p, "deploy", "unlock")
    assert released.exit_code == 0, released.output
    assert "released the deploy lock" in released.stdout and "carol@laptop" in released.stdout
    again = _cli(run_cli, p, "deploy", "unlock")
    assert again.exit_code == 0 and "is not locked" in again.stdout
    status = _cli(run_cli, p, "status")
    assert status.exit_code == 0 and "nothing is deployed" in status.output
    down = _cli(run_cli, p, "deploy", "down", "--yes")
    assert down.exit_code == 0 and "nothing of" in down.stdout
    misuse = _cli(run_cli, p, "deploy", "down", "app", "--yes")
    assert misuse.exit_code == 2 and "takes no service names" in misuse.output


def _on_a_terminal(p: DeployProject, answer: str) -> tuple[int, str]:
    """`nexusify deploy down` with a pseudo-terminal as stdin/stdout/stderr, answering ``answer``."""
    master, slave = pty.openpty()
    env = {**p.env, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "nexusify", "deploy", "down", "--root", str(p.root),
                             "--environment", p.environment], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(30)
    os.close(master)
    return code, seen.decode("utf-8", "replace")


def test_down_asks_on_a_terminal(project: DeployProject, docker_client: Any) -> None:
    p = project
    engine = connect(None, p.env)
    try:  # something of the environment on the engine: a (never started) service container
        create_marker_container(engine, f"nx-{p.environment}-app-v1", object_labels(p.environment, "service"))
    finally:
        engine.close()
    code, out = _on_a_terminal(p, "n")
    assert code == 1 and f"container nx-{p.environment}-app-v1" in out and "nothing was removed" in out, out
    assert docker_client.api.containers(all=True, filters={"name": f"nx-{p.environment}-app-v1"})
    code, out = _on_a_terminal(p, "y")
    assert code == 0 and "removed from" in out, out
    assert not docker_client.api.containers(all=True, filters={"name": f"nx-{p.environment}-app-v1"})


def test_ctrl_c_releases_the_lock_on_the_host(project: DeployProject, docker_client: Any) -> None:
    p = project
    with (p.root / "nexusify.toml").open("a") as fh:
        fh.write(f'\n[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{NGINX_IMAGE}"\n')
    env = {**p.env, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "nexusify", "deploy", "--root", str(p.root), "--environment",
                             p.environment, "--tag", "v1", "--build-arg", "BUILT_VERSION=v1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if docker_client.api.containers(all=True, filters={"name": lock_name(p.environment)}):
                break
            time.sleep(0.02)
        assert docker_client.api.containers(all=True, filters={"name": lock_name(p.environment)}), "lock taken"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out  # interrupted: never a success
    assert not docker_client.api.containers(all=True, filters={"name": lock_name(p.environment)}), out
