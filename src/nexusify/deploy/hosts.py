"""The hosts of an environment: where its containers run, and how nexusify reaches each engine.

``[deploy.environments.NAME] hosts = [...]`` lists engines by address, as ``DOCKER_HOST`` does:
``ssh://user@host[:port]`` (the system's ssh client and keys), ``tcp://host:2376`` (TLS from
``DOCKER_CERT_PATH`` / ``DOCKER_TLS_VERIFY``, as the docker CLI reads them: :mod:`~nexusify.deploy.hosttls`) and
``unix:///path.sock``. A table ``{url = "...", bind = "10.0.0.5"}`` also names the address the
host's proxy publishes on. Without ``hosts`` the single engine of ``[deploy] engine`` serves.

SSH: docker-py's own ssh mode opens one SSH connection per API call (~0.35 s each), far too slow
for a rollback judged in seconds. :func:`connect_host` opens ONE master connection per host
(``ControlMaster``), whose session says where the host's engine listens (``$DOCKER_HOST`` of the SSH
session, else ``/var/run/docker.sock``) and forwards a private local socket to it (``ssh -O forward -L``);
the SDK then talks HTTP with keep-alive over that socket. The master is kept for the next
command (:mod:`~nexusify.deploy.ssh_master`, ``NEXUSIFY_SSH_PERSIST`` seconds idle, default 300;
``0``: :meth:`Engine.close` ends it); each command cancels its own forward when it ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nexusify.deploy import engine_probe, ssh_master
from nexusify.deploy.engine import API_VERSION, Engine, connect
from nexusify.errors import DeployError
from nexusify.extras import require

HOST_SCHEMES = ("ssh", "tcp", "unix")
DEFAULT_REMOTE_ENGINE = "unix:///var/run/docker.sock"
SSH_CONNECT_TIMEOUT = 10
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
    if spec.scheme == "ssh":
        return _connect_ssh(spec, env, timeout)
    return connect(spec.url, env, timeout, where=f"host {spec.name}")


def network_name(environment: str) -> str:
    """The network nexusify owns on every host of ``environment`` (services and proxy share it)."""
    return f"nexusify-{environment}"


def proxy_name(environment: str) -> str:
    """The proxy container of ``environment`` on every host."""
    return f"nexusify-{environment}-proxy"


def _engine_of(client: Any, url: str) -> Engine:
    engine_probe.ping(client)
    return Engine(client=client, url=url)


class SshTunnel:
    """One SSH master connection to a host and a local socket forwarded to its engine."""

    def __init__(self, spec: HostSpec, env: Mapping[str, str]) -> None:
        self.spec = spec
        parts = urlsplit(spec.url)
        self.target = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
        self.port = parts.port
        self.dir = Path(tempfile.mkdtemp(prefix="nexusify-ssh-"))
        self.persist = ssh_master.persist_seconds(env)
        # a kept master (see ssh_master) is shared by the commands of the next minutes; else one of our own
        self.control = (ssh_master.control_path(self.target, self.port, env) if self.persist
                        else self.dir / "control")
        self.local = self.dir / "engine.sock"
        self.forwarded = ""  # the -L spec this command added to the master (cancelled on close)
        self.ssh = shutil.which("ssh", path=env.get("PATH") or os.environ.get("PATH"))
        self.master: subprocess.Popen[bytes] | None = None

    def _base(self) -> list[str]:
        if self.ssh is None:
            raise DeployError(f"host {self.spec.name}: no `ssh` client on PATH",
                              hint="install OpenSSH's client (apt-get install openssh-client)")
        cmd = [self.ssh, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}",
               "-S", str(self.control)]
        if self.port:
            cmd += ["-p", str(self.port)]
        return cmd

    def _run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*self._base(), *args], capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeployError(f"host {self.spec.name}: ssh did not answer within {timeout:g}s",
                              hint="check the host is reachable: ssh " + self.target) from None

    def open(self) -> str:
        """Start (or reuse) the master, forward the local socket; return the local engine URL."""
        line = self._kept_master() if self.persist else self._own_master()
        return self._forward(line)

    def _kept_master(self) -> str:
        """The kept master (started when none answers); its engine line, cached beside its socket."""
        engine_file = self.control.with_suffix(".engine")
        if self.control.exists() and ssh_master.alive(self._base(), self.target) and engine_file.is_file():
            return engine_file.read_text(encoding="utf-8").strip()
        code, said = ssh_master.start(self._base(), self.target, self.persist, self.dir / "master.err",
                                      SSH_CONNECT_TIMEOUT + 5)
        if code != 0:
            self.close()
            raise DeployError(f"host {self.spec.name}: ssh failed: {said or 'no answer'}",
                              hint=f"`ssh {self.target}` must log in without a prompt (a key in ssh-agent or "
                              "~/.ssh/config, the host key in known_hosts)")
        proc = self._run(self.target, 'printf "nexusify-engine=%s\\n" "${DOCKER_HOST:-}"')
        line = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else proc.stderr.strip()
        if line.startswith("nexusify-engine="):
            engine_file.write_text(line + "\n", encoding="utf-8")
        return line

    def _own_master(self) -> str:
        """A master of this command only: its own session prints the host's ``$DOCKER_HOST`` and
        then idles, so finding the engine costs no second session (~0.3 s each)."""
        self.master = subprocess.Popen(
            [*self._base(), "-M", "-o", "ControlPersist=no", self.target,
             'printf "nexusify-engine=%s\\n" "${DOCKER_HOST:-}"; exec cat >/dev/null'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._first_line(SSH_CONNECT_TIMEOUT + 5)
        if not line.startswith("nexusify-engine=") and self.master.poll() is not None and self.master.stderr:
            line = self.master.stderr.read().decode("utf-8", "replace").strip() or line
        return line

    def _forward(self, line: str) -> str:
        if not line.startswith("nexusify-engine="):
            self.close()
            raise DeployError(f"host {self.spec.name}: ssh failed: {line or 'no answer'}",
                              hint=f"`ssh {self.target}` must log in without a prompt (a key in ssh-agent or "
                              "~/.ssh/config, the host key in known_hosts)")
        engine = line.removeprefix("nexusify-engine=").strip() or DEFAULT_REMOTE_ENGINE
        if engine.startswith("unix://"):
            dest = engine[len("unix://"):]
        elif engine.startswith("tcp://"):
            dest = engine[len("tcp://"):]
        else:
            self.close()
            raise DeployError(f"host {self.spec.name}: its DOCKER_HOST is {engine!r}; nexusify forwards unix:// "
                              "and tcp:// engines only", hint="point DOCKER_HOST on the host at the engine socket")
        fwd = self._run("-O", "forward", "-o", "StreamLocalBindUnlink=yes", "-L", f"{self.local}:{dest}", self.target)
        if fwd.returncode == 0:
            self.forwarded = f"{self.local}:{dest}"
        else:
            self.close()
            raise DeployError(f"host {self.spec.name}: could not forward its engine socket {dest}: "
                              f"{fwd.stderr.strip()}", hint="is AllowStreamLocalForwarding off in the host's sshd?")
        deadline = time.monotonic() + 5
        while not self.local.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        return f"unix://{self.local}"

    def _first_line(self, timeout: float) -> str:
        assert self.master is not None and self.master.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.master.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in buf and time.monotonic() < deadline:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(self.master.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            sel.close()
        return buf.decode("utf-8", "replace").partition("\n")[0]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.persist and self.forwarded:  # the kept master stays; this command's forward goes
                self._run("-O", "cancel", "-L", self.forwarded, self.target, timeout=10)
            elif not self.persist and self.control.exists():
                self._run("-O", "exit", self.target, timeout=10)
        if self.master is not None:
            with contextlib.suppress(Exception):
                if self.master.stdin is not None:
                    self.master.stdin.close()
                self.master.wait(5)
            if self.master.poll() is None:
                self.master.kill()
                self.master.wait()
            for stream in (self.master.stdout, self.master.stderr):
                if stream is not None:
                    stream.close()
            self.master = None
        shutil.rmtree(self.dir, ignore_errors=True)


def _connect_ssh(spec: HostSpec, env: Mapping[str, str], timeout: int) -> Engine:
    docker = require("deploy", "docker")
    tunnel = SshTunnel(spec, env)
    local = tunnel.open()
    try:
        client = docker.DockerClient(base_url=local, timeout=timeout, version=API_VERSION)
        engine = _engine_of(client, local)
    except Exception as exc:
        tunnel.close()
        raise DeployError(f"host {spec.name}: the engine does not answer through ssh: {type(exc).__name__}: {exc}",
                          hint="on the host, the engine must run and its socket be readable by the ssh user") from None
    engine.on_close.append(tunnel.close)
    return engine


__all__ = [
    "HOST_SCHEMES", "HostSpec", "SshTunnel", "bind_problem", "connect_host", "host_url_problem", "network_name",
    "proxy_name",
]
