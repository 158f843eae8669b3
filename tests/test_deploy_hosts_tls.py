"""``tcp://`` hosts with TLS, against a real TLS engine on loopback (tests/tls_engine.py: the stack's
Podman behind a forwarder that requires client certificates signed by its CA).

connect_host pings it with DOCKER_CERT_PATH + DOCKER_TLS_VERIFY (also when the process sets
REQUESTS_CA_BUNDLE, as CI images do); each wrong setting is a DeployError that names the host and
the file or variable to fix, quickly; a whole deploy, rollback and ``deploy down`` run on an
environment whose only host is the TLS address; and the single engine (``DOCKER_HOST=tcp://...``,
no ``hosts``) builds and deploys through TLS too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.runtime import tls as hosttls
from nexusify.deploy.runtime.hosts import HostSpec, connect_host, network_name, proxy_name
from nexusify.errors import DeployError
from tests.conftest import CliResult
from tests.deploy_fixtures import LABEL_ENV, DeployProject, make_project, remove_environment
from tests.tls_engine import TlsEngine, tls_engine  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.engine, pytest.mark.stack]

Run = Callable[..., CliResult]
NGINX_IMAGE = os.environ.get("NEXUSIFY_TEST_NGINX_IMAGE", "localhost/nginx:stack")
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def _env(**tls: str) -> dict[str, str]:
    """The process environment without any DOCKER_* variable, plus ``tls``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}, **tls}


@pytest.fixture
def ca_bundle_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA bundle variables most CI images set; requests would let them replace the engine's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_CA)


def test_connect_host_over_tls_pings_the_engine(tls_engine: TlsEngine, ca_bundle_set: None) -> None:  # noqa: F811
    engine = connect_host(HostSpec(tls_engine.url), _env(**tls_engine.env()))
    try:
        assert engine.client.api.base_url == f"https://127.0.0.1:{tls_engine.port}"
        assert engine.client.ping() and engine.is_podman
        assert isinstance(engine.client.containers.list(all=True), list)  # a real API call through TLS
    finally:
        engine.close()


@pytest.mark.parametrize(("case", "expected", "hint"), [
    ("wrong_ca", "TLS certificate is not signed by the CA in {certs}/ca.pem", "dockerd --tlscacert"),
    ("untrusted_client", "refused the client certificate {certs}/cert.pem", "signed by the CA the engine trusts"),
    ("no_client_cert", "the engine requires a client certificate, and {certs} (DOCKER_CERT_PATH) has no cert.pem and "
     "key.pem", "signed by the CA the engine trusts"),
    ("no_ca", "TLS certificate is not signed by a CA this machine trusts (there is no {certs}/ca.pem)", "--tlscacert"),
    ("half_pair", "the TLS folder {certs} (DOCKER_CERT_PATH) has cert.pem but no key.pem", "as for `docker"),
    ("plain_http", "the engine expects TLS, and no TLS is configured", "DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH"),
])
def test_wrong_tls_settings_are_a_clear_error(tls_engine: TlsEngine, case: str, expected: str,  # noqa: F811
                                              hint: str) -> None:
    certs: Path | None = None if case == "plain_http" else getattr(tls_engine.certs, case)
    env = _env() if certs is None else _env(**tls_engine.env(certs))
    t0 = time.monotonic()
    with pytest.raises(DeployError) as info:
        connect_host(HostSpec(tls_engine.url), env).close()
    assert time.monotonic() - t0 < 5
    message = str(info.value.message)
    assert message.startswith(f"host 127.0.0.1:{tls_engine.port}: "), message
    assert expected.format(certs=certs) in message, message
    assert hint in (info.value.hint or ""), info.value.hint
    if case == "untrusted_client":  # the engine's side refused it, not the client
        assert any("UNKNOWN_CA" in r or "unable to get local issuer" in r for r in tls_engine.forwarder.rejected)
    if case == "no_client_cert":
        assert any("did not return a certificate" in r for r in tls_engine.forwarder.rejected)


def test_a_certificate_for_another_name_is_named(tls_engine: TlsEngine) -> None:  # noqa: F811
    """The engine's certificate names IP 127.0.0.1 only: reached as `localhost`, it does not verify."""
    with pytest.raises(DeployError) as info:
        connect_host(HostSpec(f"tcp://localhost:{tls_engine.port}"), _env(**tls_engine.env())).close()
    assert info.value.message.startswith(f"host localhost:{tls_engine.port}: the engine's TLS certificate is not "
                                         "valid for localhost"), info.value.message
    assert "subjectAltName" in (info.value.hint or "")


def test_an_engine_closing_at_once_names_the_client_certificate(tls_engine: TlsEngine) -> None:  # noqa: F811
    """An engine refusing the client certificate may close before its alert is read (TLS 1.3): the
    client sees only EOF, and the error still points at the certificate."""
    from nexusify.deploy.runtime.tls import explain, tls_settings

    tls = tls_settings(tls_engine.env())
    eof = OSError("SSLError(SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)'))")
    err = explain("host h:2376", "h", tls, eof)
    assert err.message == (f"host h:2376: the engine closed the TLS connection at once: it likely refused the client "
                           f"certificate {tls_engine.certs.client}/cert.pem (EOF occurred in violation of protocol)")
    assert "signed by the CA the engine trusts" in (err.hint or "")


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a firewall's tarpit, a stuck engine)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(listener.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        t.join(2)
        for s in accepted:
            s.close()
        listener.close()


