"""The reference Dockerfiles in dockerfiles/ are in the shape rewrite writes, and they build."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from nexusify.syntax.dockerfile_parse import parse

from .conftest import REPO, missing
from .test_dockerfile import patch

TEMPLATES = sorted((REPO / "dockerfiles").glob("*.Dockerfile"))


def test_there_are_templates() -> None:
    assert {t.name for t in TEMPLATES} >= {"pip-service.Dockerfile", "multistage-service.Dockerfile"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_is_already_in_rewrites_shape(template: Path, tmp_path: Path) -> None:
    text = template.read_text()
    instructions = parse(text)
    assert any(i.keyword == "RUN" and "--mount=type=secret,id=netrc" in text for i in instructions)
    shared = tmp_path / "shared" / "packages" / "core-api"
    shared.mkdir(parents=True)
    result = patch(Path("Dockerfile"), text, [shared], index_url="https://nexus.example.com/repository/pypi-group/simple/",
                   auth=True, context=tmp_path / "services" / "svc")
    assert result.problems == []
    assert not result.changed, "rewrite would change a reference Dockerfile"
    assert "password" not in text.lower()


@pytest.mark.engine
@pytest.mark.slow
def test_multistage_template_builds_a_rewritten_service(
    docker_client, monorepo: Path, pypi_server_factory, backend_wheels: list[Path], run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    podman = shutil.which("podman")
    host = os.environ.get("DOCKER_HOST", "")
    if not podman or not host:
        missing("podman CLI", "BuildKit secrets need the engine's CLI")
    server = pypi_server_factory(auth="download,update,list")
    password = server.password or ""
    env = {"HOME": str(tmp_path), "NO_COLOR": "1", "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password}
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages / wheel.name)
    rewritten = run_cli("rewrite", *common, "--no-dockerfiles", "services/quality-fabric", env=env)
    assert rewritten.exit_code == 0, rewritten.output

    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {server.username} password {password}\n")
    netrc.chmod(0o600)
    tag = f"localhost/nexusify-test/template:{uuid.uuid4().hex[:8]}"
    cmd = [podman, "--remote", "--url", host, "build", "--network", "host", "--secret", f"id=netrc,src={netrc}",
           "-f", str(REPO / "dockerfiles" / "multistage-service.Dockerfile"),
           "--build-arg", f"NEXUS_INDEX_URL={server.simple_url}", "--build-arg", "APP_MODULE=quality_fabric",
           "-t", tag, str(monorepo / "services" / "quality-fabric")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert password not in proc.stdout + proc.stderr
        out = docker_client.containers.run(
            tag, ["python", "-c", "import json; from quality_fabric.app import info; print(json.dumps(info()))"],
            remove=True, network_mode="host",
        )
        info = json.loads(out.decode().strip().splitlines()[-1])
        assert set(info["shared"]) == {"maestro-core-api", "maestro-test-healer"}
        image = docker_client.images.get(tag)
        assert image.attrs["Config"]["Env"] and "APP_MODULE=quality_fabric" in image.attrs["Config"]["Env"]
        assert password not in json.dumps(image.attrs)
        history = subprocess.run([podman, "--remote", "--url", host, "history", "--no-trunc", "--format",
                                  "{{.CreatedBy}}", tag], capture_output=True, text=True, check=True).stdout
        assert password not in history
    finally:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(tag, force=True)
