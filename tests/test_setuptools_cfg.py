"""Libraries whose pyproject.toml holds only [build-system] and whose metadata is in setup.cfg
(or setup.py): they are shared packages with the name and version setuptools builds them with."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, missing

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def test_audit_takes_name_and_version_from_setup_cfg(run_cli) -> None:
    result = run_cli("audit", "--root", str(FIXTURES / "layouts/setuptools-cfg"), "--json", env=ENV)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["problems"] == []
    assert [(p["name"], p["version"], p["path"]) for p in data["packages"]] == [
        ("meter-cfg", "0.2.0", "common/python/meter-cfg"), ("meter-core", "1.1.0", "common/python/meter-core")]
    assert [s["name"] for s in data["services"]] == ["gauge"]


@pytest.mark.slow
def test_publish_rewrite_and_verify_with_setup_cfg_libraries(run_cli, tmp_path: Path, pypi_server_factory,
                                                             backend_wheels: list[Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend builds them under those names (the index serves them); the service then
    resolves both from the index alone."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/setuptools-cfg", root)
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
           "UV_PYTHON_DOWNLOADS": "never", "UV_DEFAULT_INDEX": server.simple_url,
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    assert sorted(p.name for p in server.packages.glob("meter*")) == [
        "meter_cfg-0.2.0-py3-none-any.whl", "meter_cfg-0.2.0.tar.gz",
        "meter_core-1.1.0-py3-none-any.whl", "meter_core-1.1.0.tar.gz"]
    done = run_cli("rewrite", *common, env=env)
    assert done.exit_code == 0, done.output
    verified = run_cli("verify", *common, "--json", env=env)
    assert verified.exit_code == 0, verified.output
    checks = json.loads(verified.stdout)["consumers"][0]["checks"]
    assert {k: v["status"] for k, v in checks.items()} == {"static": "ok", "lock": "n/a", "resolve": "ok"}
