"""Publish verdicts under index faults: refused uploads decided by content, downloads that do not match.

Real servers where one can produce the fault (pypiserver's 409 for a file it holds, the Nexus
emulator serving other bytes than its pages' hashes), respx for a Nexus-style 400.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
import respx

from nexusify.config import resolve_settings
from nexusify.publish import PublishOptions, execute_plan, plan_publish, run_publish

pytestmark = pytest.mark.slow

PACKAGE = "maestro-core-config"


def _env(build_env_dir: Path, user: str | None = None, password: str | None = None) -> dict[str, str]:
    env = {"HOME": str(Path.home()), "NO_COLOR": "1", "NEXUSIFY_BUILD_ENV_DIR": str(build_env_dir),
           "PATH": os.environ.get("PATH", "")}
    if user and password:
        env.update(NEXUS_USERNAME=user, NEXUS_PASSWORD=password)
    return env


def _checkout(monorepo: Path, tmp_path: Path, name: str) -> Path:
    """Another clone of the same monorepo (another CI job), with its own .nexusify state."""
    root = tmp_path / name / monorepo.name
    shutil.copytree(monorepo, root)
    return root


# --------------------------------------------------------------------------- issue 11 item 8


def test_two_publishers_racing_on_pypiserver_both_succeed(monorepo: Path, tmp_path: Path, pypi_server_factory,  # type: ignore[no-untyped-def]
                                                         build_env_dir: Path) -> None:
    server = pypi_server_factory(auth="update")
    env = _env(build_env_dir, server.username, server.password)
    options = PublishOptions(env=env, packages=(PACKAGE,))
    a, b, c = (_checkout(monorepo, tmp_path, n) for n in ("a", "b", "c"))
    init = c / "shared/packages/core-config/maestro_core_config/__init__.py"
    init.write_text(init.read_text() + "\nCHANGED = True\n")  # c changed the code but not the version
    # all three plan while the index is still empty: each one will upload every file
    plans = {root: plan_publish(resolve_settings(root, {"repository_url": server.url}, env), options)
             for root in (a, b, c)}
    first = execute_plan(plans[a], options)
    assert first.ok and sorted(f.action for f in first.packages[0].files) == ["uploaded", "uploaded"]
    on_server = {p.name: p.read_bytes() for p in server.packages.iterdir()}

    # pypiserver answers 409 "already exists" to b's uploads: the index is read again, the same
    # files are there, so b skips them and succeeds
    second = execute_plan(plans[b], options)
    assert second.ok, [p.to_dict() for p in second.packages]
    assert [f.action for f in second.packages[0].files] == ["present", "present"]
    assert second.uploaded == []
    record = json.loads((b / ".nexusify/publish-state.json").read_text())
    assert PACKAGE in json.dumps(record) and "unverified" not in json.dumps(record)

    # c's files differ: the same 409, then the content says "changed without a bump"
    third = execute_plan(plans[c], options)
    assert not third.ok
    outcome = third.packages[0]
    assert outcome.status == "failed" and outcome.error is not None
    assert "changed without a bump" in outcome.error.message
    assert outcome.error.path == "shared/packages/core-config/pyproject.toml" and outcome.error.line
    assert {p.name: p.read_bytes() for p in server.packages.iterdir()} == on_server


class FakeNexus:
    """A hosted repository behind respx: ALLOW_ONCE (a second upload of a file is refused with
    ``refusal``), a PEP 503 page with sha256 fragments, and downloads."""

    def __init__(self, base: str, refusal: httpx.Response) -> None:
        self.base = base
        self.refusal = refusal
        self.files: dict[str, bytes] = {}
        self.posts: list[int] = []

    def route(self, mock: respx.MockRouter) -> None:
        mock.post(self.base).mock(side_effect=self.upload)
        mock.get(url__regex=rf"^{re.escape(self.base)}simple/[^/]+/$").mock(side_effect=self.page)
        mock.get(url__regex=rf"^{re.escape(self.base)}packages/.+$").mock(side_effect=self.download)

    def upload(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        m = re.search(rb'name="content"; filename="([^"]+)"\r\nContent-Type: [^\r]*\r\n\r\n', body)
        assert m, "the upload has no content file-field"
        boundary = body.split(b"\r\n", 1)[0]
        data = body[m.end():body.index(b"\r\n" + boundary, m.end())]
        filename = m.group(1).decode()
        if filename in self.files:
            self.posts.append(self.refusal.status_code)
            return self.refusal
        self.files[filename] = data
        self.posts.append(200)
        return httpx.Response(200)

    def page(self, request: httpx.Request) -> httpx.Response:
        if not self.files:
            return httpx.Response(404)
        links = "".join(f'<a href="../../packages/{n}#sha256={hashlib.sha256(d).hexdigest()}">{n}</a>\n'
                        for n, d in sorted(self.files.items()))
        return httpx.Response(200, text=f"<html><body>{links}</body></html>", headers={"Content-Type": "text/html"})

    def download(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, content=self.files[name]) if name in self.files else httpx.Response(404)


NEXUS_PAGE = ("<html><head><title>400 - Nexus Repository Manager</title></head><body><div class='nexus-header'>"
              + "<span>Sonatype Nexus Repository</span>" * 12
              + "<p>Repository does not allow updating assets: pypi-hosted</p></body></html>")


@pytest.mark.parametrize("refusal", [
    pytest.param(httpx.Response(400, text=NEXUS_PAGE, headers={"Content-Type": "text/html"}), id="nexus-page"),
    pytest.param(httpx.Response(400), id="bare-400"),
    pytest.param(httpx.Response(403, text="Forbidden"), id="403-for-a-file-it-holds"),
])
def test_any_4xx_on_upload_is_decided_by_the_index_content(monorepo: Path, tmp_path: Path, build_env_dir: Path,
                                                           refusal: httpx.Response) -> None:
    base = "http://nexus.test/repository/pypi-hosted/"
    fake = FakeNexus(base, refusal)
    env = _env(build_env_dir, "ci-user", "pw-secret-9")
    options = PublishOptions(env=env, packages=(PACKAGE,))
    other = _checkout(monorepo, tmp_path, "other")
    with respx.mock(assert_all_called=False) as mock:
        fake.route(mock)
        settings = resolve_settings(monorepo, {"repository_url": base}, env)
        stale = plan_publish(settings, options)  # sees an empty repository
        changed_plan = plan_publish(resolve_settings(other, {"repository_url": base}, env), options)
        assert run_publish(settings, options).ok  # someone else publishes the same files meanwhile
        assert fake.posts == [200, 200]
        report = execute_plan(stale, options)  # every upload now meets the refusal
        assert report.ok, [p.to_dict() for p in report.packages]
        assert [f.action for f in report.packages[0].files] == ["present", "present"]
        assert fake.posts == [200, 200, refusal.status_code, refusal.status_code]

        # the index's wheel is another build of 0.1.0 (one more module): the refusal is then an error
        wheel = next(n for n in fake.files if n.endswith(".whl"))
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(fake.files[wheel])) as src, zipfile.ZipFile(buf, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info))
            dst.writestr("maestro_core_config/extra.py", "EXTRA = 1\n")
        fake.files[wheel] = buf.getvalue()
        changed = execute_plan(changed_plan, options)
    assert not changed.ok
    error = changed.packages[0].error
    assert error is not None and "changed without a bump" in error.message and "extra.py" in error.message
    assert "pw-secret-9" not in error.message


# --------------------------------------------------------------------------- issue 11 item 9


def test_a_failed_download_check_is_kept_until_a_download_matches(monorepo: Path, nexus_factory, run_cli,  # type: ignore[no-untyped-def]
                                                                  build_env_dir: Path) -> None:
    emu = nexus_factory()
    emu.control("corrupt-downloads")  # pages list the true hashes, downloads serve other bytes
    env = _env(build_env_dir, emu.username, emu.password)
    args = ("publish", "--root", str(monorepo), "--nexus-url", emu.base_url, "--json", PACKAGE)
    state_file = monorepo / ".nexusify/publish-state.json"

    def record() -> dict[str, object]:
        state = json.loads(state_file.read_text())
        (records,) = state["indexes"].values()
        return dict(records["maestro-core-config"])

    first = run_cli(*args, env=env)
    assert first.exit_code == 1, first.output
    (pkg,) = json.loads(first.stdout)["packages"]
    assert pkg["status"] == "failed" and pkg["verified"] is False
    assert "downloads with sha256" in pkg["error"]["message"]
    assert "downloads with sha256" in str(record()["unverified"])

    # the next run must not trust the index page's hash (which matches) and exit 0
    emu.control("clear-log")
    second = run_cli(*args, env=env)
    assert second.exit_code == 1, second.output
    (pkg,) = json.loads(second.stdout)["packages"]
    assert pkg["status"] == "failed" and pkg["verified"] is False
    assert {f["action"] for f in pkg["files"]} == {"present"}  # nothing re-uploaded ...
    assert not any(e["method"] == "POST" for e in emu.control("log"))
    assert any("/packages/" in e["path"] for e in emu.control("log"))  # ... but downloaded again
    assert record().get("unverified")

    # once the downloads match, the package is verified and the mark is gone
    emu.control("fix-downloads")
    third = run_cli(*args, env=env)
    assert third.exit_code == 0, third.output
    (pkg,) = json.loads(third.stdout)["packages"]
    assert pkg["status"] == "present" and pkg["verified"] is True
    assert "unverified" not in record()
    fourth = run_cli(*args, env=env)
    assert fourth.exit_code == 0 and json.loads(fourth.stdout)["counts"] == {"unchanged": 1}
    assert len(emu.files()) == 2


def test_a_damaged_publish_state_is_an_error_not_a_fresh_start(monorepo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    state = monorepo / ".nexusify/publish-state.json"
    state.parent.mkdir()
    state.write_text('{"layout": 1,\n "indexes": {"x": {"maestro-core-config": {"unverified": "t"}\n')
    result = run_cli("publish", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/")
    assert result.exit_code == 1
    assert ".nexusify/publish-state.json:3:" in result.output and "damaged" in result.output
    assert state.read_text().startswith('{"layout": 1,')  # left as it was
