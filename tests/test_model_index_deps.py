"""The model knows a consumer's shared dependencies in both forms: by path, and by version after
`nexusify rewrite` (Poetry {version, source}, PEP 508 ranges with a uv index source, requirements
lines). The graph (transitive closure, edges) is the same before and after the rewrite."""

from __future__ import annotations

from pathlib import Path

from nexusify.model import load_workspace

from .test_rewrite import rewrite

SERVICES = ["automation-service", "gateway", "quality-fabric", "scheduler"]


def test_a_rewritten_service_still_depends_on_its_shared_packages(run_cli, monorepo: Path) -> None:
    before = load_workspace(monorepo)
    closure_before = {s: sorted(before.closure([before.project_at(monorepo / "services" / s)])) for s in SERVICES}
    edges_before = before.edges()
    assert all(closure_before.values())

    assert rewrite(run_cli, monorepo).exit_code == 0

    after = load_workspace(monorepo)
    for s in SERVICES:
        project = after.project_at(monorepo / "services" / s)
        assert project is not None and after.is_consumer(project)
        assert not [d for d in project.local_deps if d.normalized in after.by_name]  # no paths left
        assert project.index_deps, f"{s}: its shared dependencies by version are not in the model"
        for dep in project.index_deps:
            assert dep.normalized in after.by_name
            assert dep.specifier, f"{s}: {dep.name} has no version constraint"
            assert dep.line is not None and dep.file.is_file()
        # the closure never shrinks (explicit priority declares transitive packages directly)
        assert set(after.closure([project])) >= set(closure_before[s])
    assert {(a, b) for a, b, _ in edges_before} <= {(a, b) for a, b, _ in after.edges()}


def test_requirements_lines_and_pep621_ranges_name_shared_packages(tmp_path: Path) -> None:
    lib = tmp_path / "libs" / "acme-common"
    lib.mkdir(parents=True)
    (lib / "pyproject.toml").write_text(
        '[project]\nname = "acme-common"\nversion = "0.2.0"\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    uv_svc = tmp_path / "services" / "api"
    uv_svc.mkdir(parents=True)
    (uv_svc / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "1.0.0"\ndependencies = ["acme-common>=0.2.0,<0.3.0", "six"]\n'
        '[tool.uv.sources]\nacme-common = { index = "nexus" }\n'
        '[[tool.uv.index]]\nname = "nexus"\nurl = "http://127.0.0.1:1/simple/"\nexplicit = true\n')
    pip_svc = tmp_path / "services" / "worker"
    pip_svc.mkdir(parents=True)
    (pip_svc / "requirements.txt").write_text("--index-url http://127.0.0.1:1/simple/\nsix\nacme-common>=0.2.0\n")

    ws = load_workspace(tmp_path)
    api = ws.by_name["api"]
    assert [(d.normalized, d.specifier, d.source, d.line) for d in api.index_deps] == [
        ("acme-common", "<0.3.0,>=0.2.0", "nexus", 4)]
    worker = ws.project_at(pip_svc)
    assert worker is not None
    assert [(d.normalized, d.line, d.source) for d in worker.index_deps] == [
        ("acme-common", 3, "http://127.0.0.1:1/simple/")]
    assert list(ws.closure([api])) == ["acme-common"] and list(ws.closure([worker])) == ["acme-common"]
    assert ("api", "acme-common", True) in ws.edges()


def test_each_consumer_knows_its_tool_and_lockfiles(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "root"\nversion = "0"\n[tool.uv.workspace]\nmembers = ["libs/*", "services/*"]\n')
    (tmp_path / "uv.lock").write_text("version = 1\n")
    for rel, name in (("libs/common", "common"), ("services/api", "api")):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0.1.0"\n')
    poetry_svc = tmp_path / "apps" / "web"
    poetry_svc.mkdir(parents=True)
    (poetry_svc / "pyproject.toml").write_text('[tool.poetry]\nname = "web"\nversion = "1"\n')
    (poetry_svc / "poetry.lock").write_text("")
    ws = load_workspace(tmp_path)
    api, web = ws.by_name["api"], ws.by_name["web"]
    assert (api.tool, api.lockfiles) == ("uv", [tmp_path / "uv.lock"])  # one lock for the workspace
    assert (web.tool, web.lockfiles) == ("poetry", [poetry_svc / "poetry.lock"])
