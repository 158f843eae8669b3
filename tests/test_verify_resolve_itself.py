"""A consumer that is also a shared package (a server its siblings extend, deployed by its own
Dockerfile: presidio-image-redactor) is installed from its own folder when verify resolves it;
that is not a shared package "not from the index". What it takes must still come from the index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_verify_layouts import _uv_env

HATCH = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.slow
def test_a_shared_consumer_is_resolved_from_its_folder_and_its_deps_from_the_index(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    env = _uv_env(tmp_path, monkeypatch)
    server = pypi_server_factory(auth=None)
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    index = f'[[tool.uv.index]]\nname = "nexus"\nurl = "{server.simple_url}"\nexplicit = true\n'
    root = _write(tmp_path / "repo", {
        "libs/common/pyproject.toml": '[project]\nname = "common"\nversion = "0.1.0"\n' + HATCH,
        "libs/common/src/common/__init__.py": "",
        "apps/server/pyproject.toml": '[project]\nname = "server"\nversion = "0.1.0"\ndependencies = ["common>=0.1"]\n'
                                      '[tool.uv.sources]\ncommon = { index = "nexus" }\n' + index + HATCH,
        "apps/server/src/server/__init__.py": "",
        "apps/server/Dockerfile": "FROM python:3.12\nCOPY . /app\nRUN pip install /app\n",
        "apps/ext/pyproject.toml": '[project]\nname = "ext"\nversion = "0.1.0"\ndependencies = ["server"]\n'
                                   '[tool.uv.sources]\nserver = { path = "../server" }\n' + HATCH,
        "apps/ext/src/ext/__init__.py": "",
    })
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    result = run_cli("verify", *common, "--json", "apps/server", env=env)
    (row,) = json.loads(result.stdout)["consumers"]
    resolve = row["checks"]["resolve"]
    assert resolve["status"] == "ok", resolve
    assert resolve["detail"] == f"from {server.simple_url}: common 0.1.0"
