"""The index client: PEP 503 parsing, retries/timeouts (respx), Nexus REST against the emulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import respx

from nexusify.credentials import Credentials, Secret
from nexusify.errors import AuthError, IndexServerError
from nexusify.index.client import make_client
from nexusify.index.nexus_rest import NexusRest
from nexusify.index.pages import SimpleIndex, parse_filename, parse_simple_page

PAGE = """<!DOCTYPE html><html><body>
<a href="../../packages/demo_pkg-1.0.0.tar.gz#sha256=AAAA">demo_pkg-1.0.0.tar.gz</a>
<a href="https://files.example/p/demo_pkg-1.0.0-py3-none-any.whl#md5=bbbb" data-requires-python="&gt;=3.11">w</a>
<a href="demo_pkg-0.9.0-py3-none-any.whl" data-yanked="">old</a>
</body></html>"""


def test_simple_page_links_hashes_and_attributes() -> None:
    files = parse_simple_page(PAGE, "http://idx/repository/r/simple/demo-pkg/")
    assert [f.filename for f in files] == [
        "demo_pkg-1.0.0.tar.gz", "demo_pkg-1.0.0-py3-none-any.whl", "demo_pkg-0.9.0-py3-none-any.whl"]
    assert files[0].url == "http://idx/repository/r/packages/demo_pkg-1.0.0.tar.gz"
    assert files[0].hashes == {"sha256": "aaaa"}
    assert files[1].hashes == {"md5": "bbbb"} and files[1].requires_python == ">=3.11"
    assert files[2].yanked and not files[0].yanked
    assert files[0].hash_matches({"sha256": "AAAA"}) is True
    assert files[0].hash_matches({"sha256": "cccc"}) is False
    assert files[1].hash_matches({"sha256": "x"}) is None  # no comparable hash
    assert files[1].hash_matches({"md5": "BBBB", "sha256": "x"}) is True


@pytest.mark.parametrize(("filename", "expected"), [
    pytest.param("Maestro_Core-0.1.0-py3-none-any.whl", ("maestro-core", "0.1.0", "wheel"), id="wheel"),
    pytest.param("maestro_core-0.1.0.tar.gz", ("maestro-core", "0.1.0", "sdist"), id="sdist"),
    pytest.param("README.txt", None, id="not-a-dist"),
])
def test_parse_filename(filename: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_filename(filename) == expected


def _client(**kw: object) -> object:
    sleeps: list[float] = []
    client = make_client(timeout=2, retries=2, backoff=0.01, sleep=sleeps.append, **kw)  # type: ignore[arg-type]
    return client, sleeps


@respx.mock
def test_get_retries_5xx_then_succeeds() -> None:
    route = respx.get("http://idx/simple/demo/").mock(side_effect=[
        httpx.Response(503), httpx.Response(502), httpx.Response(200, text=PAGE)])
    client, sleeps = _client()
    files = SimpleIndex(client, "http://idx/simple/").project_files("demo")  # type: ignore[arg-type]
    assert route.call_count == 3 and len(files) == 3
    assert sleeps == [0.01, 0.02]  # exponential backoff


@respx.mock
def test_timeouts_are_retried_then_reported() -> None:
    route = respx.get("http://idx/simple/demo/").mock(side_effect=httpx.ReadTimeout("slow"))
    client, _ = _client()
    with pytest.raises(IndexServerError, match="timed out after 3 attempts"):
        SimpleIndex(client, "http://idx/simple/").project_files("demo")  # type: ignore[arg-type]
    assert route.call_count == 3


@respx.mock
def test_post_is_never_retried() -> None:
    route = respx.post("http://idx/upload/").mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    client, _ = _client()
    response = client.request("POST", "http://idx/upload/")  # type: ignore[attr-defined]
    assert response.status_code == 503 and route.call_count == 1


@respx.mock
def test_4xx_is_not_retried_and_401_is_an_auth_error() -> None:
    route = respx.get("http://idx/simple/demo/").mock(return_value=httpx.Response(401))
    client, _ = _client()
    with pytest.raises(AuthError, match="401"):
        SimpleIndex(client, "http://idx/simple/").project_files("demo")  # type: ignore[arg-type]
    assert route.call_count == 1


@respx.mock
def test_missing_project_and_offsite_redirect_mean_not_there() -> None:
    respx.get("http://idx/simple/gone/").mock(return_value=httpx.Response(404))
    respx.get("http://idx/simple/elsewhere/").mock(
        return_value=httpx.Response(303, headers={"Location": "https://pypi.org/simple/elsewhere/"}))
    pypi = respx.get("https://pypi.org/simple/elsewhere/")
    client, _ = _client()
    index = SimpleIndex(client, "http://idx/simple")  # type: ignore[arg-type]
    assert index.project_files("gone") == []
    assert index.project_files("elsewhere") == []
    assert not pypi.called  # never followed off the index host


@pytest.mark.parametrize(("url", "gets_credentials"), [
    pytest.param("http://idx/repository/hosted/", True, id="upload-url"),
    pytest.param("http://idx/repository/hosted/simple/a/", True, id="under-the-upload-url"),
    pytest.param("http://idx:80/repository/hosted/packages/a-1.0.tar.gz", True, id="explicit-default-port"),
    pytest.param("http://IDX/repository/group/packages/a/1.0/a-1.0.tar.gz", True, id="simple-url-stands-for-its-repository"),
    pytest.param("http://other/repository/hosted/", False, id="other-host"),
    pytest.param("https://idx/repository/hosted/", False, id="other-scheme"),
    pytest.param("http://idx:8080/repository/hosted/", False, id="other-port"),
    pytest.param("http://idx/repository/other/simple/a/", False, id="other-repository"),
    pytest.param("http://idx/repository/hosted-evil/", False, id="prefix-is-not-a-folder"),
    pytest.param("http://idx/repository/hosted/../other/", False, id="dot-segments-leave-the-scope"),
    pytest.param("http://idx/", False, id="the-server-root"),
])
def test_credentials_go_only_inside_the_configured_index(url: str, gets_credentials: bool) -> None:
    creds = Credentials("u", Secret("pw-123"), "env")
    client, _ = _client(credentials=creds, auth_origins=(
        "http://idx/repository/hosted/", "http://idx/repository/group/simple/"))
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().mock(return_value=httpx.Response(404))
        client.get(url)  # type: ignore[attr-defined]
        sent = route.calls.last.request.headers.get("Authorization", "")
    assert sent.startswith("Basic ") is gets_credentials


def test_a_client_without_a_scope_sends_credentials_nowhere() -> None:
    creds = Credentials("u", Secret("pw-123"), "env")
    client, _ = _client(credentials=creds)
    with respx.mock() as mock:
        route = mock.get("http://idx/simple/a/").mock(return_value=httpx.Response(404))
        client.get("http://idx/simple/a/")  # type: ignore[attr-defined]
    assert "Authorization" not in route.calls.last.request.headers


def test_the_settings_client_scopes_credentials_to_the_configured_urls(tmp_path: Path) -> None:
    from nexusify.config import resolve_settings
    from nexusify.index.client import index_client

    settings = resolve_settings(tmp_path, {"nexus_url": "https://nx.example/base", "repository": "hosted"}, {})
    creds = Credentials("u", Secret("pw-123"), "env")
    with respx.mock(assert_all_called=False) as mock, index_client(settings, creds, retries=0) as client:
        route = mock.route().mock(return_value=httpx.Response(404))
        for url, expected in [("https://nx.example/base/service/rest/v1/status", True),
                              ("https://nx.example/base/repository/hosted/", True),
                              ("https://nx.example/other/", False),
                              ("https://pypi.org/simple/x/", False)]:
            client.get(url)
            assert route.calls.last.request.headers.get("Authorization", "").startswith("Basic ") is expected, url


@respx.mock
def test_writable_503_is_read_only_without_retrying() -> None:
    route = respx.get("http://nx/service/rest/v1/status/writable").mock(return_value=httpx.Response(503))
    client, _ = _client()
    with pytest.raises(IndexServerError, match="read-only"):
        NexusRest(client, "http://nx", "pypi-hosted").check_writable()  # type: ignore[arg-type]
    assert route.call_count == 1


@respx.mock
def test_error_bodies_never_show_the_password() -> None:
    respx.get("http://idx/simple/a/").mock(return_value=httpx.Response(500, text="boom for user:pw-123"))
    client, _ = _client(credentials=Credentials("user", Secret("pw-123"), "env"))
    with pytest.raises(IndexServerError) as info:
        SimpleIndex(client, "http://idx/simple/").project_files("a")  # type: ignore[arg-type]
    assert "pw-123" not in str(info.value) and "<hidden>" in str(info.value)


# --------------------------------------------------------------------------- against the emulator


def _upload_wheels(emu: object, names: list[str], tmp: Path) -> None:
    """Upload tiny wheels with twine's CLI (a client nexusify does not control)."""
    import zipfile

    files = []
    for n in names:
        dist, version = n.split("==")
        fn = tmp / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(fn, "w") as zf:
            info = f"{dist.replace('-', '_')}-{version}.dist-info"
            zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
            zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            zf.writestr(f"{info}/RECORD", "")
        files.append(str(fn))
    subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--non-interactive",
                    "--repository-url", emu.upload_url, "-u", emu.username, "-p", emu.password, *files],  # type: ignore[attr-defined]
                   check=True, capture_output=True)


