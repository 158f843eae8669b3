"""Deploys to two real hosts over SSH (tests/hosts_stack.py): sshd on 127.0.0.2 (the stack's Podman)
and 127.0.0.3 (a second, independent Podman). Each host runs its own proxy container publishing
the service's port on its own address; images are streamed to the second host (no registry).

The tests run in order on one environment: v1 on both hosts; v2 under load through both proxies
(0 failures); v3 unhealthy on host B only leaves both on v2; rollback under load on both, timed;
then no secret value in outputs, labels, proxy inspect output or image history on either host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.runtime.hosts import HostSpec, connect_host, network_name, proxy_name
from nexusify.errors import DeployError
from tests.conftest import CliResult, missing
from tests.deploy_fixtures import (
    REPO,
    DeployProject,
    Load,
    free_port,
    make_project,
    postgres_database,
    remove_environment,
    start_registry,
)
from tests.hosts_stack import TwoHosts, two_hosts  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.engine, pytest.mark.stack, pytest.mark.slow]

Run = Callable[..., CliResult]
NGINX_IMAGE = os.environ.get("NEXUSIFY_TEST_NGINX_IMAGE", "localhost/nginx:stack")
# The claim (both hosts in under 2 s) is measured by benchmarks/hosts.py, against docker-py's
# own ssh mode in the same run; a timed test would only measure the neighbours. This bound catches
# what a rollback must never do (rebuild, re-pull, wait out a timeout) and grows with the load.
ROLLBACK_SECONDS = 6.0


def rollback_bound() -> float:
    return ROLLBACK_SECONDS * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


@dataclass
class Fleet:
    p: DeployProject
    hosts: TwoHosts
    clients: list[Any]
    outputs: list[str]

    def served(self, address: str) -> dict[str, Any]:
        import http.client

        conn = http.client.HTTPConnection(address, self.p.public_port, timeout=5)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = json.loads(resp.read())
            assert resp.status == 200, body
            return dict(body)
        finally:
            conn.close()

    def built_everywhere(self) -> list[str]:
        return [self.served(h.address)["built"] for h in self.hosts.hosts]


def _cleanup(client: Any, environment: str) -> None:
    remove_environment(client, environment)


def _free_on_both(addresses: list[str]) -> int:
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket() as s2:
                s2.bind((addresses[1], port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on both addresses")


# What the deploying machine's DOCKER_HOST says when the build engine is host A over ssh: an address
# where nothing listens, so a step that fell back to a local engine would fail, not pass quietly.
NO_LOCAL_ENGINE = "unix:///nonexistent/nexusify-no-local-engine.sock"


@contextlib.contextmanager
def make_fleet(two_hosts: TwoHosts, base: Path, registry: str | None = None,  # noqa: F811
               ssh_engine: bool = True) -> Iterator[Fleet]:
    """A project whose environment has both hosts, each proxy publishing the app on its own address.
    ``ssh_engine``: the build engine is host A's, ``engine = "ssh://..."`` (no engine on this machine)."""
    import docker

    engine = f'engine = "{two_hosts.a.url}"\n' if ssh_engine else ""
    p = make_project(base, health_timeout=8, drain_timeout=5, registry=registry, extra_toml=engine)
    if ssh_engine:
        p.docker_host = NO_LOCAL_ENGINE
    port = _free_on_both([h.address for h in two_hosts.hosts])
    toml = (p.root / "nexusify.toml").read_text().replace(f"public-port = {p.public_port}", f"public-port = {port}")
    p.public_port = port
    hosts = ", ".join(f'{{url = "{h.url}", bind = "{h.address}"}}' for h in two_hosts.hosts)
    toml += (f"\n[deploy.environments.{p.environment}]\nhosts = [{hosts}]\n"
             f'[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{NGINX_IMAGE}"\n')
    (p.root / "nexusify.toml").write_text(toml)
    clients = [docker.DockerClient(base_url=h.docker_host, timeout=120) for h in two_hosts.hosts]
    try:
        yield Fleet(p, two_hosts, clients, [])
    finally:
        for c in clients:
            _cleanup(c, p.environment)
            c.close()


