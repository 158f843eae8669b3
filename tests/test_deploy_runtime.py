"""Deploy runtime on the real stack: Podman's Docker API, a private nginx, a registry, PostgreSQL.

The app under test is fixtures/deploy/app (a stdlib HTTP app; ``/`` says which version it was
built as). Builds reuse the engine's cache: v1/v2/v3 differ only by a build arg.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nexusify.cli import build_parser
from nexusify.commands import Context
from nexusify.commands import deploy as deploy_cmd
from nexusify.config import resolve_settings
from nexusify.deploy.state import history as hist
from nexusify.ui.output import Output
from tests.conftest import CliResult, missing
from tests.deploy_fixtures import (
    REPO,
    DeployProject,
    Load,
    free_port,
    get_json,
    make_project,
    postgres_database,
    start_registry,
)

pytestmark = [pytest.mark.engine, pytest.mark.stack, pytest.mark.slow]

Run = Callable[..., CliResult]


@pytest.fixture
def project(tmp_path: Path, docker_client: Any) -> Iterator[DeployProject]:
    p = make_project(tmp_path, health_timeout=4)
    yield p
    p.cleanup(docker_client)


def deploy(run_cli: Run, p: DeployProject, version: str, *extra: str) -> CliResult:
    return run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", version,
                   "--build-arg", f"BUILT_VERSION={version}", *extra, env=p.env)


@dataclass
class Row:
    labels: dict[str, str]
    status: str


def containers(client: Any, p: DeployProject, **labels: str) -> list[Row]:
    """The project's containers, from the list call alone (other suites remove theirs concurrently)."""
    flt = [f"io.nexusify.environment={p.environment}", *(f"io.nexusify.{k}={v}" for k, v in labels.items())]
    return [Row(dict(c.get("Labels") or {}), str(c.get("State", "")).lower())
            for c in client.api.containers(all=True, filters={"label": flt})]


