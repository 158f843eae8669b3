"""The re-lock's commands and its checks of the result, as data (no tool runs here; tests/test_relock.py
drives the real uv, Poetry and PDM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusify.credentials import Credentials, Secret, tool_env, url_with_env_userinfo
from nexusify.formats.lockfiles import moved_pins, path_pins, pinned_versions
from nexusify.rewrite.lock import LockJob
from nexusify.tools import pdm_updates

PDM_PROJECT = """
[project]
name = "app"
dependencies = ["six>=1.15"]

[project.optional-dependencies]
server = ["api>=0.3.0,<0.4.0"]

[tool.pdm.dev-dependencies]
dev = ["-e api>=0.3.0", "schemas>=0.3.0,<0.4.0"]
"""


@pytest.mark.parametrize(("groups", "expected"), [
    pytest.param('["default", "dev"]', [["pdm", "update", "--no-sync", "-G", "dev", "api", "schemas"]], id="default-dev"),
    pytest.param('["default", "dev", "server"]', [["pdm", "update", "--no-sync", "-G", "dev", "api", "schemas"],
                                                  ["pdm", "update", "--no-sync", "-G", "server", "api"]],
                 id="every-group-once"),
    pytest.param('["default"]', [["pdm", "update", "--no-sync", "api", "schemas"]], id="named-by-no-locked-group"),
])
def test_pdm_updates_one_run_per_locked_group(groups: str, expected: list[list[str]]) -> None:
    lock = f"[metadata]\ngroups = {groups}\n"
    assert pdm_updates(["api", "schemas"], PDM_PROJECT, lock) == expected


def test_pdm_updates_of_the_default_group_name_no_group() -> None:
    project = '[project]\nname = "job"\ndependencies = ["pkg-second>=0.3.0,<0.4.0", "requests", "pkg-core>=0.1"]\n'
    assert pdm_updates(["pkg-core", "pkg-second"], project, '[metadata]\ngroups = ["default"]\n') == [
        ["pdm", "update", "--no-sync", "pkg-core", "pkg-second"]]


def test_each_tool_updates_only_the_shared_packages(tmp_path: Path) -> None:
    def job(lock: str) -> LockJob:
        return LockJob("svc", tmp_path / "services/svc", tmp_path / "services/svc" / lock, ("b-lib", "a-lib"))

    assert job("uv.lock").commands() == [["uv", "lock", "--upgrade-package", "a-lib", "--upgrade-package", "b-lib"]]
    assert job("poetry.lock").commands() == [["poetry", "lock"]]
    assert job("uv.lock").command(tmp_path) == (
        "cd services/svc && uv lock --upgrade-package a-lib --upgrade-package b-lib")


UV_BEFORE = """version = 1
[[package]]
name = "acme-common"
version = "0.3.0"
source = { editable = "../../libs/common" }

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "http://127.0.0.1:1/simple/" }
"""


def test_the_result_is_checked_for_path_pins_and_moved_third_party_pins() -> None:
    after = UV_BEFORE.replace('version = "0.3.0"\nsource = { editable = "../../libs/common" }',
                              'version = "0.2.0"\nsource = { registry = "http://127.0.0.1:1/simple/" }')
    assert [(p.line, p.message) for p in path_pins(UV_BEFORE, "uv.lock", {"acme-common"})] == [
        (5, "acme-common is locked from editable `../../libs/common`")]
    assert path_pins(after, "uv.lock", {"acme-common"}) == []
    assert moved_pins(UV_BEFORE, after, {"acme-common"}) == []
    assert pinned_versions(after) == {"acme-common": {"0.2.0"}, "six": {"1.16.0"}}
    upgraded = after.replace('"1.16.0"', '"1.17.0"')
    assert moved_pins(UV_BEFORE, upgraded, {"acme-common"}) == ["six 1.16.0 -> 1.17.0"]
    assert pinned_versions("not toml [") == {}


def test_one_tool_environment_with_the_credentials_each_tool_reads() -> None:
    creds = Credentials("ci", Secret("s3cr3t"), "env")
    base = {"PATH": "/bin", "HOME": "/h", "NEXUS_PASSWORD": "s3cr3t", "TWINE_PASSWORD": "t"}
    uv = tool_env("uv", "nexus", creds, base)
    assert (uv["UV_INDEX_NEXUS_USERNAME"], uv["UV_INDEX_NEXUS_PASSWORD"]) == ("ci", "s3cr3t")
    assert "NEXUS_PASSWORD" not in uv and "TWINE_PASSWORD" not in uv
    poetry = tool_env("poetry", "my-nexus", creds, base)
    assert poetry["POETRY_HTTP_BASIC_MY_NEXUS_PASSWORD"] == "s3cr3t"
    pdm = tool_env("pdm", "nexus", creds, {"PATH": "/bin", "HOME": "/h"})
    assert (pdm["NEXUS_USERNAME"], pdm["NEXUS_PASSWORD"]) == ("ci", "s3cr3t")
    assert url_with_env_userinfo("https://u:p@nexus.example/repository/g/simple/") == (
        "https://${NEXUS_USERNAME}:${NEXUS_PASSWORD}@nexus.example/repository/g/simple/")
