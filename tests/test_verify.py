"""`nexusify verify`: the proof, per consumer, that the migration worked (static, lock, resolve).

Driven on the sample monorepo with the real tools (uv, Poetry, pip) against a real pypiserver
that requires credentials to download and also serves the build backends (a Nexus group)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from nexusify.model import load_workspace
from nexusify.verify.lock import lock_check
from nexusify.verify.resolve import files_prefix, shared_origins
from nexusify.verify.static import lockfile_findings
from tests.conftest import missing

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}

UV_LOCK = '''version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "gateway"
version = "0.9.0"
source = { editable = "." }
dependencies = [
    { name = "maestro-core-auth" },
    { name = "six" },
]

[package.metadata]
requires-dist = [
    { name = "maestro-core-auth", editable = "../../shared/packages/core-auth" },
    { name = "six", specifier = ">=1.15" },
]

[[package]]
name = "maestro-core-auth"
version = "0.2.0"
source = { editable = "../../shared/packages/core-auth" }

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "http://127.0.0.1:9/simple/" }
'''

POETRY_LOCK = '''[[package]]
name = "maestro-core-api"
version = "0.1.0"
optional = false

[package.source]
type = "directory"
url = "/shared/packages/core-api"

[[package]]
name = "maestro-core-config"
version = "0.1.0"

[package.source]
type = "legacy"
url = "http://127.0.0.1:9/simple"
reference = "nexus"
'''

PDM_LOCK = '''[metadata]
groups = ["default", "dev"]

[[package]]
name = "api"
version = "0.3.0"
requires_python = ">=3.11"
editable = true
path = "./src/api"
summary = ""

[[package]]
name = "schemas"
version = "0.1.0"
files = [{file = "schemas-0.1.0-py3-none-any.whl", hash = "sha256:00"}]
'''


@pytest.mark.parametrize(("name", "text", "shared", "expected"), [
    pytest.param("uv.lock", UV_LOCK, {"maestro-core-auth", "six-not"},
                 [(16, "maestro-core-auth is recorded from editable `../../shared/packages/core-auth`"),
                  (23, "maestro-core-auth is locked from editable `../../shared/packages/core-auth`")], id="uv"),
    pytest.param("poetry.lock", POETRY_LOCK, {"maestro-core-api", "maestro-core-config"},
                 [(7, "maestro-core-api is locked from a directory source")], id="poetry"),
    pytest.param("pdm.lock", PDM_LOCK, {"api", "schemas"},
                 [(8, "api is locked from an editable path"), (9, "api is locked from path `./src/api`")], id="pdm"),
    pytest.param("uv.lock", UV_LOCK, {"six"}, [], id="registry-entries-are-fine"),
])
def test_lockfile_paths_to_shared_packages_are_found_at_their_line(
        tmp_path: Path, name: str, text: str, shared: set[str], expected: list[tuple[int, str]]) -> None:
    lock = tmp_path / "svc" / name
    lock.parent.mkdir()
    lock.write_text(text)
    found = lockfile_findings(lock, shared, tmp_path)
    assert [(f.line, f.message) for f in found] == expected
    assert all(f.path == f"svc/{name}" for f in found)


def test_a_workspace_lock_counts_only_the_consumers_own_requirements(tmp_path: Path) -> None:
    text = UV_LOCK + ('\n[[package]]\nname = "other"\nversion = "1"\nsource = { editable = "../other" }\n\n'
                      '[package.metadata]\nrequires-dist = [{ name = "maestro-core-auth", editable = "x" }]\n')
    lock = tmp_path / "uv.lock"
    lock.write_text(text)
    lines = [f.line for f in lockfile_findings(lock, {"maestro-core-auth"}, tmp_path, owner="gateway")]
    assert lines == [16, 23]  # not the line of `other`'s requirement


def test_resolved_origins_outside_the_index_fail() -> None:
    prefix = files_prefix("https://nexus.example.com/repository/pypi-group/simple/")
    assert prefix == "https://nexus.example.com/repository/pypi-group/"
    report = {"install": [
        {"metadata": {"name": "Maestro_Core_Api", "version": "0.1.0"},
         "download_info": {"url": prefix + "packages/maestro_core_api-0.1.0-py3-none-any.whl", "archive_info": {}}},
        {"metadata": {"name": "maestro-core-auth", "version": "0.2.0"}, "is_direct": True,
         "download_info": {"url": "file:///shared/packages/core-auth", "dir_info": {}}},
        {"metadata": {"name": "maestro-core-db", "version": "0.1.0"},
         "download_info": {"url": "https://pypi.org/packages/maestro_core_db-0.1.0.whl", "archive_info": {}}},
        {"metadata": {"name": "six", "version": "1.17.0"},
         "download_info": {"url": "https://elsewhere/six.whl", "archive_info": {}}},
    ]}
    good, bad = shared_origins(report, {"maestro-core-api", "maestro-core-auth", "maestro-core-db"}, prefix)
    assert good == ["Maestro_Core_Api 0.1.0"]
    assert bad == ["maestro-core-auth 0.2.0 from file:///shared/packages/core-auth",
                   "maestro-core-db 0.1.0 from https://pypi.org/packages/maestro_core_db-0.1.0.whl"]


def test_a_missing_tool_fails_the_lock_check_with_the_install_command(monorepo: Path) -> None:
    (monorepo / "services/gateway/uv.lock").write_text(UV_LOCK)
    ws = load_workspace(monorepo)
    gateway = ws.project_at(monorepo / "services/gateway")
    assert gateway is not None and gateway.lockfiles
    check = lock_check(gateway, monorepo, "nexus", None, {"PATH": "/nonexistent"}, lambda *a, **k: None)
    assert check.status == "fail"
    assert str(check.findings[0]) == "services/gateway/uv.lock: `uv` is not installed, so uv.lock cannot be checked"
    assert check.findings[0].hint == "install it: `pip install uv`"
    reporting = ws.project_at(monorepo / "services/automation-service")
    assert reporting is not None
    assert lock_check(reporting, monorepo, "nexus", None, {}, lambda *a, **k: None).status == "n/a"


def test_usage_and_config_errors_exit_2(run_cli, monorepo: Path) -> None:
    no_index = run_cli("verify", "--root", str(monorepo), env=ENV)
    assert no_index.exit_code == 2 and "no index URL" in no_index.output
    not_consumer = run_cli("verify", "--root", str(monorepo), "--index-url", "http://127.0.0.1:9/simple/",
                           str(monorepo / "services/reporting"), env=ENV)
    assert not_consumer.exit_code == 2
    assert "services/reporting: depends on no shared package" in not_consumer.output


def test_errors_in_what_a_consumer_reaches_refuse_before_any_check(run_cli, monorepo: Path) -> None:
    core_config = monorepo / "shared/packages/core-config/pyproject.toml"
    core_config.write_text(core_config.read_text().replace('version = "0.1.0"\n', ""))
    result = run_cli("verify", "--root", str(monorepo), "--index-url", "http://127.0.0.1:9/simple/",
                     str(monorepo / "services/gateway"), env=ENV)
    assert result.exit_code == 1
    assert "nothing was verified" in result.output
    assert "shared/packages/core-config/pyproject.toml" in result.output


# --------------------------------------------------------------------------- the sample, end to end


def _tools_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *tools: str) -> dict[str, str]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for tool in tools:
        if shutil.which(tool) is None:
            missing(tool, f"`{tool}` is not on PATH (a dev extra: pip install -e '.[dev]')")
    return {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
            "UV_PYTHON_DOWNLOADS": "never", "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
            "POETRY_NO_INTERACTION": "1"}


def _findings(data: dict, consumer: str, check: str) -> list[str]:  # type: ignore[type-arg]
    entry = next(c for c in data["consumers"] if c["name"] == consumer)
    return [f"{f['path']}:{f['line']}: {f['message']}" for f in entry["checks"][check]["findings"]]


def test_before_the_rewrite_verify_fails_static_at_file_and_line(run_cli, monorepo: Path, pypi_server_factory,
                                                                  backend_wheels: list[Path]) -> None:
    server = pypi_server_factory(auth=None)
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    result = run_cli("verify", "--root", str(monorepo), "--index-url", server.simple_url, "--json",
                     "services/gateway", "services/quality-fabric", env=ENV)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert not data["ok"] and [c["name"] for c in data["consumers"]] == ["gateway", "quality-fabric"]
    assert _findings(data, "gateway", "static") == [
        "services/gateway/pyproject.toml:18: maestro-core-auth is still installed from "
        "`../../shared/packages/core-auth`",
        "services/gateway/pyproject.toml:19: maestro-monitoring is still installed from "
        "`../../shared/packages/monitoring`",
        "services/gateway/Dockerfile:6: COPY ../../shared/packages/core-config copies shared code (maestro-core-config) into the image",
        "services/gateway/Dockerfile:7: COPY ../../shared/packages/core-auth copies shared code (maestro-core-auth) into the image",
        "services/gateway/Dockerfile:8: COPY ../../shared/packages/monitoring copies shared code (maestro-monitoring) into the image",
    ]
    assert _findings(data, "quality-fabric", "static")[0] == (
        "services/quality-fabric/pyproject.toml:12: maestro-test-healer is still installed from "
        "`/shared/packages/test-healer`")
    for name in ("gateway", "quality-fabric"):
        entry = next(c for c in data["consumers"] if c["name"] == name)
        assert entry["checks"]["lock"]["status"] == "n/a"
        assert entry["checks"]["resolve"]["status"] == "fail"  # the shared packages are not on the index
    text = run_cli("verify", "--root", str(monorepo), "--index-url", server.simple_url, "services/gateway", env=ENV)
    assert text.exit_code == 1
    assert "FAIL services/gateway/pyproject.toml:18: maestro-core-auth" in text.stdout
    assert "0 of 1 consumer(s) verified; failed: gateway" in text.stdout


@pytest.mark.slow
def test_after_publish_and_rewrite_lock_verify_passes_and_a_hand_left_path_is_caught(
        run_cli, monorepo: Path, pypi_server_factory, backend_wheels: list[Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = _tools_env(tmp_path, monkeypatch, "uv", "poetry")
    server = pypi_server_factory(auth="download,update,list")
    password = server.password or ""
    env.update({"NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password})
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)
    # the services' own (stale) locks, made while the shared packages were folders
    gateway_lock = monorepo / "services/gateway/uv.lock"
    gateway_lock.write_text('version = 1\nrevision = 2\nrequires-python = ">=3.11"\n\n[[package]]\n'
                            'name = "maestro-core-auth"\nversion = "0.2.0"\n'
                            'source = { editable = "../../shared/packages/core-auth" }\n')
    fabric_lock = monorepo / "services/quality-fabric/poetry.lock"
    fabric_lock.write_text(POETRY_LOCK)

    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    rewritten = run_cli("rewrite", *common, "--lock", env=env)
    assert rewritten.exit_code == 0, rewritten.output

    started = time.monotonic()
    result = run_cli("verify", *common, "--json", env=env)
    print(f"verify took {time.monotonic() - started:.1f} s")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["checks"] == ["static", "lock", "resolve"]
    by_name = {c["name"]: c for c in data["consumers"]}
    assert sorted(by_name) == ["automation-service", "gateway", "quality-fabric", "scheduler"]
    assert {n: {k: v["status"] for k, v in c["checks"].items()} for n, c in by_name.items()} == {
        "automation-service": {"static": "ok", "lock": "n/a", "resolve": "ok"},
        "gateway": {"static": "ok", "lock": "ok", "resolve": "ok"},
        "quality-fabric": {"static": "ok", "lock": "ok", "resolve": "ok"},
        "scheduler": {"static": "ok", "lock": "n/a", "resolve": "ok"},
    }
    assert by_name["gateway"]["checks"]["lock"]["detail"] == "`uv lock --check` in services/gateway passed"
    assert by_name["quality-fabric"]["checks"]["lock"]["detail"] == (
        "`poetry check --lock` in services/quality-fabric passed")
    assert by_name["quality-fabric"]["checks"]["resolve"]["detail"] == (
        f"from {server.simple_url}: maestro-core-api 0.1.0, maestro-core-auth 0.2.0, maestro-core-config 0.1.0, "
        "maestro-core-logging 0.1.0, maestro-test-healer 0.1.0")
    assert password not in result.output
    # --no-index-auth proves what an anonymous install gets (rewrite --no-index-auth's images): this index refuses it
    anonymous = run_cli("verify", *common, "--no-index-auth", "--json", "services/automation-service", env=env)
    assert anonymous.exit_code == 1, anonymous.output
    assert json.loads(anonymous.stdout)["consumers"][0]["checks"]["resolve"]["status"] == "fail"

    # a path left by hand in a lockfile is caught, at its line, and the lock check does not hide it
    text = gateway_lock.read_text()
    registry = f'source = {{ registry = "{server.simple_url}" }}'
    start = text.index('name = "maestro-core-auth"')
    at = text.index(registry, start)
    gateway_lock.write_text(text[:at] + 'source = { editable = "../../shared/packages/core-auth" }'
                            + text[at + len(registry):])
    line = gateway_lock.read_text()[:at].count("\n") + 1
    fabric = fabric_lock.read_text()
    at = fabric.index('type = "legacy"', fabric.index('name = "maestro-core-api"'))
    fabric_lock.write_text(fabric[:at] + 'type = "directory"' + fabric[at + len('type = "legacy"'):])
    fabric_line = fabric[:at].count("\n") + 1
    caught = run_cli("verify", *common, "--json", "services/gateway", "services/quality-fabric", env=env)
    assert caught.exit_code == 1, caught.output
    data = json.loads(caught.stdout)
    assert _findings(data, "gateway", "static") == [
        f"services/gateway/uv.lock:{line}: maestro-core-auth is locked from editable "
        "`../../shared/packages/core-auth`"]
    assert _findings(data, "quality-fabric", "static") == [
        f"services/quality-fabric/poetry.lock:{fabric_line}: maestro-core-api is locked from a directory source"]
