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

from tests.conftest import FIXTURES, download_wheels, missing
from tests.helpers import snapshot

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def _six_pins(lock: Path) -> list[str]:
    return re.findall(r'name = "six"\nversion = "([^"]+)"', lock.read_text())


def _uv(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["uv", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _six_pinned_workspace(tmp_path: Path, pypi_server_factory, backend_wheels: list[Path],  # type: ignore[no-untyped-def]
                          monkeypatch: pytest.MonkeyPatch):
    """The uv workspace fixture whose worker takes six, locked at 1.16.0 while the index (a real
    pypiserver holding the build backends) serves 1.16.0 and 1.17.0: (server, env, root)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    for pin in ("six==1.16.0", "six==1.17.0"):  # one call each: pip refuses two pins of one name at once
        download_wheels(server.packages, pin, options=("--no-deps",))
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
           "UV_PYTHON_DOWNLOADS": "never", "UV_DEFAULT_INDEX": server.simple_url,
           "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}

    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    manifest = root / "services/worker/pyproject.toml"
    manifest.write_text(manifest.read_text().replace('["common"]', '["common", "six==1.16.0"]'))
    assert _uv(["lock"], root, env).returncode == 0
    manifest.write_text(manifest.read_text().replace('"six==1.16.0"', '"six>=1.15"'))
    made = _uv(["lock"], root, env)
    assert made.returncode == 0, made.stderr
    assert _six_pins(root / "uv.lock") == ["1.16.0"]
    return server, env, root


@pytest.mark.slow
def test_rewrite_moves_a_uv_workspace_member_onto_the_index(run_cli, tmp_path: Path, pypi_server_factory,
                                                             backend_wheels: list[Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """audit -> publish -> `rewrite --check services/worker` (exit 1, the planned move, nothing
    written) -> rewrite -> the root and the member pass `uv lock --check`, six stays at its pinned
    1.16.0 in both locks (1.17.0 is on the index), the compose build uses the member's folder,
    `rewrite --check` exits 0 and `nexusify verify services/worker` passes."""
    server, env, root = _six_pinned_workspace(tmp_path, pypi_server_factory, backend_wheels, monkeypatch)
    worker = root / "services/worker"
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
    # the virtual root (its dev group takes common from the workspace, which keeps it) stays and keeps working
    stays = run_cli("verify", *common, "--json", str(root), env=env)
    assert stays.exit_code == 0, stays.output
    checks = json.loads(stays.stdout)["consumers"][0]["checks"]
    assert {k: v["status"] for k, v in checks.items()} == {"static": "n/a", "lock": "n/a", "resolve": "n/a"}
    assert _uv(["lock", "--check"], root, env).returncode == 0


@pytest.mark.slow
def test_a_moves_locks_that_would_move_a_third_party_pin_are_not_taken(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both locks of a move go through the re-lock's pin check: when the index no longer serves the
    six 1.16.0 the workspace pinned, uv would re-lock the root and lock the member at 1.17.0, so
    neither result is taken (each a stale-lockfile warning with the exact command), while the move's
    files are written."""
    server, env, root = _six_pinned_workspace(tmp_path, pypi_server_factory, backend_wheels, monkeypatch)
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    old_lock = (root / "uv.lock").read_bytes()
    for wheel in server.packages.glob("six-1.16.0-*"):
        wheel.unlink()
    done = run_cli("rewrite", *common, "services/worker", "--json", env=env)
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    stale = {p["path"]: p for p in data["problems"] if p["code"] == "stale-lockfile"}
    refused = "would move third-party pins (six 1.16.0 -> 1.17.0), so its result was not taken"
    assert stale["services/worker/uv.lock"]["message"] == (
        f"services/worker/uv.lock could not be made: `uv lock --upgrade-package common` {refused}")
    assert "`cd services/worker && uv lock --upgrade-package common`" in stale["services/worker/uv.lock"]["hint"]
    assert stale["uv.lock"]["message"] == (
        f"uv.lock still pins the old entries of worker: `uv lock --upgrade-package worker` {refused}")
    move = next(s for s in data["services"] if s["path"] == "services/worker")["uv_workspace_move"]
    assert move["locked"] == []
    assert not (root / "services/worker/uv.lock").exists() and (root / "uv.lock").read_bytes() == old_lock
    assert 'exclude = ["services/worker"]' in (root / "pyproject.toml").read_text()


def test_a_move_that_cannot_lock_still_rewrites_and_every_stale_lock_is_a_warning(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No index to lock against: the files are still rewritten, and each lock that cannot be made is
    the re-lock's `stale-lockfile` warning with the exact command; `rewrite --check` exits 1 while a
    move's lock is missing or stale (the next `rewrite` makes it), and `rewrite --no-lock` locks nothing."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    old_lock = (root / "uv.lock").read_bytes()
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1", "UV_OFFLINE": "1",
           "UV_PYTHON_DOWNLOADS": "never"}
    common = ("--root", str(root), "--index-url", "http://127.0.0.1:9/simple/")
    command = "`cd services/worker && uv lock --upgrade-package common`"

    skipped = tmp_path / "skipped"
    shutil.copytree(root, skipped)
    no_lock = run_cli("rewrite", "--root", str(skipped), "--index-url", "http://127.0.0.1:9/simple/", "--no-lock",
                      "services/worker", env=env)
    assert no_lock.exit_code == 0, no_lock.output
    assert 'exclude = ["services/worker"]' in (skipped / "pyproject.toml").read_text()
    assert (skipped / "uv.lock").read_bytes() == old_lock and not (skipped / "services/worker/uv.lock").exists()
    assert "uv.lock: warning[stale-lockfile]: uv.lock still pins the old entries of worker: it was not re-locked " \
        "(--no-lock or a dry run)" in no_lock.output and command in no_lock.output

    done = run_cli("rewrite", *common, "services/worker", env=env)
    assert done.exit_code == 0, done.output
    assert "services/worker/uv.lock: warning[stale-lockfile]: services/worker/uv.lock could not be made: " \
        "`uv lock --upgrade-package common` failed" in done.output and command in done.output
    assert 'exclude = ["services/worker"]' in (root / "pyproject.toml").read_text()
    assert not (root / "services/worker/uv.lock").exists()
    # the root needs nothing from an index here: it was re-locked, offline
    assert "uv.lock:1: re-locked with `uv lock --upgrade-package worker` against nexus" in done.output
    assert _uv(["lock", "--check", "--offline"], root, env).returncode == 0

    (root / "uv.lock").write_bytes(old_lock)  # as if the root could not be re-locked either
    before = snapshot(root)
    check = run_cli("rewrite", *common, "--check", "services/worker", env=env)
    assert check.exit_code == 1, check.output
    assert "services/worker/uv.lock: warning[stale-lockfile]: services/worker/uv.lock could not be made: " \
        "services/worker was taken out of the uv workspace at . and has no uv.lock of its own" in check.output
    assert "uv.lock: warning[stale-lockfile]: uv.lock still pins the old entries of worker: it still records " \
        "worker as a member of the uv workspace" in check.output
    assert "2 lockfile(s) re-locked; run `nexusify rewrite`" in check.output
    assert snapshot(root) == before
    again = run_cli("rewrite", *common, "services/worker", env=env)  # the next rewrite re-locks what it can
    assert again.exit_code == 0, again.output
    assert _uv(["lock", "--check", "--offline"], root, env).returncode == 0
    assert command in again.output and not (root / "services/worker/uv.lock").exists()


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
    download_wheels(server.packages, "uv", "editables",
                    options=("--no-deps", "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64"))
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


COPY_ALL_DOCKERFILE = """FROM python:3.11-slim-bookworm
WORKDIR /app
RUN pip install uv
COPY . .
RUN uv sync --frozen --directory services/api
CMD ["python", "-c", "import api"]
"""


def test_a_copy_of_the_whole_workspace_is_never_green(run_cli, tmp_path: Path) -> None:
    """`COPY . .` from the workspace root, then `uv sync --directory <member>` (the acceptance run's
    S1 notifier): the copy brings the shared code with the member, so moving the member is the
    `dockerfile-uv-move` error at file:line in rewrite and --check (nothing written); audit warns,
    and once the member is out of the workspace by hand, --check and verify's static check still fail it."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    (root / "docker/Dockerfile.api").write_text(COPY_ALL_DOCKERFILE)
    before = snapshot(root)
    where = "docker/Dockerfile.api:4: error[dockerfile-uv-move]"
    for args in (("--check",), ()):
        result = run_cli("rewrite", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/", *args,
                         "services/api", env=ENV)
        assert result.exit_code == 1 and where in result.output, result.output
        assert snapshot(root) == before
    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    found = [(p["path"], p["line"], p["code"]) for p in json.loads(audit.stdout)["problems"]]
    assert ("docker/Dockerfile.api", 4, "dockerfile-uv-workspace") in found

    # moved by hand (excluded, index source) while the Dockerfile still copies the workspace
    manifest = root / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('members = ["libs/*", "services/*"]',
                                                     'members = ["libs/*", "services/*"]\nexclude = ["services/api"]'))
    api = root / "services/api/pyproject.toml"
    api.write_text(api.read_text().replace('["models", "common"]', '["models>=0.1", "common>=0.1"]')
                   .replace("{ workspace = true }", '{ index = "nexus" }')
                   + '\n[[tool.uv.index]]\nname = "nexus"\nurl = "http://127.0.0.1:9/simple/"\nexplicit = true\n')
    # and its Dockerfile already patched for the index (the acceptance run's S1 state after its rewrite)
    (root / "docker/Dockerfile.api").write_text(COPY_ALL_DOCKERFILE.replace(
        "RUN pip install uv\n", 'ARG NEXUS_INDEX_URL=http://127.0.0.1:9/simple/\n'
        'RUN pip install --index-url "$NEXUS_INDEX_URL" uv\n'))
    for targets in (("services/api",), ()):
        check = run_cli("rewrite", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/", "--check",
                        *targets, env=ENV)
        assert check.exit_code == 1, check.output
        assert "docker/Dockerfile.api:5: error[dockerfile-uv-workspace]" in check.output, check.output
    verify = run_cli("verify", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/", "--json",
                     "services/api", env=ENV)
    assert verify.exit_code == 1, verify.output
    assert "docker/Dockerfile.api" in verify.output
