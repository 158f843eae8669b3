"""Deployment history: append-only JSON lines, atomic appends, and `nexusify history`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from nexusify.credentials import Secret
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state.history import (
    DeploymentRecord,
    ServiceRecord,
    append_record,
    history_path,
    last_successful,
    read_history,
    who,
)
from nexusify.errors import DeployError
from tests.conftest import REPO, CliResult


def _record(version: str, outcome: str = "success", env: str = "production", **kw: object) -> DeploymentRecord:
    base: dict[str, object] = {
        "environment": env, "action": "deploy", "outcome": outcome,
        "started_at": "2026-01-02T03:04:05Z", "finished_at": "2026-01-02T03:04:15Z", "duration": 10.0,
        "who": "alice@build1",
        "services": (ServiceRecord("api", version, image=f"127.0.0.1:5000/api:{version}", digest="sha256:" + "a" * 64,
                                   previous_version="v0", migration_before="0001", migration_after="0002"),),
        "secret_versions": {"app/production": "vid-123"},
        "stages": {"secrets": 0.2, "migrate": 1.0},
    }
    base.update(kw)
    return DeploymentRecord(**base)  # type: ignore[arg-type]


def test_append_and_read_round_trip(tmp_path: Path) -> None:
    first = append_record(tmp_path, _record("v1"))
    second = append_record(tmp_path, _record("v2", outcome="unhealthy", error="green never became healthy"))
    assert first.id and second.id and first.id != second.id
    path = history_path(tmp_path, "production")
    assert path == tmp_path / "deploy" / "production" / "history.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["schema"] == 1
    records = read_history(tmp_path, "production")
    assert records == [first, second]
    assert records[0].service("api") == first.services[0]
    assert read_history(tmp_path, "production", limit=1) == [second]
    assert read_history(tmp_path, "staging") == []
    # appending never rewrites what is there
    before = path.read_bytes()
    append_record(tmp_path, _record("v3"))
    assert path.read_bytes().startswith(before)


def test_last_successful_lists_rollback_targets_newest_first(tmp_path: Path) -> None:
    for version, outcome in [("v1", "success"), ("v2", "success"), ("v3", "unhealthy"), ("v2", "success")]:
        append_record(tmp_path, _record(version, outcome=outcome))
    assert [s.version for s in last_successful(tmp_path, "production", "api")] == ["v2", "v1"]
    assert last_successful(tmp_path, "production", "other") == []


def test_secret_values_are_scrubbed_and_only_version_ids_recorded(tmp_path: Path) -> None:
    bundle = SecretBundle({"DATABASE_URL": Secret("postgresql://app:hist-secret-pw@db/app")}, {"app/production": "vid-123"})
    rec = _record("v1", outcome="failed", error="connect failed for postgresql://app:hist-secret-pw@db/app",
                  secret_versions=dict(bundle.versions))
    append_record(tmp_path, rec, secrets=bundle)
    raw = history_path(tmp_path, "production").read_text()
    assert "hist-secret-pw" not in raw and "vid-123" in raw and "<hidden>" in raw


def test_torn_last_line_is_skipped_and_the_next_append_starts_fresh(tmp_path: Path) -> None:
    good = append_record(tmp_path, _record("v1"))
    path = history_path(tmp_path, "production")
    with path.open("ab") as fh:  # a crash in the middle of an append
        fh.write(b'{"schema":1,"environment":"production","act')
    assert read_history(tmp_path, "production") == [good]
    after = append_record(tmp_path, _record("v2"))
    assert read_history(tmp_path, "production") == [good, after]


def test_damaged_line_in_the_middle_is_an_error_with_its_line(tmp_path: Path) -> None:
    append_record(tmp_path, _record("v1"))
    path = history_path(tmp_path, "production")
    with path.open("a") as fh:
        fh.write("not json at all\n")
    append_record(tmp_path, _record("v2"))
    with pytest.raises(DeployError, match="damaged at line 2") as info:
        read_history(tmp_path, "production")
    assert info.value.line == 2


def test_invalid_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outcome"):
        append_record(tmp_path, _record("v1", outcome="great"))
    with pytest.raises(DeployError, match="invalid environment"):
        history_path(tmp_path, "../etc")


_APPENDER = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from nexusify.deploy.state.history import DeploymentRecord, ServiceRecord, append_record
    state, tag = Path(sys.argv[1]), sys.argv[2]
    for i in range(int(sys.argv[3])):
        append_record(state, DeploymentRecord(
            environment="production", action="deploy", outcome="success", started_at="t", finished_at="t",
            duration=0.0, who=tag, services=(ServiceRecord("api", f"{tag}-{i}", digest="x" * 5000),)))
""")


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(tmp_path), f"p{n}", "40"], env=env)
             for n in range(4)]
    for p in procs:
        assert p.wait(60) == 0
    records = read_history(tmp_path, "production")
    assert len(records) == 160
    for n in range(4):
        mine = [r.services[0].version for r in records if r.who == f"p{n}"]
        assert mine == [f"p{n}-{i}" for i in range(40)]  # each writer's lines complete and in order


def test_who_prefers_the_override() -> None:
    assert who({"NEXUSIFY_DEPLOYER": "ci@pipeline"}) == "ci@pipeline"
    assert "@" in who({})


def test_history_command_table_and_json(monorepo: Path, run_cli: Callable[..., CliResult]) -> None:
    state = monorepo / ".nexusify"
    append_record(state, _record("v1"))
    append_record(state, _record("v2", outcome="failed", error="migration 0002 failed"))
    append_record(state, _record("x1", env="staging"))
    res = run_cli("history", "--root", str(monorepo), "--environment", "production", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["environment"] == "production"
    assert [r["services"][0]["version"] for r in data["records"]] == ["v1", "v2"]
    assert data["records"][1]["outcome"] == "failed"

    res = run_cli("history", "--root", str(monorepo), "-e", "production")
    assert res.exit_code == 0, res.stderr
    assert "deployments of production" in res.stdout
    assert res.stdout.index("v0 → v2") < res.stdout.index("v0 → v1")  # newest first
    assert "0001 → 0002" in res.stdout and "alice@build1" in res.stdout

    res = run_cli("history", "--root", str(monorepo), "-e", "prodution")
    assert res.exit_code == 2 and "did you mean `production`?" in res.stderr
    res = run_cli("history", "--root", str(monorepo))
    assert res.exit_code == 2 and "pass --environment" in res.stderr
    res = run_cli("history", "--root", str(monorepo), "-e", "staging", "--service", "nope", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["records"] == []
