"""The hosts of an environment: where its containers run, and how nexusify reaches each engine.

``[deploy.environments.NAME] hosts = [...]`` lists engines by address, as ``DOCKER_HOST`` does:
``ssh://user@host[:port]`` (the system's ssh client and keys), ``tcp://host:2376`` (TLS from
``DOCKER_CERT_PATH`` / ``DOCKER_TLS_VERIFY``, as the docker CLI reads them: :mod:`~nexusify.deploy.runtime.tls`) and
``unix:///path.sock``. A table ``{url = "...", bind = "10.0.0.5"}`` also names the address the
host's proxy publishes on. Without ``hosts`` the single engine of ``[deploy] engine`` serves.

Every scheme is reached as ``[deploy] engine`` is (:func:`nexusify.deploy.runtime.engine.connect`): ssh
over ONE master connection per host and a forwarded local socket (:mod:`~nexusify.deploy.runtime.ssh_tunnel`,
the master kept ``NEXUSIFY_SSH_PERSIST`` seconds for the next command), tcp with TLS, unix directly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from nexusify.deploy.runtime.engine import Engine, connect

HOST_SCHEMES = ("ssh", "tcp", "unix")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_:][A-Za-z0-9_.:%-]*$")


@dataclass(frozen=True)
class HostSpec:
    """One host of an environment: its engine address, and the address its proxy publishes on
    (``bind``; None: all addresses)."""

    url: str
    bind: str | None = None

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def name(self) -> str:
        """A short display name: ``root@127.0.0.2:2222``, ``10.0.0.7:2376``, ``/run/podman.sock``."""
        rest = self.url.split("://", 1)[-1]
        return rest if self.scheme != "unix" else rest or self.url


def host_url_problem(url: str) -> str | None:
    """What is wrong with a host address (None: nothing); one rule for the config and the code."""
    if "://" not in url:
        return f"expected ssh://user@host[:port], tcp://host:port or unix:///path, got {url!r}"
    scheme, rest = url.split("://", 1)
    if scheme not in HOST_SCHEMES:
        return f"unknown scheme {scheme!r} in {url!r} (one of: {', '.join(HOST_SCHEMES)})"
    if scheme == "unix":
        return None if rest.startswith("/") else f"expected an absolute socket path, got {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid address {url!r}: {exc}"
    if not parts.hostname:
        return f"no host name in {url!r}"
    # what reaches the ssh command line must never read as an option (``ssh://-oProxyCommand=...``)
    if not _SAFE_NAME.match(parts.hostname) or (parts.username and not _SAFE_NAME.match(parts.username)):
        return f"unexpected characters in the user or host of {url!r}"
    if parts.password:
        return "holds a password; use SSH keys (the ssh client's agent or ~/.ssh/config)"
    if parts.path not in ("", "/") or parts.query:
        return f"expected no path or query in {url!r}"
    if scheme == "tcp" and port is None:
        return f"expected a port in {url!r} (e.g. tcp://host:2376)"
    return None


def bind_problem(bind: str) -> str | None:
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        return f"expected an IP address for bind, got {bind!r}"
    return None


def connect_host(spec: HostSpec, env: Mapping[str, str], timeout: int = 300) -> Engine:
    """Connect to one host's engine (ssh: over one multiplexed SSH connection; tcp: with the TLS
    settings of ``env``; unix: directly). DeployError names the host and what to check."""
    return connect(spec.url, env, timeout, where=f"host {spec.name}")


def network_name(environment: str) -> str:
    """The network nexusify owns on every host of ``environment`` (services and proxy share it)."""
    return f"nexusify-{environment}"


def proxy_name(environment: str) -> str:
    """The proxy container of ``environment`` on every host."""
    return f"nexusify-{environment}-proxy"


__all__ = [
    "HOST_SCHEMES", "HostSpec", "bind_problem", "connect_host", "host_url_problem", "network_name",
    "proxy_name",
]