@pytest.fixture(scope="module")
def fleet(two_hosts: TwoHosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:  # noqa: F811
    with make_fleet(two_hosts, tmp_path_factory.mktemp("fleet")) as f:
        yield f


def deploy(run_cli: Run, f: Fleet, version: str, *extra: str) -> CliResult:
    r = run_cli("deploy", "--root", str(f.p.root), "--environment", f.p.environment, "--tag", version,
                "--build-arg", f"BUILT_VERSION={version}", *extra, env=f.p.env)
    f.outputs.append(r.output)
    return r


def rollback(run_cli: Run, f: Fleet, *extra: str) -> CliResult:
    r = run_cli("rollback", "--root", str(f.p.root), "--environment", f.p.environment, *extra, env=f.p.env)
    f.outputs.append(r.output)
    return r


def _load_both(f: Fleet) -> list[Load]:
    return [Load(f.p.public_port, host=h.address, threads=2, max_seconds=90).start() for h in f.hosts.hosts]


def _wait_answers(loads: list[Load], n: int = 10) -> None:
    deadline = time.monotonic() + 15
    while any(len(lo.answers) < n for lo in loads) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_v1_reaches_both_hosts_each_behind_its_own_proxy(fleet: Fleet, run_cli: Run) -> None:
    r = deploy(run_cli, fleet, "v1")
    assert r.exit_code == 0, r.output
    assert fleet.built_everywhere() == ["v1", "v1"]
    # `engine = "ssh://<host A>"`: the image is built on A, so only B gets it sent
    a, b = (h.url.removeprefix("ssh://") for h in fleet.hosts.hosts)
    assert f"host {b}: sending" in r.output and f"host {a}: sending" not in r.output, r.output
    for client in fleet.clients:
        proxy = client.containers.get(proxy_name(fleet.p.environment))
        assert proxy.labels["io.nexusify.role"] == "proxy"
        assert proxy.labels["io.nexusify.environment"] == fleet.p.environment
        net = client.networks.get(network_name(fleet.p.environment))
        assert net.attrs["Labels"]["io.nexusify.role"] == "network"
        services = client.containers.list(filters={"label": [f"io.nexusify.environment={fleet.p.environment}",
                                                             "io.nexusify.role=service"]})
        assert len(services) == 1
        bindings = services[0].attrs["HostConfig"].get("PortBindings") or {}
        assert not any(b for b in bindings.values()), f"services publish no ports: {bindings}"
    # the two hosts' engines are independent: B's service runs on B's own subnet
    b = fleet.clients[1].containers.list(filters={"label": "io.nexusify.role=service"})[0]
    ip = b.attrs["NetworkSettings"]["Networks"][network_name(fleet.p.environment)]["IPAddress"]
    assert ip.startswith(fleet.hosts.b_subnet_prefix), ip


def test_v2_under_load_through_both_proxies_fails_no_request(fleet: Fleet, run_cli: Run) -> None:
    loads = _load_both(fleet)
    _wait_answers(loads)
    r = deploy(run_cli, fleet, "v2")
    _wait_answers(loads, n=len(loads[0].answers) + 20)
    reports = [lo.stop() for lo in loads]
    assert r.exit_code == 0, r.output
    for rep in reports:
        assert rep.failures == [], rep.failures[:5]
        assert rep.versions[0] == "v1" and rep.versions[-1] == "v2"
    assert fleet.built_everywhere() == ["v2", "v2"]


def test_v3_unhealthy_on_one_host_leaves_both_on_v2(fleet: Fleet, run_cli: Run) -> None:
    r = deploy(run_cli, fleet, "v3", "--build-arg", f"UNHEALTHY_ON={fleet.hosts.b_subnet_prefix}")
    assert r.exit_code == 1, r.output
    assert "not healthy" in r.output
    assert fleet.built_everywhere() == ["v2", "v2"]
    for client in fleet.clients:  # no v3 container left running anywhere
        running = client.containers.list(filters={"label": [f"io.nexusify.environment={fleet.p.environment}",
                                                            "io.nexusify.version=v3"]})
        assert running == []


def test_rollback_under_load_on_both_hosts_is_fast(fleet: Fleet, run_cli: Run) -> None:
    loads = _load_both(fleet)
    _wait_answers(loads)
    t0 = time.monotonic()
    r = rollback(run_cli, fleet)
    took = time.monotonic() - t0
    _wait_answers(loads, n=len(loads[0].answers) + 20)
    reports = [lo.stop() for lo in loads]
    assert r.exit_code == 0, r.output
    assert fleet.built_everywhere() == ["v1", "v1"]
    for rep in reports:
        assert rep.failures == [], rep.failures[:5]
        assert rep.versions[-1] == "v1"
    bound = rollback_bound()
    print(f"rollback of 2 hosts under load: {took:.2f}s (bound {bound:.1f}s)")
    assert took < bound, f"rollback of both hosts took {took:.2f}s:\n{r.output}"


def test_a_switch_failing_on_one_host_switches_the_other_back(fleet: Fleet, run_cli: Run,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from nexusify.deploy.traffic.proxy_container import ContainerProxy

    before = fleet.built_everywhere()
    real = ContainerProxy.point_to

    def fails_on_b(self: ContainerProxy, service: str, target: Any) -> None:
        if self.host.startswith(f"root@{fleet.hosts.b.address}") and target.version == "v4":
            raise DeployError("the proxy rejected the switch (test)")
        real(self, service, target)

    monkeypatch.setattr(ContainerProxy, "point_to", fails_on_b)
    r = deploy(run_cli, fleet, "v4")
    assert r.exit_code == 1, r.output
    assert "switched back" in r.output
    assert fleet.built_everywhere() == before  # host A moved to v4 and came back


def test_no_secret_value_in_outputs_labels_proxy_or_image_history(fleet: Fleet) -> None:
    secret = fleet.p.secret_value
    assert fleet.outputs and all(secret not in out for out in fleet.outputs)
    for client in fleet.clients:
        for c in client.containers.list(all=True, filters={"label": f"io.nexusify.environment={fleet.p.environment}"}):
            assert secret not in json.dumps(c.labels)
            if c.labels.get("io.nexusify.role") == "proxy":
                assert secret not in json.dumps(c.attrs)
            else:  # the service containers get it at run time, as their environment
                assert secret not in json.dumps(c.image.history())
                assert secret not in json.dumps(c.image.attrs)
    state = Path(fleet.p.root / ".nexusify")
    for path in state.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_with_a_registry_every_host_pulls_the_pushed_image(two_hosts: TwoHosts, tmp_path: Path,  # noqa: F811
                                                          run_cli: Run) -> None:
    try:
        registry_cm = start_registry(tmp_path / "registry")
        registry = registry_cm.__enter__()
    except FileNotFoundError:
        missing("docker-registry", "not installed")
    try:
        with make_fleet(two_hosts, tmp_path / "reg", registry=registry, ssh_engine=False) as f:
            r = deploy(run_cli, f, "r1")
            assert r.exit_code == 0, r.output
            assert f"{registry}/app:r1 pulled" in r.output
            assert "sent from the build engine" not in r.output
            assert f.built_everywhere() == ["r1", "r1"]
            tags = [t for i in f.clients[1].images.list() for t in i.tags]
            assert f"{registry}/app:r1" in tags
    finally:
        registry_cm.__exit__(None, None, None)


MIGRATE_DOCKERFILE = """\
FROM python:3.11-slim-bookworm
COPY wheels /wheels
RUN pip install --no-index --find-links /wheels --break-system-packages alembic sqlalchemy psycopg2-binary
COPY app.py /srv/app.py
ARG BUILT_VERSION=dev
ENV BUILT_VERSION=$BUILT_VERSION PYTHONUNBUFFERED=1
CMD ["python3", "/srv/app.py"]
"""


def _migration_wheels() -> Path:
    """alembic, SQLAlchemy and psycopg2 wheels for the image (containers reach no index here)."""
    cache = Path.home() / ".cache" / "nexusify-stack" / "wheels-migrate"
    if not any(cache.glob("alembic-*.whl")):
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(cache), "--only-binary=:all:",
                               "alembic", "sqlalchemy", "psycopg2-binary"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            missing("wheels for the migration image", proc.stderr[-500:])
    return cache


def test_migrations_run_once_on_the_first_host_from_the_new_image(two_hosts: TwoHosts, tmp_path: Path,  # noqa: F811
                                                                   run_cli: Run) -> None:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, dbname="postgres", connect_timeout=3).close()
    except Exception as exc:
        missing("PostgreSQL", f"127.0.0.1:5432 does not answer ({exc})")
    wheels = _migration_wheels()
    with postgres_database() as db_url, make_fleet(two_hosts, tmp_path) as f:
        app = f.p.root / "app"
        shutil.copytree(wheels, app / "wheels")
        (app / "Dockerfile.migrate").write_text(MIGRATE_DOCKERFILE)
        secret = "pw-" + "m" * 14
        with (f.p.root / ".env.test").open("a") as fh:  # trust auth ignores the password: a secret to look for
            fh.write(f"DATABASE_URL={db_url.replace('root@', f'root:{secret}@')}\n")
        toml = (f.p.root / "nexusify.toml").read_text().replace(
            'env = ["API_KEY"]\n', 'env = ["API_KEY"]\ndockerfile = "Dockerfile.migrate"\n'
            f'migrations = "{REPO / "fixtures" / "deploy" / "alembic-app" / "alembic.ini"}"\n'
            'database-url = "secret:DATABASE_URL"\n', 1)
        (f.p.root / "nexusify.toml").write_text(toml)
        r = deploy(run_cli, f, "m1", "--json")
        assert r.exit_code == 0, r.output
        assert secret not in r.output
        data = json.loads(r.stdout)
        assert [m["applied"] for m in data["migrations"]] == [["0001", "0002"]], data["migrations"]
        # from the new image: after the build and the shipping, before any host switches
        assert list(data["stages"]) == ["secrets", "build", "ship", "migrate", "switch", "record"], data["stages"]
        conn = psycopg2.connect(db_url.replace("postgresql+psycopg2://", "postgresql://"))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version_num FROM alembic_version")
                assert cur.fetchall() == [("0002",)]
        finally:
            conn.close()
        for client in f.clients:  # the one-off container is gone; no migration container on any host
            assert client.containers.list(all=True, filters={"label": "io.nexusify.role=migration"}) == []
        assert f.built_everywhere() == ["m1", "m1"]
        # the runner in the container is the local one: a failing revision is named, its file in the working copy
        with postgres_database() as db2:
            with (f.p.root / ".env.test").open("a") as fh:
                fh.write(f"DATABASE_URL2={db2.replace('root@', f'root:{secret}@')}\n")
            failing = REPO / "fixtures" / "deploy" / "alembic-app-failing" / "alembic.ini"
            (f.p.root / "nexusify.toml").write_text(toml.replace('"secret:DATABASE_URL"', '"secret:DATABASE_URL2"').replace(
                str(REPO / "fixtures" / "deploy" / "alembic-app" / "alembic.ini"), str(failing)))
            bad = deploy(run_cli, f, "m2")
            assert bad.exit_code == 1, bad.output
            assert "migration 0002 (backfill prices (broken: the table name is wrong)) failed on " in bad.output
            assert "0002_broken.py" in bad.output and 'relation "no_such_table" does not exist' in bad.output
            assert secret not in bad.output
            assert f.built_everywhere() == ["m1", "m1"]  # nothing switched


def test_the_proxy_container_on_the_single_engine(tmp_path: Path, run_cli: Run, docker_client: Any) -> None:
    """Without `hosts`, `proxy.kind = "container"` runs the proxy on the one engine, on `listen`'s address."""
    p = make_project(tmp_path, health_timeout=8)
    with (p.root / "nexusify.toml").open("a") as fh:
        # no `listen`: the proxy publishes on its default address, 127.0.0.1 (as the local nginx listens)
        fh.write(f'\n[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{NGINX_IMAGE}"\n')
    try:
        for version in ("s1", "s2"):
            r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", version,
                        "--build-arg", f"BUILT_VERSION={version}", env=p.env)
            assert r.exit_code == 0, r.output
            assert p.served()["built"] == version
        proxy = docker_client.containers.get(proxy_name(p.environment))
        assert proxy.attrs["HostConfig"]["PortBindings"][f"{p.public_port}/tcp"][0]["HostIp"] == "127.0.0.1"
        assert (p.state / "state.json").is_file()  # one engine: the environment's own record
        # the proxy's ports are fixed at creation: a new public port is an error, not a silent no-op
        toml = p.root / "nexusify.toml"
        toml.write_text(toml.read_text().replace(f"public-port = {p.public_port}", f"public-port = {free_port()}"))
        r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "s3",
                    "--stages", "switch", env=p.env)
        assert r.exit_code == 1, r.output
        assert f"publishes port(s) [{p.public_port}]" in r.output
        assert p.served()["built"] == "s2"
    finally:
        _cleanup(docker_client, p.environment)


