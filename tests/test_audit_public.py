"""`nexusify audit --check-public`: internal names that also exist on the public index, against a
real pypiserver on loopback standing in for PyPI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import free_port, make_wheel


def test_check_public_flags_names_on_the_public_index(run_cli, monorepo: Path, pypi_server_factory) -> None:  # type: ignore[no-untyped-def]
    public = pypi_server_factory(auth=None)
    make_wheel(public.packages, monorepo / "shared/packages/monitoring", "maestro-monitoring", "9.9.9", "maestro_monitoring")
    args = ("audit", "--root", str(monorepo), "--json", "--offline", "--check-public", "--public-index-url", public.simple_url)
    r = run_cli(*args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["public"]["checked"] is True
    assert data["public"]["names"]["maestro-monitoring"] is True
    assert data["public"]["names"]["maestro-core-api"] is False  # pypiserver's fallback redirect = not there
    flagged = [p for p in data["problems"] if p["code"] == "public-name-exists"]
    assert [(p["severity"], p["path"]) for p in flagged] == [("warning", "shared/packages/monitoring/pyproject.toml")]
    # with Poetry's supplemental priority the public package would win: an error
    r = run_cli(*args, "--priority", "supplemental")
    assert r.exit_code == 1
    assert [p["severity"] for p in json.loads(r.stdout)["problems"] if p["code"] == "public-name-exists"] == ["error"]



def test_check_public_is_off_by_default_and_unreachable_is_a_warning(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"http://127.0.0.1:{free_port()}/simple/"
    data = json.loads(run_cli("audit", "--root", str(monorepo), "--json", "--public-index-url", url).stdout)
    assert data["public"] == {}
    r = run_cli("audit", "--root", str(monorepo), "--json", "--check-public", "--public-index-url", url)
    assert r.exit_code == 0
    codes = [p["code"] for p in json.loads(r.stdout)["problems"]]
    assert "public-index-unreachable" in codes
