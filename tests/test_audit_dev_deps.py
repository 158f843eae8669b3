"""audit marks dev-only shared dependencies, in its tables and its JSON (issue 24, item 5)."""

from __future__ import annotations

import json

from .conftest import SAMPLE


def _row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if f" {name} " in line)


def test_depends_on_marks_dev_only_dependencies(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--offline", "--root", str(SAMPLE))
    assert r.exit_code == 0, r.output
    auth = _row(r.stdout, "maestro-core-auth")
    assert "maestro-core-config," in auth or "maestro-core-config " in auth
    assert "maestro-test-healer (dev)" in auth and "maestro-core-config (dev)" not in auth
    assert "maestro-test-healer (path, dev)" in r.stdout  # automation-service's dev group (the cell wraps)
    assert "maestro-test-healer (path)," in r.stdout  # quality-fabric installs it at run time


def test_json_lists_runtime_shared_dependencies_of_services(run_cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run_cli("audit", "--offline", "--json", "--root", str(SAMPLE)).stdout)
    service = next(s for s in data["services"] if s["name"] == "automation-service")
    assert "maestro-test-healer" in service["shared_dependencies"]
    assert "maestro-test-healer" not in service["runtime_shared_dependencies"]
    assert "maestro-core-api" in service["runtime_shared_dependencies"]
