"""The proxy as a container on each host (``proxy.kind = "container"``): an nginx that nexusify
creates on first deploy as ``nexusify-<env>-proxy``, on the network ``nexusify-<env>`` it shares with
the service containers (which publish no ports), publishing each listen port on the host's ``bind``.

Its configuration is nexusify's own, written into the container through the engine
(``put_archive``) under ``/etc/nexusify``: ``nginx.conf`` (run with ``nginx -c``, so any nginx image
works), ``nexusify.conf`` (server blocks) and ``upstreams/<service>.conf`` (the switch). A switch
writes the upstream, runs ``nginx -t`` and a graceful reload through the engine's exec, and
returns once the old workers stopped accepting; :meth:`ContainerSwitch.drain` waits until they
exited. Upstreams name container IPs, never container names: aardvark-dns may drop a query while
it reloads (containers/aardvark-dns#389) and a failed lookup fails ``nginx -t``.

Health probes of containers that publish no port run inside the proxy container (curl, wget, or
bash's /dev/tcp, whichever the image has), which is on the same network.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
import time
from collections.abc import Callable, Mapping
from typing import Any

from nexusify.deploy.runtime.engine import (
    LABEL_ENVIRONMENT,
    LABEL_MANAGED,
    LABEL_ROLE,
    ROLE_NETWORK,
    ROLE_PROXY,
    Engine,
    start_retrying,
)
from nexusify.deploy.runtime.hosts import network_name, proxy_name
from nexusify.deploy.runtime.sdk import Conflict, EngineError, NotFound
from nexusify.deploy.traffic.switch import Route, Target, require_route
from nexusify.errors import DeployError

CONF_DIR = "/etc/nexusify"
PID_FILE = "/tmp/nexusify-nginx.pid"
_SAFE = re.compile(r"[^A-Za-z0-9_]")
_EXIT_MARK = "@nexusify-exit "  # the last line of an exec's output: its script's exit code
_TARGET_LINE = re.compile(r"^# nexusify-target: (\{.*\})$", re.MULTILINE)

# Workers of the master (children, by /proc/*/stat's ppid): POSIX sh, for dash and busybox ash.
_WORKERS = ('workers() { m=$(cat ' + PID_FILE + '); for s in /proc/[0-9]*/stat; do '
            'read -r p c st pp rest < "$s" 2>/dev/null || continue; [ "$pp" = "$m" ] && printf "%s " "$p"; done; }; ')
RELOAD_SCRIPT = (
    _WORKERS + f'nginx -t -q -c {CONF_DIR}/nginx.conf 2>&1 || exit 3; '
    'before=$(workers); kill -HUP "$(cat ' + PID_FILE + ')"; i=0; '
    'while :; do new=; for p in $(workers); do case " $before " in *" $p "*) ;; *) new=1;; esac; done; '
    '[ -n "$new" ] && break; i=$((i+1)); [ $i -gt 1000 ] && { echo "no new workers"; exit 4; }; sleep 0.01; done; '
    'i=0; while :; do busy=; for p in $before; do [ -r /proc/$p/cmdline ] && ! grep -q "shutting down" '
    '/proc/$p/cmdline 2>/dev/null && [ -d /proc/$p ] && busy=1; done; [ -z "$busy" ] && break; '
    'i=$((i+1)); [ $i -gt 1000 ] && { echo "old workers still accept"; exit 5; }; sleep 0.01; done; '
    # most often the old workers have exited a moment later: say so, and drain() costs no exec
    'i=0; while [ $i -lt 10 ]; do alive=; for p in $before; do [ -d /proc/$p ] && '
    '! grep -q "^State:.*Z" /proc/$p/status 2>/dev/null && alive=1; done; '
    '[ -z "$alive" ] && { echo DRAINED; exit 0; }; i=$((i+1)); sleep 0.01; done; echo "OLD $before"'
)


def _drain_script(pids: str, timeout: float) -> str:
    rounds = max(1, int(timeout / 0.05))
    return (f'i=0; while [ $i -lt {rounds} ]; do alive=; for p in {pids}; do '
            '[ -d /proc/$p ] && ! grep -q "^State:.*Z" /proc/$p/status 2>/dev/null && alive=1; done; '
            '[ -z "$alive" ] && exit 0; i=$((i+1)); sleep 0.05; done; exit 1')


def _probe_script(host: str, port: int, path: str, tries: int = 20) -> str:
    """GET the health path from inside the proxy, retrying for about a second within one exec (an
    exec costs ~0.1-0.3 s; a restarted app takes a few tenths of a second to listen)."""
    url = shlex.quote(f"http://{host}:{port}{path}")
    raw = shlex.quote(f"exec 3<>/dev/tcp/{host}/{port}; printf 'GET {path} HTTP/1.0\\r\\nHost: probe\\r\\n\\r\\n' >&3; "
                      "read -r v code rest <&3; echo $code")
    one = ("if command -v curl >/dev/null 2>&1; then curl -s -o /dev/null -m 2 -w '%{http_code}' " + url + "; "
           "elif command -v wget >/dev/null 2>&1; then wget -q -T 2 -O /dev/null " + url
           + " && echo 200 || echo 000; "
           "elif command -v bash >/dev/null 2>&1; then timeout 2 bash -c " + raw + " 2>/dev/null || echo 000; "
           "else echo 'no-client'; fi")
    return (f"i=0; while :; do code=$({one}); case \"$code\" in 2??|3??|no-client) echo \"$code\"; exit 0;; esac; "
            f"i=$((i+1)); [ $i -ge {tries} ] && {{ echo \"$code\"; exit 0; }}; sleep 0.05; done")


def _upstream_name(service: str) -> str:
    return "nx_" + _SAFE.sub("_", service)


def _tar(files: Mapping[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ContainerProxy:
    """The nginx container of one environment on one host."""

    def __init__(self, engine: Engine, environment: str, routes: Mapping[str, Route], *, image: str,
                 bind: str | None = None, drain_timeout: float = 5.0, host: str = "",
                 on_event: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.client = engine.client
        self.environment = environment
        self.routes = dict(routes)
        self.image = image
        self.bind = bind
        self.drain_timeout = drain_timeout
        self.host = host  # display name, for messages
        self.name = proxy_name(environment)
        self.network = network_name(environment)
        self._event = on_event or (lambda _m: None)
        self._targets: dict[str, Target] | None = None
        self._old_workers = ""
        self._live: Any | None = None  # the proxy container, once this command saw it running

    def _labels(self, role: str) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_ENVIRONMENT: self.environment, LABEL_ROLE: role}

    def _where(self) -> str:
        return f"host {self.host}: " if self.host else ""

    # ------------------------------------------------------------------ files

    def render_conf(self) -> str:
        drain = max(1, int(self.drain_timeout))
        return (
            "# Generated by nexusify: the blue-green proxy of this environment. Do not edit.\n"
            "worker_processes 1;\n"
            f"pid {PID_FILE};\n"
            "error_log stderr warn;\n"
            f"worker_shutdown_timeout {drain}s;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    access_log off;\n"
            "    client_body_temp_path /tmp/nx_client_body;\n"
            "    proxy_temp_path /tmp/nx_proxy;\n"
            "    fastcgi_temp_path /tmp/nx_fastcgi;\n"
            "    uwsgi_temp_path /tmp/nx_uwsgi;\n"
            "    scgi_temp_path /tmp/nx_scgi;\n"
            "    proxy_http_version 1.1;\n"
            "    proxy_set_header Connection \"\";\n"
            "    proxy_set_header Host $host;\n"
            "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "    proxy_connect_timeout 5s;\n"
            "    proxy_next_upstream off;\n"
            f"    include {CONF_DIR}/upstreams/*.conf;\n"
            f"    include {CONF_DIR}/nexusify.conf;\n"
            "}\n"
        )

    def ports(self) -> list[int]:
        return sorted({int(r.listen.rpartition(":")[2]) for r in self.routes.values()})

    def render_include(self, targets: Mapping[str, Target]) -> str:
        by_port: dict[int, list[tuple[str, str]]] = {}
        for service, route in sorted(self.routes.items()):
            by_port.setdefault(int(route.listen.rpartition(":")[2]), []).append((route.path, service))
        servers = []
        for port, locations in sorted(by_port.items()):
            blocks = []
            for path, service in sorted(locations, key=lambda x: -len(x[0])):
                action = (f"proxy_pass http://{_upstream_name(service)};" if service in targets
                          else "return 503;  # not deployed yet")
                blocks.append(f"    location {path} {{\n        {action}\n    }}\n")
            if all(path != "/" for path, _ in locations):
                blocks.append("    location / {\n        return 404;  # no service has this route\n    }\n")
            servers.append(f"server {{\n    listen {port};\n" + "".join(blocks) + "}\n")
        return "# Generated by nexusify; upstreams/ holds the traffic switch. Do not edit.\n" + "".join(servers)

    @staticmethod
    def render_upstream(service: str, target: Target) -> str:
        """The switch of one service; the first line names service and target, read back by :meth:`targets`."""
        data = {"service": service, **target.to_dict()}
        return (f"# nexusify-target: {json.dumps(data, sort_keys=True)}\n"
                f"upstream {_upstream_name(service)} {{\n    server {target.address} max_fails=0;\n}}\n")

    def _files(self, targets: Mapping[str, Target]) -> dict[str, str]:
        files = {"nginx.conf": self.render_conf(), "nexusify.conf": self.render_include(targets)}
        for service, target in targets.items():
            files[f"upstreams/{_SAFE.sub('_', service)}.conf"] = self.render_upstream(service, target)
        return files

    def _put(self, container: Any, files: Mapping[str, str], *, remove: tuple[str, ...] = ()) -> None:
        if remove:
            self._exec(container, "rm -f " + " ".join(shlex.quote(f"{CONF_DIR}/{r}") for r in remove))
        ok = container.put_archive(CONF_DIR, _tar(files))
        if not ok:
            raise DeployError(f"{self._where()}could not write the proxy configuration into {self.name}")

    # ------------------------------------------------------------------ container

    def container(self) -> Any | None:
        try:
            return self.client.containers.get(self.name)
        except NotFound:
            return None

    def ensure_network(self) -> None:
        try:
            self.client.networks.get(self.network)
            return
        except NotFound:
            pass
        try:
            self.client.networks.create(self.network, driver="bridge", labels=self._labels(ROLE_NETWORK))
        except Conflict:  # created meanwhile by another deploy: the same network
            pass
        except EngineError as exc:
            raise DeployError(f"{self._where()}could not create the network {self.network}: {exc.message}") from None

    def _ensure_image(self) -> None:
        try:
            self.client.images.get(self.image)
            return
        except NotFound:
            pass
        self._event(f"{self._where()}pulling the proxy image {self.image}")
        try:
            self.client.images.pull(self.image)
        except EngineError as exc:
            raise DeployError(f"{self._where()}the proxy image {self.image} is not there and cannot be pulled: "
                              f"{exc.message}",
                              hint="set [proxy] image to an nginx image the host can pull") from None

    def ensure_running(self) -> None:
        """Create (first deploy) or start the proxy container; idempotent."""
        self.ensure_network()
        c = self.container()
        if c is not None:
            self._check_published(c)
            if c.status != "running":
                start_retrying(c.start)
                self._wait_master(c)
            self._live = c
            return
        self._ensure_image()
        self._event(f"{self._where()}creating the proxy {self.name} ({self.image})")
        # no bind: no host address at all. Podman's Docker API publishes an explicit "0.0.0.0" in a
        # way nothing reaches (not even 127.0.0.1: seen with Podman 4.3 on a user network); "" works
        # on Podman and dockerd alike.
        c = self.client.containers.create(
            self.image, name=self.name, command=["nginx", "-c", f"{CONF_DIR}/nginx.conf", "-g", "daemon off;"],
            labels=self._labels(ROLE_PROXY), network=self.network, detach=True,
            ports={f"{p}/tcp": (self.bind or "", p) for p in self.ports()}, restart_policy={"Name": "unless-stopped"},
        )
        self._targets = {}
        self._put(c, self._files({}))
        start_retrying(c.start)
        self._wait_master(c)
        self._live = c

    def _check_published(self, c: Any) -> None:
        """An existing proxy must publish what the config asks for now: its ports are fixed when it
        is created, so a new service port would silently not be served. Say so instead."""
        bindings = (c.attrs.get("HostConfig") or {}).get("PortBindings") or {}
        have = sorted(int(k.split("/")[0]) for k, v in bindings.items() if v)
        want = self.ports()
        if have != want:
            raise DeployError(
                f"{self._where()}the proxy {self.name} publishes port(s) {have or 'none'} but the configuration "
                f"needs {want}", hint="ports are fixed when the proxy is created: remove the proxy container "
                f"(`docker rm -f {self.name}` on the host; its services keep running) and deploy again")

    def _wait_master(self, c: Any) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            code, _ = self._exec(c, f"test -s {PID_FILE} && kill -0 $(cat {PID_FILE})")
            if code == 0:
                return
            c.reload()
            if c.status not in ("running", "created"):
                break
            time.sleep(0.1)
        logs = c.logs(tail=10).decode("utf-8", "replace").strip()
        raise DeployError(f"{self._where()}the proxy {self.name} did not start: {logs}",
                          hint="is a listen port taken on the host?")

    def _exec(self, c: Any, script: str) -> tuple[int, str]:
        """Run ``script`` in the proxy: (exit code, output). Two engine calls, not exec_run's three:
        the exit code comes back as the output's last line, not from an inspect of the exec."""
        api = self.client.api
        ident = api.exec_create(c.id, ["sh", "-c", f'sh -c "$1"; echo "{_EXIT_MARK}$?"', "sh", script],
                                stdout=True, stderr=True)["Id"]
        out = api.exec_start(ident, stream=False, demux=False)
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out or "")
        said, mark, code = text.rpartition(_EXIT_MARK)
        if not mark or not code.strip().isdigit():  # the exec was cut short: no exit code
            return 1, text.strip()
        return int(code.strip()), said.strip()

    def _running(self) -> Any:
        """The proxy container, started if need be; inspected once per command (every switch,
        probe and drain of the command execs in it: a proxy that died meanwhile fails the exec)."""
        if self._live is None:
            self.ensure_running()
        assert self._live is not None
        return self._live

    # ------------------------------------------------------------------ switch

    def targets(self) -> dict[str, Target]:
        """The upstream of every service, read from the container once (the switch is the truth)."""
        if self._targets is None:
            c = self._live or self.container()
            found: dict[str, Target] = {}
            if c is not None:
                for m in _TARGET_LINE.finditer(self._read_upstreams(c)):
                    with_service = json.loads(m.group(1))
                    service = str(with_service.pop("service", ""))
                    if service:
                        found[service] = Target.from_dict(with_service)
            self._targets = found
        return self._targets

    def _read_upstreams(self, c: Any) -> str:
        """The upstream files, through the engine's archive API (an exec costs ten times more)."""
        try:
            stream, _ = c.get_archive(f"{CONF_DIR}/upstreams")
        except NotFound:
            return ""
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r|*") as tar:
            texts = []
            for member in tar:
                f = tar.extractfile(member) if member.isfile() else None
                if f is not None:
                    texts.append(f.read().decode("utf-8", "replace"))
        return "\n".join(texts)

    def point_to(self, service: str, target: Target) -> None:
        c = self._running()
        previous = dict(self.targets())
        wanted = {**previous, service: target}
        self._put(c, self._files(wanted))
        code, out = self._exec(c, RELOAD_SCRIPT)
        if code != 0:
            old = self._files(previous)
            gone = () if service in previous else (f"upstreams/{_SAFE.sub('_', service)}.conf",)
            self._put(c, old, remove=gone)
            self._exec(c, f"nginx -t -q -c {CONF_DIR}/nginx.conf && kill -HUP $(cat {PID_FILE})")
            raise DeployError(f"{self._where()}the proxy rejected the switch of {service}: {out}",
                              hint="the previous upstream was restored; traffic did not move")
        self._targets = wanted
        self._old_workers = "" if "DRAINED" in out else out.rpartition("OLD")[2].strip()

    def drain(self, timeout: float) -> bool:
        if not self._old_workers:
            return True
        c = self._live or self.container()
        if c is None:
            return True
        code, _ = self._exec(c, _drain_script(self._old_workers, timeout))
        if code == 0:
            self._old_workers = ""
        return code == 0

    def probe(self, host: str, port: int, path: str) -> tuple[bool, str]:
        """GET http://host:port/path from inside the proxy container: (2xx/3xx, what answered)."""
        c = self._running()
        _, out = self._exec(c, _probe_script(host, port, path))
        code = out.strip()[-3:]
        if code == "ent":
            raise DeployError(f"{self._where()}the proxy image {self.image} has no curl, wget or bash to probe health",
                              hint="use an nginx image with curl or wget (the official ones have one)")
        return code[:1] in ("2", "3"), f"HTTP {code}" if code != "000" else "no answer"

    def switch(self, service: str) -> ContainerSwitch:
        return ContainerSwitch(self, service)


class ContainerSwitch:
    """The :class:`~nexusify.deploy.traffic.switch.TrafficSwitch` of one service behind a :class:`ContainerProxy`."""

    def __init__(self, proxy: ContainerProxy, service: str) -> None:
        require_route(proxy.routes, service)
        self.proxy = proxy
        self.service = service

    def current(self) -> Target | None:
        return self.proxy.targets().get(self.service)

    def point_to(self, target: Target) -> None:
        self.proxy.point_to(self.service, target)

    def drain(self, timeout: float) -> bool:
        return self.proxy.drain(timeout)

    def ensure_serving(self) -> None:
        self.proxy.ensure_running()


__all__ = ["ContainerProxy", "ContainerSwitch"]