def _wait_answers(load: Load, n: int = 20, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(load.answers) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_blue_green_under_load_unhealthy_release_and_rollback(project: DeployProject, run_cli: Run,
                                                               docker_client: Any) -> None:
    p = project
    r = deploy(run_cli, p, "v1")
    assert r.exit_code == 0, r.output
    assert p.served()["built"] == "v1"

    # v2 while requests keep coming through nginx: none fails, answers move from v1 to v2
    with Load(p.public_port) as load:
        _wait_answers(load)
        r = deploy(run_cli, p, "v2")
        switched_at = time.monotonic()
        time.sleep(0.3)
        report = load.stop()
    assert r.exit_code == 0, r.output
    assert report.failures == [], report.failures[:5]
    assert report.versions[0] == "v1" and report.versions[-1] == "v2", report.versions[:3]
    assert not [a for a in report.answers if a[0] > switched_at and a[2] == "v1"], "v1 answered after the switch"
    assert p.served()["built"] == "v2"
    assert len(containers(docker_client, p, version="v1")) == 1, "blue (v1) must be kept for rollback"

    # an unhealthy v3: exit 1, traffic never moves, green removed
    r = deploy(run_cli, p, "v3", "--build-arg", "UNHEALTHY=1")
    assert r.exit_code == 1, r.output
    assert "not healthy" in r.stderr and "traffic did not move" in r.stderr
    assert p.served()["built"] == "v2"
    assert containers(docker_client, p, version="v3") == []

    # rollback under the same load: no failure, v1 serves again, in seconds, no build
    with Load(p.public_port) as load:
        _wait_answers(load)
        t0 = time.monotonic()
        r = run_cli("rollback", "--root", str(p.root), "--environment", p.environment, "--json", env=p.env)
        took = time.monotonic() - t0
        time.sleep(0.3)
        report = load.stop()
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["services"][0]["version"] == "v1" and summary["services"][0]["reused"] is True
    assert "build" not in summary["stages"] and "migrate" not in summary["stages"]
    assert report.failures == [], report.failures[:5]
    assert report.versions[-1] == "v1"
    assert p.served()["built"] == "v1"
    assert took < 3.0, f"rollback took {took:.2f}s"  # loose: the benchmark measures it (about 1.3 s)

    records = hist.read_history(p.root / ".nexusify", p.environment)
    assert [(x.action, x.outcome) for x in records] == [
        ("deploy", "success"), ("deploy", "success"), ("deploy", "unhealthy"), ("rollback", "success")]
    assert records[1].services[0].previous_version == "v1"
    assert records[3].services[0].version == "v1" and records[3].services[0].previous_version == "v2"

    # --to a named kept version
    r = run_cli("rollback", "--root", str(p.root), "--environment", p.environment, "app", "--to", "v2", env=p.env)
    assert r.exit_code == 0, r.output
    assert p.served()["built"] == "v2"
    r = run_cli("rollback", "--root", str(p.root), "--environment", p.environment, "--to", "v9", env=p.env)
    assert r.exit_code == 1 and "no kept version 'v9'" in r.stderr


def test_keep_prunes_old_versions_but_never_the_rollback_targets(tmp_path: Path, run_cli: Run,
                                                                 docker_client: Any) -> None:
    p = make_project(tmp_path, keep=1)
    try:
        # stages one at a time: build only, then switch the image built before
        r = deploy(run_cli, p, "v1", "--stages", "build")
        assert r.exit_code == 0, r.output
        assert containers(docker_client, p) == [] and not (p.state / "state.json").exists()
        r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v1",
                    "--stages", "switch,record", env=p.env)
        assert r.exit_code == 0, r.output
        assert "[build]" not in r.stderr and p.served()["built"] == "v1"
        for v in ("v2", "v3"):
            r = deploy(run_cli, p, v)
            assert r.exit_code == 0, r.output
        versions = sorted(c.labels["io.nexusify.version"] for c in containers(docker_client, p))
        assert versions == ["v2", "v3"], versions  # live v3 + keep=1 (v2); v1 pruned
        # the secrets changed since v2's container was made: rollback recreates it from its image
        time.sleep(0.01)
        (p.root / ".env.test").write_text("API_KEY=rotated-" + p.secret_value + "\n")
        r = run_cli("rollback", "--root", str(p.root), "--environment", p.environment, "--json", env=p.env)
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["services"][0]["reused"] is False
        assert p.served()["built"] == "v2"
        assert get_json(p.public_port, "/secret-check")[1] == {"api_key_present": True}
    finally:
        p.cleanup(docker_client)


class Killed(BaseException):
    """Stands in for SIGKILL at a checkpoint: nothing after it runs."""


