"""The nginx traffic switch on a real private nginx, with two stdlib backends (no engine needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nexusify.deploy.switch import NginxProxy, Route, Target, TrafficSwitch, find_nginx
from nexusify.errors import DeployError
from tests.conftest import missing
from tests.deploy_fixtures import Load, get_json
from tests.helpers import free_port

pytestmark = pytest.mark.stack


def _backend(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"built": name}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[NginxProxy, int]]:
    try:
        find_nginx()
    except DeployError:
        missing("nginx", "not installed")
    port = free_port()
    p = NginxProxy(tmp_path / "nginx", {"web": Route(listen=f"127.0.0.1:{port}")}, drain_timeout=5)
    yield p, port
    p.stop()


def _target(server: ThreadingHTTPServer, name: str) -> Target:
    return Target("127.0.0.1", int(server.server_address[1]), name=name, version=name)


def test_switch_moves_traffic_without_a_failed_request(proxy: tuple[NginxProxy, int]) -> None:
    p, port = proxy
    blue, green = _backend("blue"), _backend("green")
    try:
        sw = p.switch("web")
        assert isinstance(sw, TrafficSwitch)
        assert sw.current() is None
        sw.point_to(_target(blue, "blue"))  # first use starts the private nginx
        assert p.running()
        assert get_json(port)[1] == {"built": "blue"}
        assert sw.current() == _target(blue, "blue")
        with Load(port, threads=4) as load:
            while len(load.answers) < 50:
                time.sleep(0.01)
            sw.point_to(_target(green, "green"))
            switched_at = time.monotonic()  # point_to returns once no old worker accepts
            assert sw.drain(5) is True
            time.sleep(0.2)  # keep asking after the drain
            report = load.stop()
        assert report.failures == []
        assert report.versions[0] == "blue" and report.versions[-1] == "green"
        assert not [a for a in report.answers if a[0] > switched_at and a[2] == "blue"], "blue answered after the switch"
        assert get_json(port)[1] == {"built": "green"}
        assert sw.current() == _target(green, "green")
    finally:
        blue.shutdown()
        green.shutdown()


def test_a_config_nginx_rejects_is_undone_and_traffic_stays(proxy: tuple[NginxProxy, int]) -> None:
    p, port = proxy
    blue = _backend("blue")
    try:
        sw = p.switch("web")
        sw.point_to(_target(blue, "blue"))
        before = p.upstream_file("web").read_text()
        with pytest.raises(DeployError, match="nginx rejected"):
            sw.point_to(Target("127.0.0.1", 0, name="broken"))  # port 0: nginx -t fails
        assert p.upstream_file("web").read_text() == before
        assert sw.current() == _target(blue, "blue")
        assert get_json(port)[1] == {"built": "blue"}
    finally:
        blue.shutdown()


def test_a_service_without_a_route_is_refused(tmp_path: Path) -> None:
    p = NginxProxy(tmp_path, {"web": Route("127.0.0.1:1")})
    with pytest.raises(DeployError, match="no proxy route"):
        p.switch("api")


def test_generated_config_routes_and_placeholders(tmp_path: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").is_file():
        missing("nginx", "not installed")
    p = NginxProxy(tmp_path, {"api": Route("127.0.0.1:18000", "/api/"), "ui": Route("127.0.0.1:18000", "/")})
    p.prepare()
    text = p.include_file.read_text()
    assert text.count("server {") == 1
    assert text.index("location /api/") < text.index("location / {")  # longest prefix first
    assert "return 503" in text  # nothing deployed yet
    p.test_config()  # nginx -t accepts what nexusify generates


def test_an_external_nginx_that_includes_the_generated_file(tmp_path: Path) -> None:
    """`conf` given: nexusify writes conf-dir/nexusify.conf, checks and reloads *your* nginx, never starts it."""
    try:
        nginx = find_nginx()
    except DeployError:
        missing("nginx", "not installed")
    port = free_port()
    conf_dir, prefix = tmp_path / "nexusify", tmp_path / "prefix"
    (prefix / "logs").mkdir(parents=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "worker_processes 1;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\n"
        "events {}\n"
        "http {\n"
        f"    access_log off; client_body_temp_path {prefix}/cb; proxy_temp_path {prefix}/px;\n"
        f"    fastcgi_temp_path {prefix}/fc; uwsgi_temp_path {prefix}/uw; scgi_temp_path {prefix}/sc;\n"
        f"    include {conf_dir}/nexusify.conf;\n"
        "}\n")
    p = NginxProxy(conf_dir, {"web": Route(f"127.0.0.1:{port}")}, conf=conf, prefix=prefix)
    blue, green = _backend("blue"), _backend("green")
    try:
        sw = p.switch("web")
        with pytest.raises(DeployError, match="not running"):
            sw.point_to(_target(blue, "blue"))
        subprocess.run([nginx, "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "logs" / "error.log")],
                       check=True, capture_output=True)
        sw.point_to(_target(blue, "blue"))
        assert get_json(port)[1] == {"built": "blue"}
        sw.point_to(_target(green, "green"))
        assert sw.drain(5)
        assert get_json(port)[1] == {"built": "green"}
    finally:
        p.stop()
        blue.shutdown()
        green.shutdown()
