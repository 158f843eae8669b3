"""`nexusify status` and `nexusify deploy down` on an environment without hosts (the local engine
and nexusify's private nginx), with the real engine: what runs is read from the containers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.deploy_fixtures import DeployProject, make_project

pytestmark = [pytest.mark.engine, pytest.mark.stack, pytest.mark.slow]

Run = Callable[..., CliResult]


@pytest.fixture
def project(tmp_path: Path, docker_client: Any) -> Iterator[DeployProject]:
    p = make_project(tmp_path, health_timeout=8)
    yield p
    p.cleanup(docker_client)


def _cli(run_cli: Run, p: DeployProject, *argv: str) -> CliResult:
    return run_cli(*argv, "--root", str(p.root), "--environment", p.environment, env=p.env)


def _labelled(client: Any, environment: str) -> list[str]:
    flt = {"label": f"io.nexusify.environment={environment}"}
    return [c["Names"][0] for c in client.api.containers(all=True, filters=flt)]


def test_status_then_down_leaves_nothing_behind(project: DeployProject, run_cli: Run, docker_client: Any) -> None:
    p = project
    first = _cli(run_cli, p, "status")
    assert first.exit_code == 0 and f"nothing is deployed to {p.environment} yet" in first.output
    for version in ("v1", "v2"):
        res = _cli(run_cli, p, "deploy", "--tag", version, "--build-arg", f"BUILT_VERSION={version}")
        assert res.exit_code == 0, res.output
    assert p.served()["built"] == "v2"

    res = _cli(run_cli, p, "status", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    [row] = report["services"]
    assert (row["service"], row["live"], row["kept"], row["healthy"]) == ("app", ["v2"], ["v1"], True)
    assert report["problems"] == [] and report["deployed"] is True
    table = _cli(run_cli, p, "status")
    assert table.exit_code == 0 and "v2" in table.stdout and "healthy" in table.stdout

    # the live container answers no more: status says so and exits 1 (never a green for a dead service)
    live = docker_client.containers.get(row["containers"][0])
    live.pause()
    try:
        res = _cli(run_cli, p, "status", "--json")
        assert res.exit_code == 1, res.output
        assert any("UNHEALTHY" in problem for problem in json.loads(res.stdout)["problems"])
    finally:
        live.unpause()

    # not on a terminal and no --yes: refused before anything is touched
    refused = _cli(run_cli, p, "deploy", "down")
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert len(_labelled(docker_client, p.environment)) == 2

    down = _cli(run_cli, p, "deploy", "down", "--yes")
    assert down.exit_code == 0, down.output
    assert "removed from" in down.stdout and "private nginx" in down.stdout
    assert "history kept" in down.stdout and "--purge-history" in down.stdout
    assert _labelled(docker_client, p.environment) == []
    assert not (p.state / "nginx").exists() and not (p.state / "state.json").exists()
    assert (p.state / "history.jsonl").is_file()
    after = _cli(run_cli, p, "status")
    assert after.exit_code == 0 and "nothing is deployed" in after.output
    # another environment's history on the same engine (Podman ORs a volume list's label filters)
    other = f"nexusify-{p.environment}x-history"
    docker_client.api.create_volume(other, labels={"io.nexusify.managed": "true", "io.nexusify.role": "history",
                                                   "io.nexusify.environment": f"{p.environment}x"})
    try:
        again = _cli(run_cli, p, "deploy", "down", "--yes", "--purge-history")
        assert again.exit_code == 0 and not (p.state / "history.jsonl").exists()
        assert "no history is kept" in again.stdout and other not in again.stdout
        assert docker_client.api.inspect_volume(other)["Name"] == other
    finally:
        docker_client.api.remove_volume(other, force=True)
