"""The traffic switch: where a service's requests go, and how they move without dropping any.

A :class:`TrafficSwitch` has three operations: :meth:`~TrafficSwitch.current` (the target now
serving), :meth:`~TrafficSwitch.point_to` (send new requests to another target; returns once
the change is live) and :meth:`~TrafficSwitch.drain` (wait until requests still in flight on
the old target have finished). Blue-green deploys and rollbacks only use these three.

:class:`NginxSwitch` implements it with a private nginx (``nginx -c CONF -p PREFIX``) on a
loopback or host port: the upstream of each service lives in its own file, written
atomically, checked with ``nginx -t``, and activated with ``nginx -s reload``, which is
graceful: new workers take new connections while the old workers finish the requests they
hold and exit. ``drain`` waits for exactly those old workers.

Other implementations, for users who outgrow one host:

- Kubernetes: ``current`` reads the Service's selector (``version: blue``); ``point_to``
  patches the selector to the green Deployment's labels once its pods are Ready; ``drain``
  waits ``terminationGracePeriodSeconds`` (endpoints are removed before pods get SIGTERM).
- Argo Rollouts (``strategy.blueGreen``): ``point_to`` promotes the rollout
  (``kubectl argo rollouts promote``), which swaps the active Service; ``drain`` waits for
  ``scaleDownDelaySeconds``.
- Amazon ECS behind an ALB: ``point_to`` modifies the listener rule's forward action to the
  green target group (or lets CodeDeploy's blue/green shift it); ``drain`` waits for the blue
  target group's deregistration delay.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nexusify.errors import DeployError
from nexusify.files import write_atomic
from nexusify.processes import pid_alive


@dataclass(frozen=True)
class Target:
    """One backend a service's traffic can be pointed at (a container on a host port)."""

    host: str
    port: int
    name: str = ""  # the container name
    version: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        return cls(host=str(data["host"]), port=int(data["port"]), name=str(data.get("name", "")),
                   version=str(data.get("version", "")))


@runtime_checkable
class TrafficSwitch(Protocol):
    """Where one service's traffic goes."""

    def current(self) -> Target | None:
        """The target serving now, or None before the first deploy."""

    def point_to(self, target: Target) -> None:
        """Send new requests to ``target``; returns once the change is live. Raises DeployError."""

    def drain(self, timeout: float) -> bool:
        """Wait until requests that were in flight on the previous target have finished.

        Returns False if ``timeout`` passed first (the old target may still hold requests).
        """

    def ensure_serving(self) -> None:
        """Make the switch serve what it records (start it, or reload it after a kill mid-switch)."""


@dataclass(frozen=True)
class Route:
    """How a service is reached through the proxy: a listen address and a path prefix."""

    listen: str  # "127.0.0.1:8080" or "8080"
    path: str = "/"


_SAFE = re.compile(r"[^A-Za-z0-9_]")
_TARGET_LINE = re.compile(r"^# nexusify-target: (\{.*\})$", re.MULTILINE)


def _upstream_name(service: str) -> str:
    return "nx_" + _SAFE.sub("_", service)


