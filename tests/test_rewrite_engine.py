"""The seed's failure, reproduced and fixed on the real engine (Podman's Docker API + its CLI).

Before ``rewrite`` a sample service's image cannot be built with its own folder as the build
context (the Dockerfile copies ``../../shared/packages``). After ``publish`` (into a pypiserver
that requires credentials even to download) and ``rewrite``, it builds from that folder alone,
installs the shared packages from the index through a BuildKit netrc secret, imports them when
run, and the password is in neither the image history nor any layer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import missing


def _podman() -> list[str]:
    exe = shutil.which("podman")
    host = os.environ.get("DOCKER_HOST", "")
    if not exe or not host:
        missing("podman CLI", "BuildKit secrets need the engine's CLI (the Docker SDK cannot pass them)")
    return [str(exe), "--remote", "--url", host]


def _scan_saved_image(tar_path: Path, needle: bytes) -> list[str]:
    """Every place of a ``podman save`` archive holding ``needle``: archive members and, for
    layer tarballs (plain or gzip), the files inside them."""
    hits: list[str] = []
    with tarfile.open(tar_path) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()  # type: ignore[union-attr]
            if needle in data:
                hits.append(member.name)
            if data[:2] == b"\x1f\x8b" or member.name.endswith((".tar", ".tar.gz", "layer.tar")) or len(data) > 10240:
                try:
                    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                        for inner in layer.getmembers():
                            if needle in inner.name.encode():
                                hits.append(f"{member.name}:{inner.name} (name)")
                            if inner.isfile():
                                content = layer.extractfile(inner).read()  # type: ignore[union-attr]
                                if needle in content:
                                    hits.append(f"{member.name}:{inner.name}")
                except tarfile.TarError:
                    pass
    return hits


@pytest.mark.engine
@pytest.mark.slow
def test_seed_failure_reproduced_then_fixed_by_publish_and_rewrite(
    docker_client, monorepo: Path, pypi_server_factory, backend_wheels: list[Path], run_cli, tmp_path: Path,
) -> None:
    import docker.errors

    podman = _podman()
    service = monorepo / "services" / "quality-fabric"
    tag = f"localhost/nexusify-test/quality-fabric:{uuid.uuid4().hex[:8]}"

    # 1. the seed's failure: the service folder as build context has no shared/packages
    with pytest.raises(docker.errors.BuildError) as failed:
        docker_client.images.build(path=str(service), tag=tag + "-before", network_mode="host", rm=True, forcerm=True)
    log = " ".join(str(c.get("stream", "") or c.get("error", "")) for c in failed.value.build_log or []) + str(failed.value)
    assert "COPY ../../shared/packages /shared/packages" in log
    assert "/shared/packages" in log and "no such file or directory" in log

    # 2. publish the shared packages to an index that requires credentials for everything
    server = pypi_server_factory(auth="download,update,list")
    password = server.password or ""
    assert password
    env = {"HOME": str(tmp_path), "NO_COLOR": "1", "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password}
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)
    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    for wheel in backend_wheels:  # what a Nexus group (hosted + PyPI proxy) would serve
        shutil.copy(wheel, server.packages / wheel.name)

    # 3. rewrite: versions from the index, netrc secret because credentials are configured
    rewritten = run_cli("rewrite", *common, "--from-index", env=env)
    assert rewritten.exit_code == 0, rewritten.output
    assert password not in rewritten.output
    dockerfile = (service / "Dockerfile").read_text()
    assert "RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install --index-url" in dockerfile
    assert password not in dockerfile and password not in (service / "pyproject.toml").read_text()

    # 4. the image builds with the service folder as its only context, through the secret
    netrc = tmp_path / "netrc"
    fd = os.open(netrc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"machine 127.0.0.1 login {server.username} password {password}\n")

    def build(folder: Path, ref: str) -> str:
        proc = subprocess.run(
            [*podman, "build", "--network", "host", "--secret", f"id=netrc,src={netrc}", "-t", ref, str(folder)],
            capture_output=True, text=True, check=False, timeout=900,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        return proc.stdout + proc.stderr

    scheduler_tag = tag.replace("quality-fabric", "scheduler")
    try:
        output = build(service, tag)
        assert "Successfully installed" in output and "maestro-core-api-0.1.0" in output
        assert "maestro-test-healer-0.1.0" in output
        # a PDM service (file URLs before the rewrite; its Dockerfile checks the import itself)
        scheduler_output = build(monorepo / "services" / "scheduler", scheduler_tag)
        assert "maestro-core-messaging-0.1.0" in scheduler_output
        assert password not in output + scheduler_output

        # 5. it imports the shared packages when run
        result = docker_client.containers.run(
            tag, ["python", "-c", "import json; from quality_fabric.app import info; print(json.dumps(info()))"],
            remove=True, network_mode="host",
        )
        info = json.loads(result.decode().strip().splitlines()[-1])
        assert info["service"] == "quality-fabric"
        assert set(info["shared"]) == {"maestro-core-api", "maestro-test-healer"}

        # 6. the password is in neither the history nor any layer
        history = subprocess.run([*podman, "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag],
                                 capture_output=True, text=True, check=True).stdout
        assert "--mount=type=secret,id=netrc" in history
        assert password not in history
        assert password not in json.dumps(docker_client.images.get(tag).attrs)
        saved = tmp_path / "image.tar"
        subprocess.run([*podman, "save", "-o", str(saved), tag], check=True, capture_output=True)
        assert saved.stat().st_size > 1_000_000
        assert _scan_saved_image(saved, password.encode()) == []
        assert _scan_saved_image(saved, b"maestro_core_api") != []  # the scan does look inside layers
    finally:
        for ref in (tag, tag + "-before", scheduler_tag):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(ref, force=True)