@pytest.mark.parametrize("phase", ["start", "switch", "drain"])
def test_a_killed_deploy_is_recovered_by_the_next_one(phase: str, project: DeployProject, run_cli: Run,
                                                       docker_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from nexusify.deploy.bluegreen import BlueGreen

    p = project
    assert deploy(run_cli, p, "v1").exit_code == 0

    def kill(self: BlueGreen, at: str) -> None:
        if at == phase:
            raise Killed(at)

    monkeypatch.setattr(BlueGreen, "_checkpoint", kill)
    with pytest.raises(Killed):  # in-process, past cli.main, so nothing catches the "kill"
        ns = build_parser().parse_args(["deploy", "--environment", p.environment, "--tag", "v2",
                                        "--build-arg", "BUILT_VERSION=v2"])
        ctx = Context(p.root, resolve_settings(p.root, {}, p.env), p.env, Output(env=p.env))
        deploy_cmd.run(ns, ctx)
    monkeypatch.undo()
    state = json.loads((p.state / "state.json").read_text())
    assert state["services"]["app"]["transition"]["phase"] == phase
    # the proxy keeps serving whatever it was switched to when the deploy died: once point_to
    # returned, no old nginx worker accepts a new connection
    expected = "v2" if phase == "drain" else "v1"
    assert [p.served()["built"] for _ in range(5)] == [expected] * 5

    r = deploy(run_cli, p, "v3", "--json")
    assert r.exit_code == 0, r.output
    assert p.served()["built"] == "v3"
    recovered = json.loads(r.stdout)["recovered"]
    assert len(recovered) == 1 and ("completed" if phase == "drain" else "undid") in recovered[0], recovered
    state = json.loads((p.state / "state.json").read_text())
    assert state["services"]["app"]["transition"] is None
    running = [c.labels["io.nexusify.version"] for c in containers(docker_client, p) if c.status == "running"]
    assert running == ["v3"], running
    kept = sorted(c.labels["io.nexusify.version"] for c in containers(docker_client, p))
    # the half-started v2 is removed unless traffic had already moved to it
    assert kept == (["v1", "v2", "v3"] if phase == "drain" else ["v1", "v3"]), kept


def test_sigterm_during_a_deploy_undoes_it_and_exits_130(tmp_path: Path, docker_client: Any) -> None:
    """A cancelled CI job sends SIGTERM: the green that was waiting for its health check is
    removed, the old version keeps serving, the history says "aborted", exit code 130."""
    p = make_project(tmp_path, health_timeout=60)
    try:
        cmd = [sys.executable, "-m", "nexusify", "deploy", "--root", str(p.root), "--environment", p.environment]
        first = subprocess.run([*cmd, "--tag", "v1", "--build-arg", "BUILT_VERSION=v1"], env=p.env,
                               capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        proc = subprocess.Popen([*cmd, "--tag", "v2", "--build-arg", "BUILT_VERSION=v2", "--build-arg", "UNHEALTHY=1"],
                                env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(
                    c.status == "running" for c in containers(docker_client, p, version="v2")):
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
            time.sleep(0.5)  # inside the health wait
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, stdout + stderr
        assert "interrupted" in stderr
        assert containers(docker_client, p, version="v2") == []
        assert p.served()["built"] == "v1"
        assert hist.read_history(p.root / ".nexusify", p.environment)[-1].outcome == "aborted"
        state = json.loads((p.state / "state.json").read_text())
        assert state["services"]["app"]["transition"] is None
    finally:
        p.cleanup(docker_client)


# --------------------------------------------------------------------------- migrations, locks, secrets


def _with_migrations(tmp_path: Path, alembic_dir: str, db_url: str, secret: str) -> DeployProject:
    p = make_project(tmp_path, health_timeout=10, services_toml=(
        f'migrations = "{REPO / "fixtures" / "deploy" / alembic_dir / "alembic.ini"}"\n'
        'database-url = "secret:DATABASE_URL"\n'))
    # trust auth ignores the password, so a URL can carry a secret the tests then look for
    url = db_url.replace("root@", f"root:{secret}@")
    with (p.root / ".env.test").open("a") as fh:
        fh.write(f"DATABASE_URL={url}\n")
    return p


@pytest.fixture
def database() -> Iterator[str]:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, dbname="postgres", connect_timeout=3).close()
    except Exception as exc:
        missing("PostgreSQL", f"127.0.0.1:5432 does not answer ({exc})")
    with postgres_database() as url:
        yield url


def test_a_failing_migration_stops_before_build(tmp_path: Path, database: str, run_cli: Run,
                                                 docker_client: Any) -> None:
    p = _with_migrations(tmp_path, "alembic-app-failing", database, "pw-" + "f" * 12)
    try:
        r = deploy(run_cli, p, "v1")
        assert r.exit_code == 1, r.output
        assert "[migrate] FAILED" in r.stderr and "[build]" not in r.stderr
        assert docker_client.images.list(filters={"label": f"io.nexusify.environment={p.environment}"}) == []
        assert containers(docker_client, p) == []
        records = hist.read_history(p.root / ".nexusify", p.environment)
        assert [(x.outcome, "build" in x.stages) for x in records] == [("failed", False)]
        assert "pw-ffff" not in r.output
    finally:
        p.cleanup(docker_client)


def _spawn(p: DeployProject, version: str, lock_wait: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nexusify", "deploy", "--root", str(p.root), "--environment", p.environment,
         "--tag", version, "--build-arg", f"BUILT_VERSION={version}", "--lock-wait", lock_wait, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=p.env, cwd=p.root,
    )


def test_two_deploys_at_once_one_waits_or_is_refused_and_migrations_run_once(
        tmp_path: Path, database: str, docker_client: Any) -> None:
    p = _with_migrations(tmp_path, "alembic-app", database, "pw-" + "c" * 12)
    try:
        # both wait: both succeed, one after the other; the schema is migrated exactly once
        a, b = _spawn(p, "v1", "120"), _spawn(p, "v2", "120")
        outs = [proc.communicate(timeout=240) for proc in (a, b)]
        assert [a.returncode, b.returncode] == [0, 0], outs
        applied = [json.loads(o)["migrations"][0]["applied"] for o, _ in outs]
        assert sorted(len(x) for x in applied) == [0, 2], applied

        # neither waits: one deploys, the other is refused naming the holder
        a, b = _spawn(p, "v3", "0"), _spawn(p, "v4", "0")
        outs = [proc.communicate(timeout=240) for proc in (a, b)]
        codes = sorted([a.returncode, b.returncode])
        assert codes == [0, 1], outs
        refused = next(json.loads(o) for (o, _), proc in zip(outs, (a, b), strict=True) if proc.returncode == 1)
        assert refused["error"] == "LockHeld" and "pid" in refused["message"], refused
        records = hist.read_history(p.root / ".nexusify", p.environment)
        assert [x.outcome for x in records] == ["success", "success", "success"]
    finally:
        p.cleanup(docker_client)


def _scan_image(client: Any, image_id: str, needle: bytes) -> list[str]:
    """Where ``needle`` occurs in the image: config, history, or any layer of `save`."""
    found = []
    image = client.images.get(image_id)
    if needle.decode() in json.dumps(image.attrs):
        found.append("inspect")
    if needle.decode() in json.dumps(image.history()):
        found.append("history")
    tail = b""
    for chunk in image.save(named=False):
        if needle in tail + chunk:
            found.append("save")
            break
        tail = chunk[-len(needle):]
    return found


def test_no_secret_value_in_images_history_state_plan_or_output(tmp_path: Path, database: str, run_cli: Run,
                                                                 docker_client: Any) -> None:
    db_secret = "pw-" + "9d" * 8
    p = _with_migrations(tmp_path, "alembic-app", database, db_secret)
    try:
        plan = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v1",
                       "--dry-run", env=p.env)
        assert plan.exit_code == 0, plan.output
        assert "CREATE TABLE" in plan.stdout and "alembic upgrade head" in plan.stdout
        assert not (p.root / ".nexusify" / "deploy" / p.environment / "state.json").exists()

        r = deploy(run_cli, p, "v1")
        assert r.exit_code == 0, r.output
        j = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v2",
                    "--build-arg", "BUILT_VERSION=v2", "--json", "-v", env=p.env)
        assert j.exit_code == 0, j.output
        # the container got its secret at run time
        assert get_json(p.public_port, "/secret-check")[1] == {"api_key_present": True}

        secrets = [p.secret_value, db_secret]
        for s in secrets:
            for out in (plan, r, j):
                assert s not in out.output
            for f in (p.root / ".nexusify").rglob("*"):
                if f.is_file():
                    assert s.encode() not in f.read_bytes(), f
            for img in docker_client.images.list(filters={"label": f"io.nexusify.environment={p.environment}"}):
                assert _scan_image(docker_client, img.id, s.encode()) == [], img.tags
        records = hist.read_history(p.root / ".nexusify", p.environment)
        assert all(rec.secret_versions for rec in records)
    finally:
        p.cleanup(docker_client)


