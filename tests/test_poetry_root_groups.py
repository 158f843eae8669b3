"""A Poetry root that takes each workspace by path in its own group and is built by one Dockerfile
(`poetry install --only app`), shaped like adriangb/python-monorepo (poetry), found by the ecosystem
check: the root's groups are what its image installs, so every workspace it takes is shared (one
rule: a project another in-repo project depends on), and the root is the consumer that migrates
them all. It used to keep `acme-app`/`acme-cli` on paths with verify and `rewrite --check` ok."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nexusify.model import load_workspace
from tests.conftest import FIXTURES, missing
from tests.helpers import role, snapshot

LAYOUT = FIXTURES / "layouts/poetry-root-groups"


def test_a_deployed_roots_groups_make_every_workspace_it_takes_shared() -> None:
    ws = load_workspace(LAYOUT)
    assert {p.rel(ws.root): role(ws, p) for p in ws.projects} == {
        ".": "consumer", "workspaces/app": "shared", "workspaces/cli": "shared", "workspaces/lib": "shared"}
    root = ws.project_at(ws.root)
    assert root is not None and sorted(ws.takes(root)) == ["acme-app", "acme-cli", "acme-lib"]
    assert ws.problems == []


def test_without_a_dockerfile_the_roots_groups_are_for_local_work(tmp_path: Path) -> None:
    """Nothing deploys the root: its groups list the workspaces for local work, which makes the
    library shared and leaves app and cli consumers (of lib)."""
    root = tmp_path / "repo"
    shutil.copytree(LAYOUT, root)
    (root / "Dockerfile").unlink()
    ws = load_workspace(root)
    assert {p.rel(ws.root): role(ws, p) for p in ws.projects} == {
        ".": "consumer", "workspaces/app": "consumer", "workspaces/cli": "consumer", "workspaces/lib": "shared"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("poetry") is None:
        missing("poetry", "`poetry` is not on PATH (a dev extra: pip install -e '.[dev]')")
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "NO_COLOR": "1", "PATH": os.environ["PATH"], "POETRY_NO_INTERACTION": "1",
            "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache")}


@pytest.mark.slow
def test_the_root_migrates_every_workspace_and_poetry_locks_them_from_the_index(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path], env: dict[str, str]) -> None:
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    env = {**env, "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}
    root = tmp_path / "repo"
    shutil.copytree(LAYOUT, root)
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    done = run_cli("rewrite", *common, env=env)
    assert done.exit_code == 0, done.output
    manifest = (root / "pyproject.toml").read_text()
    assert "path =" not in manifest, manifest
    locked = subprocess.run(["poetry", "lock"], cwd=root, env=env, capture_output=True, text=True, check=False,
                            timeout=300)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    lock = (root / "poetry.lock").read_text()
    for name in ("acme-app", "acme-cli", "acme-lib"):
        assert f'name = "{name}"' in lock and "develop = true" not in lock
    assert server.simple_url.rstrip("/") in lock  # every workspace comes from the index
    assert run_cli("rewrite", "--check", *common, env=env).exit_code == 0
    verified = run_cli("verify", *common, env=env)
    assert verified.exit_code == 0, verified.output


def test_an_image_that_copies_the_workspaces_is_refused_at_its_line(run_cli, tmp_path: Path) -> None:
    """As in the repository: the image copies `workspaces/` and its CMD runs a file from there.
    rewrite refuses at that line and writes nothing; `--check` fails. (A COPY whose code nothing
    else uses is dropped instead: the groups then install from the index.)"""
    root = tmp_path / "repo"
    shutil.copytree(LAYOUT, root)
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        'RUN poetry install --only app --no-root\nCMD ["python", "-m", "acme.app"]\n',
        'COPY workspaces/ workspaces/\nRUN poetry install --only app --no-root\n'
        'CMD ["python", "workspaces/app/src/acme/app/__init__.py"]\n'))
    before = snapshot(root)
    url = "http://127.0.0.1:9/simple/"
    done = run_cli("rewrite", "--root", str(root), "--index-url", url, env={"NO_COLOR": "1", "HOME": str(tmp_path)})
    assert done.exit_code == 1, done.output
    assert "Dockerfile:8" in done.output and "dockerfile-uses-shared-code" in done.output, done.output
    assert snapshot(root) == before
    check = run_cli("rewrite", "--check", "--root", str(root), "--index-url", url,
                    env={"NO_COLOR": "1", "HOME": str(tmp_path)})
    assert check.exit_code == 1 and "Dockerfile:8" in check.output, check.output
