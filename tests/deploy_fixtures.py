"""Fixtures and helpers for the deploy runtime tests (and benchmarks/deploy.py).

- :func:`make_project`: a tiny project (``fixtures/deploy/app``: a stdlib HTTP app whose ``/``
  says which version it was built as) with a ``nexusify.toml`` for one unique environment, an
  env-file secret, a private nginx port; :meth:`DeployProject.cleanup` stops that nginx and
  removes every container and image labelled with the environment.
- :class:`Load`: a load generator (threads, bounded by count and time, loopback only, a new
  connection per request, as browsers behind a proxy reconnecting would) that records every
  failure and the version each answer came from.
- :func:`start_registry`: a distribution registry (``docker-registry serve``) on a port in
  25000-25019, the range scripts/stack.sh marks insecure for Podman.
- :func:`postgres_database`: a throwaway PostgreSQL database on 127.0.0.1:5432.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.demo.traffic import get_json as get_json  # re-exported for the deploy tests
from tests.helpers import free_port, free_port_in, wait_for_port

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "fixtures" / "deploy" / "app"
LABEL_ENV = "io.nexusify.environment"


# --------------------------------------------------------------------------- project


@dataclass
class DeployProject:
    root: Path
    environment: str
    public_port: int
    secret_value: str
    docker_host: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment the CLI runs with (no NEXUS_PASSWORD: the index is not needed here)."""
        return {"HOME": str(Path.home()), "NO_COLOR": "1", "DOCKER_HOST": self.docker_host,
                "PATH": os.environ.get("PATH", ""), **self.extra_env}

    @property
    def state(self) -> Path:
        return self.root / ".nexusify" / "deploy" / self.environment

    def served(self) -> dict[str, Any]:
        status, body = get_json(self.public_port)
        assert status == 200, (status, body)
        return body

    def cleanup(self, client: Any) -> None:
        from nexusify.deploy.traffic.switch import NginxProxy

        conf_dir = self.state / "nginx"
        if conf_dir.is_dir():
            NginxProxy(conf_dir, {}).stop()
        remove_labelled(client, self.environment)


def remove_labelled(client: Any, environment: str) -> None:
    """Remove every container and image nexusify labelled with ``environment``."""
    flt = {"label": f"{LABEL_ENV}={environment}"}
    for c in client.api.containers(all=True, filters=flt):
        with contextlib.suppress(Exception):
            client.api.remove_container(c["Id"], force=True)
    for img in client.api.images(filters=flt):
        with contextlib.suppress(Exception):
            client.api.remove_image(img["Id"], force=True)


def remove_environment(client: Any, environment: str) -> None:
    """Remove what ``environment`` left on an engine (labelled containers and images, its network).
    Other suites remove their images meanwhile, and Podman's image list then fails once with
    "image not known": try again."""
    for attempt in range(3):
        try:
            remove_labelled(client, environment)
            break
        except Exception:
            if attempt == 2:
                raise
            time.sleep(0.5)
    from nexusify.deploy.runtime.hosts import network_name

    for n in client.networks.list(names=[network_name(environment)]):
        with contextlib.suppress(Exception):
            n.remove()


def make_project(base: Path, *, services_toml: str = "", extra_toml: str = "", registry: str | None = None,
                 health_timeout: float = 15, drain_timeout: float = 5, keep: int = 3,
                 secrets_toml: str = 'provider = "env-file"\npath = ".env.test"\n') -> DeployProject:
    """A project with the test app as service ``app`` behind a private nginx, secrets from an env-file."""
    environment = "t" + secrets.token_hex(4)
    root = base / "project"
    shutil.copytree(APP, root / "app")
    secret = "sk-" + secrets.token_hex(16)
    (root / ".env.test").write_text(f"API_KEY={secret}\n")
    port = free_port()
    reg = f'registry = "{registry}"\n' if registry else ""
    (root / "nexusify.toml").write_text(
        "[deploy]\n" + reg + f"keep = {keep}\n" + "lock-wait = 0\n" + extra_toml + "\n"
        "[deploy.services.app]\n"
        'folder = "app"\n'
        "container-port = 8000\n"
        f"public-port = {port}\n"
        f"health-timeout = {health_timeout}\n"
        "health-interval = 0.2\n"
        f"drain-timeout = {drain_timeout}\n"
        'env = ["API_KEY"]\n' + services_toml + "\n"
        f"[deploy.environments.{environment}.secrets]\n" + secrets_toml
    )
    return DeployProject(root=root, environment=environment, public_port=port, secret_value=secret,
                         docker_host=os.environ.get("DOCKER_HOST", ""))


