"""`nexusify rewrite` on the sample and on copies of real public layouts (no engine needed)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from nexusify.config import resolve_settings
from nexusify.model import load_workspace
from nexusify.rewrite.apply import apply_plan
from nexusify.rewrite.plan import plan_rewrite
from nexusify.syntax.dockerfile_parse import parse
from tests.conftest import FIXTURES
from tests.helpers import snapshot

URL = "http://127.0.0.1:9/simple/"
LAYOUTS = FIXTURES / "layouts"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def rewrite(run_cli, root: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("rewrite", "--root", str(root), "--index-url", URL, *args, env=env or ENV)


def no_local_dependency_on_shared_packages(root: Path, services: list[str]) -> None:
    ws = load_workspace(root)
    shared = {p.normalized for p in load_workspace(root).shared()} | {
        p.normalized for p in ws.projects if p.rel(root) not in services}
    for rel in services:
        project = ws.project_at(root / rel)
        assert project is not None
        left = [d.name for d in project.local_deps if d.normalized in shared]
        assert left == [], f"{rel} still has local dependencies {left}"


# --------------------------------------------------------------------------- the sample


def test_sample_check_fails_before_passes_after_and_second_run_is_a_no_op(run_cli, monorepo: Path) -> None:
    before = snapshot(monorepo)
    check = rewrite(run_cli, monorepo, "--check")
    assert check.exit_code == 1, check.output
    assert "8 file(s) would be rewritten" in check.stdout
    assert snapshot(monorepo) == before  # --check writes nothing

    done = rewrite(run_cli, monorepo)
    assert done.exit_code == 0, done.output
    after = snapshot(monorepo)
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [f"services/{s}/{f}" for s in ("automation-service", "gateway", "quality-fabric", "scheduler")
                       for f in ("Dockerfile", "pyproject.toml")]
    assert not any(k.startswith("services/reporting/") for k in changed)  # byte-identical
    assert sorted(after) == sorted(before)  # no stray temp files

    assert rewrite(run_cli, monorepo, "--check").exit_code == 0
    again = rewrite(run_cli, monorepo)
    assert again.exit_code == 0 and "nothing to rewrite" in again.stdout
    assert snapshot(monorepo) == after

    no_local_dependency_on_shared_packages(
        monorepo, ["services/automation-service", "services/gateway", "services/quality-fabric", "services/scheduler"])


def test_sample_rewritten_content(run_cli, monorepo: Path) -> None:
    assert rewrite(run_cli, monorepo).exit_code == 0
    auto = (monorepo / "services/automation-service/pyproject.toml").read_text()
    # comments and extras survive; transitive shared packages are declared with the explicit source
    assert "# Shared packages straight from the monorepo (develop = editable installs for local work)\n" in auto
    data = tomllib.loads(auto)
    deps = data["tool"]["poetry"]["dependencies"]
    assert deps["maestro-core-api"] == {"version": "^0.1.0", "source": "nexus", "extras": ["db"]}
    assert {k for k in deps if k != "python"} == {
        "maestro-core-api", "maestro-core-logging", "maestro-core-auth", "maestro-core-config", "maestro-core-db"}
    assert all(v["source"] == "nexus" for k, v in deps.items() if k != "python")
    assert data["tool"]["poetry"]["group"]["dev"]["dependencies"]["maestro-test-healer"] == {
        "version": "^0.1.0", "source": "nexus"}
    assert data["tool"]["poetry"]["source"] == [{"name": "nexus", "url": URL, "priority": "explicit"}]

    gateway = tomllib.loads((monorepo / "services/gateway/pyproject.toml").read_text())
    assert gateway["project"]["dependencies"] == [
        "maestro-core-auth>=0.2.0,<0.3.0", "maestro-monitoring>=0.1", "maestro-core-config>=0.1.0,<0.2.0"]
    assert gateway["tool"]["uv"]["sources"] == {n: {"index": "nexus"} for n in (
        "maestro-core-auth", "maestro-monitoring", "maestro-core-config")}
    assert gateway["tool"]["uv"]["index"] == [{"name": "nexus", "url": URL, "explicit": True}]

    scheduler = tomllib.loads((monorepo / "services/scheduler/pyproject.toml").read_text())
    assert scheduler["dependency-groups"]["dev"] == ["maestro-test-healer>=0.1.0,<0.2.0"]

    for svc in ("automation-service", "gateway", "quality-fabric", "scheduler"):
        dockerfile = (monorepo / f"services/{svc}/Dockerfile").read_text()
        copied = [src for i in parse(dockerfile) for src in i.sources]
        assert copied and not any("shared" in src or ".." in src for src in copied), copied
        assert f"ARG NEXUS_INDEX_URL={URL}\n" in dockerfile
        assert 'pip install --index-url "$NEXUS_INDEX_URL" --no-cache-dir .' in dockerfile
        assert "secret" not in dockerfile  # no credentials configured: no mount


def test_supplemental_priority_is_the_seeds_layout(run_cli, monorepo: Path) -> None:
    assert rewrite(run_cli, monorepo, "--priority", "supplemental", "--constraint", "tilde").exit_code == 0
    data = tomllib.loads((monorepo / "services/quality-fabric/pyproject.toml").read_text())
    assert data["tool"]["poetry"]["dependencies"] == {
        "python": "^3.11",
        "maestro-test-healer": {"version": "~0.1.0", "source": "nexus"},
        "maestro-core-api": {"version": "~0.1.0", "source": "nexus"},
    }
    assert data["tool"]["poetry"]["source"] == [{"name": "nexus", "url": URL, "priority": "supplemental"}]
    gateway = tomllib.loads((monorepo / "services/gateway/pyproject.toml").read_text())
    assert gateway["tool"]["uv"]["index"] == [{"name": "nexus", "url": URL}]


def test_source_name_and_credentials_give_a_secret_mount(run_cli, monorepo: Path) -> None:
    env = {**ENV, "NEXUS_USERNAME": "ci", "NEXUS_PASSWORD": "pa55-not-in-files"}
    result = rewrite(run_cli, monorepo, "--source-name", "corp", env=env)
    assert result.exit_code == 0, result.output
    text = (monorepo / "services/quality-fabric/pyproject.toml").read_text()
    assert 'source = "corp"' in text and 'name = "corp"' in text
    dockerfile = (monorepo / "services/quality-fabric/Dockerfile").read_text()
    assert ("RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install --index-url \"$NEXUS_INDEX_URL\""
            in dockerfile)
    for path in monorepo.rglob("*"):
        if path.is_file():
            assert b"pa55-not-in-files" not in path.read_bytes()


def test_check_json_lists_every_edit_and_diff_writes_nothing(run_cli, monorepo: Path) -> None:
    before = snapshot(monorepo)
    result = rewrite(run_cli, monorepo, "--check", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["changed"] is True and data["mode"] == "check"
    files = {f["path"]: f for f in data["files"]}
    assert set(files) == {f"services/{s}/{f}" for s in ("automation-service", "gateway", "quality-fabric", "scheduler")
                          for f in ("Dockerfile", "pyproject.toml")}
    edit = next(e for e in files["services/quality-fabric/pyproject.toml"]["edits"] if e["line"] == 12)
    assert edit["before"].startswith('maestro-test-healer = {path = "/shared/packages/test-healer"}')
    assert "maestro-test-healer: path dependency -> version ^0.1.0" in edit["reason"]
    assert data["versions"]["maestro-core-auth"] == "0.2.0"

    diff = rewrite(run_cli, monorepo, "--diff")
    assert diff.exit_code == 0
    assert "--- a/services/gateway/Dockerfile\n+++ b/services/gateway/Dockerfile\n" in diff.stdout
    assert '-COPY ../../shared/packages/core-auth /shared/packages/core-auth\n' in diff.stdout
    assert snapshot(monorepo) == before


def test_targets_positional_globs_and_errors(run_cli, monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(monorepo)
    before = snapshot(monorepo)
    result = rewrite(run_cli, monorepo, "services/gateway")
    assert result.exit_code == 0, result.output
    after = snapshot(monorepo)
    assert sorted(k for k in before if before[k] != after[k]) == [
        "services/gateway/Dockerfile", "services/gateway/pyproject.toml"]

    bad = rewrite(run_cli, monorepo, "services/gatway")
    assert bad.exit_code == 2 and "did you mean services/gateway" in bad.output
    shared = rewrite(run_cli, monorepo, "shared/packages/core-api")
    assert shared.exit_code == 2 and "is a shared package" in shared.output
    assert snapshot(monorepo) == after

    everything = rewrite(run_cli, monorepo, "services/*")  # an unexpanded glob works too
    assert everything.exit_code == 0
    assert rewrite(run_cli, monorepo, "--check").exit_code == 0


def test_crlf_stays_crlf_and_file_mode_is_kept(run_cli, monorepo: Path) -> None:
    pyproject = monorepo / "services/quality-fabric/pyproject.toml"
    pyproject.write_bytes(pyproject.read_bytes().replace(b"\n", b"\r\n"))
    dockerfile = monorepo / "services/quality-fabric/Dockerfile"
    dockerfile.write_bytes(dockerfile.read_bytes().replace(b"\n", b"\r\n"))
    os.chmod(pyproject, 0o640)
    os.chmod(dockerfile, 0o600)
    assert rewrite(run_cli, monorepo).exit_code == 0
    for path in (pyproject, dockerfile):
        raw = path.read_bytes()
        assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n"), path
    assert b'maestro-core-api = {version = "^0.1.0", source = "nexus"}\r\n' in pyproject.read_bytes()
    assert stat.S_IMODE(pyproject.stat().st_mode) == 0o640
    assert stat.S_IMODE(dockerfile.stat().st_mode) == 0o600


def test_a_failure_while_validating_any_target_writes_nothing(run_cli, monorepo: Path) -> None:
    # the last service alphabetically cannot be rewritten: its specifier excludes the version
    scheduler = monorepo / "services/scheduler/pyproject.toml"
    gateway = monorepo / "services/gateway/pyproject.toml"
    gateway.write_text(gateway.read_text().replace('"maestro-monitoring>=0.1"', '"maestro-monitoring>=2"'))
    before = snapshot(monorepo)
    result = rewrite(run_cli, monorepo)
    assert result.exit_code == 1
    assert "services/gateway/pyproject.toml:10" in result.output
    assert "does not admit version 0.1.0" in result.output and "nothing was written" in result.output
    assert snapshot(monorepo) == before
    assert scheduler.read_bytes() == before["services/scheduler/pyproject.toml"]


def test_a_broken_shared_package_blocks_every_service_that_needs_it(run_cli, monorepo: Path) -> None:
    core_config = monorepo / "shared/packages/core-config/pyproject.toml"
    core_config.write_text(core_config.read_text().replace('version = "0.1.0"\n', ""))
    before = snapshot(monorepo)
    result = rewrite(run_cli, monorepo)
    assert result.exit_code == 1
    assert "shared/packages/core-config/pyproject.toml" in result.output and "version" in result.output
    assert snapshot(monorepo) == before


def test_a_file_changed_after_planning_aborts_the_write(monorepo: Path) -> None:
    settings = resolve_settings(monorepo, {"index_url": URL}, {})
    plan = plan_rewrite(settings)
    victim = monorepo / "services/scheduler/Dockerfile"
    victim.write_text(victim.read_text() + "# edited meanwhile\n")
    before = snapshot(monorepo)
    with pytest.raises(Exception, match="changed while the rewrite was being planned"):
        apply_plan(plan)
    assert snapshot(monorepo) == before


def test_a_missing_lock_tool_is_a_warning_and_the_rewrite_still_happens(run_cli, monorepo: Path) -> None:
    """Re-locking is the default; a tool that is not installed leaves the lockfile as it was, with
    a warning that names the exact command and folder, and everything else is written."""
    lock = monorepo / "services/gateway/uv.lock"
    lock.write_text("version = 1\n")
    settings = resolve_settings(monorepo, {"index_url": URL}, {})
    plan = plan_rewrite(settings, ["services/gateway"], cwd=monorepo, lock=True, which=lambda tool: None)
    assert plan.errors == []
    (warning,) = [p for p in plan.warnings if p.code == "stale-lockfile"]
    assert warning.path == "services/gateway/uv.lock"
    assert "`uv` is not installed" in warning.message
    assert warning.hint == ("re-lock it once the index serves them: `cd services/gateway && uv lock "
                            "--upgrade-package maestro-core-auth --upgrade-package maestro-core-config "
                            "--upgrade-package maestro-monitoring`")
    assert sorted(f.rel for f in plan.files) == ["services/gateway/Dockerfile", "services/gateway/pyproject.toml"]
    apply_plan(plan)
    assert lock.read_text() == "version = 1\n"
    assert "maestro-core-auth = { index" in (monorepo / "services/gateway/pyproject.toml").read_text()


def test_no_lock_leaves_lockfiles_alone_and_warns_they_are_stale(run_cli, monorepo: Path) -> None:
    lock = monorepo / "services/quality-fabric/poetry.lock"
    lock.write_text('[[package]]\nname = "maestro-test-healer"\n[package.source]\ntype = "directory"\n'
                    'url = "/shared/packages/test-healer"\n')
    before_lock = lock.read_bytes()
    (monorepo / "services/gateway/uv.lock").write_text("version = 1\n")
    result = rewrite(run_cli, monorepo, "--no-lock")
    assert result.exit_code == 0, result.output  # rewritten, with warnings to act on (exit 1 only with --strict)
    assert ("services/quality-fabric/poetry.lock: warning[stale-lockfile]: poetry.lock still pins the old entries "
            "of ") in result.output
    assert "not re-locked (--no-lock or a dry run) (hint: re-lock it once the index serves them: " \
           "`cd services/quality-fabric && poetry lock`)" in result.output
    assert "`cd services/gateway && uv lock --upgrade-package maestro-core-auth" in result.output
    assert lock.read_bytes() == before_lock
    assert "path" not in (monorepo / "services/quality-fabric/pyproject.toml").read_text().split("[tool.poetry.group")[0]


def test_versions_from_the_index(run_cli, monorepo: Path, pypi_server_factory) -> None:
    server = pypi_server_factory(auth="download,update,list")
    for name, version in [("maestro_core_api", "0.3.1"), ("maestro_core_api", "0.4.0rc1"),
                          ("maestro_test_healer", "1.2.0"), ("maestro_core_auth", "0.2.0"),
                          ("maestro_core_config", "0.1.5"), ("maestro_core_db", "0.1.0"),
                          ("maestro_core_logging", "0.1.0")]:
        (server.packages / f"{name}-{version}-py3-none-any.whl").write_bytes(b"not really a wheel")
    env = {**ENV, "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": server.password or ""}
    result = run_cli("rewrite", "--root", str(monorepo), "--index-url", server.simple_url, "--from-index",
                     "services/quality-fabric", env=env)
    assert result.exit_code == 0, result.output
    deps = tomllib.loads((monorepo / "services/quality-fabric/pyproject.toml").read_text())["tool"]["poetry"]["dependencies"]
    assert deps["maestro-core-api"]["version"] == "^0.3.1"  # the highest release, not the rc
    assert deps["maestro-test-healer"]["version"] == "^1.2.0"
    assert deps["maestro-core-config"]["version"] == "^0.1.5"
    assert server.password not in result.output

    # a shared package the index does not hold: an error, nothing written
    before = snapshot(monorepo)
    missing = run_cli("rewrite", "--root", str(monorepo), "--index-url", server.simple_url, "--from-index", env=env)
    assert missing.exit_code == 1
    assert "maestro-core-messaging is not on the index" in missing.output
    assert snapshot(monorepo) == before

    unauthorised = run_cli("rewrite", "--root", str(monorepo), "--index-url", server.simple_url, "--from-index",
                           "services/gateway", env=ENV)
    assert unauthorised.exit_code == 1 and "401" in unauthorised.output
    assert snapshot(monorepo) == before


# --------------------------------------------------------------------------- real public layouts


@pytest.mark.parametrize(("layout", "services", "expect"), [
    pytest.param("poetry-libs", ["projects/api", "projects/worker"], {
        "projects/api/pyproject.toml": ['acme-events = { version = ">=2.0.0b1,<3.0.0", source = "nexus" }',
                                        'acme-test-kit = { version = "^0.1.0", source = "nexus" }',
                                        'fastapi = "^0.110"'],
        "projects/worker/Dockerfile": ["COPY --chown=1000:1000 projects/worker /src/projects/worker"],
    }, id="poetry-develop-paths"),
    pytest.param("uv-editable-dag", ["apps/web", "apps/worker"], {
        "apps/web/pyproject.toml": ['"dag-sdk>=0.9"', "\"dag-http[async]>=2.3.0,<3.0.0 ; python_version >= '3.11'\"",
                                    'dag-sdk = { index = "nexus" }', "explicit = true"],
    }, id="uv-editable-sources"),
    pytest.param("pdm-file-urls", ["jobs/nightly", "."], {
        "jobs/nightly/pyproject.toml": ['"pkg-second>=0.3.0,<0.4.0"', '"requests"', "[[tool.pdm.source]]"],
        # the nameless root installs its packages too (pdm install takes its dev group): a consumer
        "pyproject.toml": ['"pkg-core>=0.1.0,<0.2.0"', "[[tool.pdm.source]]"],
    }, id="pdm-file-urls"),
    pytest.param("nested", ["deploy/workers/ingest"], {
        "deploy/workers/ingest/pyproject.toml": ['plat-core = {version = "^5.0.0", source = "nexus"}'],
    }, id="nested-container-path"),
])
def test_real_layouts(run_cli, tmp_path: Path, layout: str, services: list[str], expect: dict[str, list[str]]) -> None:
    root = tmp_path / layout
    shutil.copytree(LAYOUTS / layout, root)
    before = snapshot(root)
    assert rewrite(run_cli, root, "--check").exit_code == 1
    first = rewrite(run_cli, root)
    assert first.exit_code in (0, 1), first.output  # 1: warnings to act on (printed)
    after = snapshot(root)
    for rel, needles in expect.items():
        text = after[rel].decode()
        for needle in needles:
            assert needle in text, f"{rel}: {needle!r} not in\n{text}"
    no_local_dependency_on_shared_packages(root, services)
    changed = {k for k in before if before[k] != after[k]}
    assert all(any(k.startswith(s + "/") or (s == "." and "/" not in k) for s in services) for k in changed), changed
    assert rewrite(run_cli, root, "--check").exit_code == first.exit_code  # only warnings may remain
    assert rewrite(run_cli, root).exit_code == first.exit_code
    assert snapshot(root) == after


def test_a_uv_workspace_member_is_moved_out_and_an_unrewritable_dockerfile_is_an_error(run_cli, tmp_path: Path) -> None:
    """Naming a member moves it out of the workspace: `--check` names the planned move (exclude, the
    root-context Dockerfile built alone) and writes nothing; audit keeps its warning (the member stays
    in the workspace until rewritten). A Dockerfile shape that needs the whole workspace is an error
    at file:line of rewrite and --check, and nothing is written."""
    root = tmp_path / "ws"
    shutil.copytree(LAYOUTS / "uv-workspace", root)
    before = snapshot(root)
    check = rewrite(run_cli, root, "--check", "services/gateway")
    assert check.exit_code == 1, check.output
    assert "services/gateway moves out of the uv workspace at . onto the index (exclude \"services/gateway\"" \
        in check.output
    assert "services/gateway/Dockerfile:8: sync the member alone" in check.output
    assert snapshot(root) == before
    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    found = [(p["path"], p["line"], p["code"], p["severity"]) for p in json.loads(audit.stdout)["problems"]]
    assert ("services/gateway/Dockerfile", 5, "dockerfile-uv-workspace", "warning") in found
    assert audit.exit_code == 0

    dockerfile = root / "services/gateway/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("--package ws-gateway", "--all-packages"))
    before = snapshot(root)
    where = "services/gateway/Dockerfile:8: error[dockerfile-uv-move]"
    for args in (("--check",), ()):
        result = rewrite(run_cli, root, *args, "services/gateway")
        assert result.exit_code == 1 and where in result.output, result.output
        assert snapshot(root) == before


def test_no_index_url_is_a_configuration_error(run_cli, monorepo: Path) -> None:
    result = run_cli("rewrite", "--root", str(monorepo), env=ENV)
    assert result.exit_code == 2 and "no index URL" in result.output


@pytest.mark.slow
def test_lock_relocks_with_uv_against_the_index(run_cli, monorepo: Path, pypi_server_factory, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        from tests.conftest import missing

        missing("uv", "`uv` is not on PATH (it is a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="download,update,list")
    env = {**ENV, "HOME": str(tmp_path), "NEXUS_USERNAME": server.username or "",
           "NEXUS_PASSWORD": server.password or "", "UV_NO_CACHE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)
    published = run_cli("publish", *common, "maestro-core-auth", "maestro-monitoring", env=env)
    assert published.exit_code == 0, published.output
    lock = monorepo / "services/gateway/uv.lock"
    lock.write_text('version = 1\nrevision = 2\nrequires-python = ">=3.11"\n\n'
                    '[[package]]\nname = "maestro-core-auth"\nversion = "0.2.0"\n'
                    'source = { editable = "../../shared/packages/core-auth" }\n')
    before = snapshot(monorepo)

    result = run_cli("rewrite", *common, "--lock", "services/gateway", env=env)
    assert result.exit_code == 0, result.output
    after = snapshot(monorepo)
    assert sorted(k for k in before if before[k] != after[k]) == [
        "services/gateway/Dockerfile", "services/gateway/pyproject.toml", "services/gateway/uv.lock"]
    locked = tomllib.loads(lock.read_text())
    packages = {p["name"]: p for p in locked["package"]}
    assert packages["maestro-core-auth"]["source"] == {"registry": server.simple_url}
    assert packages["maestro-core-config"]["version"] == "0.1.0"
    assert "shared/packages" not in lock.read_text()
    assert (server.password or "") not in lock.read_text() + result.output
    assert run_cli("rewrite", *common, "--check", "services/gateway", env=env).exit_code == 0
    assert run_cli("rewrite", *common, "--lock", "services/gateway", env=env).exit_code == 0
    assert snapshot(monorepo) == after


def test_lock_relocks_with_poetry_against_the_index(run_cli, monorepo: Path, pypi_server_factory, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`rewrite --lock` on a Poetry service: poetry lock resolves every shared package (transitive
    ones included, explicit source) from an index that needs credentials, passed through
    POETRY_HTTP_BASIC_NEXUS_*; the stale lock's paths are gone and the password is nowhere."""
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("poetry") is None:
        from tests.conftest import missing

        missing("poetry", "`poetry` is not on PATH (it is a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="download,update,list")
    password = server.password or ""
    env = {**ENV, "HOME": str(tmp_path), "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password,
           "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"), "POETRY_NO_INTERACTION": "1",
           "PATH": os.environ["PATH"]}
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)
    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    lock = monorepo / "services/quality-fabric/poetry.lock"
    lock.write_text('[[package]]\nname = "maestro-core-api"\nversion = "0.1.0"\n\n'
                    '[package.source]\ntype = "directory"\nurl = "/shared/packages/core-api"\n')
    stale = run_cli("rewrite", *common, "--check", "services/quality-fabric", env=env)
    assert stale.exit_code == 1
    assert "stale-lockfile" in stale.output

    result = run_cli("rewrite", *common, "--lock", "services/quality-fabric", env=env)
    assert result.exit_code == 0, result.output
    text = lock.read_text()
    locked = tomllib.loads(text)
    packages = {p["name"]: p for p in locked["package"]}
    assert set(packages) >= {"maestro-core-api", "maestro-test-healer", "maestro-core-auth",
                             "maestro-core-logging", "maestro-core-config"}
    for name in ("maestro-core-api", "maestro-core-config"):
        assert packages[name]["source"]["reference"] == "nexus"
        assert packages[name]["source"]["url"].rstrip("/") == server.simple_url.rstrip("/")
    assert "/shared/packages" not in text
    assert password not in text + result.output
    assert run_cli("rewrite", *common, "--check", "services/quality-fabric", env=env).exit_code == 0


