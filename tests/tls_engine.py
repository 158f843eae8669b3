"""A container engine behind TLS on loopback, for ``tcp://`` host tests (reusable fixture).

No machine here runs dockerd with ``--tlsverify``; this stands in for one, as the docker CLI sees
it: a TLS-terminating forwarder on ``127.0.0.1:PORT`` (stdlib ``ssl``, one thread per connection)
that requires a client certificate signed by its CA and relays each connection to the stack's
Podman socket. The certificates are made with ``openssl`` in a temporary folder:

- ``certs.client``: a ``DOCKER_CERT_PATH`` that works (``ca.pem``, ``cert.pem``, ``key.pem``);
- ``certs.wrong_ca``: the good client certificate, but a ``ca.pem`` of another CA (the engine's
  certificate does not verify);
- ``certs.untrusted_client``: the right ``ca.pem``, a client certificate from another CA (the
  engine refuses it);
- ``certs.no_client_cert``: only ``ca.pem`` (no client certificate is sent; the engine refuses);
- ``certs.no_ca``: only the client pair (the engine is checked against the machine's CAs);
- ``certs.half_pair``: ``ca.pem`` and ``cert.pem`` without ``key.pem``.

Use: ``from tests.tls_engine import tls_engine  # noqa: F401`` in a test module, then a test takes
``tls_engine: TlsEngine``; ``tls_engine.url`` is the ``tcp://`` address, ``tls_engine.env(...)``
the ``DOCKER_CERT_PATH`` / ``DOCKER_TLS_VERIFY`` variables for one of the folders above.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.hosts_stack import STACK_SOCKET

HANDSHAKE_TIMEOUT = 10.0
# Go's TLS server (dockerd) answers plain HTTP on its TLS port with this, and so does the forwarder
HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO")
PLAIN_HTTP_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("openssl is not installed")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}-key.pem", d / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=nexusify test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)
    return cert, key


def _make_leaf(d: Path, name: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    key, csr, cert, ext = d / f"{name}-key.pem", d / f"{name}.csr", d / f"{name}-cert.pem", d / f"{name}.ext"
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", f"/CN={'127.0.0.1' if server else 'nexusify-test-client'}", cwd=d)
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        + ("extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n" if server else "extendedKeyUsage=clientAuth\n")
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=d)
    return cert, key


def _cert_path(d: Path, ca: Path | None, client: tuple[Path, Path] | None, *, key: bool = True) -> Path:
    """A folder laid out as DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem)."""
    d.mkdir()
    if ca is not None:
        shutil.copy(ca, d / "ca.pem")
    if client is not None:
        shutil.copy(client[0], d / "cert.pem")
        if key:
            shutil.copy(client[1], d / "key.pem")
    return d


@dataclass(frozen=True)
class TlsCerts:
    ca: Path
    server: tuple[Path, Path]  # (cert, key)
    client: Path  # DOCKER_CERT_PATH folders
    wrong_ca: Path
    untrusted_client: Path
    no_client_cert: Path
    no_ca: Path
    half_pair: Path


def make_certs(work: Path) -> TlsCerts:
    """A CA, a server certificate for IP 127.0.0.1, client certificates and the DOCKER_CERT_PATH folders."""
    work.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(work, "ca")
    other = _make_ca(work, "other-ca")
    server = _make_leaf(work, "server", ca, server=True)
    client = _make_leaf(work, "client", ca, server=False)
    stranger = _make_leaf(work, "stranger", other, server=False)
    return TlsCerts(
        ca=ca[0], server=server,
        client=_cert_path(work / "client", ca[0], client),
        wrong_ca=_cert_path(work / "wrong-ca", other[0], client),
        untrusted_client=_cert_path(work / "untrusted-client", ca[0], stranger),
        no_client_cert=_cert_path(work / "no-client-cert", ca[0], None),
        no_ca=_cert_path(work / "no-ca", None, client),
        half_pair=_cert_path(work / "half-pair", ca[0], client, key=False),
    )


# --------------------------------------------------------------------------- the forwarder


@dataclass
class TlsForwarder:
    """TLS on ``127.0.0.1:port`` (client certificates required), relayed to a unix socket."""

    certs: TlsCerts
    upstream: str
    port: int = 0
    rejected: list[str] = field(default_factory=list)  # why handshakes failed (the server's view)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _listener: socket.socket | None = None

    def start(self) -> TlsForwarder:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.certs.server[0]), str(self.certs.server[1]))
        ctx.load_verify_locations(str(self.certs.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._ctx = ctx
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.5)
        self._listener, self.port = listener, int(listener.getsockname()[1])
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(HANDSHAKE_TIMEOUT)
        try:
            if conn.recv(5, socket.MSG_PEEK) in HTTP_STARTS:  # as dockerd (Go's TLS server) answers it
                conn.sendall(PLAIN_HTTP_ANSWER)
                self.rejected.append("plain HTTP")
                _close_gently(conn)
                return
            tls = self._ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            self.rejected.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            return
        try:
            tls.do_handshake()
        except OSError as exc:  # ssl.SSLError too: the alert is sent; let the client read it
            self.rejected.append(f"{type(exc).__name__}: {exc}")
            _close_gently(tls)
            return
        plain = socket.socket(socket.AF_UNIX)
        try:
            plain.connect(self.upstream)
            _relay(tls, plain, self._stop)
        except OSError:
            pass
        finally:
            plain.close()
            with contextlib.suppress(OSError):
                tls.close()

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        for t in self._threads:
            t.join(5)


def _close_gently(conn: socket.socket) -> None:
    """Close after reading what the peer sent (closing with unread data resets the connection,
    and the peer would never read the answer)."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(1.0)
        while conn.recv(65536):
            pass
    conn.close()