def test_connect_host_reuses_one_ssh_connection(two_hosts: TwoHosts) -> None:  # noqa: F811
    engine = connect_host(HostSpec(two_hosts.b.url), dict(os.environ))
    try:
        t0 = time.monotonic()
        for _ in range(20):
            engine.client.ping()
        assert time.monotonic() - t0 < 2.0  # docker-py's own ssh mode: ~0.35 s per call
        assert engine.is_podman
    finally:
        engine.close()
    assert not Path(engine.url.removeprefix("unix://")).exists(), "the tunnel's socket is removed on close"


def test_the_build_engine_over_ssh_rides_the_same_tunnel(two_hosts: TwoHosts) -> None:  # noqa: F811
    """`engine = "ssh://..."` goes through the system's ssh and the kept master, as hosts do: the SDK
    sees a local socket (never docker-py's paramiko mode), and a call costs a few ms, not ~0.35 s."""
    from nexusify.deploy.runtime.engine import connect

    env = {**os.environ, "DOCKER_HOST": NO_LOCAL_ENGINE}
    engine = connect(two_hosts.a.url, env)
    try:
        assert engine.url.startswith("unix://") and engine.is_podman
        t0 = time.monotonic()
        for _ in range(20):
            engine.client.ping()
        assert time.monotonic() - t0 < 2.0
    finally:
        engine.close()
    closed = _free_on_both(["127.0.0.2", "127.0.0.3"])
    with pytest.raises(DeployError, match=r"the container engine at ssh://.* ssh failed"):
        connect(f"ssh://root@127.0.0.2:{closed}", env)