def test_lock_replaces_a_real_pre_rewrite_poetry_lock(run_cli, monorepo: Path, pypi_server_factory, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The team's own poetry.lock, made by `poetry lock` while the shared packages were directory
    sources, is re-locked against the index: registry sources under `nexus`, the extra's package
    (maestro-core-db, needed through `extras = ["db"]`) included, no path left."""
    import subprocess
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("poetry") is None:
        from tests.conftest import missing

        missing("poetry", "`poetry` is not on PATH (it is a dev extra: pip install -e '.[dev]')")
    server = pypi_server_factory(auth="download,update,list")
    password = server.password or ""
    env = {**ENV, "HOME": str(tmp_path), "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password,
           "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"), "POETRY_NO_INTERACTION": "1",
           "PATH": os.environ["PATH"]}
    service = monorepo / "services/automation-service"
    lock = service / "poetry.lock"
    made = subprocess.run(["poetry", "lock"], cwd=service, env=env, capture_output=True, text=True, check=False,
                          timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "shared/packages" in lock.read_text()
    common = ("--root", str(monorepo), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0

    result = run_cli("rewrite", *common, "--lock", "services/automation-service", env=env)
    assert result.exit_code == 0, result.output
    text = lock.read_text()
    packages = {p["name"]: p for p in tomllib.loads(text)["package"]}
    assert set(packages) >= {"maestro-core-api", "maestro-core-db", "maestro-core-logging", "maestro-core-config",
                             "maestro-core-auth", "maestro-test-healer"}
    assert all(p["source"]["reference"] == "nexus" for p in packages.values())
    assert "shared/packages" not in text
    assert password not in text + result.output


def test_pre_commit_hook_runs_rewrite_check(run_cli, monorepo: Path) -> None:
    yaml = pytest.importorskip("yaml")
    hooks = yaml.safe_load((FIXTURES.parent / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "nexusify-rewrite-check")
    assert hook["entry"] == "nexusify rewrite --check" and hook["pass_filenames"] is False
    argv = hook["entry"].split()[1:]
    assert run_cli(*argv, "--root", str(monorepo), "--index-url", URL, env=ENV).exit_code == 1
    assert rewrite(run_cli, monorepo).exit_code == 0
    assert run_cli(*argv, "--root", str(monorepo), "--index-url", URL, env=ENV).exit_code == 0


def test_an_index_url_with_credentials_is_written_without_them(run_cli, monorepo: Path) -> None:
    """The settings split user:password@ off (they become the index credentials): the files get the bare URL."""
    before = snapshot(monorepo)
    result = run_cli("rewrite", "--root", str(monorepo), "--index-url", "http://ci:hunter2@127.0.0.1:9/simple/", env=ENV)
    assert result.exit_code == 0, result.output
    after = snapshot(monorepo)
    written = b"".join(after[k] for k in after if before.get(k) != after[k])
    assert b"http://127.0.0.1:9/simple/" in written
    assert b"hunter2" not in written and b"ci:" not in written
    assert "hunter2" not in result.output


def test_index_auth_and_no_dockerfiles_flags(run_cli, monorepo: Path) -> None:
    assert rewrite(run_cli, monorepo, "--index-auth", "services/gateway").exit_code == 0
    assert "RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install" in (
        monorepo / "services/gateway/Dockerfile").read_text()
    env = {**ENV, "NEXUS_USERNAME": "ci", "NEXUS_PASSWORD": "pw"}
    assert rewrite(run_cli, monorepo, "--no-index-auth", "services/scheduler", env=env).exit_code == 0
    assert "secret" not in (monorepo / "services/scheduler/Dockerfile").read_text()
    qf = (monorepo / "services/quality-fabric/Dockerfile").read_bytes()
    assert rewrite(run_cli, monorepo, "--no-dockerfiles", "services/quality-fabric").exit_code == 0
    assert (monorepo / "services/quality-fabric/Dockerfile").read_bytes() == qf
    assert "version" in (monorepo / "services/quality-fabric/pyproject.toml").read_text()
    # the Dockerfile is patched by a later run, although the pyproject is already rewritten
    later = rewrite(run_cli, monorepo, "services/quality-fabric")
    assert later.exit_code == 0 and "services/quality-fabric/Dockerfile:6: drop COPY" in later.stdout


def test_a_new_index_url_is_brought_into_rewritten_services(run_cli, monorepo: Path) -> None:
    assert rewrite(run_cli, monorepo).exit_code == 0
    other = "https://nexus.example.com/repository/pypi-group/simple/"
    args = ("rewrite", "--root", str(monorepo), "--index-url", other)
    assert run_cli(*args, "--check", env=ENV).exit_code == 1
    moved = run_cli(*args, env=ENV)
    assert moved.exit_code == 0, moved.output
    for svc in ("automation-service", "gateway", "quality-fabric", "scheduler"):
        text = (monorepo / f"services/{svc}/pyproject.toml").read_text()
        assert URL not in text and other in text, svc
        dockerfile = (monorepo / f"services/{svc}/Dockerfile").read_text()
        assert f"ARG NEXUS_INDEX_URL={other}\n" in dockerfile and URL not in dockerfile
    assert tomllib.loads((monorepo / "services/quality-fabric/pyproject.toml").read_text())["tool"]["poetry"][
        "source"] == [{"name": "nexus", "url": other, "priority": "explicit"}]
    assert "services/reporting" not in moved.stdout.replace("services/reporting: no shared dependency", "")
    assert run_cli(*args, "--check", env=ENV).exit_code == 0


def test_parallel_planning_gives_the_same_plan(monorepo: Path) -> None:
    """Large monorepos are planned on every core (forked workers); the plan must be identical
    to the sequential one. Run in a fresh, single-threaded interpreter (fork-safe)."""
    script = f"""
import json
import os
from pathlib import Path
from nexusify.rewrite import plan as rewrite
from nexusify.config import resolve_settings

def summary(plan):
    return json.dumps([[sp.name, sp.shared, sp.added, [[f.rel, f.new.decode()] for f in sp.files]]
                       for sp in plan.services] + [[str(p) for p in plan.problems]], sort_keys=True)

settings = resolve_settings(Path({str(monorepo)!r}), {{"index_url": "http://127.0.0.1:9/simple/"}}, {{}})
rewrite.PARALLEL_FROM = 10**9
sequential = summary(rewrite.plan_rewrite(settings))
rewrite.PARALLEL_FROM = 1
planned_in = []
original = rewrite._plan_service

def spy(project, ctx):
    import os
    sp, problems = original(project, ctx)
    sp.name = f"{{sp.name}}@{{os.getpid()}}"
    return sp, problems

rewrite._plan_service = spy
plan = rewrite.plan_rewrite(settings)
pids = {{int(sp.name.rsplit("@", 1)[1]) for sp in plan.services}}
assert pids and os.getpid() not in pids, "workers must plan, not the parent"
for sp in plan.services:
    sp.name = sp.name.rsplit("@", 1)[0]
parallel = summary(plan)
assert parallel == sequential, "parallel plan differs"
print("same", len(sequential))
"""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("same")


# --------------------------------------------------------------------------- one verdict per Dockerfile line


def reproducer(root: Path, run: str) -> Path:
    """Issue 10's reproducer: a service Dockerfile copying a shared package from the root."""
    (root / "shared/packages/a/a").mkdir(parents=True)
    (root / "shared/packages/a/a/__init__.py").write_text("")
    (root / "shared/packages/a/pyproject.toml").write_text(
        '[project]\nname = "a"\nversion = "0.1.0"\n\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n')
    (root / "services/svc/svc").mkdir(parents=True)
    (root / "services/svc/svc/__init__.py").write_text("")
    (root / "services/svc/pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0.1.0"\ndependencies = ["a"]\n\n[tool.uv.sources]\n'
        'a = { path = "../../shared/packages/a" }\n\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n')
    (root / "services/svc/Dockerfile").write_text(
        f"FROM python:3.11-slim\nCOPY shared/packages/a /deps/a\nCOPY . /app\n{run}\nRUN pip install /app\n")
    return root


def dockerfile_problems(run_cli, root: Path) -> list[tuple[int, str, str]]:
    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    return [(p["line"], p["code"], p["severity"]) for p in json.loads(audit.stdout)["problems"]
            if p["path"] == "services/svc/Dockerfile"]


def test_shared_copy_reproducer_rewrite_then_audit_one_verdict(run_cli, tmp_path: Path) -> None:
    root = reproducer(tmp_path / "repo", "RUN pip install /deps/a")
    assert dockerfile_problems(run_cli, root) == [(2, "dockerfile-copies-shared", "warning")]
    assert rewrite(run_cli, root, "--check").exit_code == 1
    done = rewrite(run_cli, root)
    assert done.exit_code == 0, done.output
    assert (root / "services/svc/Dockerfile").read_text() == (
        "FROM python:3.11-slim\nCOPY . /app\n"
        f"ARG NEXUS_INDEX_URL={URL}\n"
        "RUN pip install --index-url \"$NEXUS_INDEX_URL\" 'a>=0.1.0,<0.2.0'\n"
        "RUN pip install --index-url \"$NEXUS_INDEX_URL\" /app\n")
    assert dockerfile_problems(run_cli, root) == []  # audit is silent about every line rewrite kept
    check = rewrite(run_cli, root, "--check")
    assert check.exit_code == 0 and "nothing to rewrite" in check.stdout


def test_shared_copy_rewrite_cannot_decide_is_one_error_everywhere(run_cli, tmp_path: Path) -> None:
    root = reproducer(tmp_path / "repo", "RUN for d in /deps/*; do pip install $d; done")
    before = snapshot(root)
    expected = "services/svc/Dockerfile:4: error[dockerfile-uses-shared-code]"
    for args in ((), ("--check",)):
        result = rewrite(run_cli, root, *args)
        assert result.exit_code == 1 and expected in result.output, result.output
        assert snapshot(root) == before  # nothing written, not even the pyproject
    assert dockerfile_problems(run_cli, root) == [
        (2, "dockerfile-copies-shared", "warning"), (4, "dockerfile-uses-shared-code", "warning")]


def test_relock_timeout_is_a_warning_and_the_lockfile_is_left_alone(monorepo: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import nexusify.rewrite.lock as lock

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text("#!/bin/sh\nexec sleep 30\n")
    (bin_dir / "uv").chmod(0o755)
    lockfile = monorepo / "services/gateway/uv.lock"
    lockfile.write_text("version = 1\n")
    monkeypatch.setattr(lock, "LOCK_TIMEOUT", 0.5)
    settings = resolve_settings(monorepo, {"index_url": URL}, {})
    plan = plan_rewrite(settings, ["services/gateway"], env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
                        lock=True, which=lambda tool: str(bin_dir / tool))
    assert plan.errors == []
    (problem,) = [p for p in plan.warnings if p.code == "stale-lockfile"]
    assert problem.path == "services/gateway/uv.lock"
    assert "`uv lock --upgrade-package maestro-core-auth" in problem.message
    assert "did not finish within 0.5 s" in problem.message
    assert "`cd services/gateway && uv lock --upgrade-package" in (problem.hint or "")
    apply_plan(plan)
    assert lockfile.read_text() == "version = 1\n"


def test_a_service_naming_no_shared_package_is_patched_when_its_dockerfile_copies_shared_code(
        run_cli, monorepo: Path) -> None:
    """Audit warns about the copy, so rewrite removes it: one verdict, whatever the manifest says."""
    dockerfile = monorepo / "services/reporting/Dockerfile"
    text = dockerfile.read_text()
    dockerfile.write_text(text.replace("COPY pyproject.toml README.md ./\n",
                                       "COPY ../../shared/packages/core-config /cfg\nCOPY pyproject.toml README.md ./\n"))
    assert (5, "dockerfile-copies-shared", "warning") in [
        (p["line"], p["code"], p["severity"]) for p in json.loads(run_cli(
            "audit", "--root", str(monorepo), "--offline", "--json", env=ENV).stdout)["problems"]
        if p["path"] == "services/reporting/Dockerfile"]
    assert rewrite(run_cli, monorepo, "services/reporting").exit_code == 0
    assert "core-config" not in dockerfile.read_text()
    assert (monorepo / "services/reporting/pyproject.toml").read_bytes() == (
        FIXTURES / "monorepo/services/reporting/pyproject.toml").read_bytes()
    audit = json.loads(run_cli("audit", "--root", str(monorepo), "--offline", "--json", env=ENV).stdout)
    assert not [p for p in audit["problems"] if p["path"] == "services/reporting/Dockerfile"]


def test_compose_built_root_workspace_images_one_verdict(run_cli, tmp_path: Path) -> None:
    """Services a virtual root lists in its dev group are default targets (the model's one
    classification); a plain rewrite moves every member out of the workspace: their compose-built
    root-context Dockerfiles build from their own folders, and the one compose file gets both
    services' edits. audit reports the root-context lines until then; --check writes nothing."""
    root = tmp_path / "ws"
    shutil.copytree(LAYOUTS / "uv-root-lock-compose", root)
    before = snapshot(root)
    check = rewrite(run_cli, root, "--check", "--json")
    assert check.exit_code == 1
    data = json.loads(check.stdout)
    assert {s["path"]: s["uv_workspace_move"]["exclude"] for s in data["services"]} == {
        "services/api": "services/api", "services/worker": "services/worker"}
    compose = [f for f in data["files"] if f["path"] == "docker-compose.yml"]
    assert len(compose) == 1 and [e["line"] for e in compose[0]["edits"]] == [4, 5, 9, 10]
    audit = json.loads(run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV).stdout)
    assert {(p["path"], p["line"]) for p in audit["problems"] if p["code"] == "dockerfile-uv-workspace"} == {
        ("docker/Dockerfile.api", 4), ("docker/Dockerfile.worker", 4)}
    assert snapshot(root) == before
    diff = rewrite(run_cli, root, "--diff")
    assert "+      context: services/api\n" in diff.output and "+      context: services/worker\n" in diff.output