def _send_tls(tls: ssl.SSLSocket, data: bytes) -> None:
    """sendall on a non-blocking TLS socket (retried with the same buffer, as OpenSSL wants)."""
    view = memoryview(data)
    while view:
        try:
            view = view[tls.send(view):]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            with selectors.DefaultSelector() as sel:
                sel.register(tls, selectors.EVENT_WRITE)
                sel.select(1.0)


def _relay(tls: ssl.SSLSocket, plain: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways in ONE thread (an SSL object must not be used by two threads at once)
    until either side ends the connection."""
    tls.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(tls, selectors.EVENT_READ)
        sel.register(plain, selectors.EVENT_READ)
        while not stop.is_set():
            ready = {key.fileobj for key, _ in sel.select(0.5)}
            if tls.pending():
                ready.add(tls)
            if tls in ready:
                try:
                    data = tls.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    data = None
                except (ssl.SSLError, OSError):
                    return
                if data == b"":
                    return
                if data:
                    plain.sendall(data)
            if plain in ready:
                chunk = plain.recv(65536)
                if not chunk:
                    return
                _send_tls(tls, chunk)


# --------------------------------------------------------------------------- the fixture


@dataclass
class TlsEngine:
    forwarder: TlsForwarder
    certs: TlsCerts

    @property
    def port(self) -> int:
        return self.forwarder.port

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def env(self, cert_path: Path | None = None, verify: bool = True) -> dict[str, str]:
        """The TLS variables the docker CLI reads, for ``cert_path`` (default: the working client folder)."""
        out = {"DOCKER_CERT_PATH": str(cert_path or self.certs.client)}
        if verify:
            out["DOCKER_TLS_VERIFY"] = "1"
        return out


@contextlib.contextmanager
def start_tls_engine(work: Path, upstream: str = STACK_SOCKET) -> Iterator[TlsEngine]:
    """Certificates under ``work`` and a forwarder to ``upstream``; RuntimeError when a part is missing."""
    if not Path(upstream).exists():
        raise RuntimeError(f"no engine socket at {upstream}")
    certs = make_certs(work)
    forwarder = TlsForwarder(certs, upstream).start()
    try:
        yield TlsEngine(forwarder, certs)
    finally:
        forwarder.stop()


@pytest.fixture(scope="session")
def tls_engine(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[TlsEngine]:
    """The stack's engine behind TLS (see the module's docstring); a missing part skips locally and
    fails under CI (tests.conftest.missing)."""
    from tests.conftest import missing

    with contextlib.ExitStack() as stack:
        try:
            engine = stack.enter_context(start_tls_engine(tmp_path_factory.mktemp("tls")))
        except RuntimeError as exc:
            missing("a TLS engine", str(exc))
        yield engine


__all__ = ["TlsCerts", "TlsEngine", "TlsForwarder", "make_certs", "start_tls_engine", "tls_engine"]
