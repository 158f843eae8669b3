"""A consumer naming a shared package with no version and no index is not "by version": audit
and rewrite say what it is, and what to do (issue 24, item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

INDEX = "http://127.0.0.1:9/simple/"


def _monorepo(root: Path, service: str) -> Path:
    lib = root / "shared" / "packages" / "a"
    (lib / "a").mkdir(parents=True)
    (lib / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "1.0.0"\n'
                                        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    svc = root / "services" / "svc"
    svc.mkdir(parents=True)
    (svc / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\n' + service)
    return root


def test_bare_name_without_index_is_reported_not_called_by_version(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _monorepo(tmp_path, 'dependencies = ["a"]\n')
    rw = run_cli("rewrite", "--check", "--root", str(root), "--index-url", INDEX)
    assert "depends on shared packages by version" not in rw.stdout, rw.output
    assert "services/svc: names shared packages without a version or an index (a)" in rw.stdout
    audit = json.loads(run_cli("audit", "--offline", "--json", "--root", str(root)).stdout)
    svc = audit["services"][0]
    assert svc["shared_dependency_kinds"] == {"a": "name"}
    problem = next(p for p in audit["problems"] if p["code"] == "shared-by-name")
    assert (problem["severity"], problem["path"], problem["line"]) == ("warning", "services/svc/pyproject.toml", 4)
    assert "a>=1.0.0" in problem["hint"]  # what works: a version, and the index it comes from
    text = run_cli("audit", "--offline", "--root", str(root)).stdout
    assert "a (name only)" in text


@pytest.mark.parametrize("service", [
    pytest.param('dependencies = ["a>=1.0"]\n', id="a-version"),
    pytest.param('dependencies = ["a"]\n[tool.uv.sources]\na = { index = "nexus" }\n'
                 '[[tool.uv.index]]\nname = "nexus"\nurl = "http://127.0.0.1:9/simple/"\nexplicit = true\n',
                 id="from-a-named-index"),
])
def test_a_version_or_an_index_is_by_version(run_cli, tmp_path: Path, service: str) -> None:  # type: ignore[no-untyped-def]
    root = _monorepo(tmp_path, service)
    audit = json.loads(run_cli("audit", "--offline", "--json", "--root", str(root)).stdout)
    assert audit["services"][0]["shared_dependency_kinds"] == {"a": "index"}
    assert not [p for p in audit["problems"] if p["code"] == "shared-by-name"]
