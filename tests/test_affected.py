"""`nexusify affected` (and audit's path/index kinds) on a migrated copy of the sample monorepo
in a real git repository; the git baseline needs no index (a dead index URL proves it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .test_rewrite import rewrite

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
DEAD_INDEX = ("--index-url", "http://127.0.0.1:9/simple/", "--repository-url", "http://127.0.0.1:9/")


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV})
    return proc.stdout


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def migrated(run_cli, monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    assert rewrite(run_cli, monorepo).exit_code == 0
    git(monorepo, "init", "-q", "-b", "main")
    commit_all(monorepo, "initial: migrated to versions from the index")
    return monorepo


def test_audit_shows_how_each_shared_dependency_is_declared(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    def kinds() -> dict[str, dict[str, str]]:
        res = run_cli("audit", "--root", str(monorepo), "--offline", "--json")
        return {s["name"]: s["shared_dependency_kinds"] for s in json.loads(res.stdout)["services"]}

    before = kinds()
    assert before["gateway"] == {"maestro-core-auth": "path", "maestro-monitoring": "path"}
    assert rewrite(run_cli, monorepo).exit_code == 0
    after = kinds()
    assert set(after["gateway"].values()) == {"index"} and set(after["gateway"]) >= set(before["gateway"])
    assert "reporting" not in after  # installs no shared code: no consumer
    table = run_cli("audit", "--root", str(monorepo), "--offline").stdout
    assert "maestro-monitoring (index)" in table
    svc = next(s for s in json.loads(run_cli("audit", "--root", str(monorepo), "--offline", "--json").stdout)["services"]
               if s["name"] == "gateway")
    assert {d["name"] for d in svc["index_dependencies"]} >= {"maestro-core-auth", "maestro-monitoring"}
    assert all(d["specifier"] and d["line"] for d in svc["index_dependencies"])


def test_affected_since_a_ref_is_offline_and_names_exactly_the_users(run_cli, migrated: Path) -> None:  # type: ignore[no-untyped-def]
    root = migrated
    nothing = run_cli("affected", "--root", str(root), "--since", "HEAD", "--json", *DEAD_INDEX)
    assert nothing.exit_code == 0, nothing.output
    assert json.loads(nothing.stdout)["changed"] == [] and json.loads(nothing.stdout)["consumers"] == []

    init = root / "shared/packages/core-logging/maestro_core_logging/__init__.py"
    init.write_text(init.read_text() + "\nLEVELS_CASE_INSENSITIVE = True\n")
    (root / "shared/packages/core-logging/build").mkdir()
    (root / "shared/packages/core-auth/dist").mkdir()
    (root / "shared/packages/core-auth/dist/junk.txt").write_text("build output, not content")
    commit_all(root, "fix: log levels are case-insensitive")

    res = run_cli("affected", "--root", str(root), "--since", "HEAD~1", "--json", *DEAD_INDEX)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["changed"] == ["maestro-core-logging"]  # core-auth's dist/ is what its build ignores
    assert data["packages"] == ["maestro-core-logging", "maestro-core-api", "maestro-core-messaging"]
    consumers = {c["name"]: c for c in data["consumers"]}
    assert sorted(consumers) == ["automation-service", "quality-fabric", "scheduler"]  # not gateway, not reporting
    assert consumers["scheduler"]["path"] == "services/scheduler"
    assert consumers["scheduler"]["because"][-1] == "maestro-core-logging"
    assert consumers["scheduler"]["chain"].startswith("scheduler <- ")

    names = run_cli("affected", "--root", str(root), "--since", "HEAD~1", "--format", "names", *DEAD_INDEX)
    assert names.stdout.split() == ["automation-service", "quality-fabric", "scheduler"]
    (root / "nexusify.toml").write_text(
        '[deploy.services.qf]\nfolder = "services/quality-fabric"\ncontainer-port = 8000\n'
        '[deploy.services.gw]\nfolder = "services/gateway"\ncontainer-port = 8000\n')
    deploy = run_cli("affected", "--root", str(root), "--since", "HEAD~1", "--format", "deploy", *DEAD_INDEX)
    assert deploy.exit_code == 0, deploy.output
    assert deploy.stdout.split() == ["qf"]  # the deploy service built from an affected folder; gateway is not
    (root / "nexusify.toml").unlink()
    table = run_cli("affected", "--root", str(root), "--since", "HEAD~1", *DEAD_INDEX)
    assert "1 changed, 3 shared package(s) and 3 consumer(s) affected" in table.stdout

    # a consumer's own files count for that consumer only; a project that installs no shared code
    # is none of nexusify's business
    (root / "services/gateway/extra.py").write_text("X = 1\n")
    (root / "services/reporting/reporting/extra.py").write_text("X = 1\n")
    own = json.loads(run_cli("affected", "--root", str(root), "--since", "HEAD", "--json", *DEAD_INDEX).stdout)
    assert own["changed"] == [] and [c["name"] for c in own["consumers"]] == ["gateway"]


def test_affected_refuses_an_unknown_ref_and_a_missing_index(run_cli, migrated: Path) -> None:  # type: ignore[no-untyped-def]
    bad = run_cli("affected", "--root", str(migrated), "--since", "no-such-ref", *DEAD_INDEX)
    assert bad.exit_code == 2 and "no-such-ref" in bad.output
    no_index = run_cli("affected", "--root", str(migrated), env={"HOME": "/nonexistent", "NO_COLOR": "1"})
    assert no_index.exit_code == 2 and "--since" in no_index.output
    dead = run_cli("affected", "--root", str(migrated), *DEAD_INDEX)
    assert dead.exit_code == 1 and "could not be read" in dead.output  # never "nothing changed"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_release_named_package_offline_cascades_and_repins_every_form(run_cli, migrated: Path) -> None:  # type: ignore[no-untyped-def]
    """A named package with an explicit level needs no index: the deepest package's minor bump
    cascades to all its dependents and re-pins every consumer (Poetry, PEP 621 + uv, PDM forms)."""
    root = migrated
    before = _snapshot(root)
    dry = run_cli("release", "maestro-core-config", "--bump", "minor", "--dry-run", "--json", "--root", str(root),
                  *DEAD_INDEX)
    assert dry.exit_code == 0, dry.output
    assert _snapshot(root) == before
    plan = json.loads(dry.stdout)
    assert {b["name"]: b["to"] for b in plan["bumps"]} == {
        "maestro-core-config": "0.2.0", "maestro-core-auth": "0.2.1", "maestro-core-db": "0.1.1",
        "maestro-core-logging": "0.1.1", "maestro-test-healer": "0.1.1", "maestro-core-api": "0.1.1",
        "maestro-core-messaging": "0.1.1"}
    assert {r["consumer"] for r in plan["repins"]} == {"automation-service", "gateway", "quality-fabric", "scheduler"}

    done = run_cli("release", "maestro-core-config", "--bump", "minor", "--commit", "--root", str(root), *DEAD_INDEX)
    assert done.exit_code == 0, done.output
    assert 'maestro-core-config = {version = "^0.2.0", source = "nexus"}' in \
        (root / "services/quality-fabric/pyproject.toml").read_text()
    assert '"maestro-core-config>=0.2.0,<0.3.0"' in (root / "services/gateway/pyproject.toml").read_text()
    assert (root / "services/reporting/pyproject.toml").read_bytes() == before["services/reporting/pyproject.toml"]
    assert git(root, "status", "--porcelain") == ""
    assert "maestro-core-config-v0.2.0" in git(root, "tag").split()
    assert run_cli("rewrite", "--check", "--root", str(root), *DEAD_INDEX).exit_code == 0
    from nexusify.model import load_workspace
    from nexusify.syntax.constraints import constraint_admits

    ws = load_workspace(root)
    for svc in ws.consumers():
        for dep in svc.index_deps:
            version = ws.by_name[dep.normalized].version or ""
            assert constraint_admits(dep.specifier, version, poetry=dep.location[0] == "poetry"), (svc.name, dep)
    # the tag exists now: the same release again refuses before writing anything
    (root / "shared/packages/core-config/pyproject.toml").write_text(
        (root / "shared/packages/core-config/pyproject.toml").read_text().replace('"0.2.0"', '"0.1.5"'))
    commit_all(root, "chore: core-config back to 0.1.5")  # committed: a dirty package is refused before tags
    again = _snapshot(root)
    refused = run_cli("release", "maestro-core-config", "--bump", "minor", "--commit", "--root", str(root), *DEAD_INDEX)
    assert refused.exit_code == 1 and "maestro-core-config-v0.2.0 exists already" in refused.output
    assert _snapshot(root) == again


def test_release_refuses_what_it_cannot_write_and_needs_git_for_auto(run_cli, monorepo: Path,  # type: ignore[no-untyped-def]
                                                                     migrated: Path) -> None:
    pyproject = migrated / "shared/packages/core-logging/pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.poetry-dynamic-versioning]\nenable = true\n')
    before = _snapshot(migrated)
    res = run_cli("release", "maestro-core-logging", "--bump", "patch", "--root", str(migrated), *DEAD_INDEX)
    assert res.exit_code == 1 and "version-from-git" in res.output and "nothing was written" in res.output
    assert _snapshot(migrated) == before

    plain = migrated.parent / "not-git"
    import shutil

    shutil.copytree(migrated, plain, ignore=shutil.ignore_patterns(".git"))
    auto = run_cli("release", "--root", str(plain), "--dry-run", *DEAD_INDEX)
    assert auto.exit_code == 2 and "git" in auto.output
