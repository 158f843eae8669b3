"""Shared fixtures: the sample monorepo, the CLI runner, and the real test stack.

Servers (pypiserver, registry, nginx, moto) are started by fixtures on free loopback ports.
The container engine (Podman's Docker API) is started by ``scripts/stack.sh``; its address
comes from ``DOCKER_HOST`` or the env file the script writes. Without a component, tests that
need it skip with the reason, except under CI (``CI=true``), where a missing component fails.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SAMPLE = FIXTURES / "monorepo"
STACK_ENV = Path(os.environ.get("NEXUSIFY_STACK_ENV", Path.home() / ".cache/nexusify-stack/env.sh"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _load_stack_env() -> None:
    """Import the variables scripts/stack.sh wrote (DOCKER_HOST...), unless already set."""
    if not STACK_ENV.is_file():
        return
    for line in STACK_ENV.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            os.environ.setdefault(key.strip(), value.strip())


_load_stack_env()


@pytest.fixture(autouse=True, scope="session")
def _journal_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Transaction journals are signed with a key outside every repository: the tests keep theirs
    in a session folder (children inherit the variable) instead of the user's ~/.local/state."""
    path = tmp_path_factory.mktemp("journal-key") / "journal.key"
    old = os.environ.get("NEXUSIFY_JOURNAL_KEY")
    os.environ["NEXUSIFY_JOURNAL_KEY"] = str(path)
    yield path
    if old is None:
        os.environ.pop("NEXUSIFY_JOURNAL_KEY", None)
    else:
        os.environ["NEXUSIFY_JOURNAL_KEY"] = old


def missing(component: str, reason: str) -> None:
    """Skip (locally) or fail (under CI) because a stack component is not there."""
    message = f"{component} is not available: {reason}. Run `bash scripts/stack.sh` to install and start it."
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def download_wheels(dest: Path, *requirements: str, options: tuple[str, ...] = ()) -> list[Path]:
    """``pip download --only-binary=:all:`` of ``requirements`` into ``dest`` (a test index's folder,
    the way a Nexus group proxies PyPI); PyPI unreachable is a missing component. Returns every
    wheel in ``dest``."""
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *options,
                           "-d", str(dest), *requirements], capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        missing("PyPI", f"pip download of {' '.join(requirements)} failed: {proc.stderr.strip()[-300:]}")
    return wheels


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A private copy of the sample monorepo."""
    dest = tmp_path / "monorepo"
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".nexusify", "dist", "build"))
    return dest


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def run_cli() -> Callable[..., CliResult]:
    """Run ``nexusify`` in-process: run_cli(*argv, env={...}) -> CliResult."""
    from nexusify import cli

    def run(*argv: str, env: dict[str, str] | None = None, allow_crash: bool = False) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            code = cli.main(list(argv), env=env if env is not None else {"HOME": str(Path.home()), "NO_COLOR": "1"})
        finally:
            sys.stdout, sys.stderr = old
        if code == 70 and not allow_crash:  # a crash fails the test, whatever exit code it expected
            pytest.fail(f"nexusify {' '.join(argv)} crashed (exit 70):\n{err.getvalue()}")
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


# --------------------------------------------------------------------------- pypiserver


@dataclass
class PyPIServer:
    url: str  # upload URL (with trailing slash)
    simple_url: str
    packages: Path
    username: str | None
    password: str | None
    port: int


def _htpasswd(path: Path, user: str, password: str) -> None:
    from passlib.apache import HtpasswdFile

    # apr_md5_crypt (Apache's own default), never bcrypt: passlib 1.7 cannot use bcrypt >= 5
    ht = HtpasswdFile(str(path), new=True, default_scheme="apr_md5_crypt")
    ht.set_password(user, password)
    ht.save()


@pytest.fixture
def pypi_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PyPIServer]]:
    """Start real pypiservers: factory(auth="update"|"download,update,list"|None)."""
    procs: list[subprocess.Popen[bytes]] = []
    exe = shutil.which("pypi-server")

    def start(auth: str | None = "update", username: str = "ci-user", password: str = "s3cr3t-Pa55word") -> PyPIServer:
        if exe is None:
            missing("pypiserver", "the pypi-server command is not installed")
        base = tmp_path_factory.mktemp("pypi")
        packages = base / "packages"
        packages.mkdir()
        port = free_port()
        cmd = [str(exe), "run", "-i", "127.0.0.1", "-p", str(port)]
        if auth:
            ht = base / "htpasswd"
            _htpasswd(ht, username, password)
            cmd += ["-a", auth, "-P", str(ht)]
        else:
            cmd += ["-a", ".", "-P", "."]
        cmd.append(str(packages))
        log = (base / "server.log").open("wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for_port(port, proc=proc)
        url = f"http://127.0.0.1:{port}/"
        return PyPIServer(url, url + "simple/", packages, username if auth else None, password if auth else None, port)

    yield start
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="session")
def build_env_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build-env cache for the session (publish creates each env once, then reuses it)."""
    return tmp_path_factory.mktemp("build-envs")