def test_connect_host_unix_and_unreachable_ssh(docker_client: Any, tmp_path: Path) -> None:
    from tests.hosts_stack import STACK_SOCKET

    engine = connect_host(HostSpec(f"unix://{STACK_SOCKET}"), dict(os.environ))
    try:
        assert engine.client.ping() and engine.is_podman
    finally:
        engine.close()
    closed = _free_on_both(["127.0.0.2", "127.0.0.3"])  # nothing listens there
    with pytest.raises(DeployError, match="ssh failed") as info:
        connect_host(HostSpec(f"ssh://root@127.0.0.2:{closed}"), dict(os.environ))
    assert "must log in without a prompt" in (info.value.hint or "")


def test_the_ssh_master_is_kept_for_the_next_command_unless_told_not_to(two_hosts: TwoHosts) -> None:  # noqa: F811
    import subprocess

    from nexusify.deploy.runtime.ssh_master import control_path, persist_seconds
    from nexusify.errors import ConfigError
    from tests.hosts_stack import end_kept_master

    host = two_hosts.b
    target = f"root@{host.address}"
    env = {k: v for k, v in os.environ.items() if k != "NEXUSIFY_SSH_PERSIST"}
    control = control_path(target, host.port, env)

    def master() -> str:  # "Master running (pid=N)", or "" when none answers
        r = subprocess.run(["ssh", "-S", str(control), "-p", str(host.port), "-O", "check", target],
                           capture_output=True, text=True, check=False)
        return r.stderr.strip() if r.returncode == 0 else ""

    end_kept_master(target, host.port)
    first = connect_host(HostSpec(host.url), env)
    first.client.ping()
    first.close()
    kept = master()
    assert kept.startswith("Master running"), "the master outlives the command that opened it"
    second = connect_host(HostSpec(host.url), env)
    assert second.client.ping()
    second.close()
    assert master() == kept, "the next command rides the same master (no second handshake)"
    assert not Path(second.url.removeprefix("unix://")).exists(), "each command's own forward is gone"

    end_kept_master(target, host.port)
    once = connect_host(HostSpec(host.url), {**env, "NEXUSIFY_SSH_PERSIST": "0"})
    assert once.client.ping()
    once.close()
    assert master() == "", "NEXUSIFY_SSH_PERSIST=0 ends the master with the command"
    with pytest.raises(ConfigError, match="NEXUSIFY_SSH_PERSIST"):
        persist_seconds({"NEXUSIFY_SSH_PERSIST": "5m"})
