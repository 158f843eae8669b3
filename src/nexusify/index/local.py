"""An embedded local PyPI index: a real pypiserver on a free loopback port, as a child process.

``nexusify demo`` publishes to it and installs from it. Uploads need a throwaway user whose
password is generated per start and never printed or written anywhere but the htpasswd file
(hashed, in a private temporary folder removed when the index stops). Downloads are open, and
nothing falls back to PyPI (``--disable-fallback``): a package the index does not hold is a 404,
so an install from it proves the files came from this index alone.

Use it as a context manager::

    with start_local_index(folder / "packages", log_file=folder / "index.log") as index:
        ...  # index.upload_url, index.simple_url, index.username, index.password (a Secret)

The server is stopped on exit, also on errors and Ctrl-C (the child runs in its own session,
so a terminal's Ctrl-C reaches nexusify, which stops it in order).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from nexusify.credentials import Secret, without_index_credentials
from nexusify.errors import IndexServerError
from nexusify.extras import require
from nexusify.processes import pid_alive

USERNAME = "nexusify-demo"
HEALTH_PATH = "/health"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the server may still lose a race for it: retried)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def new_password() -> str:
    """A throwaway upload password (the tests replace this to check it is never printed)."""
    return secrets.token_urlsafe(24)


@dataclass
class LocalIndex:
    """A running pypiserver: where it is, who may upload, and how to stop it."""

    packages: Path
    port: int
    username: str
    password: Secret
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    private_dir: Path | None = field(default=None, repr=False)
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def upload_url(self) -> str:
        return self.base_url

    @property
    def simple_url(self) -> str:
        return self.base_url + "simple/"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_pypirc(self) -> Path:
        """A ``.pypirc`` for uploads (mode 0600, in the private folder removed when the index
        stops): point ``PYPIRC`` at it, and the password reaches no environment variable a build
        backend or a child process could see."""
        if self.private_dir is None:
            raise IndexServerError("the local index is not running")
        path = self.private_dir / "pypirc"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"[distutils]\nindex-servers = local\n\n[local]\nrepository = {self.upload_url}\n"
                     f"username = {self.username}\npassword = {self.password.reveal()}\n")
        return path

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove the htpasswd folder. Idempotent."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        if self.private_dir is not None:
            shutil.rmtree(self.private_dir, ignore_errors=True)
            self.private_dir = None

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _write_htpasswd(path: Path, username: str, password: str) -> None:
    try:
        HtpasswdFile = require("demo", "passlib.apache").HtpasswdFile
    except ValueError as exc:  # passlib 1.7 probes bcrypt on import, and bcrypt >= 5 rejects the probe
        raise IndexServerError(
            f"pypiserver's password file support (passlib) does not work in this environment: {exc}",
            hint="bcrypt >= 5 is installed beside passlib 1.7; run `python -m pip install 'bcrypt<5'` "
                 "(or uninstall bcrypt) in the environment nexusify runs in",
        ) from None

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    # apr_md5_crypt (Apache's own default), never bcrypt: passlib 1.7 cannot use bcrypt >= 5
    ht = HtpasswdFile(str(path), new=True, default_scheme="apr_md5_crypt")
    ht.set_password(username, password)
    ht.save()


def _healthy(port: int, host: str) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=1.0)  # never through an HTTP proxy
    try:
        conn.request("GET", HEALTH_PATH)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def start_local_index(
    packages: Path,
    *,
    log_file: Path,
    username: str = USERNAME,
    password: str | None = None,
    host: str = "127.0.0.1",
    start_timeout: float = 30.0,
    attempts: int = 3,
) -> LocalIndex:
    """Start pypiserver serving ``packages`` on a free port of ``host``; IndexServerError if it
    does not answer its health endpoint within ``start_timeout`` seconds. Needs the ``demo``
    extra (pypiserver, passlib): :class:`~nexusify.errors.ExtraMissing` names the pip command."""
    if importlib.util.find_spec("pypiserver") is None:  # it runs as a child: never imported here
        require("demo", "pypiserver")  # raises ExtraMissing with the pip command
    packages.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    secret = Secret(password or new_password())
    private = Path(tempfile.mkdtemp(prefix="nexusify-index-"))
    htpasswd = private / "htpasswd"
    try:
        _write_htpasswd(htpasswd, username, secret.reveal())
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise
    last = ""
    for _ in range(attempts):
        port = free_port(host)
        cmd = [sys.executable, "-m", "pypiserver", "run", "-i", host, "-p", str(port),
               "-a", "update", "-P", str(htpasswd), "--disable-fallback",
               "--health-endpoint", HEALTH_PATH, str(packages)]
        log = log_file.open("ab")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=_server_env())
        except OSError as exc:
            log.close()
            shutil.rmtree(private, ignore_errors=True)
            raise IndexServerError(f"could not start pypiserver: {exc}",
                                   hint="python -m pip install 'nexusify[demo]' (pypiserver is part of the demo extra)") from exc
        finally:
            if not log.closed:
                log.close()
        index = LocalIndex(packages, port, username, secret, log_file, proc, private, host)
        deadline = time.monotonic() + start_timeout
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if _healthy(port, host):
                    return index
                time.sleep(0.05)
        except BaseException:
            index.stop()
            raise
        last = _log_tail(log_file)
        exited = proc.poll() is not None
        index.private_dir = None  # keep the htpasswd for the next attempt
        index.stop()
        if not exited:
            break  # it runs but does not answer: another port will not help
    shutil.rmtree(private, ignore_errors=True)
    raise IndexServerError(
        f"the local index (pypiserver) did not start on {host}" + (f":\n{last}" if last else ""),
        path=log_file, hint=f"see {log_file}; is pypiserver importable by {sys.executable}?",
    )


def _server_env() -> dict[str, str]:
    """The server's environment: this one without index credentials (it needs none)."""
    return without_index_credentials(os.environ)


def stop_stale(pid: int, marker: str, timeout: float = 5.0) -> bool:
    """Stop a pypiserver left by an earlier run that was killed (its command line must hold
    ``marker``, e.g. the index folder, so an unrelated process with a reused pid is left alone)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    if "pypiserver" not in cmdline or marker not in cmdline:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    return True


__all__ = ["USERNAME", "LocalIndex", "free_port", "new_password", "port_open", "start_local_index", "stop_stale"]
