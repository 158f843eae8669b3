"""pip consumers wherever they are: a folder outside the service globs whose requirements files
install local code or name a package of the monorepo is a consumer audit, rewrite and verify see."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
LAYOUT = FIXTURES / "layouts/requirements-anywhere"


def test_audit_finds_the_consumers_outside_the_service_folders(run_cli) -> None:
    result = run_cli("audit", "--root", str(LAYOUT), "--json", env=ENV)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["name"] for p in data["packages"]] == ["obs-metrics", "obs_trace"]
    assert {s["name"]: (s["path"], s["shared_dependencies"]) for s in data["services"]} == {
        "harvester": ("deploy/workers/harvester", ["obs-trace", "obs-metrics"]),
        "rotate": ("ops/cron/rotate", ["obs-trace"]),
    }
    assert [(p["code"], p["path"], p["line"]) for p in data["problems"]] == [
        ("dockerfile-copies-shared", "ops/cron/rotate/Dockerfile", 2)]


def test_rewrite_check_is_not_green_while_they_install_paths(run_cli) -> None:
    result = run_cli("rewrite", "--root", str(LAYOUT), "--check", "--index-url", "http://127.0.0.1:9/simple/",
                     env=ENV)
    assert result.exit_code == 1, result.output
    assert "deploy/workers/harvester/requirements.txt:2: obs-metrics" in result.output
    assert "ops/cron/rotate/Dockerfile:2: drop COPY" in result.output
    # it names obs-trace without a path: pip (a developer's `pip install -r`) must ask the index, not PyPI
    assert "ops/cron/rotate/requirements.txt:1: pip installs from http://127.0.0.1:9/simple/ only" in result.output


@pytest.mark.slow
def test_after_publish_and_rewrite_pip_installs_them_from_the_index(run_cli, tmp_path: Path, pypi_server_factory,
                                                                     backend_wheels: list[Path],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    root = tmp_path / "repo"
    shutil.copytree(LAYOUT, root)
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"],
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    done = run_cli("rewrite", *common, env=env)
    assert done.exit_code == 0, done.output
    assert (root / "deploy/workers/harvester/requirements.txt").read_text() == (
        f"--index-url {server.simple_url}\n-r requirements-base.txt\nobs-metrics>=0.9.1,<0.10.0\n")
    rotate = root / "ops/cron/rotate/requirements.txt"
    assert rotate.read_text() == f"--index-url {server.simple_url}\nobs-trace==2.3.0\n"
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {server.username} password {server.password}\n")
    netrc.chmod(0o600)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed",
                          "--no-deps", "-r", str(rotate)], env={**os.environ, "HOME": str(tmp_path)},
                         capture_output=True, text=True, check=False)
    assert pip.returncode == 0 and "obs_trace-2.3.0" in pip.stdout + pip.stderr, pip.stdout + pip.stderr
    assert run_cli("rewrite", *common, "--check", env=env).exit_code == 0
    verified = run_cli("verify", *common, "--json", env=env)
    assert verified.exit_code == 0, verified.output
    consumers = {c["name"]: c["checks"]["resolve"]["status"] for c in json.loads(verified.stdout)["consumers"]}
    assert consumers == {"harvester": "ok", "rotate": "ok"}
