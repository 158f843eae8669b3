"""The container engine: a Docker SDK client, and its command line where the SDK falls short.

The engine address comes from the deploy config's ``engine`` key, else ``DOCKER_HOST``, else
the Docker default socket. Podman's Docker-compatible API works unchanged through the SDK.

The SDK cannot pass BuildKit secrets (docker-py issue 2230), so builds that mount a secret
(a netrc for an index that needs credentials) go through the engine's CLI instead:
``podman --remote --url ... build --secret id=...,src=...`` or
``docker -H ... buildx build --secret ... --load``.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexusify.deploy.runtime import probe as engine_probe
from nexusify.deploy.runtime import tls as hosttls
from nexusify.deploy.runtime.sdk import Transient, guard
from nexusify.deploy.runtime.ssh_tunnel import SshTunnel
from nexusify.errors import DeployError
from nexusify.extras import require

DEFAULT_HOST = "unix:///var/run/docker.sock"
API_VERSION = "1.41"
LABEL_PREFIX = "io.nexusify"
LABEL_MANAGED = f"{LABEL_PREFIX}.managed"
LABEL_SERVICE = f"{LABEL_PREFIX}.service"
LABEL_VERSION = f"{LABEL_PREFIX}.version"
LABEL_ENVIRONMENT = f"{LABEL_PREFIX}.environment"
LABEL_CREATED = f"{LABEL_PREFIX}.created"
LABEL_SECRETS = f"{LABEL_PREFIX}.secret-versions"
LABEL_IMAGE = f"{LABEL_PREFIX}.image"
#: what an object nexusify made on a host is for: one of the ROLE_* values
LABEL_ROLE = f"{LABEL_PREFIX}.role"
ROLE_SERVICE = "service"
ROLE_PROXY = "proxy"
ROLE_LOCK = "lock"
ROLE_HISTORY = "history"
ROLE_PRIMARY = "primary"
ROLE_NETWORK = "network"
ROLE_MIGRATION = "migration"


def start_retrying(start: Callable[[], Any], tries: int = 3) -> Any:
    """``start()``, tried again after a short pause when the engine fails transiently
    (:class:`~nexusify.deploy.runtime.sdk.Transient`: netavark's iptables races)."""
    for attempt in range(tries):
        try:
            return start()
        except Transient:
            if attempt == tries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def engine_url(configured: str | None, env: Mapping[str, str]) -> str:
    """The engine address: config ``engine`` > ``DOCKER_HOST`` > the Docker default socket."""
    return (configured or env.get("DOCKER_HOST") or DEFAULT_HOST).strip()


@dataclass
class Engine:
    """A connected engine: the SDK client, its address and what it is (podman or docker)."""

    client: Any  # docker.DockerClient behind nexusify.deploy.runtime.sdk.guard: failures raise typed EngineErrors
    url: str
    on_close: list[Callable[[], None]] = field(default_factory=list)  # e.g. end an SSH tunnel

    @functools.cached_property
    def is_podman(self) -> bool:
        """Asked once, when a build needs the engine's own CLI (Podman's /version takes ~0.5 s)."""
        return engine_probe.is_podman(self.client)

    def cli_build_command(self) -> list[str]:
        """The CLI prefix for a build with BuildKit secrets, talking to the same engine."""
        if self.is_podman:
            exe = shutil.which("podman")
            if exe:
                return [exe, "--remote", "--url", self.url, "build"]
        exe = shutil.which("docker")
        if exe:
            return [exe, "-H", self.url, "buildx", "build", "--load"]
        raise DeployError(
            "this build needs a BuildKit secret or a named build context, which the Docker SDK cannot pass, and neither "
            "`podman` nor `docker` is on PATH",
            hint="install the engine's CLI (podman, or docker with buildx) on the deploying machine",
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            self.client.close()
        for hook in self.on_close:
            with contextlib.suppress(Exception):
                hook()
        self.on_close.clear()


def connect(configured: str | None, env: Mapping[str, str], timeout: int = 300, *, where: str | None = None) -> Engine:
    """Connect to the engine and check it answers; a clear error names the address (or ``where``)
    and the fix. One transport per scheme, for the build engine and every host alike: ``ssh://``
    through the system's ssh and a kept master (:mod:`nexusify.deploy.runtime.ssh_tunnel`), ``tcp://`` with
    TLS as ``env`` says (:mod:`nexusify.deploy.runtime.tls`), ``unix://`` directly."""
    url = engine_url(configured, env)
    if url.startswith("ssh://"):
        return _connect_ssh(url, env, timeout, where or f"the container engine at {url}")
    docker = require("deploy", "docker")
    # A fixed API version skips docker-py's /version round trip (slow on Podman: a rollback
    # is judged in seconds); 1.41 is served by dockerd >= 20.10 and Podman >= 3.
    if url.startswith("tcp://"):
        client = hosttls.open_client(url, where or f"the container engine at {url}", env, timeout=timeout,
                                           version=API_VERSION)
    else:
        try:
            client = docker.DockerClient(base_url=url, timeout=timeout, version=API_VERSION)
            engine_probe.ping(client)
        except Exception as exc:
            raise DeployError(
                f"{where or f'the container engine at {url}'} does not answer: {type(exc).__name__}: {exc}",
                hint="start the engine (dockerd, or `podman system service --time=0 unix:///PATH.sock`) "
                "and set DOCKER_HOST or `engine` in [tool.nexusify.deploy]",
            ) from exc
    return Engine(client=guard(client), url=url)


def _connect_ssh(url: str, env: Mapping[str, str], timeout: int, where: str) -> Engine:
    """The engine behind ``url`` over the SSH tunnel; the SDK only ever sees its local socket."""
    docker = require("deploy", "docker")
    tunnel = SshTunnel(url, env, where)
    local = tunnel.open()
    try:
        client = docker.DockerClient(base_url=local, timeout=timeout, version=API_VERSION)
        engine_probe.ping(client)
    except Exception as exc:
        tunnel.close()
        raise DeployError(f"{where}: the engine does not answer through ssh: {type(exc).__name__}: {exc}",
                          hint="on the host, the engine must run and its socket be readable by the ssh user") from None
    return Engine(client=guard(client), url=local, on_close=[tunnel.close])


__all__ = [
    "LABEL_CREATED",
    "LABEL_ENVIRONMENT",
    "LABEL_IMAGE",
    "LABEL_MANAGED",
    "LABEL_ROLE",
    "LABEL_SECRETS",
    "LABEL_SERVICE",
    "LABEL_VERSION",
    "ROLE_HISTORY",
    "ROLE_LOCK",
    "ROLE_MIGRATION",
    "ROLE_NETWORK",
    "ROLE_PRIMARY",
    "ROLE_PROXY",
    "ROLE_SERVICE",
    "Engine",
    "connect",
    "engine_url",
    "start_retrying",
]
