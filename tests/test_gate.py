"""The one gate every writing verb applies first (issue: never a false green): an error in any
project the targets reach, directly or transitively (an unreadable shared package included), or a
graph error among them, makes rewrite, rewrite --check and publish refuse, writing nothing, with
audit's own file:line:column message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import snapshot
from .test_model_verdicts import _break

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


@pytest.mark.parametrize("how", ["invalid-toml", "bad-utf8", "dangling-symlink", "missing-name"])
@pytest.mark.parametrize("check", [False, True], ids=["rewrite", "check"])
def test_rewrite_refuses_when_a_reached_shared_package_is_broken(run_cli, monorepo: Path, how: str, check: bool) -> None:
    _break(monorepo, how)
    before = snapshot(monorepo)
    r = run_cli("rewrite", "services/*", "--root", str(monorepo), "--index-url", URL,
                *(["--check"] if check else []), env=ENV)
    assert r.exit_code == 1, r.output
    assert "shared/packages/core-config/pyproject.toml" in r.output, r.output
    assert snapshot(monorepo) == before  # nothing written


def test_rewrite_of_a_service_whose_own_file_is_broken_names_the_problem(run_cli, monorepo: Path) -> None:
    pp = monorepo / "services/gateway/pyproject.toml"
    pp.write_text(pp.read_text() + "\n[project]\n")  # a duplicate table
    before = snapshot(monorepo)
    for args in (("services/gateway",), ("--check",), ()):
        r = run_cli("rewrite", *args, "--root", str(monorepo), "--index-url", URL, env=ENV)
        assert r.exit_code == 1, (args, r.output)
        assert "services/gateway/pyproject.toml:" in r.output and "no pyproject.toml there" not in r.output, r.output
    assert snapshot(monorepo) == before


def test_a_service_that_reaches_nothing_broken_still_rewrites(run_cli, monorepo: Path) -> None:
    _break(monorepo, "invalid-toml")  # core-config: gateway reaches it, reporting does not
    r = run_cli("rewrite", "services/reporting", "--root", str(monorepo), "--index-url", URL, "--check", env=ENV)
    assert r.exit_code == 0, r.output


def test_publish_refuses_when_a_shared_package_is_unreadable(run_cli, monorepo: Path) -> None:
    _break(monorepo, "invalid-toml")
    r = run_cli("publish", "--dry-run", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/", env=ENV)
    assert r.exit_code == 1, r.output
    assert "shared/packages/core-config/pyproject.toml" in r.output


def _optional_layout(root: Path, main_deps: str) -> None:
    for name, deps, sources in (("base", "", ""), ("plugin", '"base"', 'base = { path = "../base" }\n')):
        (root / "libs" / name).mkdir(parents=True)
        (root / "libs" / name / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = [{deps}]\n'
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
            + (f"[tool.uv.sources]\n{sources}" if sources else ""))
    (root / "services/api").mkdir(parents=True)
    (root / "services/api/pyproject.toml").write_text(
        f'[project]\nname = "api"\nversion = "1.0.0"\ndependencies = [{main_deps}]\n'
        '[project.optional-dependencies]\nx = ["plugin"]\n'
        '[tool.uv.sources]\nbase = { path = "../../libs/base" }\nplugin = { path = "../../libs/plugin" }\n')


@pytest.mark.parametrize(("main_deps", "warned"), [
    pytest.param('"base"', False, id="declared-in-main"),
    pytest.param("", True, id="not-declared"),
])
def test_optional_transitive_is_warned_only_when_the_main_group_does_not_declare_it(
        run_cli, tmp_path: Path, main_deps: str, warned: bool) -> None:
    _optional_layout(tmp_path, main_deps)
    r = run_cli("rewrite", "--root", str(tmp_path), "--index-url", URL, "--check", env=ENV)
    assert r.exit_code == 1, r.output  # there is something to rewrite
    assert ("optional-transitive" in r.output) is warned, r.output


def _pip_layout(root: Path, requirements: str) -> None:
    (root / "libs/a").mkdir(parents=True)
    (root / "libs/a/pyproject.toml").write_text(
        '[project]\nname = "lib-a"\nversion = "1.2.0"\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n')
    (root / "services/svc").mkdir(parents=True)
    (root / "services/svc/requirements.txt").write_text(requirements)


@pytest.mark.parametrize(("requirements", "code", "line"), [
    pytest.param("--no-index\n-e ../../libs/a\n", "requirements-no-index", 1, id="no-index"),
    pytest.param("six\n--no-index --find-links /wheels\n../../libs/a\n", "requirements-no-index", 2, id="no-index-later"),
    pytest.param("../../libs/a --hash=sha256:" + "0" * 64 + "\n", "requirements-hash", 1, id="hash"),
])
def test_requirements_lines_rewrite_cannot_keep_true_are_errors(run_cli, tmp_path: Path, requirements: str,
                                                                  code: str, line: int) -> None:
    _pip_layout(tmp_path, requirements)
    before = snapshot(tmp_path)
    for args in ((), ("--check",)):
        r = run_cli("rewrite", "--root", str(tmp_path), "--index-url", URL, *args, env=ENV)
        assert r.exit_code == 1, r.output
        assert f"services/svc/requirements.txt:{line}: error[{code}]" in r.output, r.output
    assert snapshot(tmp_path) == before


def test_the_issue_reproducer_gets_one_verdict(run_cli, monorepo: Path) -> None:
    """`COPY shared/packages/a /deps/a` then `COPY . /app` and `pip install /deps/a`, in a service whose
    manifest names no shared package: rewrite patches it and audit is then silent about it."""
    df = monorepo / "services/reporting/Dockerfile"
    df.write_text("FROM python:3.11-slim-bookworm\nWORKDIR /app\nCOPY shared/packages/core-config /deps/core-config\n"
                  "COPY . /app\nRUN pip install /deps/core-config && pip install .\n")
    audit = run_cli("audit", "--root", str(monorepo), "--offline", "--json", env=ENV)
    assert any(p["path"] == "services/reporting/Dockerfile" for p in json.loads(audit.stdout)["problems"])
    r = run_cli("rewrite", "services/reporting", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert r.exit_code == 0, r.output
    text = df.read_text()
    assert "/deps/core-config" not in text and "'maestro-core-config>=0.1.0,<0.2.0'" in text
    audit = run_cli("audit", "--root", str(monorepo), "--offline", "--json", env=ENV)
    assert not [p for p in json.loads(audit.stdout)["problems"] if p["path"] == "services/reporting/Dockerfile"]
    assert run_cli("rewrite", "--root", str(monorepo), "--index-url", URL, "--check", "services/reporting",
                   env=ENV).exit_code == 0
