"""An SSH connection to a host's engine: one master connection (``ControlMaster``, kept for the
next command by :mod:`~nexusify.deploy.runtime.ssh_master`) and a private local socket forwarded to the
engine the host's SSH session names (``$DOCKER_HOST`` there, else ``/var/run/docker.sock``).

This is the one SSH transport of deploy: ``engine = "ssh://..."`` (the build engine) and
``hosts = ["ssh://..."]`` both ride on it, so both honour ``~/.ssh/config`` (keys, known hosts,
``ProxyJump``) as ``ssh host`` does. docker-py's own ssh mode (paramiko, one connection per API
call, ~0.35 s each, its own known_hosts rules) is never used: the SDK only sees the local socket.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from nexusify.deploy.runtime import ssh_master
from nexusify.errors import DeployError

DEFAULT_REMOTE_ENGINE = "unix:///var/run/docker.sock"
SSH_CONNECT_TIMEOUT = 10


class SshTunnel:
    """One SSH master connection to a host and a local socket forwarded to its engine."""

    def __init__(self, url: str, env: Mapping[str, str], where: str) -> None:
        self.where = where  # names the host in errors: "host root@10.0.0.7"
        parts = urlsplit(url)
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
            raise DeployError(f"{self.where}: no `ssh` client on PATH",
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
            raise DeployError(f"{self.where}: ssh did not answer within {timeout:g}s",
                              hint="check the host is reachable: ssh " + self.target) from None

    def open(self) -> str:
        """Start (or reuse) the master, forward the local socket; return the local engine URL."""
        if self.persist:
            # a kept master and its engine line: the forward itself says whether the master answers
            # (one ssh process, not a check and then a forward)
            engine_file = self.control.with_suffix(".engine")
            if self.control.exists() and engine_file.is_file():
                line = engine_file.read_text(encoding="utf-8").strip()
                fwd = self._request_forward(line)
                if fwd is not None and fwd.returncode == 0:
                    return self._forwarded()
            return self._forward(self._kept_master())
        return self._forward(self._own_master())

    def _kept_master(self) -> str:
        """The kept master (started when none answers); its engine line, cached beside its socket."""
        engine_file = self.control.with_suffix(".engine")
        if self.control.exists() and ssh_master.alive(self._base(), self.target) and engine_file.is_file():
            return engine_file.read_text(encoding="utf-8").strip()
        code, said = ssh_master.start(self._base(), self.target, self.persist, self.dir / "master.err",
                                      SSH_CONNECT_TIMEOUT + 5)
        if code != 0:
            self.close()
            raise DeployError(f"{self.where}: ssh failed: {said or 'no answer'}",
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

    @staticmethod
    def _destination(line: str) -> str | None:
        """The engine's socket path or host:port on the host, from its engine line (None: not one we forward)."""
        engine = line.removeprefix("nexusify-engine=").strip() or DEFAULT_REMOTE_ENGINE
        for scheme in ("unix://", "tcp://"):
            if engine.startswith(scheme):
                return engine[len(scheme):]
        return None

    def _request_forward(self, line: str) -> subprocess.CompletedProcess[str] | None:
        """Ask the master to forward the local socket to the engine of ``line`` (None: no engine line)."""
        dest = self._destination(line) if line.startswith("nexusify-engine=") else None
        if dest is None:
            return None
        fwd = self._run("-O", "forward", "-o", "StreamLocalBindUnlink=yes", "-L", f"{self.local}:{dest}", self.target)
        if fwd.returncode == 0:
            self.forwarded = f"{self.local}:{dest}"
        return fwd

    def _forward(self, line: str) -> str:
        if not line.startswith("nexusify-engine="):
            self.close()
            raise DeployError(f"{self.where}: ssh failed: {line or 'no answer'}",
                              hint=f"`ssh {self.target}` must log in without a prompt (a key in ssh-agent or "
                              "~/.ssh/config, the host key in known_hosts)")
        dest = self._destination(line)
        if dest is None:
            self.close()
            engine = line.removeprefix("nexusify-engine=").strip()
            raise DeployError(f"{self.where}: its DOCKER_HOST is {engine!r}; nexusify forwards unix:// "
                              "and tcp:// engines only", hint="point DOCKER_HOST on the host at the engine socket")
        fwd = self._request_forward(line)
        if fwd is None or fwd.returncode != 0:
            self.close()
            raise DeployError(f"{self.where}: could not forward its engine socket {dest}: "
                              f"{fwd.stderr.strip() if fwd else ''}",
                              hint="is AllowStreamLocalForwarding off in the host's sshd?")
        return self._forwarded()

    def _forwarded(self) -> str:
        """The local engine URL, once the master has made its socket."""
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


__all__ = ["DEFAULT_REMOTE_ENGINE", "SSH_CONNECT_TIMEOUT", "SshTunnel"]
