"""TLS for ``tcp://`` hosts, read from the environment as the docker CLI reads it, and what a
failed connection to such a host means for the user.

The variables (docker CLI and docker-py): ``DOCKER_TLS_VERIFY`` non-empty verifies the engine's
certificate against ``ca.pem``; ``DOCKER_CERT_PATH`` (default ``~/.docker``) holds ``ca.pem``,
``cert.pem`` and ``key.pem``; ``DOCKER_TLS`` non-empty, ``DOCKER_TLS_VERIFY`` or
``DOCKER_CERT_PATH`` turn TLS on; with none of them a ``tcp://`` host is plain HTTP. As in the
docker CLI, a file that is not there is not used: no ``ca.pem``, the engine is checked against
the CAs this machine trusts (certifi's); no ``cert.pem``/``key.pem``, no client certificate is
sent (an engine that requires one refuses, and :func:`explain` says so). Half a pair is an error.

Why this is not simply docker-py's ``kwargs_from_env``:

- requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` of the process replace a session's CA
  file (psf/requests#3829). Most CI images set them, and then the engine's ``ca.pem`` was ignored
  and every TLS host failed verification; :func:`isolate` makes the client read nothing from the
  process environment (no CA bundle, no proxy, no netrc credentials sent to an engine).
- its errors (``TLSParameterError``, an ``SSLError`` inside a ``MaxRetryError``) do not say which
  file to fix; :func:`check_files` and :func:`explain` do, naming the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nexusify.deploy import engine_probe
from nexusify.errors import DeployError
from nexusify.extras import require

CLIENT_FILES = ("cert.pem", "key.pem")
CA_FILE = "ca.pem"
TLS_SETUP = ("DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=a folder with ca.pem, cert.pem and key.pem "
             "(as for `docker --tlsverify`)")

#: seconds a tcp:// engine has to answer its first ping
PING_TIMEOUT = 15.0
REFUSED_HINT = ("put a client certificate signed by the CA the engine trusts (dockerd --tlscacert) in "
                "DOCKER_CERT_PATH as cert.pem, with its key.pem")


@dataclass(frozen=True)
class TcpTls:
    """The TLS settings of ``tcp://`` hosts (``enabled`` False: plain HTTP)."""

    enabled: bool
    verify: bool
    cert_path: Path

    def file(self, name: str) -> Path:
        return self.cert_path / name


def tls_settings(env: Mapping[str, str]) -> TcpTls:
    """The TLS settings ``env`` gives (see the module docstring for the rules)."""
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    cert_path = env.get("DOCKER_CERT_PATH") or ""
    enabled = verify or bool(cert_path) or bool(env.get("DOCKER_TLS"))
    home = env.get("HOME") or str(Path.home())
    return TcpTls(enabled, verify, Path(cert_path) if cert_path else Path(home) / ".docker")


def check_files(where: str, tls: TcpTls) -> None:
    """DeployError when ``tls.cert_path`` holds half a client key pair (``where`` names the engine,
    ``host 10.0.0.7:2376``)."""
    have = [f for f in CLIENT_FILES if tls.file(f).is_file()]
    if len(have) == 1:
        absent = next(f for f in CLIENT_FILES if f not in have)
        raise DeployError(f"{where}: the TLS folder {tls.cert_path} (DOCKER_CERT_PATH) has {have[0]} but no {absent}",
                          hint="put the client certificate as cert.pem and its key as key.pem there, as for "
                          "`docker --tlsverify`")


def sends_client_cert(tls: TcpTls) -> bool:
    return all(tls.file(f).is_file() for f in CLIENT_FILES)


def client_kwargs(tls: TcpTls) -> dict[str, Any]:
    """The DockerClient arguments for ``tls`` (none for plain HTTP)."""
    if not tls.enabled:
        return {}
    tls_module = require("deploy", "docker.tls")
    ca = tls.file(CA_FILE)
    client = (str(tls.file("cert.pem")), str(tls.file("key.pem"))) if sends_client_cert(tls) else None
    return {"tls": tls_module.TLSConfig(client_cert=client, ca_cert=str(ca) if ca.is_file() else None,
                                        verify=tls.verify)}


def isolate(client: Any) -> None:
    """The engine's CA is ``ca.pem`` alone: the SDK's HTTP session reads nothing from the process
    environment (``REQUESTS_CA_BUNDLE`` would replace it; see the module docstring)."""
    client.api.trust_env = False


def plain_to_tls_answer(status: int, body: bytes) -> bool:
    """Is this dockerd's (Go's) answer to plain HTTP sent to its TLS port?"""
    return status == 400 and b"HTTP request to an HTTPS server" in body


