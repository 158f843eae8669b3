"""Two independent remote hosts on this machine, for deploy tests (session scope, reusable).

- host A: an sshd on 127.0.0.2 whose sessions reach the stack's Podman API;
- host B: an sshd on 127.0.0.3 whose sessions reach a SECOND Podman API service with its own
  root, runroot and tmpdir, started with ``setsid`` in its own mount namespace (``unshare -m``)
  with its own network config and run dirs and subnet pool, so its bridges and firewall state
  never collide with A's (see ../shared/notes/test-stack.md, "Remote engines over SSH").

The test makes an ed25519 key; a marked block in the passwd home's ``~/.ssh/config`` (where ssh
reads it, not ``$HOME``) gives the key and disables host-key prompts for 127.0.0.2/3; only that
block is removed afterwards (other sessions may add theirs meanwhile: edits hold a file lock).

Use: ``from tests.hosts_stack import two_hosts  # noqa: F401`` in a test module, then a test
takes ``two_hosts: TwoHosts``. ``TwoHosts.urls`` are the ``ssh://`` addresses for ``hosts = [...]``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.runtime.ssh_master import control_path

STACK_SOCKET = os.environ.get("DOCKER_HOST", "unix:///run/nexusify-stack/podman.sock").removeprefix("unix://")
# Host B's first networks would take the bridge names (podman1...) A's take too: B pads them, with a
# count and a subnet pool (A: podman's default 10.89.0.0/16) drawn per session, so that two test
# sessions running at once (each with its own B) do not collide either.
PAD_NETWORKS = 12


def _b_subnet_prefix() -> str:
    return f"10.{random.randint(124, 250)}."


@dataclass
class Host:
    address: str  # loopback address the host "is" (sshd listens, the proxy publishes)
    port: int  # sshd port
    socket: str  # its engine's socket (what DOCKER_HOST says inside its SSH sessions)

    @property
    def url(self) -> str:
        return f"ssh://root@{self.address}:{self.port}"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"


def end_kept_master(target: str, port: int) -> None:
    """``ssh -O exit`` the master nexusify keeps for ``target``:``port``, if one runs."""
    control = control_path(target, port, os.environ)
    if control.exists():
        subprocess.run(["ssh", "-S", str(control), "-p", str(port), "-O", "exit", target], capture_output=True,
                       timeout=10, check=False)


@dataclass
class TwoHosts:
    a: Host
    b: Host
    key: Path
    b_subnet_prefix: str = "10.124."  # B's container addresses start with it ("10.N.")

    @property
    def hosts(self) -> list[Host]:
        return [self.a, self.b]

    @property
    def urls(self) -> list[str]:
        return [self.a.url, self.b.url]


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _ssh_config_path() -> Path:
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "config"


@contextlib.contextmanager
def _locked_ssh_config() -> Iterator[Path]:
    path = _ssh_config_path()
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with open(path.parent / ".nexusify-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _add_ssh_block(marker: str, block: str) -> None:
    with _locked_ssh_config() as path:
        old = path.read_text() if path.exists() else ""
        path.write_text(f"# >>> {marker}\n{block}# <<< {marker}\n" + old)
        path.chmod(0o600)


def _remove_ssh_block(marker: str) -> None:
    with _locked_ssh_config() as path:
        if not path.exists():
            return
        text = path.read_text()
        start, end = text.find(f"# >>> {marker}\n"), text.find(f"# <<< {marker}\n")
        if start >= 0 and end >= 0:
            text = text[:start] + text[end + len(f"# <<< {marker}\n"):]
        if text.strip():
            path.write_text(text)
        else:
            path.unlink()


def _start_sshd(work: Path, name: str, address: str, key: Path, docker_host: str) -> tuple[int, subprocess.Popen[bytes]]:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise RuntimeError("sshd is not installed: run scripts/stack.sh (openssh-server)")
    Path("/run/sshd").mkdir(exist_ok=True)
    d = work / name
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    port = _free_port(address)
    conf = d / "sshd_config"
    conf.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {key}.pub\nPidFile {d / 'sshd.pid'}\nUsePAM no\nStrictModes no\n"
        f"PermitRootLogin prohibit-password\nPasswordAuthentication no\nSetEnv DOCKER_HOST={docker_host}\n"
    )
    proc = subprocess.Popen([sshd, "-D", "-f", str(conf), "-E", str(d / "sshd.log")], start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return port, proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sshd on {address}:{port} did not start: {(d / 'sshd.log').read_text()}")


def _ping(sock: str) -> bool:
    proc = subprocess.run(["curl", "-sf", "--unix-socket", sock, "http://d/_ping"], capture_output=True, check=False)
    return proc.returncode == 0


def _start_second_engine(work: Path, prefix: str) -> tuple[str, int]:
    """A second Podman API service, detached (setsid) in its own mount namespace; returns its
    socket and pid."""
    d = Path(tempfile.mkdtemp(prefix="nxb-", dir="/tmp"))  # podman: a runroot path under 50 characters
    (work / "engine-b").symlink_to(d)
    for sub in ("root", "runroot", "tmp", "netconf", "netrun"):
        (d / sub).mkdir(parents=True)
    conf = d / "containers.conf"
    conf.write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n'
        f'[network]\nnetwork_config_dir = "{d / "netconf"}"\n'
        f'default_subnet_pools = [{{"base" = "{prefix}0.0/16", "size" = 24}}]\n'
        f'default_subnet = "{prefix}255.0/24"\n'
        '[engine]\nruntime = "runc"\n'
    )
    sock = str(d / "podman.sock")
    script = (
        "set -e; mount --make-rprivate /; mkdir -p /run/containers/networks; "
        f"mount --bind {d / 'netrun'} /run/containers/networks; "
        f"exec podman --root {d / 'root'} --runroot {d / 'runroot'} --tmpdir {d / 'tmp'} "
        f"--network-config-dir {d / 'netconf'} system service --time=0 unix://{sock}"
    )
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    env.pop("DOCKER_HOST", None)
    with open(d / "podman.log", "wb") as log:
        proc = subprocess.Popen(["setsid", "unshare", "-m", "sh", "-c", script], env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _ping(sock):
            return sock, proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"the second Podman service did not start: {(d / 'podman.log').read_text()[-2000:]}")


def _remote(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "--remote", "--url", f"unix://{sock}", *args], capture_output=True, text=True,
                          check=False)


def copy_image(ref: str, to_socket: str) -> None:
    """Put the stack engine's image ``ref`` into another engine (podman save | load)."""
    if _remote(to_socket, "image", "exists", ref).returncode == 0:
        return
    save = subprocess.Popen(["podman", "--remote", "--url", f"unix://{STACK_SOCKET}", "save", ref],
                            stdout=subprocess.PIPE)
    load = subprocess.run(["podman", "--remote", "--url", f"unix://{to_socket}", "load"], stdin=save.stdout,
                          capture_output=True, text=True, check=False)
    save.wait()
    assert load.returncode == 0, load.stderr