@pytest.fixture
def nexus_factory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Start Nexus emulators (tests/nexus_emulator.py: real pypiserver apps behind Nexus' URLs,
    auth, ALLOW_ONCE and REST): factory(private=False, policy="ALLOW_ONCE", message_style="new")."""
    from tests.nexus_emulator import RunningEmulator, start_emulator

    started: list[RunningEmulator] = []

    def start(**kwargs):  # type: ignore[no-untyped-def]
        emu = start_emulator(tmp_path_factory.mktemp("nexus"), free_port(), **kwargs)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


BUILD_BACKENDS = ("poetry-core", "hatchling", "pdm-backend")


@pytest.fixture(scope="session")
def backend_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Wheels of the build backends the services need (a Nexus group repository proxies PyPI;
    the local index must hold them for a hermetic build)."""
    return download_wheels(tmp_path_factory.mktemp("backend-wheels"), *BUILD_BACKENDS,
                           options=("--python-version", "3.11"))


# --------------------------------------------------------------------------- container engine


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    """A Docker SDK client on the engine (Podman's Docker-compatible API)."""
    try:
        import docker
    except ImportError:
        missing("docker SDK", "the docker package is not installed")
    host = os.environ.get("DOCKER_HOST")
    if not host:
        missing("container engine", "DOCKER_HOST is not set and scripts/stack.sh has not run")
    try:
        client = docker.DockerClient(base_url=host, timeout=300)
        client.ping()
    except Exception as exc:  # docker.errors.DockerException and connection errors
        missing("container engine", f"{host} does not answer ({exc})")
    base = os.environ.get("NEXUSIFY_TEST_BASE_IMAGE", "localhost/python:3.11-slim-bookworm")
    try:
        client.images.get(base)
    except Exception:
        missing("base image", f"{base} is not in the engine's storage")
    yield client
    client.close()


# --------------------------------------------------------------------------- PostgreSQL and moto

PG_ADMIN_URL = os.environ.get("NEXUSIFY_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database (dropped afterwards); yields its URL."""
    import uuid

    try:
        import psycopg2
    except ImportError:
        missing("psycopg2", "psycopg2-binary is not installed")
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN_URL)
    params = {"host": admin.host, "port": admin.port or 5432, "user": admin.username, "dbname": admin.database}
    try:
        conn = psycopg2.connect(connect_timeout=5, **params)
    except Exception as exc:
        missing("PostgreSQL", f"{admin.host}:{admin.port or 5432} does not answer ({exc})")
    conn.autocommit = True
    name = f"nx_test_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@dataclass
class MotoServer:
    endpoint_url: str
    region: str = "us-east-1"

    def client(self, service: str = "secretsmanager"):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
        ).client(service, endpoint_url=self.endpoint_url)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's real HTTP server on a free loopback port (AWS APIs with fake credentials)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing("moto server", 'moto[server] is not installed (pip install "moto[server]")')
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake AWS credentials in os.environ (boto3 reads them there), never real ones."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env