def explain(where: str, address: str, tls: TcpTls, exc: BaseException | None, *,
            plain_to_tls: bool = False, timeout: float = 0) -> DeployError:
    """The DeployError for a ``tcp://`` engine that did not answer: what happened and what to fix.
    ``where`` names the engine; ``address``: its host as the certificate must name it;
    ``plain_to_tls``: it answered plain HTTP with "HTTP request to an HTTPS server"."""
    text = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    if plain_to_tls or (not tls.enabled and _closed_on_us(text)):
        return DeployError(f"{where}: the engine {'expects' if plain_to_tls else 'likely expects'} TLS, and no TLS "
                           "is configured (plain HTTP was sent)", hint=f"set {TLS_SETUP}")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if "mismatch" in text:
            return DeployError(f"{where}: the engine's TLS certificate is not valid for {address} ({_reason(text)})",
                               hint=f"the engine's certificate must name {address} in its subjectAltName")
        signer = (f"the CA in {tls.file(CA_FILE)}" if tls.file(CA_FILE).is_file()
                  else f"a CA this machine trusts (there is no {tls.file(CA_FILE)})")
        return DeployError(f"{where}: the engine's TLS certificate is not signed by {signer} ({_reason(text)})",
                           hint="put the CA that signed the engine's certificate (dockerd --tlscacert) in "
                           f"{tls.file(CA_FILE)}")
    refused = any(alert in text for alert in ("ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "CERTIFICATE_REQUIRED",
                                              "ALERT_CERTIFICATE_UNKNOWN", "ALERT_ACCESS_DENIED"))
    if tls.enabled and not sends_client_cert(tls) and (refused or "HANDSHAKE_FAILURE" in text or _closed_on_us(text)):
        return DeployError(f"{where}: the engine requires a client certificate, and {tls.cert_path} "
                           f"(DOCKER_CERT_PATH) has no cert.pem and key.pem ({_reason(text)})", hint=REFUSED_HINT)
    if refused:
        return DeployError(f"{where}: the engine refused the client certificate {tls.file('cert.pem')} "
                           f"({_reason(text)})", hint=REFUSED_HINT)
    if tls.enabled and _closed_on_us(text):
        # an engine refusing a client certificate sends an alert and closes; the client may see
        # only the close (TLS 1.3 checks the client's certificate after the client's handshake ends)
        return DeployError(f"{where}: the engine closed the TLS connection at once: it likely refused the client "
                           f"certificate {tls.file('cert.pem')} ({_reason(text)})",
                           hint=REFUSED_HINT)
    if tls.enabled and ("WRONG_VERSION_NUMBER" in text or "RECORD_LAYER_FAILURE" in text):
        return DeployError(f"{where}: the engine does not speak TLS on this port ({_reason(text)})",
                           hint="use the engine's TLS port (2376), or unset DOCKER_TLS_VERIFY, DOCKER_TLS and "
                           "DOCKER_CERT_PATH for an engine without TLS (only on a network you trust)")
    if "Timeout" in text or "timed out" in text:
        return DeployError(f"{where}: the engine did not answer within {timeout:g}s",
                           hint="check the address and port, that the engine listens on it and that no firewall "
                           "drops the connection")
    if "Connection refused" in text or "ConnectionRefused" in text:
        return DeployError(f"{where}: nothing listens there (connection refused)",
                           hint="check the address and port, and that the engine listens on tcp "
                           "(dockerd -H tcp://0.0.0.0:2376 --tlsverify ...)")
    return DeployError(f"{where}: the engine does not answer: {text}",
                       hint="check the address" + ("" if tls.enabled else f"; for an engine with TLS set {TLS_SETUP}"))


def open_client(url: str, where: str, env: Mapping[str, str], *, timeout: int, version: str) -> Any:
    """A DockerClient for the ``tcp://`` engine at ``url``, with TLS as ``env`` configures it, that
    answered its ping. The ping waits PING_TIMEOUT at most (later calls wait ``timeout``): an engine
    that accepts and says nothing is an error, not a hang. ``where`` names the engine in errors."""
    docker = require("deploy", "docker")
    tls = tls_settings(env)
    if tls.enabled:
        check_files(where, tls)
    address = str(urlsplit(url).hostname)
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout, version=version, **client_kwargs(tls))
        isolate(client)
    except Exception as exc:
        raise explain(where, address, tls, exc, timeout=PING_TIMEOUT) from None
    try:
        engine_probe.ping(client, timeout=PING_TIMEOUT)
    except docker.errors.APIError as exc:  # it answered, with an HTTP error
        client.close()
        status = exc.status_code or 0
        body = exc.response.content if exc.response is not None else b""
        if plain_to_tls_answer(status, body):
            raise explain(where, address, tls, None, plain_to_tls=True) from None
        raise DeployError(f"{where}: the engine answered its ping with HTTP {status}",
                          hint="is this the address of a Docker or Podman API?") from None
    except Exception as exc:
        client.close()
        raise explain(where, address, tls, exc, timeout=PING_TIMEOUT) from None
    return client


def _closed_on_us(text: str) -> bool:
    return any(s in text for s in ("Connection reset", "RemoteDisconnected", "Connection aborted", "EOF occurred",
                                   "UNEXPECTED_EOF"))


def _reason(text: str) -> str:
    """The OpenSSL reason in an SSL error's text (``certificate verify failed: ...``), else the text."""
    for marker in ("certificate verify failed:", "alert", "wrong version number", "EOF occurred", "Connection reset"):
        i = text.find(marker)
        if i >= 0:
            return text[i:].split(" (_ssl.c")[0].rstrip("')\"")
    return text


__all__ = [
    "PING_TIMEOUT", "TcpTls", "check_files", "client_kwargs", "explain", "isolate", "open_client", "plain_to_tls_answer",
    "sends_client_cert", "tls_settings",
]