def test_push_to_a_registry_and_a_registry_error_is_an_error(tmp_path: Path, run_cli: Run,
                                                              docker_client: Any) -> None:
    if shutil.which("docker-registry") is None and not Path("/usr/bin/docker-registry").is_file():
        missing("docker-registry", "not installed")
    with start_registry(tmp_path / "registry") as registry:
        p = make_project(tmp_path / "a", registry=registry)
        try:
            r = deploy(run_cli, p, "v1", "--json")
            assert r.exit_code == 0, r.output
            img = json.loads(r.stdout)["images"][0]
            assert img["pushed"] and img["image"] == f"{registry}/app:v1"
            assert img["digest"] and img["digest"].startswith("sha256:")
            status, tags = get_json(int(registry.rsplit(":", 1)[1]), "/v2/app/tags/list")
            assert status == 200 and tags["tags"] == ["v1"]
            assert hist.read_history(p.root / ".nexusify", p.environment)[0].services[0].digest == img["digest"]
        finally:
            p.cleanup(docker_client)
    # the registry is gone now: the push error arrives in the stream and must fail the deploy
    p = make_project(tmp_path / "b", registry=registry)
    try:
        r = deploy(run_cli, p, "v1")
        assert r.exit_code == 1, r.output
        assert "push of" in r.stderr and "failed" in r.stderr
        assert containers(docker_client, p) == []
    finally:
        p.cleanup(docker_client)


