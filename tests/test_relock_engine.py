"""The PDM root consumer's image, after publish and rewrite, built on the real engine: pip installs
pdm from the index, pdm installs the shared packages through its `[[tool.pdm.source]]` URL
(``${NEXUS_USERNAME}:${NEXUS_PASSWORD}@``, both set from the netrc build secret for that one step),
the image imports them, and the password is in neither the history nor any layer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import download_wheels, missing
from tests.test_relock import _index, _pdm_root_consumer, six_wheels  # noqa: F401 (a fixture)
from tests.test_rewrite_engine import _podman, _scan_saved_image


@pytest.fixture(scope="session")
def pdm_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """pdm and what it needs, for CPython 3.11 on Linux: what the image's `pip install pdm` takes
    from the index (a Nexus group would proxy PyPI)."""
    return download_wheels(tmp_path_factory.mktemp("pdm-wheels"), "pdm", "hishel[httpx2]==1.4.0", options=(
        "--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux2014_x86_64",
        "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64"))


@pytest.mark.engine
@pytest.mark.slow
def test_pdm_consumer_image_installs_the_shared_packages_through_the_build_secret(
        docker_client, run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path],
        pdm_wheels: list[Path], six_wheels: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import docker.errors

    podman = _podman()
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("pdm") is None:
        missing("pdm", "`pdm` is not on PATH (a dev extra: pip install -e '.[dev]')")
    server = _index(pypi_server_factory, [*backend_wheels, *pdm_wheels, *six_wheels], auth="download,update,list")
    password = server.password or ""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "NO_COLOR": "1", "PATH": os.environ["PATH"], "PDM_CHECK_UPDATE": "false",
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password}
    root = _pdm_root_consumer(tmp_path, server.simple_url, env, auth=True)
    # the stack's base image has Debian's python3 (PEP 668): let the fixture's `pip install pdm` through
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("RUN pip install pdm\n",
                                                         "ENV PIP_BREAK_SYSTEM_PACKAGES=1\nRUN pip install pdm\n"))
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    rewritten = run_cli("rewrite", *common, env=env)
    assert rewritten.exit_code == 0, rewritten.output

    netrc = tmp_path / "netrc"
    fd = os.open(netrc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"machine 127.0.0.1 login {server.username} password {password}\n")
    tag = f"localhost/nexusify-test/pdm-root:{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run([*podman, "build", "--network", "host", "--secret", f"id=netrc,src={netrc}", "-t", tag,
                               str(root)], capture_output=True, text=True, check=False, timeout=900)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-3000:]
        assert password not in output
        ran = docker_client.containers.run(
            tag, ["/app/.venv/bin/python", "-c", "import acme_api, acme_schemas, six; print('imported')"],
            remove=True, network_mode="host")
        assert ran.decode().strip().endswith("imported")
        history = subprocess.run([*podman, "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag],
                                 capture_output=True, text=True, check=True).stdout
        assert "--mount=type=secret,id=netrc" in history and password not in history
        assert password not in json.dumps(docker_client.images.get(tag).attrs)
        saved = tmp_path / "image.tar"
        subprocess.run([*podman, "save", "-o", str(saved), tag], check=True, capture_output=True)
        assert _scan_saved_image(saved, password.encode()) == []
        assert _scan_saved_image(saved, b"acme_api") != []  # the scan does look inside layers
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(tag, force=True)
