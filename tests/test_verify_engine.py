"""`nexusify verify --build` on the engine (Podman's Docker API and its CLI for BuildKit secrets):
a service's Dockerfile builds with its real context and the image imports the shared packages."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


@pytest.mark.engine
@pytest.mark.slow
def test_build_proves_the_image_installs_and_imports_the_shared_packages(
        docker_client, run_cli, monorepo: Path, pypi_server_factory, backend_wheels: list[Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    server = pypi_server_factory(auth="download,update,list")
    password = server.password or ""
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "DOCKER_HOST": os.environ["DOCKER_HOST"],
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password}
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)

    # before the rewrite the Dockerfile copies ../../shared/packages: the real context has no such folder
    before = run_cli("verify", *common, "--build", "--json", "services/quality-fabric", env=env)
    assert before.exit_code == 1, before.output
    build = json.loads(before.stdout)["consumers"][0]["checks"]["build"]
    assert build["status"] == "fail"
    assert build["findings"][0]["path"] == "services/quality-fabric/Dockerfile"
    assert "the build failed (context services/quality-fabric)" in build["findings"][0]["message"]

    assert run_cli("publish", *common, env=env).exit_code == 0
    assert run_cli("rewrite", *common, "services/quality-fabric", env=env).exit_code == 0
    after = run_cli("verify", *common, "--build", "--json", "services/quality-fabric", env=env)
    assert after.exit_code == 0, after.output
    checks = json.loads(after.stdout)["consumers"][0]["checks"]
    assert {k: v["status"] for k, v in checks.items()} == {"static": "ok", "lock": "n/a", "resolve": "ok",
                                                           "build": "ok"}
    assert checks["build"]["detail"] == (
        "built services/quality-fabric/Dockerfile; the image imports maestro-core-api, maestro-core-auth, "
        "maestro-core-config, maestro-core-logging, maestro-test-healer")
    assert password not in before.output + after.output
    assert _images(docker_client, "localhost/nexusify-verify/quality-fabric") == []  # verify removes its images


@pytest.mark.engine
@pytest.mark.slow
def test_build_uses_compose_named_contexts_and_build_args_and_the_rewritten_run_forms_build(
        docker_client, run_cli, pypi_server_factory, backend_wheels: list[Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """services/api is built by compose from its own folder with the named contexts `libs` and
    `conf` and the build arg BASE_IMAGE (no default): verify builds it the same way. Before the
    rewrite the image builds but installs dr-core from the copied folder (a failure); after publish
    and rewrite (grep filter and redundant installs dropped, dr-util by version) every check passes."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/docker-run-forms", root)
    server = pypi_server_factory(auth=None)
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "DOCKER_HOST": os.environ["DOCKER_HOST"]}
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)

    before = run_cli("verify", *common, "--build", "--json", "services/api", env=env)
    assert before.exit_code == 1, before.output
    build = json.loads(before.stdout)["consumers"][0]["checks"]["build"]
    assert build["status"] == "fail", build
    assert build["findings"][0]["message"] == (
        "the image does not import the shared packages: dr-core: installed from file:///deps/dr-core, not from the index")

    assert run_cli("publish", *common, env=env).exit_code == 0
    rewritten = run_cli("rewrite", *common, env=env)
    assert rewritten.exit_code == 0, rewritten.output
    after = run_cli("verify", *common, "--build", "--json", env=env)
    assert after.exit_code == 0, after.output
    consumers = {c["name"]: c["checks"] for c in json.loads(after.stdout)["consumers"]}
    assert {n: {k: v["status"] for k, v in c.items()} for n, c in consumers.items()} == {
        "api": {"static": "ok", "lock": "n/a", "resolve": "ok", "build": "ok"},
        "dr-worker": {"static": "ok", "lock": "n/a", "resolve": "ok", "build": "ok"}}
    assert consumers["api"]["build"]["detail"] == "built services/api/Dockerfile; the image imports dr-core"
    assert _images(docker_client, "localhost/nexusify-verify/api") == []


def _images(client, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Tags of ``name``; retried, since the shared engine may be deleting other images meanwhile."""
    import docker.errors

    for attempt in range(5):
        try:
            return [t for i in client.images.list(name=name) for t in i.tags]
        except docker.errors.APIError:
            if attempt == 4:
                raise
            time.sleep(1)
    return []