def test_push_to_a_registry_that_requires_a_login(tmp_path: Path, run_cli: Run, docker_client: Any) -> None:
    if shutil.which("docker-registry") is None and not Path("/usr/bin/docker-registry").is_file():
        missing("docker-registry", "not installed")
    password = "reg-" + "5b" * 12
    with start_registry(tmp_path / "registry", users={"pusher": password}) as registry:
        p = make_project(tmp_path / "a", registry=registry)
        try:
            # no credentials: the registry's refusal is an error that says how to log in
            r = deploy(run_cli, p, "v1")
            assert r.exit_code == 1, r.output
            assert "push of" in r.stderr and "NEXUSIFY_REGISTRY_USERNAME" in r.stderr, r.stderr
            assert containers(docker_client, p) == []
            # one of the two: a usage error before anything runs
            r = run_cli(
                "deploy", "--root", str(p.root), "--environment", p.environment, "--dry-run",
                env={**p.env, "NEXUSIFY_REGISTRY_USERNAME": "pusher"})
            assert r.exit_code == 2 and "NEXUSIFY_REGISTRY_PASSWORD is not set" in r.stderr, r.output
            # a wrong password: refused, and the password is never printed
            wrong = "nope-" + "3c" * 8
            r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v1",
                        env={**p.env, "NEXUSIFY_REGISTRY_USERNAME": "pusher", "NEXUSIFY_REGISTRY_PASSWORD": wrong})
            assert r.exit_code == 1, r.output
            assert "refused the credentials of pusher" in r.stderr, r.stderr
            assert wrong not in r.output
            # the right one: pushed
            r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v1", "--json",
                        env={**p.env, "NEXUSIFY_REGISTRY_USERNAME": "pusher", "NEXUSIFY_REGISTRY_PASSWORD": password})
            assert r.exit_code == 0, r.output
            img = json.loads(r.stdout)["images"][0]
            assert img["pushed"] and img["digest"].startswith("sha256:")
            assert password not in r.output
            for f in (p.root / ".nexusify").rglob("*"):
                if f.is_file():
                    assert password not in f.read_text(errors="replace"), f
            import base64
            import urllib.request

            req = urllib.request.Request(f"http://{registry}/v2/app/tags/list", headers={
                "Authorization": "Basic " + base64.b64encode(f"pusher:{password}".encode()).decode()})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert json.loads(resp.read())["tags"] == ["v1"]
        finally:
            p.cleanup(docker_client)


