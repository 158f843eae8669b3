"""A damaged deploy state or history is an error naming the file and line, never read as empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.state.history import (
    DeploymentRecord,
    ServiceRecord,
    append_record,
    history_path,
    read_history,
)
from nexusify.deploy.state.store import DamagedState, StateStore
from nexusify.errors import DeployError
from tests.conftest import CliResult
from tests.deploy_fixtures import make_project

GOOD = {"version": 1, "services": {
    "api": {"live": {"container": "nx-api", "version": "v1", "port": 31000}, "transition": None},
    "worker": {"live": {"container": "nx-worker", "version": "v1", "port": 31001}, "transition": None},
}}


def _store(tmp_path: Path, text: str) -> StateStore:
    store = StateStore(tmp_path, "production")
    store.path.parent.mkdir(parents=True)
    store.path.write_text(text)
    return store


def test_missing_state_is_empty_and_a_good_one_keeps_other_services(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "production")
    assert store.load()["services"] == {}
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps(GOOD))
    store.save_service("api", {"live": None, "transition": None})
    assert set(json.loads(store.path.read_text())["services"]) == {"api", "worker"}


@pytest.mark.parametrize(("text", "line", "column", "words"), [
    pytest.param('{"version": 1,\n "services": {"api": {\n', 3, 1, "not valid JSON", id="truncated"),
    pytest.param('{"version": 1, "services": {"api": {"live": nul}}}\n', 1, 45, "not valid JSON", id="bad-token"),
    pytest.param('[1, 2]\n', None, None, "expected a JSON object", id="not-an-object"),
    pytest.param('{"version": 1}\n', None, None, '"services"', id="no-services"),
    pytest.param('{"services": {"api": "v1"}}\n', None, None, "service 'api'", id="entry-not-object"),
    pytest.param('{"services": {"api": {"live": {"version": "v1"}}}}\n', None, None, "lacks container", id="slot-shape"),
])
def test_damaged_state_is_an_error_with_file_line_and_nothing_is_written(
        tmp_path: Path, text: str, line: int | None, column: int | None, words: str) -> None:
    store = _store(tmp_path, text)
    with pytest.raises(DamagedState, match=words) as info:
        store.load()
    err = info.value
    assert err.path == str(store.path) and err.line == line and err.column == column
    assert err.exit_code == 1 and "restore it from a backup" in (err.hint or "")
    with pytest.raises(DamagedState):  # the next save must not drop the other services' records
        store.save_service("api", {"live": None, "transition": None})
    assert store.path.read_text() == text


def test_deploy_dry_run_with_a_damaged_state_names_the_file_and_line(
        tmp_path: Path, run_cli: Any) -> None:
    p = make_project(tmp_path)
    state = p.state / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1,\n "services": {,}}\n')
    r: CliResult = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--dry-run",
                           "--tag", "v1", env=p.env)
    assert r.exit_code == 1, r.output
    assert f"{state}:2:15: the deploy state is not valid JSON" in r.stderr, r.stderr
    assert state.read_text() == '{"version": 1,\n "services": {,}}\n'


def _record(version: str) -> DeploymentRecord:
    return DeploymentRecord(environment="production", action="deploy", outcome="success",
                            started_at="2026-11-30T10:00:00Z", finished_at="2026-11-30T10:00:05Z", duration=5.0,
                            who="ci", services=(ServiceRecord(name="api", version=version),))


@pytest.mark.parametrize("damage", [
    pytest.param("not json at all\n", id="garbage"),
    pytest.param('{"schema": 1, "environment": "production"}\n', id="wrong-shape"),
])
def test_a_damaged_last_history_line_is_an_error_not_skipped(tmp_path: Path, damage: str) -> None:
    append_record(tmp_path, _record("v1"))
    path = history_path(tmp_path, "production")
    with path.open("a") as fh:
        fh.write(damage)
    with pytest.raises(DeployError, match="damaged at line 2") as info:
        read_history(tmp_path, "production")
    assert info.value.path == str(path) and info.value.line == 2


def test_a_torn_line_followed_by_appends_is_still_skipped(tmp_path: Path) -> None:
    first = append_record(tmp_path, _record("v1"))
    with history_path(tmp_path, "production").open("ab") as fh:
        fh.write(b'{"schema":1,"environment":"production","services":[{"name":"a"}')
    after = append_record(tmp_path, _record("v2"))
    assert read_history(tmp_path, "production") == [first, after]
