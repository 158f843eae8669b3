"""`nexusify audit` on the sample: JSON shape, table, graph output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import FIXTURES, SAMPLE

LAYOUTS = FIXTURES / "layouts"


@pytest.fixture(scope="module")
def sample_json() -> dict:  # type: ignore[type-arg]
    import contextlib
    import io

    from nexusify import cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["audit", "--root", str(SAMPLE), "--json"], env={})
    assert code == 0
    return json.loads(buf.getvalue())  # type: ignore[no-any-return]


def test_json_shape(sample_json: dict) -> None:  # type: ignore[type-arg]
    data = sample_json
    assert data["root"] == str(SAMPLE.resolve())
    assert set(data) >= {"root", "packages", "services", "publish_order", "problems"}
    for pkg in data["packages"]:
        assert set(pkg) >= {"name", "version", "path", "build_backend", "depends_on"}
        assert isinstance(pkg["depends_on"], list)
    for svc in data["services"]:
        assert set(svc) >= {"name", "path", "shared_dependencies", "transitive_shared_dependencies", "dockerfiles"}
    for problem in data["problems"]:
        assert set(problem) >= {"severity", "code", "path", "line", "message"}
        assert problem["severity"] in ("error", "warning")


def test_json_content(sample_json: dict) -> None:  # type: ignore[type-arg]
    pkgs = {p["name"]: p for p in sample_json["packages"]}
    assert pkgs["maestro-core-auth"]["depends_on"] == ["maestro-core-config", "maestro-test-healer"]
    assert pkgs["maestro-core-auth"]["runtime_depends_on"] == ["maestro-core-config"]
    assert pkgs["maestro-core-messaging"]["version"] == "0.1.0"
    assert pkgs["maestro-monitoring"]["build_backend"] == "pdm.backend"
    svcs = {s["name"]: s for s in sample_json["services"]}
    assert svcs["quality-fabric"]["shared_dependencies"] == ["maestro-test-healer", "maestro-core-api"]
    assert svcs["quality-fabric"]["transitive_shared_dependencies"] == [
        "maestro-core-api", "maestro-core-auth", "maestro-core-config", "maestro-core-db",
        "maestro-core-logging", "maestro-test-healer"]
    assert "reporting" not in svcs  # installs no shared code: no consumer
    assert svcs["gateway"]["dockerfiles"] == ["services/gateway/Dockerfile"]
    order = sample_json["publish_order"]
    assert order.index("maestro-core-config") < order.index("maestro-core-logging") < order.index("maestro-core-api")
    codes = {(p["code"], p["path"], p["line"]) for p in sample_json["problems"]}
    assert codes == {
        ("dockerfile-copies-shared", "services/automation-service/Dockerfile", 7),
        ("dockerfile-copies-shared", "services/gateway/Dockerfile", 6),
        ("dockerfile-copies-shared", "services/gateway/Dockerfile", 7),
        ("dockerfile-copies-shared", "services/gateway/Dockerfile", 8),
        ("dockerfile-copies-shared", "services/quality-fabric/Dockerfile", 6),
        ("dockerfile-copies-shared", "services/scheduler/Dockerfile", 6),
    }
    assert sample_json["summary"] == {"errors": 0, "warnings": 6}
    assert sample_json["index"]["url"] is None and sample_json["public"] == {}


def test_table_output(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--root", str(SAMPLE))
    assert r.exit_code == 0
    out = r.stdout
    assert "Shared packages (8)" in out and "Consumers (4)" in out
    assert "Publish order: maestro-core-config -> " in out
    assert "services/scheduler/Dockerfile:6" in out
    assert "8 shared package(s), 4 consumer(s): 0 error(s), 6 warning(s)" in out


def test_classification_survives_rewrite(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After rewrite, services name shared packages by version: audit must still see the same
    shared packages and services in a layout classified by the graph alone."""
    import shutil

    root = tmp_path / "nested"
    shutil.copytree(LAYOUTS / "nested", root)

    def roles() -> tuple[list[str], list[str]]:
        r = run_cli("--root", str(root), "audit", "--json", "--offline")
        data = json.loads(r.stdout)
        return sorted(p["name"] for p in data["packages"]), sorted(s["name"] for s in data["services"])

    before = roles()
    assert before == (["plat-core", "plat-metrics"], ["ingest-worker"])
    r = run_cli("--root", str(root), "rewrite", "--index-url", "http://127.0.0.1:9/simple/")
    assert r.exit_code == 0, r.output
    assert "path =" not in (root / "deploy/workers/ingest/pyproject.toml").read_text()
    assert roles() == before