def test_a_dockerfile_mounting_a_secret_builds_through_the_cli_with_a_netrc(
        tmp_path: Path, run_cli: Run, docker_client: Any) -> None:
    p = make_project(tmp_path)
    password = "idx-" + "7e" * 10
    dockerfile = p.root / "app" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        "COPY app.py /srv/app.py\n",
        "COPY app.py /srv/app.py\n"
        "ARG NEXUS_INDEX_URL\n"
        "RUN --mount=type=secret,id=netrc,target=/root/.netrc "
        "grep -q 'machine 127.0.0.1 login ci-user password' /root/.netrc && echo \"index=$NEXUS_INDEX_URL\"\n"))
    p.extra_env.update({"NEXUS_INDEX_URL": "http://127.0.0.1:9/simple/", "NEXUS_USERNAME": "ci-user",
                        "NEXUS_PASSWORD": password})
    try:
        r = deploy(run_cli, p, "v1", "--json")
        assert r.exit_code == 0, r.output
        img = json.loads(r.stdout)["images"][0]
        assert img["built_with"] == "cli"
        assert p.served()["built"] == "v1"
        assert password not in r.output
        assert _scan_image(docker_client, img["image_id"], password.encode()) == []
        history = json.dumps(docker_client.images.get(img["image_id"]).history())
        assert "NEXUS_INDEX_URL" in history or "127.0.0.1:9" in history  # the URL is a build arg, fine
    finally:
        p.cleanup(docker_client)


def test_secrets_from_aws_secrets_manager_reach_the_container_and_rotation_recreates_on_rollback(
        tmp_path: Path, run_cli: Run, docker_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing("moto", "moto[server] is not installed")
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_port}"  # type: ignore[union-attr]
        sm = boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=endpoint)
        value = "aws-" + "5a" * 10
        created = sm.create_secret(Name="app/test", SecretString=json.dumps({"API_KEY": value}))
        p = make_project(tmp_path, secrets_toml=(
            f'provider = "aws"\nsecret-ids = ["app/test"]\nregion = "eu-west-1"\nendpoint-url = "{endpoint}"\n'))
        try:
            for v in ("v1", "v2"):
                r = deploy(run_cli, p, v)
                assert r.exit_code == 0, r.output
            assert get_json(p.public_port, "/secret-check")[1] == {"api_key_present": True}
            records = hist.read_history(p.root / ".nexusify", p.environment)
            assert list(records[-1].secret_versions.values()) == [created["VersionId"]]
            sm.put_secret_value(SecretId="app/test", SecretString=json.dumps({"API_KEY": value + "-rotated"}))
            r = run_cli("rollback", "--root", str(p.root), "--environment", p.environment, "--json", env=p.env)
            assert r.exit_code == 0, r.output
            assert json.loads(r.stdout)["services"][0]["reused"] is False  # new secret version: new container
            assert p.served()["built"] == "v1"
            for f in (p.root / ".nexusify").rglob("*"):
                if f.is_file():
                    assert value.encode() not in f.read_bytes(), f
        finally:
            p.cleanup(docker_client)
    finally:
        server.stop()


def two_services(tmp_path: Path, *, api_keys: str = "", api_second: bool = False,
                 **kw: Any) -> tuple[DeployProject, int, str]:
    """Services ``app`` (route /app) and ``api`` (route /api, ``api_keys`` added) of the test app behind
    one nginx port; ``api_second`` puts api after app in the config (the order services switch in).
    Returns the project, the proxy port and the config text written."""
    listen = free_port()
    api = ("\n[deploy.services.api]\n" 'folder = "app"\n' "container-port = 8000\n" 'route = "/api"\n'
           "health-interval = 0.2\n" + api_keys)
    p = make_project(tmp_path, **({"services_toml": api} if api_second else {"extra_toml": api}), **kw)
    toml = (p.root / "nexusify.toml").read_text()
    toml = toml.replace(f"public-port = {p.public_port}\n", 'route = "/app"\n')
    toml += f'\n[deploy.environments.{p.environment}.proxy]\nlisten = "127.0.0.1:{listen}"\n'
    (p.root / "nexusify.toml").write_text(toml)
    return p, listen, toml


