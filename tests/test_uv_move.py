"""`nexusify rewrite <member>` moves a uv workspace member onto the index, end to end with real uv
against a real pypiserver index (the shared packages published, the third-party wheels served)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, missing
from tests.helpers import snapshot

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def _six_pins(lock: Path) -> list[str]:
    return re.findall(r'name = "six"\nversion = "([^"]+)"', lock.read_text())


def _uv(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["uv", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_rewrite_moves_a_uv_workspace_member_onto_the_index(run_cli, tmp_path: Path, pypi_server_factory,
                                                             backend_wheels: list[Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """audit -> publish -> `rewrite --check services/worker` (exit 1, the planned move, nothing
    written) -> rewrite -> the root and the member pass `uv lock --check`, six stays at its pinned
    1.16.0 in both locks (1.17.0 is on the index), the compose build uses the member's folder,
    `rewrite --check` exits 0 and `nexusify verify services/worker` passes."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                          "-d", str(server.packages), "six==1.16.0"], capture_output=True, text=True, check=False)
    got2 = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                           "-d", str(server.packages), "six==1.17.0"], capture_output=True, text=True, check=False)
    if got.returncode or got2.returncode:
        missing("PyPI", f"pip download of six failed: {(got.stderr + got2.stderr)[-300:]}")
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
           "UV_PYTHON_DOWNLOADS": "never", "UV_DEFAULT_INDEX": server.simple_url,
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}

    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    worker = root / "services/worker"
    manifest = worker / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('["common"]', '["common", "six==1.16.0"]'))
    assert _uv(["lock"], root, env).returncode == 0
    manifest.write_text(manifest.read_text().replace('"six==1.16.0"', '"six>=1.15"'))
    made = _uv(["lock"], root, env)
    assert made.returncode == 0, made.stderr
    assert _six_pins(root / "uv.lock") == ["1.16.0"]
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)

    audit = run_cli("audit", *common, "--offline", "--json", env=env)
    strategies = {s["path"]: s["uv_workspace"] for s in json.loads(audit.stdout)["services"]}
    assert strategies["services/worker"] == {
        "root": ".", "strategy": "stays in the workspace (builds from a context holding the workspace); "
                                 "`nexusify rewrite services/worker` moves it to the index"}
    assert run_cli("publish", *common, env=env).exit_code == 0

    before = snapshot(root)
    check = run_cli("rewrite", *common, "--check", "services/worker", env=env)
    assert check.exit_code == 1, check.output
    assert 'services/worker moves out of the uv workspace at . onto the index (exclude "services/worker"; ' \
           "lock uv.lock, services/worker/uv.lock)" in check.output
    assert snapshot(root) == before

    done = run_cli("rewrite", *common, "services/worker", "--json", env=env)
    assert done.exit_code == 0, done.output
    move = next(s for s in json.loads(done.stdout)["services"] if s["path"] == "services/worker")["uv_workspace_move"]
    assert move["locked"] == ["uv.lock", "services/worker/uv.lock"]
    assert 'exclude = ["services/worker"]' in (root / "pyproject.toml").read_text()
    assert 'worker = { path = "services/worker", editable = true }' in (root / "pyproject.toml").read_text()
    for folder in (root, worker):
        checked = _uv(["lock", "--check"], folder, env)
        assert checked.returncode == 0, (folder, checked.stderr)
        assert _six_pins(folder / "uv.lock") == ["1.16.0"], folder
    assert 'source = { registry = "' + server.simple_url in (worker / "uv.lock").read_text()
    compose = (root / "docker-compose.yml").read_text()
    assert "context: services/worker\n      dockerfile: ../../docker/Dockerfile.worker" in compose
    dockerfile = (root / "docker/Dockerfile.worker").read_text()
    assert "COPY . ./services/worker\n" in dockerfile and "libs" not in dockerfile
    assert ('UV_PROJECT_ENVIRONMENT=/workspace/.venv UV_DEFAULT_INDEX="$NEXUS_INDEX_URL" uv sync --frozen --no-dev '
            "--directory services/worker") in dockerfile

    assert run_cli("rewrite", *common, "--check", "services/worker", env=env).exit_code == 0
    verified = run_cli("verify", *common, "--json", "services/worker", env=env)
    assert verified.exit_code == 0, verified.output
    checks = json.loads(verified.stdout)["consumers"][0]["checks"]
    assert {k: v["status"] for k, v in checks.items()} == {"static": "ok", "lock": "ok", "resolve": "ok"}