def test_an_engine_that_never_answers_is_an_error_not_a_hang(tls_engine: TlsEngine,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosttls, "PING_TIMEOUT", 1.0)
    with _silent_server() as port:
        t0 = time.monotonic()
        with pytest.raises(DeployError, match=f"host 127.0.0.1:{port}: the engine did not answer within 1s"):
            connect_host(HostSpec(f"tcp://127.0.0.1:{port}"), _env(**tls_engine.env()))
        assert time.monotonic() - t0 < 5


def test_a_tls_engine_on_a_plain_port_is_named(tls_engine: TlsEngine) -> None:  # noqa: F811
    """DOCKER_TLS_VERIFY set, but the port speaks plain HTTP (an engine without TLS)."""
    import http.server

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with pytest.raises(DeployError, match="does not speak TLS on this port") as info:
            connect_host(HostSpec(f"tcp://127.0.0.1:{server.server_port}"), _env(**tls_engine.env()))
        assert "2376" in (info.value.hint or "")
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- a deploy over TLS


@pytest.fixture
def tls_project(tls_engine: TlsEngine, tmp_path: Path, docker_client: Any) -> Iterator[DeployProject]:  # noqa: F811
    """A project whose environment's one host is the TLS engine (no `bind`: its proxy container
    publishes on all addresses, and the test reaches it on 127.0.0.1), with a proxy container."""
    p = make_project(tmp_path, health_timeout=8)
    with (p.root / "nexusify.toml").open("a") as fh:
        fh.write(f'\n[deploy.environments.{p.environment}]\nhosts = ["{tls_engine.url}"]\n'
                 f'[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{NGINX_IMAGE}"\n')
    p.extra_env.update(tls_engine.env())
    try:
        yield p
    finally:
        remove_environment(docker_client, p.environment)


def _cli(run_cli: Run, p: DeployProject, *argv: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(*argv, "--root", str(p.root), "--environment", p.environment, env=env or p.env)


def _deploy(run_cli: Run, p: DeployProject, version: str) -> CliResult:
    return _cli(run_cli, p, "deploy", "--tag", version, "--build-arg", f"BUILT_VERSION={version}")


@pytest.mark.slow
def test_deploy_rollback_and_down_on_a_tls_host(tls_project: DeployProject, run_cli: Run, docker_client: Any,
                                                 tls_engine: TlsEngine, ca_bundle_set: None) -> None:  # noqa: F811
    p = tls_project
    host = f"127.0.0.1:{tls_engine.port}"
    # a wrong CA stops the deploy before anything is built or started: exit 1, the host and the fix named
    bad = _cli(run_cli, p, "deploy", "--tag", "v0", env={**p.env, **tls_engine.env(tls_engine.certs.wrong_ca)})
    assert bad.exit_code == 1, bad.output
    assert f"host {host}: the engine's TLS certificate is not signed by the CA" in bad.output
    assert "Traceback" not in bad.output
    assert docker_client.api.containers(all=True, filters={"label": f"{LABEL_ENV}={p.environment}"}) == []

    for version in ("v1", "v2"):
        r = _deploy(run_cli, p, version)
        assert r.exit_code == 0, r.output
        assert p.served()["built"] == version  # through the proxy container on the TLS host
    proxy = docker_client.containers.get(proxy_name(p.environment))
    assert proxy.labels["io.nexusify.role"] == "proxy"

    back = _cli(run_cli, p, "rollback")
    assert back.exit_code == 0, back.output
    assert p.served()["built"] == "v1"

    down = _cli(run_cli, p, "deploy", "down", "--yes", "--purge-history")
    assert down.exit_code == 0, down.output
    assert docker_client.api.containers(all=True, filters={"label": f"{LABEL_ENV}={p.environment}"}) == []
    assert docker_client.networks.list(names=[network_name(p.environment)]) == []
    assert all(p.secret_value not in out for out in (bad.output, back.output, down.output))


@pytest.mark.slow
def test_the_single_engine_over_tls(tls_engine: TlsEngine, tmp_path: Path, run_cli: Run,  # noqa: F811
                                    docker_client: Any, ca_bundle_set: None) -> None:
    """Without `hosts`, DOCKER_HOST=tcp://... is the build engine and the one site: builds, the
    proxy container and teardown all go through TLS."""
    p = make_project(tmp_path, health_timeout=8)
    with (p.root / "nexusify.toml").open("a") as fh:
        fh.write(f'\n[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{NGINX_IMAGE}"\n')
    p.extra_env["DOCKER_HOST"] = tls_engine.url
    try:
        plain = _deploy(run_cli, p, "v0")  # no TLS variables: named, exit 1, nothing built
        assert plain.exit_code == 1, plain.output
        assert f"127.0.0.1:{tls_engine.port}: the engine expects TLS" in plain.output
        assert docker_client.images.list(filters={"label": f"{LABEL_ENV}={p.environment}"}) == []

        p.extra_env.update(tls_engine.env())
        r = _deploy(run_cli, p, "v1")
        assert r.exit_code == 0, r.output
        assert p.served()["built"] == "v1"
        status = _cli(run_cli, p, "status")
        assert status.exit_code == 0 and "v1" in status.stdout, status.output
        down = _cli(run_cli, p, "deploy", "down", "--yes", "--purge-history")
        assert down.exit_code == 0, down.output
        assert docker_client.api.containers(all=True, filters={"label": f"{LABEL_ENV}={p.environment}"}) == []
    finally:
        remove_environment(docker_client, p.environment)