def find_nginx(configured: str | None = None) -> str:
    for candidate in (configured, shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise DeployError("nginx is not installed (looked on PATH and in /usr/sbin)",
                      hint="install it (`apt-get install nginx-light`) or set `nginx` in the proxy config")


class NginxProxy:
    """The nginx of one environment: its files, process, reloads and worker bookkeeping.

    nexusify always writes ``<conf_dir>/nexusify.conf`` (the server blocks of the routes, plus
    an include of ``<conf_dir>/upstreams/*.conf``, one file per service: the switch).

    - Managed (no ``conf`` given): a private nginx, ``nginx -c <conf_dir>/nginx.conf -p
      <prefix>``, whose main config nexusify generates and which it starts when not running.
    - External (``conf`` given): your nginx, whose ``http {}`` includes
      ``<conf_dir>/nexusify.conf``; nexusify checks (``nginx -t``) and reloads it, never starts it.
    """

    def __init__(self, conf_dir: Path, routes: dict[str, Route], *, conf: Path | None = None,
                 prefix: Path | None = None, nginx: str | None = None, drain_timeout: float = 30.0,
                 reload_timeout: float = 10.0) -> None:
        self.conf_dir = Path(conf_dir).resolve()
        self.managed = conf is None
        self.conf = Path(conf).resolve() if conf is not None else self.conf_dir / "nginx.conf"
        self.prefix = Path(prefix).resolve() if prefix is not None else (self.conf_dir if self.managed else None)
        self.routes = dict(routes)
        self.nginx = nginx
        self.drain_timeout = drain_timeout
        self.reload_timeout = reload_timeout
        self._old_workers: set[int] = set()
        self._pid_path: Path | None = None

    # ------------------------------------------------------------------ files

    @property
    def include_file(self) -> Path:
        return self.conf_dir / "nexusify.conf"

    @property
    def pid_file(self) -> Path:
        if self.managed:
            return self.conf_dir / "nginx.pid"
        return self._external_pid_file()

    def _external_pid_file(self) -> Path:
        if self._pid_path is not None:
            return self._pid_path
        proc = subprocess.run(self._cmd("-T", "-q"), capture_output=True, text=True, check=False)
        m = re.search(r"^\s*pid\s+([^;]+);", proc.stdout, re.MULTILINE)
        pid = m.group(1).strip() if m else "/run/nginx.pid"
        p = Path(pid)
        self._pid_path = p if p.is_absolute() or self.prefix is None else self.prefix / p
        return self._pid_path

    def upstream_file(self, service: str) -> Path:
        return self.conf_dir / "upstreams" / f"{_SAFE.sub('_', service)}.conf"

    @property
    def error_log(self) -> Path:
        return self.conf_dir / "logs" / "error.log"

    def render_include(self) -> str:
        by_listen: dict[str, list[tuple[str, str]]] = {}
        for service, route in sorted(self.routes.items()):
            by_listen.setdefault(route.listen, []).append((route.path, service))
        servers = []
        for listen, locations in by_listen.items():
            blocks = []
            for path, service in sorted(locations, key=lambda x: -len(x[0])):
                action = (f"proxy_pass http://{_upstream_name(service)};"
                          if self.upstream_file(service).is_file() else "return 503;  # not deployed yet")
                blocks.append(f"    location {path} {{\n        {action}\n    }}\n")
            if all(path != "/" for path, _ in locations):
                blocks.append("    location / {\n        return 404;  # no service has this route\n    }\n")
            servers.append(f"server {{\n    listen {listen};\n" + "".join(blocks) + "}\n")
        return (
            "# Generated by nexusify; the upstreams/ files are the traffic switch. Do not edit.\n"
            f"include {self.conf_dir}/upstreams/*.conf;\n" + "".join(servers)
        )

    def render_conf(self) -> str:
        drain = max(1, int(self.drain_timeout))
        return (
            "# Generated by nexusify: a private nginx for blue-green switching. Do not edit.\n"
            "worker_processes 1;\n"
            f"pid {self.conf_dir}/nginx.pid;\n"
            f"error_log {self.error_log} warn;\n"
            f"worker_shutdown_timeout {drain}s;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    access_log off;\n"
            f"    client_body_temp_path {self.conf_dir}/tmp/client_body;\n"
            f"    proxy_temp_path {self.conf_dir}/tmp/proxy;\n"
            f"    fastcgi_temp_path {self.conf_dir}/tmp/fastcgi;\n"
            f"    uwsgi_temp_path {self.conf_dir}/tmp/uwsgi;\n"
            f"    scgi_temp_path {self.conf_dir}/tmp/scgi;\n"
            "    proxy_http_version 1.1;\n"
            "    proxy_set_header Connection \"\";\n"
            "    proxy_set_header Host $host;\n"
            "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "    proxy_connect_timeout 5s;\n"
            "    proxy_next_upstream off;\n"
            f"    include {self.include_file};\n"
            "}\n"
        )

    def prepare(self) -> None:
        for sub in ("upstreams", "logs", "tmp"):
            (self.conf_dir / sub).mkdir(parents=True, exist_ok=True)
        wanted = [(self.include_file, self.render_include())]
        if self.managed:
            wanted.append((self.conf, self.render_conf()))
        for path, text in wanted:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                write_atomic(path, text)

    # ------------------------------------------------------------------ process

    def _cmd(self, *extra: str) -> list[str]:
        cmd = [find_nginx(self.nginx), "-c", str(self.conf)]
        if self.prefix is not None:
            cmd += ["-p", f"{self.prefix}/"]
        if self.managed:
            cmd += ["-e", str(self.error_log)]
        return [*cmd, *extra]

    def master_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():
            try:
                if b"nginx" not in cmdline.read_bytes():
                    return None  # a stale pid file whose number was reused
            except OSError:
                return None
        return pid

    def running(self) -> bool:
        return self.master_pid() is not None

    def workers(self) -> set[int]:
        """Pids of the master's children (its worker processes), read from /proc."""
        master = self.master_pid()
        if master is None:
            return set()
        found: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ")"
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1 and fields[1] == str(master):
                found.add(int(entry.name))
        return found

    def test_config(self) -> None:
        proc = subprocess.run(self._cmd("-t", "-q"), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DeployError(f"nginx rejected the configuration: {proc.stderr.strip() or proc.stdout.strip()}",
                              path=self.conf, hint="the previous upstream was restored; traffic did not move")

    def ensure_running(self) -> None:
        """Write the config and start nginx if it is not running (idempotent)."""
        self.prepare()
        if self.running():
            return
        if not self.managed:
            raise DeployError(f"the nginx of {self.conf} is not running",
                              hint="start it (nexusify only starts the private nginx it manages)")
        self.test_config()
        proc = subprocess.run(self._cmd(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DeployError(f"nginx did not start: {proc.stderr.strip()}", path=self.conf,
                              hint=f"is the listen port free? see {self.error_log}")
        deadline = time.monotonic() + self.reload_timeout
        while not self.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        for route in self.routes.values():
            self._wait_listening(route.listen, deadline)

    def _wait_listening(self, listen: str, deadline: float) -> None:
        host, _, port = listen.rpartition(":")
        host = host or "127.0.0.1"
        if host in ("0.0.0.0", "*", "[::]"):
            host = "127.0.0.1"
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, int(port)), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise DeployError(f"nginx is not listening on {listen}", hint=f"see {self.error_log}")

    def reload(self) -> None:
        """Graceful reload; returns once new workers run the new config."""
        self.prepare()
        if not self.running():
            self.ensure_running()
            self._old_workers = set()
            return
        self.test_config()
        before = self.workers()
        master = self.master_pid()
        assert master is not None
        os.kill(master, signal.SIGHUP)  # what `nginx -s reload` sends
        deadline = time.monotonic() + self.reload_timeout
        while time.monotonic() < deadline:
            now = self.workers()
            if now - before:
                self._old_workers |= before
                break
            time.sleep(0.01)
        else:
            raise DeployError("nginx did not start new workers after the reload",
                              hint=f"see {self.error_log}")
        # The master starts the new workers first and only then tells the old ones to quit; until
        # then both accept connections. Return once no old worker accepts any more, so the caller
        # knows every new connection reaches the new upstream.
        while time.monotonic() < deadline:
            if all(not _accepting(pid) for pid in before):
                return
            time.sleep(0.005)
        raise DeployError("nginx's old workers did not start shutting down after the reload",
                          hint=f"see {self.error_log}")

    def drain(self, timeout: float) -> bool:
        """Wait until the workers that ran the previous config have exited."""
        deadline = time.monotonic() + timeout
        while True:
            alive = {p for p in self._old_workers if pid_alive(p) and _is_child(p, self.master_pid())}
            self._old_workers = alive
            if not alive:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful quit (used by tests and `nexusify deploy --stop-proxy` style tooling)."""
        master = self.master_pid()
        if master is None:
            return
        os.kill(master, signal.SIGQUIT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(master):
                return
            time.sleep(0.02)
        os.kill(master, signal.SIGKILL)

    def switch(self, service: str) -> NginxSwitch:
        return NginxSwitch(self, service)


def _accepting(pid: int) -> bool:
    """True while a worker still takes new connections (not exited, not "shutting down")."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return bool(title) and b"shutting down" not in title


def _is_child(pid: int, master: int | None) -> bool:
    if master is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return len(fields) > 1 and fields[1] == str(master) and fields[0] != "Z"


def require_route(routes: Mapping[str, Route], service: str) -> None:
    """The one check every switch makes first: a service without a proxy route cannot be switched."""
    if service not in routes:
        raise DeployError(f"service {service!r} has no proxy route", hint="give it `public-port` or `route`")


class NginxSwitch:
    """The :class:`TrafficSwitch` of one service behind a :class:`NginxProxy`."""

    def __init__(self, proxy: NginxProxy, service: str) -> None:
        require_route(proxy.routes, service)
        self.proxy = proxy
        self.service = service

    def current(self) -> Target | None:
        path = self.proxy.upstream_file(self.service)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        m = _TARGET_LINE.search(text)
        if not m:
            return None
        try:
            return Target.from_dict(json.loads(m.group(1)))
        except (ValueError, KeyError, TypeError):
            return None

    def render(self, target: Target) -> str:
        return (
            f"# nexusify-target: {json.dumps(target.to_dict(), sort_keys=True)}\n"
            f"upstream {_upstream_name(self.service)} {{\n"
            f"    server {target.address} max_fails=0;\n"
            "}\n"
        )

    def point_to(self, target: Target) -> None:
        path = self.proxy.upstream_file(self.service)
        path.parent.mkdir(parents=True, exist_ok=True)
        previous = path.read_bytes() if path.is_file() else None
        write_atomic(path, self.render(target))
        try:
            self.proxy.prepare()
            self.proxy.test_config()
        except BaseException:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, previous)
            raise
        self.proxy.reload()

    def drain(self, timeout: float) -> bool:
        return self.proxy.drain(timeout)

    def ensure_serving(self) -> None:
        """Make the running nginx serve what the upstream files say (recovery after a kill)."""
        if self.proxy.running():
            self.proxy.reload()
        else:
            self.proxy.ensure_running()


__all__ = ["NginxProxy", "NginxSwitch", "Route", "Target", "TrafficSwitch", "find_nginx", "require_route"]
