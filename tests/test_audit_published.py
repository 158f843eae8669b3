"""The index status of `nexusify audit` (published versions, published-vs-local comparison) and
malformed URLs, against real pypiservers on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import free_port, make_sdist, make_wheel


def test_index_status_published_unpublished_and_differing(monorepo: Path, pypi_server_factory, run_cli) -> None:  # type: ignore[no-untyped-def]
    server = pypi_server_factory(auth=None)
    pkgs = monorepo / "shared/packages"
    make_sdist(server.packages, pkgs / "core-config", "maestro-core-config", "0.1.0")  # identical
    make_sdist(server.packages, pkgs / "core-auth", "maestro-core-auth", "0.2.0",
               changes={"maestro_core_auth/__init__.py": b"# an older edit\n"})  # differs
    make_sdist(server.packages, pkgs / "core-logging", "maestro-core-logging", "0.3.0")  # newer than local
    make_wheel(server.packages, pkgs / "monitoring", "maestro-monitoring", "0.1.0", "maestro_monitoring")  # wheel only
    (pkgs / "core-db/maestro_core_db/pool.py").write_text("POOL = 1\n")
    make_sdist(server.packages, pkgs / "core-db", "maestro-core-db", "0.1.0", skip=("maestro_core_db/pool.py",))

    r = run_cli("audit", "--root", str(monorepo), "--index-url", server.simple_url, "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1, r.output
    index = data["index"]
    assert index["reachable"] is True and index["url"] == server.simple_url
    status = {p["name"]: p for p in index["packages"]}
    assert len(status) == 8
    assert (status["maestro-core-config"]["published"], status["maestro-core-config"]["differs"],
            status["maestro-core-config"]["compared_with"]) == (True, False, "sdist")
    assert status["maestro-core-auth"]["differs"] is True
    assert status["maestro-core-auth"]["changed_files"] == ["maestro_core_auth/__init__.py"]
    assert status["maestro-core-logging"]["published"] is False
    assert status["maestro-core-logging"]["published_versions"] == ["0.3.0"]
    assert (status["maestro-monitoring"]["differs"], status["maestro-monitoring"]["compared_with"]) == (False, "wheel")
    assert status["maestro-core-db"]["changed_files"] == ["maestro_core_db/pool.py (new locally)"]
    assert status["maestro-core-api"] == {
        "name": "maestro-core-api", "local_version": "0.1.0", "published_versions": [], "published": False,
        "differs": None, "compared_with": None, "changed_files": []}
    problems = {(p["severity"], p["code"], p["path"]) for p in data["problems"]}
    assert ("error", "published-differs", "shared/packages/core-auth/pyproject.toml") in problems
    assert ("error", "published-differs", "shared/packages/core-db/pyproject.toml") in problems
    assert ("warning", "version-behind", "shared/packages/core-logging/pyproject.toml") in problems

    table = run_cli("audit", "--root", str(monorepo), "--index-url", server.simple_url)
    assert "on index" in table.stdout and "yes, differs" in table.stdout and "not yet" in table.stdout


def test_unreachable_index_is_a_warning(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"http://127.0.0.1:{free_port()}/simple/"
    r = run_cli("audit", "--root", str(monorepo), "--index-url", url, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["index"]["reachable"] is False
    (problem,) = [p for p in data["problems"] if p["code"] == "index-unreachable"]
    assert problem["severity"] == "warning" and url in problem["message"]


def test_offline_skips_the_index(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"http://127.0.0.1:{free_port()}/simple/"
    data = json.loads(run_cli("audit", "--root", str(monorepo), "--index-url", url, "--json", "--offline").stdout)
    assert data["index"] == {"url": None, "reachable": None, "packages": []}


def test_index_needing_credentials_is_a_warning(run_cli, monorepo: Path, pypi_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = pypi_server_factory(auth="download,update,list")
    r = run_cli("audit", "--root", str(monorepo), "--index-url", server.simple_url, "--json")
    assert r.exit_code == 0
    codes = [p["code"] for p in json.loads(r.stdout)["problems"]]
    assert "index-auth" in codes


def test_index_with_credentials_reads_status(run_cli, monorepo: Path, pypi_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = pypi_server_factory(auth="download,update,list")
    make_sdist(server.packages, monorepo / "shared/packages/core-config", "maestro-core-config", "0.1.0")
    env = {"HOME": str(monorepo), "NO_COLOR": "1", "NEXUS_USERNAME": server.username, "NEXUS_PASSWORD": server.password}
    r = run_cli("audit", "--root", str(monorepo), "--index-url", server.simple_url, "--json", env=env)
    data = json.loads(r.stdout)
    assert r.exit_code == 0, r.output
    status = {p["name"]: p for p in data["index"]["packages"]}
    assert status["maestro-core-config"]["published"] is True and status["maestro-core-config"]["differs"] is False
    assert server.password not in r.output


def test_malformed_urls_are_warnings_not_crashes(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--root", str(monorepo), "--json", "--index-url", "http://user:hunter2@[::1",
                "--check-public", "--public-index-url", "http://[bad")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    codes = {p["code"] for p in data["problems"]}
    assert {"index-unreachable", "public-index-unreachable"} <= codes
    assert "hunter2" not in r.output


def test_really_built_archives_do_not_differ(monorepo: Path, pypi_server_factory, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Archives from the real backends (setuptools adds egg-info and setup.cfg tags, hatchling a
    .gitignore, poetry-core and pdm-backend their own PKG-INFO) match the sources they came from."""
    import subprocess
    import sys

    server = pypi_server_factory(auth=None)
    for folder in ("core-messaging", "core-db", "core-config", "monitoring"):
        subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(server.packages),
                        str(monorepo / "shared/packages" / folder)], check=True, capture_output=True)
    r = run_cli("audit", "--root", str(monorepo), "--index-url", server.simple_url, "--json")
    status = {p["name"]: p for p in json.loads(r.stdout)["index"]["packages"]}
    for name in ("maestro-core-messaging", "maestro-core-db", "maestro-core-config", "maestro-monitoring"):
        assert (status[name]["published"], status[name]["differs"], status[name]["changed_files"]) == (True, False, []), name
    assert r.exit_code == 0, r.output