def test_nexus_search_pages_and_exact_names(nexus_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory(private=True)
    # 60 components share the token "core": search answers them all, over two pages
    names = [f"core-x{i}==1.0.{i}" for i in range(58)] + ["core==1.0.0", "core==1.1.0"]
    _upload_wheels(emu, names, tmp_path)
    creds = Credentials(emu.username, Secret(emu.password), "env")
    with make_client(timeout=10, credentials=creds, auth_origins=(emu.base_url,)) as client:
        rest = NexusRest(client, emu.base_url, emu.repository)
        assert rest.status()
        rest.check_writable()
        found = rest.search("core")
        assert sorted(c.version for c in found) == ["1.0.0", "1.1.0"]
        assert all(c.name == "core" for c in found)
        assert [c.version for c in rest.search("core", "1.1.0")] == ["1.1.0"]
        asset = found[0].assets[0]
        assert asset.checksum["sha256"] and asset.filename.startswith("core-")
        assert len(list(rest.components())) == 60
    log = emu.control("log")
    assert any("continuationToken=" in e["query"] and "search" in e["path"] for e in log)
    assert sum("components" in e["path"] for e in log) == 6  # pages of 10


def test_nexus_auth_and_read_only(nexus_factory) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory(private=True)
    with make_client(timeout=10) as anonymous:
        with pytest.raises(AuthError, match="401"):
            NexusRest(anonymous, emu.base_url, emu.repository).search("x")
        with pytest.raises(AuthError, match="401"):
            SimpleIndex(anonymous, emu.simple_url).project_files("x")
    emu.control("freeze")
    with make_client(timeout=10) as client, pytest.raises(IndexServerError, match="read-only"):
        NexusRest(client, emu.base_url, emu.repository).check_writable()


# --------------------------------------------------------------------------- PEP 691, upload form


@respx.mock
def test_a_pep691_json_page_is_read_like_an_html_one() -> None:
    page = {"meta": {"api-version": "1.1"}, "name": "demo-pkg", "files": [
        {"filename": "demo_pkg-1.0.0.tar.gz", "url": "../../packages/demo_pkg-1.0.0.tar.gz",
         "hashes": {"sha256": "AAAA"}, "size": 12},
        {"filename": "demo_pkg-0.9.0-py3-none-any.whl", "url": "https://files.example/w.whl", "hashes": {},
         "requires-python": ">=3.11", "yanked": "broken"},
    ]}
    route = respx.get("http://idx/repository/r/simple/demo-pkg/").mock(return_value=httpx.Response(
        200, json=page, headers={"Content-Type": "application/vnd.pypi.simple.v1+json"}))
    client, _ = _client()
    files = SimpleIndex(client, "http://idx/repository/r/simple/").project_files("Demo.Pkg")  # type: ignore[arg-type]
    assert "application/vnd.pypi.simple.v1+json" in route.calls.last.request.headers["Accept"]
    assert [f.filename for f in files] == ["demo_pkg-1.0.0.tar.gz", "demo_pkg-0.9.0-py3-none-any.whl"]
    assert files[0].url == "http://idx/repository/r/packages/demo_pkg-1.0.0.tar.gz"
    assert files[0].hashes == {"sha256": "aaaa"} and files[0].size == 12 and not files[0].yanked
    assert files[1].yanked and files[1].requires_python == ">=3.11" and files[1].hash_matches({"sha256": "x"}) is None


def test_the_upload_form_carries_the_core_metadata_kind_and_digests() -> None:
    import hashlib

    from nexusify.index.upload import form_fields

    metadata = ("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0.0\nSummary: A demo\n"
                "Requires-Dist: six>=1.16\nRequires-Dist: attrs\nClassifier: Private :: Do Not Upload\n"
                "Description-Content-Type: text/markdown\n\n# Demo\n")
    data = b"wheel bytes"
    fields = form_fields(metadata, "demo_pkg-1.0.0-py3-none-any.whl", data)
    assert fields[:2] == [(":action", "file_upload"), ("protocol_version", "1")]
    got: dict[str, list[str]] = {}
    for key, value in fields:
        got.setdefault(key, []).append(value)
    assert got["name"] == ["demo-pkg"] and got["version"] == ["1.0.0"] and got["metadata_version"] == ["2.1"]
    assert got["requires_dist"] == ["six>=1.16", "attrs"] and got["classifiers"] == ["Private :: Do Not Upload"]
    assert got["description"] == ["# Demo\n"] and got["description_content_type"] == ["text/markdown"]
    assert got["filetype"] == ["bdist_wheel"] and got["pyversion"] == ["py3"]
    assert got["sha256_digest"] == [hashlib.sha256(data).hexdigest()]
    sdist = dict(form_fields(metadata, "demo_pkg-1.0.0.tar.gz", data))
    assert sdist["filetype"] == "sdist" and sdist["pyversion"] == "source"
