"""Deploy plan, stages, versions and build arguments: no engine, no network."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nexusify.credentials import Credentials, Secret
from nexusify.deploy.plan import STAGES, effective_stages, parse_stages, resolve_version
from nexusify.deploy.runtime.images import (
    BuildRequest,
    check_version,
    content_hash,
    dockerfile_needs,
    image_ref,
    netrc_text,
    resolve_build_args,
    source_version,
    split_ref,
)
from nexusify.errors import DeployError, UsageError
from tests.conftest import CliResult
from tests.deploy_fixtures import REPO, make_project


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(None, STAGES, id="default-all"),
    pytest.param("switch,build", ("build", "switch"), id="pipeline-order"),
    pytest.param(" migrate ", ("migrate",), id="spaces"),
])
def test_parse_stages(text: str | None, expected: tuple[str, ...]) -> None:
    assert parse_stages(text) == expected


def test_unknown_stage_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown stage"):
        parse_stages("build,deploy")


@pytest.mark.parametrize(("selected", "expected"), [
    pytest.param(("build",), ("build",), id="build-needs-no-secrets"),
    pytest.param(("migrate",), ("secrets", "migrate"), id="migrate-needs-secrets"),
    pytest.param(("switch", "record"), ("secrets", "switch", "record"), id="switch-needs-secrets"),
])
def test_stages_that_need_secrets_get_them(selected: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert effective_stages(selected) == expected


@pytest.mark.parametrize(("registry", "ref", "repo", "tag"), [
    pytest.param(None, "app:abc", "app", "abc", id="local"),
    pytest.param("127.0.0.1:25000", "127.0.0.1:25000/app:abc", "127.0.0.1:25000/app", "abc", id="port-in-host"),
    pytest.param("reg.example.com/team/", "reg.example.com/team/app:abc", "reg.example.com/team/app", "abc", id="ns"),
])
def test_image_refs(registry: str | None, ref: str, repo: str, tag: str) -> None:
    assert image_ref(registry, "app", "abc") == ref
    assert split_ref(ref) == (repo, tag)


def test_split_ref_without_tag() -> None:
    assert split_ref("127.0.0.1:25000/app") == ("127.0.0.1:25000/app", "latest")


def test_bad_version_tag() -> None:
    with pytest.raises(UsageError):
        check_version("-bad")
    assert check_version("v1.2.3-rc1") == "v1.2.3-rc1"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_version_is_git_sha_with_dirty_marker_else_content_hash(tmp_path: Path) -> None:
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "app.py").write_text("print(1)\n")
    plain = source_version(svc)
    assert plain.startswith("c") and len(plain) == 13
    assert source_version(svc) == plain == "c" + content_hash(svc)[:12]
    (svc / "app.py").write_text("print(2)\n")
    assert source_version(svc) != plain

    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "x")
    sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert source_version(svc) == sha
    (svc / "app.py").write_text("print(3)\n")
    assert source_version(svc) == f"{sha}-dirty"
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("y")
    (svc / "app.py").write_text("print(2)\n")
    assert source_version(svc) == sha  # untracked files elsewhere do not make this service dirty


def test_explicit_tag_wins(tmp_path: Path) -> None:
    assert resolve_version([], tmp_path, "v7") == "v7"


def test_dockerfile_needs_args_and_secret_mounts() -> None:
    text = (
        "FROM python:3.11-slim-bookworm\n"
        "ARG NEXUS_INDEX_URL=http://127.0.0.1:8081/repository/pypi/simple/\n"
        "arg OTHER\n"
        "RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install --index-url \"$NEXUS_INDEX_URL\" .\n"
        "RUN --mount=type=cache,target=/root/.cache --mount=target=/x,type=secret,id=extra true\n"
    )
    needs = dockerfile_needs(text)
    assert needs.args == {"NEXUS_INDEX_URL", "OTHER"}
    assert needs.secret_ids == ("netrc", "extra")


def _req(**kw: object) -> BuildRequest:
    base: dict[str, object] = {"service": "app", "context": Path("."), "dockerfile": "Dockerfile", "ref": "app:v1",
                               "version": "v1", "environment": "e"}
    base.update(kw)
    return BuildRequest(**base)  # type: ignore[arg-type]


def test_build_args_carry_the_index_url_only_where_declared() -> None:
    needs = dockerfile_needs("FROM x\nARG NEXUS_INDEX_URL\n")
    args = resolve_build_args(_req(index_url="http://127.0.0.1:9/simple/", build_args={"A": "1"}), needs)
    assert args == {"NEXUS_INDEX_URL": "http://127.0.0.1:9/simple/", "A": "1"}
    assert resolve_build_args(_req(index_url="http://i/simple/"), dockerfile_needs("FROM x\n")) == {}


@pytest.mark.parametrize("value", [
    pytest.param("hunter2-secret", id="secret-value"),
    pytest.param("http://u:pw@127.0.0.1/simple/", id="url-userinfo"),
    pytest.param("prefix-s3cr3t-index-pw", id="index-password"),
])
def test_a_build_arg_holding_a_secret_is_refused(value: str) -> None:
    creds = Credentials("u", Secret("s3cr3t-index-pw"), "env")
    with pytest.raises(DeployError, match="holds a secret") as err:
        resolve_build_args(_req(build_args={"X": value}, credentials=creds), dockerfile_needs("FROM x\n"),
                           [Secret("hunter2-secret")])
    assert value not in str(err.value)


def test_netrc_for_the_index_host() -> None:
    creds = Credentials("ci", Secret("pw"), "env")
    assert netrc_text("http://127.0.0.1:8081/repository/x/simple/", creds) == "machine 127.0.0.1 login ci password pw\n"
    assert netrc_text("http://h/simple/", Credentials(None, None, "none")) == ""


# --------------------------------------------------------------------------- dry run through the CLI


def test_dry_run_prints_the_plan_and_migration_sql_and_changes_nothing(
        tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    db = tmp_path / "app.db"
    p = make_project(tmp_path, services_toml=(
        f'migrations = "{REPO / "fixtures" / "deploy" / "alembic-app" / "alembic.ini"}"\n'
        f'database-url = "sqlite:///{db}"\n'))
    env = {**p.env, "DOCKER_HOST": "unix:///nonexistent.sock"}  # a dry run never talks to the engine
    r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v9", "--dry-run", env=env)
    assert r.exit_code == 0, r.output
    out = r.stdout
    for stage in STAGES:
        assert f" {stage} " in out, stage
    assert "app:v9" in out and "CREATE TABLE" in out and "dry run: nothing was changed" in out
    assert p.secret_value not in r.output
    assert not db.exists() and not (p.root / ".nexusify").exists()

    j = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--tag", "v9", "--dry-run",
                "--stages", "build", "--json", env=env)
    assert j.exit_code == 0, j.output
    plan = json.loads(j.stdout)
    assert plan["dry_run"] is True and plan["stages"] == ["build"]
    assert [s["stage"] for s in plan["steps"]] == ["build"]
    assert plan["steps"][0]["image"] == "app:v9"


def test_index_credentials_reach_only_the_netrc_secret_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Dockerfile mounts nexusify's netrc and the user's own npmrc: only id=netrc is given the
    index credentials; id=npmrc gets none of them (its source is the user's business)."""
    from nexusify.deploy.runtime import images
    from nexusify.deploy.runtime.engine import Engine

    (tmp_path / "Dockerfile").write_text(
        "FROM x\n"
        "RUN --mount=type=secret,id=netrc,target=/root/.netrc \\\n    pip install .\n"
        "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci\n")
    seen: list[tuple[list[str], str]] = []

    def fake_run(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        secrets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--secret"]
        netrc = next(s.split("src=", 1)[1] for s in secrets)
        seen.append((secrets, Path(netrc).read_text()))
        Path(cmd[cmd.index("--iidfile") + 1]).write_text("sha256:" + "0" * 64)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("nexusify.deploy.runtime.images.subprocess.run", fake_run)
    engine = Engine(client=object(), url="unix:///nonexistent.sock")
    monkeypatch.setattr(engine, "cli_build_command", lambda: ["podman", "build"])
    creds = Credentials("u", Secret("hunter2-index"), "env")
    images.build_image(engine, _req(context=tmp_path, index_url="http://127.0.0.1:9/simple/", credentials=creds))
    (secrets, netrc_text), = seen
    assert [s.split(",")[0] for s in secrets] == ["id=netrc"]
    assert "hunter2-index" in netrc_text
