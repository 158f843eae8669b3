"""The one gate every writing verb applies first (issue: never a false green): an error in any
project the targets reach, directly or transitively (an unreadable shared package included), or a
graph error among them, makes rewrite, rewrite --check and publish refuse, writing nothing, with
audit's own file:line:column message."""

from __future__ import annotations

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
