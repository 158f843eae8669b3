"""One exit-code rule for every verb: errors exit 1, warnings exit 0 unless --strict (then 1),
usage and configuration errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexusify.cli import build_parser
from nexusify.commands import verdict

from .conftest import free_port

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
STALE_LOCK = ('[[package]]\nname = "maestro-test-healer"\n[package.source]\ntype = "directory"\n'
              'url = "/shared/packages/test-healer"\n')


@pytest.mark.parametrize(("errors", "warnings", "strict", "code"), [
    pytest.param(0, 0, False, 0, id="clean"),
    pytest.param(0, 0, True, 0, id="clean-strict"),
    pytest.param(0, 2, False, 0, id="warnings"),
    pytest.param(0, 2, True, 1, id="warnings-strict"),
    pytest.param(1, 0, False, 1, id="errors"),
    pytest.param(1, 3, True, 1, id="errors-strict"),
])
def test_the_rule(errors: int, warnings: int, strict: bool, code: int) -> None:
    assert verdict(errors, warnings, strict=strict) == code


def test_rewrite_with_a_warning_exits_0_and_1_under_strict(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    (monorepo / "services/quality-fabric/poetry.lock").write_text(STALE_LOCK)
    base = ("rewrite", "--root", str(monorepo), "--index-url", URL)
    diff = run_cli(*base, "--diff", env=ENV)
    assert diff.exit_code == 0, diff.output
    strict_diff = run_cli(*base, "--diff", "--strict", env=ENV)
    assert strict_diff.exit_code == 1, strict_diff.output
    done = run_cli(*base, env=ENV)
    assert done.exit_code == 0, done.output  # everything written; the warning is shown, not a failure
    assert "stale-lockfile" in done.output and "8 file(s) rewritten" in done.output
    check = run_cli(*base, "--check", env=ENV)
    # not green while the lock still installs a shared package from a path: it names the command
    assert check.exit_code == 1, check.output
    assert "0 file(s) would be rewritten, 1 lockfile(s) re-locked" in check.output
    assert "`cd services/quality-fabric && poetry lock`" in check.output


def test_rewrite_strict_apply_still_writes_then_exits_1(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    (monorepo / "services/quality-fabric/poetry.lock").write_text(STALE_LOCK)
    r = run_cli("rewrite", "--strict", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert r.exit_code == 1 and "8 file(s) rewritten" in r.output


def test_rewrite_check_with_pending_changes_exits_1(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("rewrite", "--check", "--root", str(monorepo), "--index-url", URL, env=ENV)
    # the exit code alone proved nothing while rewrite crashed (tomlkit 0.15.3): the message says why
    assert r.exit_code == 1 and "8 file(s) would be rewritten" in r.output, r.output


def test_audit_warning_exits_0_strict_1_error_1(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"http://127.0.0.1:{free_port()}/simple/"  # unreachable: a warning
    args = ("audit", "--root", str(monorepo), "--index-url", url, "--json")
    r = run_cli(*args, env=ENV)
    assert r.exit_code == 0, r.output
    assert {p["severity"] for p in json.loads(r.stdout)["problems"]} == {"warning"}
    strict = run_cli(*args, "--strict", env=ENV)
    assert strict.exit_code == 1 and json.loads(strict.stdout)["problems"], strict.output
    (monorepo / "shared/packages/core-config/pyproject.toml").write_text('[project]\nname = "x"\nversion = "nope"\n')
    error = run_cli(*args, env=ENV)
    assert error.exit_code == 1, error.output
    assert "error" in {p["severity"] for p in json.loads(error.stdout)["problems"]}


def test_publish_warning_exits_0_strict_1(run_cli, monorepo: Path, pypi_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = pypi_server_factory(auth=None)
    pyproject = monorepo / "shared/packages/core-config/pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.poetry-dynamic-versioning]\nenable = true\n")
    args = ("publish", "--dry-run", "--root", str(monorepo), "--repository-url", server.url,
            "--index-url", server.simple_url)
    r = run_cli(*args, env=ENV)
    assert r.exit_code == 0, r.output
    assert "placeholder-version" in r.output
    strict = run_cli(*args, "--strict", env=ENV)
    assert strict.exit_code == 1, strict.output


@pytest.mark.parametrize("argv", [
    pytest.param(["rewrite", "--no-such-option"], id="unknown-option"),
    pytest.param(["deploy", "--strict"], id="strict-only-where-problems-are-reported"),
    pytest.param(["audit", "--constraint", "loose"], id="bad-choice"),
])
def test_usage_errors_exit_2(run_cli, monorepo: Path, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = run_cli(*argv, "--root", str(monorepo), env=ENV)
    assert r.exit_code == 2 and "error:" in r.output and "--help" in r.output, r.output


def test_a_crash_exits_70_with_the_internal_error_message(run_cli, monorepo: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A crash is never "problems found": exit 70 (EX_SOFTWARE), the internal-error message, in
    text and JSON; a NexusifyError keeps its own code."""
    from nexusify.commands import audit

    def boom(*_: object) -> int:
        raise AttributeError("'Container' object has no attribute '_insert_after'")

    monkeypatch.setattr(audit, "run", boom)
    r = run_cli("audit", "--offline", "--root", str(monorepo), env=ENV, allow_crash=True)
    assert r.exit_code == 70, r.output
    assert "internal error: AttributeError" in r.stderr and "report it" in r.stderr
    j = run_cli("audit", "--offline", "--json", "--root", str(monorepo), env=ENV, allow_crash=True)
    assert j.exit_code == 70 and json.loads(j.stdout)["exit_code"] == 70
    assert json.loads(j.stdout)["error"] == "InternalError"


def test_config_errors_exit_2(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    (monorepo / "nexusify.toml").write_text('constrant = "caret"\n')
    for verb in ("audit", "rewrite", "publish"):
        r = run_cli(verb, "--root", str(monorepo), env=ENV)
        assert r.exit_code == 2, (verb, r.output)
        assert "did you mean `constraint`" in r.output


def test_strict_is_offered_by_every_verb_that_reports_problems() -> None:
    parser = build_parser()
    for verb in ("audit", "publish", "rewrite"):
        assert parser.parse_args([verb, "--strict"]).strict is True, verb
        assert parser.parse_args([verb]).strict is False, verb
