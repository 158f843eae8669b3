"""Day two on a migrated monorepo in a git repository with a real index (pypiserver): a `fix:`
commit in a deep package -> `affected` -> `release --dry-run` -> `release --publish` -> nothing
left; then a `feat!:` commit re-pins the consumers, and a clean virtualenv gets the new versions
from the index alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .test_affected import GIT_ENV, commit_all, git

pytestmark = pytest.mark.slow

LOGGING = "shared/packages/core-logging"
USERS = ["automation-service", "quality-fabric", "scheduler"]  # use core-logging, directly or not


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not {".git", ".nexusify"} & set(p.relative_to(root).parts)}


def _files(server_dir: Path) -> set[str]:
    return {p.name for p in server_dir.iterdir()}


def test_fix_then_breaking_change_through_affected_release_and_publish(  # type: ignore[no-untyped-def]
        run_cli, monorepo: Path, pypi_server_factory, build_env_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    server = pypi_server_factory(auth=None)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # uv and poetry (dev extras)
    env = {"HOME": str(Path.home()), "NO_COLOR": "1", "NEXUSIFY_BUILD_ENV_DIR": str(build_env_dir), "PATH": path,
           "UV_DEFAULT_INDEX": server.simple_url, "UV_NO_CACHE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    root = monorepo
    idx = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return run_cli(*args, *idx, env=env)

    # the migration: publish everything, rewrite the services, commit
    assert cli("publish").exit_code == 0
    assert cli("rewrite").exit_code == 0
    # two consumers lock their dependencies: uv (scheduler) and Poetry (quality-fabric). scheduler
    # was written for PDM: locked with uv, it names the index the uv way too (verify's sources check:
    # without it `uv sync` would take the shared packages from PyPI)
    scheduler = root / "services/scheduler/pyproject.toml"
    shared = ("maestro-core-config", "maestro-core-logging", "maestro-core-messaging", "maestro-test-healer")
    scheduler.write_text(scheduler.read_text() + f'\n[[tool.uv.index]]\nname = "nexus"\nurl = "{server.simple_url}"\n'
                         'explicit = true\n\n[tool.uv.sources]\n'
                         + "".join(f'{n} = {{ index = "nexus" }}\n' for n in shared))
    for folder, cmd in (("services/scheduler", ["uv", "lock"]), ("services/quality-fabric", ["poetry", "lock", "-n"])):
        locked = subprocess.run(cmd, cwd=root / folder, capture_output=True, text=True, check=False,
                                env={**os.environ, **env})
        assert locked.returncode == 0, locked.stdout + locked.stderr
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "initial: migrated")
    assert json.loads(cli("affected", "--json").stdout)["changed"] == []

    # a fix deep down
    init = root / LOGGING / "maestro_core_logging/__init__.py"
    init.write_text(init.read_text() + "\nCASE_INSENSITIVE_LEVELS = True\n")
    commit_all(root, "fix: log levels are case-insensitive")
    affected = json.loads(cli("affected", "--json").stdout)
    assert affected["changed"] == ["maestro-core-logging"]
    assert affected["packages"] == ["maestro-core-logging", "maestro-core-api", "maestro-core-messaging"]
    assert sorted(c["name"] for c in affected["consumers"]) == USERS  # not gateway, never reporting

    # --dry-run prints the whole plan and touches nothing
    before, head, uploaded = _tree(root), git(root, "rev-parse", "HEAD"), _files(server.packages)
    dry = cli("release", "--bump", "auto", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert {b["name"]: (b["from"], b["to"], b["why"]) for b in plan["bumps"]} == {
        "maestro-core-logging": ("0.1.0", "0.1.1", "changed"),
        "maestro-core-api": ("0.1.0", "0.1.1", "cascade"),
        "maestro-core-messaging": ("0.1.0", "0.1.1", "cascade")}
    assert plan["repins"] == [] and plan["written"] is False
    assert _tree(root) == before and git(root, "rev-parse", "HEAD") == head and _files(server.packages) == uploaded

    # the release: patch bumps with cascade, no re-pin (^0.1.0 admits 0.1.1), exactly those uploaded
    services_before = {k: v for k, v in before.items() if k.startswith("services/")}
    done = cli("release", "--bump", "auto", "--publish", "--commit", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["published"] is not None and result["commit"]
    new_files = _files(server.packages) - uploaded
    assert new_files == {f"maestro_core_{n}-0.1.1{ext}" for n in ("logging", "api", "messaging")
                         for ext in ("-py3-none-any.whl", ".tar.gz")}
    after = _tree(root)
    assert {k: v for k, v in after.items() if k.startswith("services/")} == services_before
    assert '__version__ = "0.1.1"' in (root / "shared/packages/core-messaging/src/maestro_core_messaging/__init__.py").read_text()
    assert 'version = "0.1.1"' in (root / LOGGING / "pyproject.toml").read_text()
    log = (root / LOGGING / "CHANGELOG.md").read_text()
    assert "## [0.1.1] - " in log and "### Fixed" in log and "- log levels are case-insensitive" in log
    assert "Requires maestro-core-logging 0.1.1" in (root / "shared/packages/core-api/CHANGELOG.md").read_text()
    assert set(git(root, "tag").split()) >= {"maestro-core-logging-v0.1.1", "maestro-core-api-v0.1.1"}
    assert git(root, "status", "--porcelain") == ""

    # afterwards: rewrite --check passes, nothing is affected, a second release does nothing
    assert cli("rewrite", "--check").exit_code == 0
    assert json.loads(cli("affected", "--json").stdout)["changed"] == []
    again = cli("release", "--bump", "auto", "--publish", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["bumps"] == []
    assert _files(server.packages) == uploaded | new_files

    # a breaking change in 0.x bumps the minor, and consumers whose ^0.1 no longer admits are re-pinned
    init.write_text(init.read_text() + "\ndef configure_v2() -> None: ...\n")
    commit_all(root, "feat!: configure() is gone, use configure_v2()")
    breaking = cli("release", "--bump", "auto", "--publish", "--commit", "--json")
    assert breaking.exit_code == 0, breaking.output
    res = json.loads(breaking.stdout)
    assert {b["name"]: (b["to"], b["level"]) for b in res["bumps"]} == {
        "maestro-core-logging": ("0.2.0", "minor (breaking, 0.x rule)"),
        "maestro-core-api": ("0.1.2", "patch"), "maestro-core-messaging": ("0.1.2", "patch")}
    repinned = {r["consumer"] for r in res["repins"]}
    assert repinned and repinned <= set(USERS)
    assert all(r["package"] == "maestro-core-logging" for r in res["repins"])
    assert before["services/gateway/pyproject.toml"] == (root / "services/gateway/pyproject.toml").read_bytes()
    assert "maestro_core_logging-0.2.0.tar.gz" in _files(server.packages)
    assert cli("rewrite", "--check").exit_code == 0
    # the re-pinned consumers' lockfiles were refreshed against the index, and committed
    assert sorted(res["locked"]) == ["services/quality-fabric/poetry.lock", "services/scheduler/uv.lock"]
    for lockfile in res["locked"]:
        pins = {p["name"]: p["version"] for p in tomllib.loads((root / lockfile).read_text())["package"]}
        assert pins["maestro-core-logging"] == "0.2.0", lockfile
        assert pins["maestro-core-config"] == "0.1.0", lockfile  # minimal: what needed no change did not move
    assert git(root, "status", "--porcelain") == "" and res["lock_commit"]

    # a release never reuses a version the index holds (a local version left behind, e.g. by a reset)
    messaging = root / "shared/packages/core-messaging/src/maestro_core_messaging/__init__.py"
    messaging.write_text(messaging.read_text().replace('"0.1.2"', '"0.1.1"') + "\nLATE = True\n")
    taken = cli("release", "--bump", "patch", "--dry-run")
    assert taken.exit_code == 1 and "maestro-core-messaging 0.1.2 is on the index already" in taken.output
    git(root, "checkout", "--", ".")

    # a clean virtualenv installs a re-pinned service's shared packages from the index alone
    assert "scheduler" in repinned
    deps = tomllib.loads((root / "services/scheduler/pyproject.toml").read_text())["project"]["dependencies"]
    assert "maestro-core-logging>=0.2.0,<0.3.0" in deps
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip_env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = subprocess.run([str(venv / "bin/pip"), "install", "--isolated", "--no-cache-dir", "--index-url",
                              server.simple_url, *deps], capture_output=True, text=True, env=pip_env, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    shown = subprocess.run([str(venv / "bin/pip"), "list", "--format", "json"], capture_output=True, text=True,
                           check=True, env=pip_env).stdout
    versions = {p["name"]: p["version"] for p in json.loads(shown)}
    assert versions["maestro-core-logging"] == "0.2.0" and versions["maestro-core-messaging"] == "0.1.2"