@contextlib.contextmanager
def start_two_hosts(work: Path) -> Iterator[TwoHosts]:
    """Start both hosts under ``work`` (RuntimeError when a part does not start); stop them after.
    Used by the :func:`two_hosts` fixture and by benchmarks/hosts.py."""
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    prefix = _b_subnet_prefix()
    sock_b, pid_b = _start_second_engine(work, prefix)
    procs: list[subprocess.Popen[bytes]] = []
    marker = f"nexusify-tests {work}"
    port_a = port_b = 0
    try:
        # B's first networks take bridge names (podman1...) that A's may take too: pad them.
        for i in range(PAD_NETWORKS + random.randint(0, 24)):
            _remote(sock_b, "network", "create", f"nexusify-test-pad-{i}")
        copy_image(os.environ.get("NEXUSIFY_TEST_NGINX_IMAGE", "localhost/nginx:stack"), sock_b)
        port_a, pa = _start_sshd(work, "sshd-a", "127.0.0.2", key, f"unix://{STACK_SOCKET}")
        procs.append(pa)
        port_b, pb = _start_sshd(work, "sshd-b", "127.0.0.3", key, f"unix://{sock_b}")
        procs.append(pb)
        _add_ssh_block(marker, "".join(
            f"Host {addr}\n  IdentityFile {key}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n" for addr in ("127.0.0.2", "127.0.0.3")))
        yield TwoHosts(Host("127.0.0.2", port_a, STACK_SOCKET), Host("127.0.0.3", port_b, sock_b), key, prefix)
    finally:
        for addr, port in (("127.0.0.2", port_a), ("127.0.0.3", port_b)):
            if port:  # the masters nexusify kept for the next command (ssh_master) end with the hosts
                end_kept_master(f"root@{addr}", port)
        _remove_ssh_block(marker)
        for p in procs:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        _remote(sock_b, "rm", "-af", "-t", "2")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid_b, signal.SIGTERM)
        time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid_b, signal.SIGKILL)
        shutil.rmtree((work / "engine-b").resolve(), ignore_errors=True)


@pytest.fixture(scope="session")
def two_hosts(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[TwoHosts]:
    """Two ssh hosts (see the module's docstring); a part that does not start skips the tests
    locally and fails them under CI (tests.conftest.missing)."""
    from tests.conftest import missing

    try:
        cm = start_two_hosts(tmp_path_factory.mktemp("hosts"))
        hosts = cm.__enter__()
    except RuntimeError as exc:
        missing("two SSH hosts", str(exc))
    try:
        yield hosts
    finally:
        cm.__exit__(None, None, None)


__all__ = ["STACK_SOCKET", "Host", "TwoHosts", "copy_image", "start_two_hosts", "two_hosts"]
