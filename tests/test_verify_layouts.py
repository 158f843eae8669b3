"""`nexusify verify` on real layouts beyond the sample: a uv workspace with one root uv.lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, missing

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def _uv_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    return {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
            "UV_PYTHON_DOWNLOADS": "never"}


def _statuses(data: dict) -> dict[str, dict[str, str]]:  # type: ignore[type-arg]
    return {c["name"]: {k: v["status"] for k, v in c["checks"].items()} for c in data["consumers"]}


@pytest.mark.slow
def test_uv_workspace_with_one_root_lock(run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Members on `{ workspace = true }` fail static at the source line and at the root uv.lock's
    lines that are theirs; the root lock passes `uv lock --check`. A member moved out of the
    workspace onto the index (exclude, its own index source and uv.lock: shared/notes/tools.md)
    passes every check, while the one left in the workspace still fails."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock", root)
    env = _uv_env(tmp_path, monkeypatch)
    server = pypi_server_factory(auth="download,update,list")
    env.update({"NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""})
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)

    before = run_cli("verify", *common, "--json", env=env)
    assert before.exit_code == 1, before.output
    data = json.loads(before.stdout)
    assert _statuses(data) == {"svc-a": {"static": "fail", "lock": "ok", "resolve": "fail"},
                               "svc-b": {"static": "fail", "lock": "ok", "resolve": "fail"}}
    svc_a = next(c for c in data["consumers"] if c["name"] == "svc-a")
    assert [f"{f['path']}:{f['line']}: {f['message']}" for f in svc_a["checks"]["static"]["findings"]] == [
        "services/svc-a/pyproject.toml:8: acme-common is still installed from the uv workspace",
        "uv.lock:21: acme-common is locked from editable `libs/common`",
        "uv.lock:32: acme-common is recorded from editable `libs/common`",
    ]
    assert svc_a["checks"]["lock"]["detail"] == "`uv lock --check` in . passed"

    # move svc-b out of the workspace, onto the index
    assert run_cli("publish", *common, env=env).exit_code == 0
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'members = ["libs/*", "services/*"]', 'members = ["libs/*", "services/*"]\nexclude = ["services/svc-b"]'))
    svc_b = root / "services/svc-b"
    manifest = svc_b / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace(
        "acme-common = { workspace = true }",
        f'acme-common = {{ index = "nexus" }}\n\n[[tool.uv.index]]\nname = "nexus"\nurl = "{server.simple_url}"\n'
        "explicit = true"))
    uv_env = {**env, "UV_INDEX_NEXUS_USERNAME": server.username or "", "UV_INDEX_NEXUS_PASSWORD": server.password or ""}
    for folder in (root, svc_b):
        made = subprocess.run(["uv", "lock"], cwd=folder, env=uv_env, capture_output=True, text=True, check=False)
        assert made.returncode == 0, made.stderr

    after = run_cli("verify", *common, "--json", "services/svc-b", env=env)
    assert after.exit_code == 0, after.output
    moved = json.loads(after.stdout)["consumers"][0]
    assert moved["checks"]["lock"]["detail"] == "`uv lock --check` in services/svc-b passed"
    assert moved["checks"]["resolve"]["detail"] == f"from {server.simple_url}: acme-common 0.2.0"
    everything = run_cli("verify", *common, env=env)
    assert everything.exit_code == 1
    assert "failed: svc-a" in everything.stdout


_FOLDERS = {"acme-common": "libs/common", "svc-a": "services/svc-a"}


def _root_with_dev_group(tmp_path: Path, *members: str, source: str = "{ workspace = true }") -> Path:
    """A copy of uv-root-lock whose virtual root lists ``members`` in its dev group, from the workspace
    (or the ``source`` given: ``{path}`` is the member's folder)."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock", root)
    with (root / "pyproject.toml").open("a") as fh:
        fh.write(f"\n[dependency-groups]\ndev = {json.dumps(list(members))}\n\n[tool.uv.sources]\n"
                 + "".join(f"{m} = {source.replace('{path}', _FOLDERS.get(m, m))}\n" for m in members))
    return root


def test_a_root_project_that_consumes_its_members_stays_in_the_workspace(run_cli, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The virtual root's dev group takes the library from the workspace, which keeps it as a member:
    the root is a consumer that stays in the workspace and keeps working as is (the lead's decision
    for issue 14): verify shows static/lock/resolve n/a with that reason, not ok and not fail."""
    root = _root_with_dev_group(tmp_path, "acme-common")
    env = _uv_env(tmp_path, monkeypatch)
    made = subprocess.run(["uv", "lock", "--offline"], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    result = run_cli("verify", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/", "--json", str(root),
                     env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert _statuses(data) == {"acme": {"static": "n/a", "lock": "n/a", "resolve": "n/a"}}
    assert data["consumers"][0]["checks"]["static"]["detail"].startswith("stays in the uv workspace")


@pytest.mark.slow
def test_a_virtual_roots_dev_group_is_resolved_from_the_index(run_cli, tmp_path: Path, pypi_server_factory,
                                                              backend_wheels: list[Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared package the virtual root lists only in its dev group is resolved from the index
    (pip, the index alone): once published it resolves, and the resolve check names it; the
    services the group lists are left out (nothing publishes them). The root takes them by path
    (`{ workspace = true }` would make it stay in the workspace: n/a, see above)."""
    root = _root_with_dev_group(tmp_path, "acme-common", "svc-a", source='{ path = "{path}", editable = true }')
    env = _uv_env(tmp_path, monkeypatch)
    server = pypi_server_factory(auth=None)
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    result = run_cli("verify", *common, "--json", str(root), env=env)
    data = json.loads(result.stdout)
    resolve = data["consumers"][0]["checks"]["resolve"]
    assert resolve["status"] == "ok", resolve
    assert resolve["detail"] == f"from {server.simple_url}: acme-common 0.2.0"
    assert data["consumers"][0]["checks"]["static"]["status"] == "fail"  # still a path: not green
    assert result.exit_code == 1
