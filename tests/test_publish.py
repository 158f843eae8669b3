"""`nexusify publish` against REAL servers: pypiserver, and the Nexus emulator (pypiserver inside)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nexusify.config import resolve_settings
from nexusify.publish import PublishOptions, execute_plan, plan_publish, run_publish
from tests.conftest import FIXTURES
from tests.helpers import snapshot

pytestmark = pytest.mark.slow


def _env(build_env_dir: Path, user: str | None = None, password: str | None = None) -> dict[str, str]:
    env = {"HOME": str(Path.home()), "NO_COLOR": "1", "NEXUSIFY_BUILD_ENV_DIR": str(build_env_dir),
           "PATH": os.environ.get("PATH", "")}
    if user:
        env["NEXUS_USERNAME"] = user
    if password:
        env["NEXUS_PASSWORD"] = password
    return env


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return [ln.split(":", 1)[1].strip() for ln in zf.read(meta).decode().splitlines() if ln.startswith("Requires-Dist:")]


def test_publish_sample_to_pypiserver(monorepo: Path, pypi_server_factory, run_cli, build_env_dir: Path,  # type: ignore[no-untyped-def]
                                      tmp_path: Path) -> None:
    server = pypi_server_factory(auth="update")
    env = _env(build_env_dir, server.username, server.password)
    before = snapshot(monorepo, skip=[".nexusify"])
    first = run_cli("publish", "--root", str(monorepo), "--repository-url", server.url, "--json", env=env)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert server.password not in first.output
    files = sorted(p.name for p in server.packages.iterdir())
    assert len(files) == 16 and len([f for f in files if f.endswith(".whl")]) == 8  # each package once: wheel + sdist
    assert {p["status"] for p in report["packages"]} == {"uploaded"}
    assert all(p["verified"] for p in report["packages"])
    assert snapshot(monorepo, skip=[".nexusify"]) == before  # the source tree is never modified
    assert server.password not in (monorepo / ".nexusify/publish-state.json").read_text()
    # internal requirements are versions in the metadata, never paths
    assert sorted(_requires(server.packages / "maestro_core_api-0.1.0-py3-none-any.whl")) == [
        "maestro-core-auth (>=0.2.0,<0.3.0)", 'maestro-core-db (>=0.1.0,<0.2.0) ; extra == "db"',
        "maestro-core-logging (>=0.1.0,<0.2.0)"]
    assert _requires(server.packages / "maestro_core_messaging-0.1.0-py3-none-any.whl") == [
        "maestro-core-logging<0.2.0,>=0.1.0"]

    # a clean virtualenv installs every shared package from this index alone
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip_env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = subprocess.run(
        [str(venv / "bin/pip"), "install", "--isolated", "--no-cache-dir", "--index-url", server.simple_url,
         "maestro-core-api[db]", "maestro-core-messaging", "maestro-test-healer", "maestro-monitoring"],
        capture_output=True, text=True, env=pip_env, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([str(venv / "bin/python"), "-c", "import maestro_core_api, maestro_core_db, "
                            "maestro_core_messaging, maestro_core_config"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr

    # a second run uploads nothing, builds nothing, and exits 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in server.packages.iterdir()}
    second = run_cli("publish", "--root", str(monorepo), "--repository-url", server.url, "--json", env=env)
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["uploaded_files"] == [] and again["counts"] == {"unchanged": 8}
    assert {p.name: p.stat().st_mtime_ns for p in server.packages.iterdir()} == mtimes

    # a fresh clone (no .nexusify state) reaches the same verdict from the archives themselves
    shutil.rmtree(monorepo / ".nexusify")
    fresh = run_cli("publish", "--root", str(monorepo), "--repository-url", server.url, "--json", env=env)
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.stdout)["counts"] == {"present": 8}

    # a package changed without a version bump is refused, with the fix; nothing is uploaded
    init = monorepo / "shared/packages/core-config/maestro_core_config/__init__.py"
    init.write_text(init.read_text() + "\nCHANGED = True\n")
    changed = run_cli("publish", "--root", str(monorepo), "--repository-url", server.url, env=env)
    assert changed.exit_code == 1
    assert "version 0.1.0 of maestro-core-config changed without a bump" in changed.output
    assert "bump the version of maestro-core-config (e.g. 0.1.1)" in changed.output
    assert server.password not in changed.output
    assert {p.name: p.stat().st_mtime_ns for p in server.packages.iterdir()} == mtimes

    # after the bump it publishes, and dependents stay as published: their ranges admit 0.1.1
    pyproject = monorepo / "shared/packages/core-config/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.1.1"', 1))
    bumped = run_cli("publish", "--root", str(monorepo), "--repository-url", server.url, "--json", env=env)
    assert bumped.exit_code == 0, bumped.output
    result = {p["name"]: p["status"] for p in json.loads(bumped.stdout)["packages"]}
    assert result["maestro-core-config"] == "uploaded"
    assert set(result.values()) <= {"uploaded", "unchanged", "present"}
    assert len(list(server.packages.iterdir())) == 18


def test_dry_run_builds_and_uploads_nothing(monorepo: Path, pypi_server_factory, run_cli,  # type: ignore[no-untyped-def]
                                            build_env_dir: Path) -> None:
    server = pypi_server_factory(auth=None)
    result = run_cli("publish", "--root", str(monorepo), "--repository-url", server.url, "--dry-run", "--json",
                     env=_env(build_env_dir))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] and {p["status"] for p in report["packages"]} == {"would-build"}
    assert [p["name"] for p in report["packages"]][:2] == ["maestro-core-config", "maestro-core-auth"]
    assert list(server.packages.iterdir()) == []
    assert not (monorepo / ".nexusify").exists()


@pytest.mark.parametrize("layout", [
    pytest.param(FIXTURES / "publish/uv-workspace", id="uv-workspace"),
    pytest.param(FIXTURES / "layouts/pdm-file-urls", id="pdm-file-urls"),
    pytest.param(FIXTURES / "publish/poetry-libs", id="poetry-libs"),
])
def test_publish_other_layouts(layout: Path, tmp_path: Path, pypi_server_factory, build_env_dir: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / layout.name
    shutil.copytree(layout, root)
    server = pypi_server_factory(auth=None)
    env = _env(build_env_dir)
    settings = resolve_settings(root, {"repository_url": server.url}, env)
    report = run_publish(settings, PublishOptions(env=env))
    assert report.ok, [p.to_dict() for p in report.packages]
    names = [p.name for p in report.packages]
    wheels = sorted(server.packages.glob("*.whl"))
    assert len(wheels) == len(names) and len(list(server.packages.glob("*.tar.gz"))) == len(names)
    for wheel in wheels:
        for req in _requires(wheel):
            assert "file:" not in req and "@" not in req, (wheel.name, req)
    if layout.name == "uv-workspace":
        assert "ws-auth<0.3.0,>=0.2.0" in _requires(server.packages / "ws_api-0.5.0-py3-none-any.whl")
    if layout.name == "poetry-libs":
        # odd names (underscores, dots), a pre-release; installs from this index alone
        assert sorted(_requires(server.packages / "acme_events-2.0.0b1-py3-none-any.whl")) == [
            "acme-common-utils (>=1.2.0,<2.0.0)", "acme-db-client (>=0.4.1,<0.5.0)"]
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(venv / "bin/pip"), "install", "--isolated", "--no-cache-dir", "--index-url", server.simple_url,
             "Acme.Events==2.0.0b1"], capture_output=True, text=True, check=False,
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        assert install.returncode == 0, install.stdout + install.stderr
        assert "acme-db-client-0.4.1" in install.stdout.replace("_", "-").lower()
    again = run_publish(settings, PublishOptions(env=env))
    assert again.ok and again.uploaded == []


# --------------------------------------------------------------------------- Nexus (emulated)


def test_publish_to_nexus(monorepo: Path, nexus_factory, run_cli, build_env_dir: Path) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory(private=True)
    env = _env(build_env_dir, emu.username, emu.password)
    args = ("publish", "--root", str(monorepo), "--nexus-url", emu.base_url, "--repository", emu.repository)
    result = run_cli(*args, env=env)
    assert result.exit_code == 0, result.output
    assert len(emu.files()) == 16
    assert emu.password not in result.output
    log = emu.control("log")
    assert any(e["path"] == "/service/rest/v1/status/writable" for e in log)
    assert any(e["path"] == "/service/rest/v1/search" for e in log)
    assert all(e["auth"] for e in log if e["method"] == "POST")
    emu.control("clear-log")
    again = run_cli(*args, "--json", env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["uploaded_files"] == []
    assert not any(e["method"] == "POST" for e in emu.control("log"))


@pytest.mark.parametrize("style", ["old", "new"])  # 3.70-: "does not allow updating assets"; 3.71+: "cannot be updated"
def test_allow_once_rejection_is_verified_by_hash(monorepo: Path, nexus_factory, build_env_dir: Path,  # type: ignore[no-untyped-def]
                                                  style: str) -> None:
    emu = nexus_factory(message_style=style)
    env = _env(build_env_dir, emu.username, emu.password)
    settings = resolve_settings(monorepo, {"nexus_url": emu.base_url, "repository": emu.repository}, env)
    options = PublishOptions(env=env, packages=("maestro-core-config",))
    stale = plan_publish(settings, options)  # sees an empty repository
    assert run_publish(settings, options).ok  # someone else publishes the same files meanwhile
    report = execute_plan(stale, options)  # every upload now meets ALLOW_ONCE's 400
    assert report.ok, [p.to_dict() for p in report.packages]
    assert [f.action for f in report.packages[0].files] == ["present", "present"]
    assert len(emu.files()) == 2


def test_read_only_nexus_is_a_clear_error(monorepo: Path, nexus_factory, run_cli, build_env_dir: Path) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory()
    emu.control("freeze")
    result = run_cli("publish", "--root", str(monorepo), "--nexus-url", emu.base_url,
                     env=_env(build_env_dir, emu.username, emu.password))
    assert result.exit_code == 1
    assert "read-only" in result.output and emu.files() == []


def test_without_credentials_nothing_is_uploaded_blind(monorepo: Path, nexus_factory, run_cli,  # type: ignore[no-untyped-def]
                                                       build_env_dir: Path) -> None:
    emu = nexus_factory(private=True)
    result = run_cli("publish", "--root", str(monorepo), "--nexus-url", emu.base_url, env=_env(build_env_dir))
    assert result.exit_code == 1
    assert "401" in result.output and "NEXUS_PASSWORD" in result.output
    assert emu.files() == []
    assert not any(e["method"] == "POST" for e in emu.control("log"))


def test_proxy_413_fails_the_package_and_stops_its_dependents(monorepo: Path, nexus_factory, build_env_dir: Path) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory()
    emu.control("upload-status/413")  # the first upload (core-config's first file) meets a proxy's limit
    env = _env(build_env_dir, emu.username, emu.password)
    settings = resolve_settings(monorepo, {"nexus_url": emu.base_url}, env)
    report = run_publish(settings, PublishOptions(env=env))
    status = {p.name: p for p in report.packages}
    assert status["maestro-core-config"].status == "failed"
    assert "client_max_body_size" in str(status["maestro-core-config"].error)
    for dependent in ("maestro-core-auth", "maestro-core-db", "maestro-core-logging", "maestro-core-api",
                      "maestro-core-messaging", "maestro-test-healer"):
        assert status[dependent].status == "blocked", dependent
    assert status["maestro-monitoring"].status == "uploaded"  # independent packages still publish
    assert not report.ok
    assert sorted(emu.files()) == ["maestro_monitoring-0.1.0-py3-none-any.whl", "maestro_monitoring-0.1.0.tar.gz"]


def test_401_mid_run_stops_every_later_upload(monorepo: Path, nexus_factory, build_env_dir: Path) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory()
    emu.control("upload-status/401")
    env = _env(build_env_dir, emu.username, emu.password)
    settings = resolve_settings(monorepo, {"nexus_url": emu.base_url}, env)
    report = run_publish(settings, PublishOptions(env=env))
    assert report.packages[0].status == "failed"
    assert all(p.status == "blocked" and "credentials" in p.reason for p in report.packages[1:])
    assert emu.files() == []


def _package(root: Path, name: str, deps: dict[str, str], requires: str = '"hatchling"') -> None:
    folder = root / "packages" / name
    module = folder / "src" / name.replace("-", "_")
    module.mkdir(parents=True)
    (module / "__init__.py").write_text(f'"""{name}."""\n')
    dependencies = ", ".join(f'"{d}"' for d in deps)
    sources = "".join(f'{d} = {{ path = "{p}" }}\n' for d, p in deps.items())
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "1.0.0"\ndescription = "x"\nrequires-python = ">=3.11"\n'
        f"dependencies = [{dependencies}]\n\n[tool.uv.sources]\n{sources}\n"
        f'[build-system]\nrequires = [{requires}]\nbuild-backend = "hatchling.build"\n')


def test_unbuildable_package_blocks_only_its_dependents(tmp_path: Path, pypi_server_factory,  # type: ignore[no-untyped-def]
                                                        build_env_dir: Path) -> None:
    root = tmp_path / "repo"
    _package(root, "base-lib", {}, requires='"hatchling==0.0.0.1"')  # no such release: the env cannot be made
    _package(root, "mid-lib", {"base-lib": "../base-lib"})
    _package(root, "solo-lib", {})
    server = pypi_server_factory(auth=None)
    env = _env(build_env_dir)
    report = run_publish(resolve_settings(root, {"repository_url": server.url}, env), PublishOptions(env=env))
    status = {p.name: p for p in report.packages}
    assert status["base-lib"].status == "failed"
    assert "could not install the build requirements" in str(status["base-lib"].error)
    assert status["mid-lib"].status == "blocked" and "base-lib" in status["mid-lib"].reason
    assert status["solo-lib"].status == "uploaded"
    assert sorted(p.name for p in server.packages.iterdir()) == ["solo_lib-1.0.0-py3-none-any.whl", "solo_lib-1.0.0.tar.gz"]


def test_same_contents_in_other_bytes_is_the_same_release_every_time(monorepo: Path, pypi_server_factory,  # type: ignore[no-untyped-def]
                                                                       build_env_dir: Path) -> None:
    import gzip

    server = pypi_server_factory(auth=None)
    env = _env(build_env_dir)
    settings = resolve_settings(monorepo, {"repository_url": server.url}, env)
    options = PublishOptions(env=env, packages=("maestro-core-config",))
    assert run_publish(settings, options).ok
    # the index's sdist was built elsewhere: same members, other gzip bytes (another machine's clock)
    sdist = server.packages / "maestro_core_config-0.1.0.tar.gz"
    sdist.write_bytes(gzip.compress(gzip.decompress(sdist.read_bytes()), compresslevel=1, mtime=1_700_000_000))
    shutil.rmtree(monorepo / ".nexusify" / "dist")
    (monorepo / ".nexusify" / "publish-state.json").unlink()  # a fresh clone
    first = run_publish(settings, options)
    assert first.ok and first.uploaded == []
    assert sorted(f.action for f in first.packages[0].files) == ["present", "present-same-contents"]
    second = run_publish(settings, options)
    assert [p.status for p in second.packages] == ["unchanged"]  # no rebuild next time


def test_upload_to_hosted_verify_and_install_from_the_group(monorepo: Path, nexus_factory, run_cli,  # type: ignore[no-untyped-def]
                                                            build_env_dir: Path, tmp_path: Path) -> None:
    emu = nexus_factory(groups={"pypi-all": ["pypi-hosted"]})
    env = _env(build_env_dir, emu.username, emu.password)
    # a group is read-only: pointing uploads at it is a clear error, not a silent success
    wrong = run_cli("publish", "--root", str(monorepo), "--nexus-url", emu.base_url, "--repository", "pypi-all",
                    "maestro-core-config", env=env)
    assert wrong.exit_code == 1 and "405" in wrong.output and "hosted" in wrong.output
    result = run_cli("publish", "--root", str(monorepo), "--nexus-url", emu.base_url, "--repository", "pypi-hosted",
                     "--index-repository", "pypi-all", "--json", env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["index_url"] == f"{emu.base_url}/repository/pypi-all/simple/"
    assert all(p["verified"] for p in report["packages"])
    log = emu.control("log")
    assert any(e["path"].startswith("/repository/pypi-all/simple/") for e in log)  # verified from the group
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin/pip"), "install", "--isolated", "--no-cache-dir", "--index-url",
         f"{emu.base_url}/repository/pypi-all/simple/", "maestro-core-api"], capture_output=True, text=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}, check=False)
    assert install.returncode == 0, install.stdout + install.stderr


def test_a_5xx_on_upload_is_retried_after_looking(monorepo: Path, nexus_factory, build_env_dir: Path) -> None:  # type: ignore[no-untyped-def]
    emu = nexus_factory()
    emu.control("upload-status/502")  # a proxy hiccup on the first upload
    env = _env(build_env_dir, emu.username, emu.password)
    settings = resolve_settings(monorepo, {"nexus_url": emu.base_url}, env)
    report = run_publish(settings, PublishOptions(env=env, packages=("maestro-core-config",)))
    assert report.ok and [f.action for f in report.packages[0].files] == ["uploaded", "uploaded"]
    posts = [e for e in emu.control("log") if e["method"] == "POST"]
    assert len(posts) == 3  # the sdist twice (502, then 200), the wheel once
    assert len(emu.files()) == 2
