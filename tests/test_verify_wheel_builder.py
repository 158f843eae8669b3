"""A builder stage that makes wheels of the shared code (`pip wheel --wheel-dir /wheels <folder>`):
after the rewrite it fetches the package by version from the index and the image builds on the engine."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}

BUILDER_AFTER = """\
FROM ${BASE} AS builder
WORKDIR /build
ARG NEXUS_INDEX_URL={index}
RUN --mount=type=secret,id=netrc,target=/root/.netrc pip wheel --index-url "$NEXUS_INDEX_URL" --no-deps --wheel-dir /wheels 'geo-kit>=0.5.2,<0.6.0'
"""


@pytest.mark.engine
@pytest.mark.slow
def test_the_wheel_builder_stage_fetches_the_shared_package_from_the_index(
        docker_client, run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/poetry-wheel-builder", root)
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "DOCKER_HOST": os.environ["DOCKER_HOST"],
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)

    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    done = run_cli("rewrite", *common, env=env)
    assert done.exit_code == 0, done.output
    text = (root / "apps/courier/Dockerfile").read_text()
    assert BUILDER_AFTER.replace("{index}", server.simple_url) in text
    assert "platform/geo-kit" not in text
    assert run_cli("rewrite", *common, "--check", env=env).exit_code == 0

    # the builder stage resolved geo-kit from the index (else "the build failed"); the runtime stage
    # installs the wheel file it fetched: the index serves that file (name, version, sha256), so it counts
    verified = run_cli("verify", *common, "--build", "--json", "apps/courier", env=env)
    build = json.loads(verified.stdout)["consumers"][0]["checks"]["build"]
    assert build["status"] == "ok", verified.output
    assert verified.exit_code == 0, verified.output

    # a wheel the index does not serve (only the sdist is left: the builder stage builds the wheel
    # itself) is still not "from the index"
    for wheel in server.packages.glob("geo_kit-*.whl"):
        wheel.unlink()
    verified = run_cli("verify", *common, "--build", "--json", "apps/courier", env=env)
    build = json.loads(verified.stdout)["consumers"][0]["checks"]["build"]
    assert [f["message"] for f in build["findings"]] == [
        "the image does not import the shared packages from the index: geo-kit: installed from "
        "file:///wheels/geo_kit-0.5.2-py3-none-any.whl, a wheel the index does not serve "
        "(geo_kit-0.5.2-py3-none-any.whl of geo-kit 0.5.2)"], verified.output
    assert verified.exit_code == 1