def test_a_move_that_cannot_lock_still_rewrites_and_every_stale_lock_is_a_warning(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No index to lock against: the files are still rewritten, and each lock that cannot be made is
    a warning with the exact command; `rewrite --check` keeps reporting stale locks (exit 0, or 1
    with --strict) until they are made."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    old_lock = (root / "uv.lock").read_bytes()
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1", "UV_OFFLINE": "1",
           "UV_PYTHON_DOWNLOADS": "never"}
    common = ("--root", str(root), "--index-url", "http://127.0.0.1:9/simple/")
    done = run_cli("rewrite", *common, "services/worker", env=env)
    assert done.exit_code == 0, done.output
    assert "services/worker/uv.lock: warning[stale-lockfile]: services/worker/uv.lock could not be made" \
        in done.output and "run `uv lock` in services/worker" in done.output
    assert 'exclude = ["services/worker"]' in (root / "pyproject.toml").read_text()
    assert not (root / "services/worker/uv.lock").exists()
    # the root needs nothing from an index here: it was re-locked, offline
    assert _uv(["lock", "--check", "--offline"], root, env).returncode == 0

    (root / "uv.lock").write_bytes(old_lock)  # as if the root could not be re-locked either
    check = run_cli("rewrite", *common, "--check", "services/worker", env=env)
    assert check.exit_code == 0, check.output
    assert "services/worker/uv.lock: warning[stale-lockfile]: services/worker was taken out of the uv workspace" \
        in check.output
    assert "uv.lock: warning[stale-lockfile]: uv.lock still records worker as a member" in check.output
    assert run_cli("rewrite", *common, "--check", "--strict", "services/worker", env=env).exit_code == 1


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.parametrize("compose", [True, False], ids=["compose-member-context", "root-context"])
def test_the_moved_members_image_builds_alone_on_the_engine(docker_client, run_cli, tmp_path: Path,
                                                           pypi_server_factory, backend_wheels: list[Path],
                                                           monkeypatch: pytest.MonkeyPatch, compose: bool) -> None:
    """After the move the Dockerfile copies only the member and syncs it from its own uv.lock, uv
    taking everything from the index; `verify --build` builds it on the engine and the image imports
    the shared package, installed from the index. Built through compose, its context is the member's
    folder (the Dockerfile outside it); named by no compose file (`docker build -f
    docker/Dockerfile.worker .`), it keeps the root context."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    # uv itself (installed in the image) and hatchling's editable-build helper, as a Nexus group would serve them
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                          "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64", "-d", str(server.packages),
                          "uv", "editables"], capture_output=True, text=True, check=False)
    if got.returncode:
        missing("PyPI", f"pip download of uv and editables failed: {got.stderr[-300:]}")
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
           "UV_PYTHON_DOWNLOADS": "never", "UV_DEFAULT_INDEX": server.simple_url,
           "DOCKER_HOST": os.environ["DOCKER_HOST"],
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    if not compose:
        (root / "docker-compose.yml").unlink()
    dockerfile = root / "docker/Dockerfile.worker"
    # the test base image is Debian's Python (PEP 668): uv goes into its own venv
    dockerfile.write_text(dockerfile.read_text().replace(
        "RUN pip install uv\n",
        "RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install uv\nENV PATH=/workspace/.venv/bin:/opt/uv/bin:$PATH\n"))
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    done = run_cli("rewrite", *common, "services/worker", env=env)
    assert done.exit_code == 0, done.output
    text = dockerfile.read_text()
    copy = "COPY . ./services/worker\n" if compose else "COPY services/worker ./services/worker\n"
    assert copy in text and "libs" not in text and "uv.lock ./" not in text

    verified = run_cli("verify", *common, "--build", "--json", "services/worker", env=env)
    assert verified.exit_code == 0, verified.output
    checks = json.loads(verified.stdout)["consumers"][0]["checks"]
    assert checks["build"]["detail"] == "built docker/Dockerfile.worker; the image imports common"


CACHING_DOCKERFILE = """\
FROM python:3.11-slim-bookworm
RUN pip install uv
WORKDIR /workspace
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services/api/pyproject.toml ./services/api/
RUN uv sync --frozen --no-dev --no-install-project --package api
COPY services/api ./services/api
RUN uv sync --frozen --no-dev --package api
CMD ["python", "-c", "import api"]
"""


def test_the_layer_caching_shape_gets_the_members_own_lock_beside_its_manifest(run_cli, tmp_path: Path) -> None:
    """Manifest first (`uv sync --no-install-project`), code second: the member's uv.lock is copied
    with its manifest, both syncs install the member alone from its own folder (compose context),
    into the workspace's .venv, with uv reading the index."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    (root / "docker/Dockerfile.api").write_text(CACHING_DOCKERFILE)
    before = snapshot(root)
    diff = run_cli("rewrite", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/", "--diff",
                   "services/api", env=ENV)
    assert diff.exit_code == 0, diff.output
    sync = 'RUN UV_PROJECT_ENVIRONMENT=/workspace/.venv UV_DEFAULT_INDEX="$NEXUS_INDEX_URL" uv sync --frozen --no-dev '
    assert (
        "+COPY pyproject.toml uv.lock ./services/api/\n"
        f"+{sync}--no-install-project --directory services/api\n"
        "+COPY . ./services/api\n"
        f"+{sync}--directory services/api\n"
    ) in diff.output
    assert "+      context: services/api\n+      dockerfile: ../../docker/Dockerfile.api\n" in diff.output
    assert snapshot(root) == before