def test_two_services_on_routes_of_one_proxy_port_and_a_one_service_rollback(
        tmp_path: Path, run_cli: Run, docker_client: Any) -> None:
    p, listen, _ = two_services(tmp_path)
    try:
        for v in ("v1", "v2"):
            r = deploy(run_cli, p, v)
            assert r.exit_code == 0, r.output
        assert get_json(listen, "/api/")[1]["service"] == "api"
        assert get_json(listen, "/app/x")[1] == {"service": "app", "version": "v2", "built": "v2"}
        assert get_json(listen, "/other")[0] == 404
        r = run_cli("rollback", "--root", str(p.root), "--environment", p.environment, "api", env=p.env)
        assert r.exit_code == 0, r.output
        assert get_json(listen, "/api/")[1]["built"] == "v1"
        assert get_json(listen, "/app/")[1]["built"] == "v2"  # only the named service moved
    finally:
        p.cleanup(docker_client)


def test_a_multi_service_deploy_switches_all_or_none(tmp_path: Path, run_cli: Run, docker_client: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two services behind one proxy. An unhealthy one: the other's new container is removed and
    nothing switches. A switch that fails on the second service: the first is switched back."""
    from nexusify.deploy.traffic.switch import NginxSwitch, Target

    # api after app: switched second
    p, listen, toml = two_services(tmp_path, api_keys="health-timeout = 3\n#API-ENV\n", api_second=True,
                                   health_timeout=10)

    def served() -> dict[str, str]:
        return {svc: get_json(listen, f"/{svc}/")[1]["built"] for svc in ("api", "app")}

    try:
        r = deploy(run_cli, p, "v1")
        assert r.exit_code == 0, r.output
        assert served() == {"api": "v1", "app": "v1"}

        # 1. api v2 never gets healthy: app's healthy v2 must not serve either
        (p.root / "nexusify.toml").write_text(toml.replace("#API-ENV\n", 'env = {UNHEALTHY = "1"}\n'))
        r = deploy(run_cli, p, "v2")
        assert r.exit_code == 1, r.output
        assert "api v2" in r.stderr and "not healthy" in r.stderr, r.stderr
        assert "not switched: app (its new container was removed)" in r.stderr, r.stderr
        assert served() == {"api": "v1", "app": "v1"}
        assert containers(docker_client, p, version="v2") == []
        rec = hist.read_history(p.root / ".nexusify", p.environment)[-1]
        assert rec.outcome == "unhealthy"
        assert {s.name: s.outcome for s in rec.services} == {"api": "unhealthy", "app": "not switched"}

        # 2. both v3 healthy, but nginx refuses the second switch: the first is switched back to v1
        (p.root / "nexusify.toml").write_text(toml)
        real_point_to = NginxSwitch.point_to
        seen: list[str] = []

        def second_switch_breaks(self: NginxSwitch, target: Target) -> None:
            if self.service not in seen:
                seen.append(self.service)
            if len(seen) == 2 and self.service == seen[1] and target.version == "v3":
                target = Target(target.host, 0, name=target.name, version=target.version)  # port 0: nginx -t rejects it
            real_point_to(self, target)

        monkeypatch.setattr(NginxSwitch, "point_to", second_switch_breaks)
        r = deploy(run_cli, p, "v3")
        monkeypatch.undo()
        assert r.exit_code == 1, r.output
        assert "nginx rejected" in r.stderr, r.stderr
        assert f"switched back: {seen[0]} to v1" in r.stderr, r.stderr
        assert served() == {"api": "v1", "app": "v1"}
        running = sorted(c.labels["io.nexusify.service"] + "=" + c.labels["io.nexusify.version"]
                         for c in containers(docker_client, p) if c.status == "running")
        assert running == ["api=v1", "app=v1"], running
        rec = hist.read_history(p.root / ".nexusify", p.environment)[-1]
        assert {s.name: s.outcome for s in rec.services} == {seen[0]: "switched back", seen[1]: "unhealthy"}
        state = json.loads((p.state / "state.json").read_text())
        assert all(entry["transition"] is None for entry in state["services"].values()), state

        # and the next deploy goes through for both
        r = deploy(run_cli, p, "v3")
        assert r.exit_code == 0, r.output
        assert served() == {"api": "v3", "app": "v3"}
    finally:
        p.cleanup(docker_client)