# --------------------------------------------------------------------------- load


@dataclass
class LoadReport:
    total: int
    failures: list[str]
    answers: list[tuple[float, float, str]]  # (sent, received, built version)
    failure_times: list[float] = field(default_factory=list)

    @property
    def failing_window(self) -> float:
        """Seconds between sending the first and the last request that failed (0 without failures)."""
        return max(self.failure_times) - min(self.failure_times) if self.failure_times else 0.0

    @property
    def versions(self) -> list[str]:
        return [v for _, _, v in sorted(self.answers, key=lambda a: a[1])]


class Load:
    """Continuous GETs through the proxy from ``threads`` threads, a new connection per request.

    Bounded: stops after ``max_requests`` or ``max_seconds`` even if :meth:`stop` is never
    called. A failure is any connection error, timeout, non-200 answer or unparsable body.
    """

    def __init__(self, port: int, *, path: str = "/", threads: int = 4, max_requests: int = 200_000,
                 max_seconds: float = 120.0, pause: float = 0.002, host: str = "127.0.0.1") -> None:
        self.port, self.path, self.threads, self.host = port, path, threads, host
        self.max_requests, self.max_seconds, self.pause = max_requests, max_seconds, pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self.failures: list[str] = []
        self.failure_times: list[float] = []
        self.answers: list[tuple[float, float, str]] = []
        self._workers: list[threading.Thread] = []

    def _one(self) -> None:
        sent = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", self.path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
            built = str(json.loads(body).get("built"))
            with self._lock:
                self.answers.append((sent, time.monotonic(), built))
        except Exception as exc:
            with self._lock:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                self.failure_times.append(sent)
        finally:
            conn.close()

    def _run(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self._count >= self.max_requests:
                    return
                self._count += 1
            self._one()
            if self.pause:
                time.sleep(self.pause)

    def start(self) -> Load:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> LoadReport:
        self._stop.set()
        for t in self._workers:
            t.join(30)
        return LoadReport(self._count, list(self.failures), list(self.answers), list(self.failure_times))

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(30)


# --------------------------------------------------------------------------- registry


REGISTRY_PORTS = range(25000, 25020)


def _bcrypt_hash(password: str) -> str:
    """A bcrypt hash (the only kind the registry's htpasswd accepts) from the C library's crypt(3).
    Not the bcrypt package: with bcrypt >= 5 installed, passlib (pypiserver's htpasswd) breaks."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # Python < 3.13; libxcrypt does $2b$

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@contextlib.contextmanager
def start_registry(base: Path, users: dict[str, str] | None = None) -> Iterator[str]:
    """A distribution registry on 127.0.0.1:<25000-25019>; yields ``127.0.0.1:PORT``. With
    ``users`` ({name: password}), it requires HTTP basic auth (htpasswd, bcrypt)."""
    exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(exe).is_file():
        raise FileNotFoundError("docker-registry")
    port = free_port_in(REGISTRY_PORTS)
    if port is None:
        raise RuntimeError("no free port in 25000-25019 for the registry")
    base.mkdir(parents=True, exist_ok=True)
    cfg = base / "registry.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        + (f"auth:\n  htpasswd:\n    realm: nexusify-tests\n    path: {base / 'htpasswd'}\n" if users else "")
    )
    if users:
        (base / "htpasswd").write_text("".join(f"{name}:{_bcrypt_hash(pw)}\n" for name, pw in users.items()))
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on 127.0.0.1:5432 (trust auth); yields its URL; dropped afterwards."""
    import psycopg2

    name = "nx_" + secrets.token_hex(4)
    admin = psycopg2.connect(host="127.0.0.1", port=5432, dbname="postgres", connect_timeout=3)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://root@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
