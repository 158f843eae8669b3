"""Deploy reads the model: a service that still uses shared packages from source (a path dependency,
a Dockerfile COPY of shared code) is refused before anything is built; the deploy extra is optional."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult

DEPLOY_TOML = """
[deploy]
keep = 2

[deploy.services.gateway]
folder = "services/gateway"
container-port = 8000
public-port = 18099

[deploy.environments.{env}]
"""


def _configure(root: Path, env: str) -> None:
    (root / "nexusify.toml").write_text(DEPLOY_TOML.format(env=env))


def _cli_env() -> dict[str, str]:
    import os

    return {"HOME": str(Path.home()), "NO_COLOR": "1", "DOCKER_HOST": os.environ.get("DOCKER_HOST", ""),
            "PATH": os.environ.get("PATH", "")}


def _images(client: Any, ref: str) -> list[Any]:
    """The image named ``ref``, if the engine has it (asked by name: listing every image races with
    other tests removing theirs)."""
    import docker

    try:
        return [client.images.get(ref)]
    except docker.errors.ImageNotFound:
        return []


@pytest.mark.parametrize("dry_run", [pytest.param(False, id="deploy"), pytest.param(True, id="dry-run")])
def test_a_service_that_still_path_depends_on_shared_code_is_refused_before_building(
        monorepo: Path, run_cli: Any, docker_client: Any, dry_run: bool) -> None:
    env = "readiness-dry" if dry_run else "readiness"
    _configure(monorepo, env)
    args = ["deploy", "--root", str(monorepo), "--environment", env, "--tag", "v-refused"]
    r: CliResult = run_cli(*args, *(["--dry-run"] if dry_run else []), env=_cli_env())
    assert r.exit_code == 1, r.output
    err = r.stderr
    # every path dependency (the uv source line) and every COPY of shared code, at file:line
    assert "services/gateway/pyproject.toml:18: gateway: depends on maestro-core-auth by path" in err, err
    assert "services/gateway/pyproject.toml:19: gateway: depends on maestro-monitoring by path" in err, err
    for line in (6, 7, 8):
        assert f"services/gateway/Dockerfile:{line}: gateway: COPY ../../shared/packages/" in err, err
    assert "nexusify rewrite" in err
    # nothing was built, locked or recorded
    assert not (monorepo / ".nexusify" / "deploy" / env).exists()
    assert _images(docker_client, "gateway:v-refused") == []
    assert "Deploy plan" not in r.stdout


def test_only_build_needs_a_rewritten_service(monorepo: Path, run_cli: Any) -> None:
    """A switch of an already built image does not build, so the rule does not apply to it."""
    _configure(monorepo, "readiness-switch")
    r = run_cli("deploy", "--root", str(monorepo), "--environment", "readiness-switch", "--tag", "v1",
                "--stages", "switch", "--dry-run", env=_cli_env())
    assert r.exit_code == 0, r.output
    assert "Deploy plan" in r.stdout


def test_deploy_without_the_extra_exits_2_naming_the_pip_command(
        monorepo: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(monorepo, "noextra")
    monkeypatch.setitem(sys.modules, "docker", None)  # `import docker` now raises ImportError
    for verb in ("deploy", "rollback"):
        r = run_cli(verb, "--root", str(monorepo), "--environment", "noextra", env=_cli_env())
        assert r.exit_code == 2, r.output
        assert "python -m pip install 'nexusify[deploy]'" in r.stderr, r.stderr
        assert "docker" in r.stderr
    assert not (monorepo / ".nexusify" / "deploy" / "noextra").exists()
    history = run_cli("history", "--root", str(monorepo), "--environment", "noextra", env=_cli_env())
    assert history.exit_code == 0, history.output


def test_engine_connect_names_the_extra_when_the_sdk_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from nexusify.deploy.runtime.engine import connect
    from nexusify.errors import ExtraMissing

    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(ExtraMissing, match="'deploy' extra") as info:
        connect("unix:///nonexistent.sock", {})
    assert info.value.exit_code == 2 and info.value.hint == "python -m pip install 'nexusify[deploy]'"


BLOCKED = """
import sys
for name in ("docker", "boto3", "botocore", "alembic", "sqlalchemy"):
    sys.modules[name] = None  # import raises ImportError, as when the extra is not installed
from nexusify.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_help_and_audit_run_in_a_fresh_process_without_the_extra(monorepo: Path) -> None:
    import subprocess

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", BLOCKED, *argv], capture_output=True, text=True, timeout=60,
                              env={**_cli_env(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")})

    assert run("--help").returncode == 0
    audit = run("audit", "--root", str(monorepo), "--offline")
    assert audit.returncode in (0, 1) and "gateway" in audit.stdout + audit.stderr, audit.stderr
    assert "nexusify[deploy]" not in audit.stdout + audit.stderr
    deploy = run("deploy", "--root", str(monorepo), "--environment", "x")
    assert deploy.returncode == 2 and "python -m pip install 'nexusify[deploy]'" in deploy.stderr, deploy.stderr
