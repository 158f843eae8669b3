"""The monorepo model on the sample and on layout fixtures shaped like real public monorepos."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusify.model import Workspace, load_workspace

from .conftest import FIXTURES, SAMPLE
from .helpers import role

LAYOUTS = FIXTURES / "layouts"


def deps(ws: Workspace, name: str) -> tuple[set[str], set[str]]:
    """(runtime, dev-only) direct internal dependencies of a project."""
    p = ws.by_name[name]
    runtime = set(p.internal_names(runtime_only=True))
    return runtime, set(p.internal_names()) - runtime


def assert_valid_order(ws: Workspace) -> list[str]:
    order = ws.publish_order()
    assert sorted(order) == sorted(p.normalized for p in ws.shared())
    for i, name in enumerate(order):
        for dep in ws.dependencies_of(name, runtime_only=True):
            assert dep in order[:i], f"{dep} must be published before {name}"
    return order


# --------------------------------------------------------------------------- the sample


SAMPLE_PACKAGES = [
    pytest.param("maestro-core-api", "0.1.0", "shared/packages/core-api",
                 {"maestro-core-auth", "maestro-core-logging", "maestro-core-db"}, set(), id="core-api"),
    pytest.param("maestro-core-auth", "0.2.0", "shared/packages/core-auth",
                 {"maestro-core-config"}, {"maestro-test-healer"}, id="core-auth"),
    pytest.param("maestro-core-config", "0.1.0", "shared/packages/core-config", set(), set(), id="core-config"),
    pytest.param("maestro-core-db", "0.1.0", "shared/packages/core-db", {"maestro-core-config"}, set(), id="core-db-uv"),
    pytest.param("maestro-core-logging", "0.1.0", "shared/packages/core-logging", {"maestro-core-config"}, set(),
                 id="core-logging"),
    pytest.param("maestro-core-messaging", "0.1.0", "shared/packages/core-messaging", {"maestro-core-logging"}, set(),
                 id="core-messaging-dynamic-pdm-url"),
    pytest.param("maestro-monitoring", "0.1.0", "shared/packages/monitoring", set(), set(), id="monitoring"),
    pytest.param("maestro-test-healer", "0.1.0", "shared/packages/test-healer", {"maestro-core-config"}, set(),
                 id="test-healer"),
]


@pytest.fixture(scope="module")
def sample() -> Workspace:
    return load_workspace(SAMPLE)


@pytest.mark.parametrize(("name", "version", "path", "runtime", "dev"), SAMPLE_PACKAGES)
def test_sample_shared_package(sample: Workspace, name: str, version: str, path: str, runtime: set[str], dev: set[str]) -> None:
    p = sample.by_name[name]
    assert sample.is_shared(p)
    assert p.version == version
    assert p.rel(sample.root) == path
    assert deps(sample, name) == (runtime, dev)


def test_sample_finds_exactly_the_eight_packages_and_four_consumers(sample: Workspace) -> None:
    assert len(sample.shared()) == 8
    # reporting lives in services/ but installs no shared code: not a consumer
    assert sorted(p.name or "" for p in sample.consumers()) == [
        "automation-service", "gateway", "quality-fabric", "scheduler"]
    assert sample.problems == []


SAMPLE_SERVICES = [
    pytest.param("automation-service", {"maestro-core-api", "maestro-core-logging"}, {"maestro-test-healer"},
                 id="automation-service-poetry-develop"),
    pytest.param("gateway", {"maestro-core-auth", "maestro-monitoring"}, set(), id="gateway-uv-sources"),
    pytest.param("quality-fabric", {"maestro-test-healer", "maestro-core-api"}, set(), id="quality-fabric-container-paths"),
    pytest.param("reporting", set(), set(), id="reporting-none"),
    pytest.param("scheduler", {"maestro-core-messaging"}, {"maestro-test-healer"}, id="scheduler-pdm-urls"),
]


@pytest.mark.parametrize(("name", "runtime", "dev"), SAMPLE_SERVICES)
def test_sample_service_dependencies(sample: Workspace, name: str, runtime: set[str], dev: set[str]) -> None:
    assert sample.is_consumer(sample.by_name[name]) == bool(runtime)
    assert deps(sample, name) == (runtime, dev)
    assert sample.by_name[name].dockerfiles == [sample.by_name[name].path / "Dockerfile"]


def test_sample_container_paths_are_mapped_onto_the_monorepo(sample: Workspace) -> None:
    qf = sample.by_name["quality-fabric"]
    mapped = {d.name: (d.mapped_from, d.resolved) for d in qf.local_deps}
    assert mapped == {
        "maestro-test-healer": ("/shared/packages/test-healer", SAMPLE.resolve() / "shared/packages/test-healer"),
        "maestro-core-api": ("/shared/packages/core-api", SAMPLE.resolve() / "shared/packages/core-api"),
    }


def test_sample_dependency_details(sample: Workspace) -> None:
    auto = {d.name: d for d in sample.by_name["automation-service"].local_deps}
    assert auto["maestro-core-api"].extras == ["db"] and auto["maestro-core-api"].editable
    assert auto["maestro-test-healer"].group == "dev" and not auto["maestro-test-healer"].runtime
    assert auto["maestro-core-api"].line == 12
    api = {d.name: d for d in sample.by_name["maestro-core-api"].local_deps}
    assert api["maestro-core-db"].optional and api["maestro-core-db"].group == "extra:db"
    sched = {d.name: d for d in sample.by_name["scheduler"].local_deps}
    assert sched["maestro-core-messaging"].kind == "pep508-file"
    assert sched["maestro-core-messaging"].mapped_from is None  # ${PROJECT_ROOT} is relative, not a container path
    gw = {d.name: d for d in sample.by_name["gateway"].local_deps}
    assert gw["maestro-core-auth"].kind == "uv-path" and gw["maestro-core-auth"].editable
    assert gw["maestro-core-auth"].source_line == 18 and gw["maestro-core-auth"].line == 9


def test_sample_publish_order_is_topological(sample: Workspace) -> None:
    order = assert_valid_order(sample)
    assert order[0] == "maestro-core-config"
    assert sample.cycles() == []


def test_sample_transitive_dependencies(sample: Workspace) -> None:
    assert sorted(sample.closure([sample.by_name["gateway"]])) == [
        "maestro-core-auth", "maestro-core-config", "maestro-monitoring"]
    assert sample.closure([sample.by_name["reporting"]]) == {}


# --------------------------------------------------------------------------- layout fixtures


LAYOUT_CASES = [
    pytest.param(
        "poetry-libs",
        {"acme-common-utils": ("1.2.0", set(), set()),
         "acme-db-client": ("0.4.1", {"acme-common-utils"}, {"acme-test-kit"}),
         "acme-events": ("2.0.0b1", {"acme-db-client", "acme-common-utils"}, set()),
         "acme-test-kit": ("0.1.0", {"acme-common-utils"}, set())},
        {"acme-api": {"acme-events", "acme-test-kit"}, "acme-worker": {"acme-db-client"}},
        {"acme-cron"},  # installs no shared code: no consumer
        {"dockerfile-copies-shared"},
        id="poetry-develop-paths-under-libs",
    ),
    pytest.param(
        "uv-editable-dag",
        {"dag-core": ("1.0.0", set(), set()),
         "dag-models": ("1.1.0", {"dag-core"}, set()),
         "dag-storage": ("0.7.3", {"dag-core", "dag-models"}, set()),
         "dag-http": ("2.3.0", {"dag-core"}, set()),
         "dag-sdk": ("0.9.0", {"dag-storage", "dag-http"}, set())},
        {"dag-web": {"dag-sdk", "dag-http"}, "dag-worker": {"dag-storage", "dag-models"}},
        set(),
        set(),
        id="uv-editable-five-package-dag",
    ),
    pytest.param(
        "uv-workspace",
        {"ws-core": ("0.3.0", set(), set()),
         "ws-auth": ("0.2.0", {"ws-core"}, set()),
         "ws-api": ("0.5.0", {"ws-auth", "ws-core"}, set()),
         "ws-sandbox": ("0.0.1", set(), set())},
        {"ws-gateway": {"ws-api"}},
        {"ws-platform"},
        {"dockerfile-copies-shared", "dockerfile-uv-workspace"},  # rewrite reports the same error
        id="uv-workspace-virtual-root",
    ),
    pytest.param(
        "pdm-file-urls",
        {"pkg-core": ("0.1.0", set(), set()),
         "pkg-first": ("0.2.0", {"pkg-core"}, set()),
         "pkg-second": ("0.3.0", {"pkg-core", "pkg-first"}, set())},
        {"nightly-report": {"pkg-second"}, ".": {"pkg-core", "pkg-first", "pkg-second"}},  # the nameless root too
        set(),
        set(),
        id="pdm-project-root-urls",
    ),
    pytest.param(
        "src-layout",
        {"acme-text": ("1.0.0", set(), set()), "acme-geo": ("0.5.0", {"acme-text"}, set())},
        {"maps": {"acme-geo"}},
        {"acme-unused"},
        set(),
        id="src-style-layout",
    ),
    pytest.param(
        "nested",
        {"plat-core": ("5.0.0", set(), set()), "plat-metrics": ("1.1.0", {"plat-core"}, set())},
        {"ingest-worker": {"plat-core", "plat-metrics"}},
        {"devtools"},
        {"dockerfile-copies-shared"},
        id="nested-odd-graph-only",
    ),
    pytest.param(
        "requirements-services",
        {"rq-core-config": ("0.2.0", set(), set()),
         "rq-core-auth": ("0.1.0", {"rq-core-config"}, set()),
         "rq-core-api": ("1.0.0", {"rq-core-auth"}, {"rq-core-config"})},  # dev: its requirements-dev.txt
        {"billing": {"rq-core-auth", "rq-core-api"},
         "reports": {"rq-core-config", "rq-core-api", "rq-core-auth"},
         "portal": {"rq-core-api", "rq-core-config", "rq-core-auth"}},
        set(),
        set(),
        id="requirements-files",
    ),
]


@pytest.mark.parametrize(("layout", "packages", "services", "others", "problem_codes"), LAYOUT_CASES)
def test_layout(layout: str, packages: dict[str, tuple[str, set[str], set[str]]], services: dict[str, set[str]],
                others: set[str], problem_codes: set[str]) -> None:
    from nexusify.audit.report import run_audit
    from nexusify.config import resolve_settings

    ws = load_workspace(LAYOUTS / layout)
    assert {p.normalized for p in ws.shared()} == set(packages)
    for name, (version, runtime, dev) in packages.items():
        assert ws.by_name[name].version == version, name
        assert deps(ws, name) == (runtime, dev), name
    assert {p.normalized or p.rel(ws.root): set(p.internal_names()) for p in ws.consumers()} == services
    assert {p.normalized for p in ws.projects if role(ws, p) == "other" and p.normalized} == others
    assert_valid_order(ws)
    assert ws.problems == []
    report = run_audit(resolve_settings(LAYOUTS / layout, env={}), index=False)
    assert {p.code for p in report.problems} == problem_codes
    assert report.exit_code == 0


def test_uv_workspace_root_sources_apply_to_members() -> None:
    ws = load_workspace(LAYOUTS / "uv-workspace")
    auth = ws.by_name["ws-auth"]
    (dep,) = auth.local_deps
    assert dep.kind == "uv-workspace" and dep.source_file == (LAYOUTS / "uv-workspace/pyproject.toml").resolve()
    root = ws.project_at(LAYOUTS / "uv-workspace")
    assert root is not None and root.is_virtual and role(ws, root) == "other"
    assert (LAYOUTS / "uv-workspace/packages/sandbox").resolve() not in root.workspace_members


def test_pdm_editable_dev_dependencies_of_an_unnamed_root() -> None:
    ws = load_workspace(LAYOUTS / "pdm-file-urls")
    root = ws.project_at(LAYOUTS / "pdm-file-urls")
    assert root is not None and root.name is None and role(ws, root) == "consumer"  # pdm install takes its dev group
    assert {(d.name, d.editable, d.runtime) for d in root.local_deps} == {
        ("pkg-core", True, False), ("pkg-first", True, False), ("pkg-second", True, False)}
    second = {d.name: d for d in ws.by_name["pkg-second"].local_deps}
    assert second["pkg-first"].markers == 'sys_platform != "win32"'


def test_nested_layout_maps_container_path_and_skips_tool_folders() -> None:
    ws = load_workspace(LAYOUTS / "nested")
    ingest = {d.name: d for d in ws.by_name["ingest-worker"].local_deps}
    assert ingest["plat-core"].mapped_from == "/srv/platform/python/core/lib"
    assert ws.by_name["ingest-worker"].dockerfiles == [(LAYOUTS / "nested/deploy/workers/ingest/docker/Dockerfile").resolve()]
    assert "decoy" not in ws.by_name


def test_skipped_folders(tmp_path: Path) -> None:
    for folder in (".venv/lib/x", "build/lib/x", "node_modules/x", "pkg.egg-info/x", "custom-env/x", "keep/x"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "pyproject.toml").write_text(f'[project]\nname = "{folder.replace("/", "-").replace(".", "")}"\n')
    (tmp_path / "custom-env/pyvenv.cfg").write_text("home = /usr\n")
    ws = load_workspace(tmp_path)
    assert [p.rel(ws.root) for p in ws.projects] == ["keep/x"]


def test_configured_globs_do_not_decide_roles() -> None:
    """A project others depend on is shared wherever it is, whatever the globs say."""
    found = load_workspace(LAYOUTS / "nested")
    ws = load_workspace(LAYOUTS / "nested", shared_globs=["platform/python/core/*"], service_globs=["deploy/workers/*"])
    assert [p.name for p in ws.shared()] == [p.name for p in found.shared()]
    assert [p.name for p in ws.consumers()] == [p.name for p in found.consumers()]
    assert "ingest-worker" in [p.name for p in ws.consumers()]
    assert ws.problems == []


def test_path_aliases_map_container_prefixes(tmp_path: Path) -> None:
    (tmp_path / "code/lib-a").mkdir(parents=True)
    (tmp_path / "code/lib-a/pyproject.toml").write_text('[project]\nname = "lib-a"\nversion = "1.0"\n')
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc/pyproject.toml").write_text(
        '[tool.poetry]\nname = "svc"\nversion = "1"\n[tool.poetry.dependencies]\nlib-a = {path = "/opt/x/lib-a"}\n')
    ws = load_workspace(tmp_path, path_aliases={"/opt/x": "code"})
    (dep,) = ws.by_name["svc"].local_deps
    assert dep.resolved == (tmp_path / "code/lib-a").resolve() and dep.mapped_from == "/opt/x/lib-a"
    assert role(ws, ws.by_name["lib-a"]) == "shared" and role(ws, ws.by_name["svc"]) == "consumer"


def test_deep_chain_has_no_recursion_limit(tmp_path: Path) -> None:
    n = 1500
    for i in range(n):
        d = tmp_path / "libs" / f"p{i}"
        d.mkdir(parents=True)
        dep = f'\n[tool.poetry.dependencies]\np{i + 1} = {{path = "../p{i + 1}"}}\n' if i + 1 < n else ""
        d.joinpath("pyproject.toml").write_text(
            f'[tool.poetry]\nname = "p{i}"\nversion = "1.0"\n{dep}[build-system]\nrequires = ["poetry-core"]\n'
            'build-backend = "poetry.core.masonry.api"\n')
    ws = load_workspace(tmp_path)
    order = ws.publish_order()
    assert order[0] == f"p{n - 1}" and order[-1] == "p0"


# --------------------------------------------------------------------------- readers


@pytest.mark.parametrize(("item", "name", "editable", "path"), [
    pytest.param("pkg @ file:///${PROJECT_ROOT}/../pkg", "pkg", False, "/repo/a/../pkg", id="pdm-project-root"),
    pytest.param("-e pkg @ file:///${PROJECT_ROOT}/packages/pkg", "pkg", True, "/repo/a/packages/pkg", id="pdm-editable"),
    pytest.param("-e file:///${PROJECT_ROOT}/packages/pkg#egg=pkg", "pkg", True, "/repo/a/packages/pkg", id="pdm-egg"),
    pytest.param("pkg @ {root:uri}/../pkg", "pkg", False, "/repo/a/../pkg", id="hatch-root-uri"),
    pytest.param("pkg @ {root:parent:uri}/pkg", "pkg", False, "/repo/pkg", id="hatch-root-parent-uri"),
    pytest.param("pkg[x] @ file:///srv/libs/pkg ; python_version >= '3.11'", "pkg", False, "/srv/libs/pkg",
                 id="absolute-with-marker"),
    pytest.param("pkg @ file:///srv/my%20libs/pkg", "pkg", False, "/srv/my libs/pkg", id="percent-encoded"),
])
def test_file_url_forms(item: str, name: str, editable: bool, path: str) -> None:
    from nexusify.model.paths import file_url_to_path
    from nexusify.model.readers.pep621 import parse_requirement as _parse_requirement

    req, is_editable, error = _parse_requirement(item)
    assert error is None and req is not None and req.url
    assert (req.name, is_editable, file_url_to_path(req.url, Path("/repo/a"))) == (name, editable, path)


def test_dynamic_version_from_the_backend_hook(tmp_path: Path) -> None:
    """A version only the backend can compute (not a literal) is asked from its metadata hook."""
    pkg = tmp_path / "libs/calc"
    (pkg / "calc").mkdir(parents=True)
    (pkg / "calc/__init__.py").write_text('VERSION = ".".join(["4", "2", "0"])\n')
    (pkg / "pyproject.toml").write_text(
        '[project]\nname = "calc"\ndynamic = ["version"]\n[tool.setuptools.dynamic]\nversion = {attr = "calc.VERSION"}\n'
        '[tool.setuptools]\npackages = ["calc"]\n'
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n')
    ws = load_workspace(tmp_path)
    assert ws.by_name["calc"].version == "4.2.0"
    assert load_workspace(tmp_path, resolve_dynamic=False).by_name["calc"].version is None


@pytest.mark.parametrize(("files", "roles"), [
    pytest.param({"deploy/app/pyproject.toml": '[tool.poetry]\nname = "app"\npackage-mode = false\n'
                  '[tool.poetry.dependencies]\nlib = {path = "../../code/lib"}\n'},
                 {"app": "consumer", "lib": "shared"}, id="poetry-package-mode-false-app-is-a-consumer"),
    pytest.param({"pyproject.toml": '[tool.poetry]\nname = "everything"\nversion = "0"\n'
                  '[tool.poetry.dependencies]\nlib = {path = "code/lib", develop = true}\n'},
                 {"everything": "consumer", "lib": "shared"}, id="root-installing-shared-code-is-a-consumer"),
    pytest.param({"pyproject.toml": '[tool.poetry]\nname = "mono-app"\nversion = "0"\n'
                  '[tool.poetry.dependencies]\nlib = {path = "code/lib"}\n', "Dockerfile": "FROM python:3.11\n"},
                 {"mono-app": "consumer", "lib": "shared"}, id="root-app-with-dockerfile-is-a-consumer"),
    pytest.param({"tools/lint/pyproject.toml": '[project]\nname = "lint"\nversion = "0"\n'
                  '[dependency-groups]\ndev = ["lib @ file:///${PROJECT_ROOT}/../../code/lib"]\n'},
                 {"lint": "other", "lib": "shared"}, id="dev-only-tool-is-not-a-consumer"),
])
def test_graph_classification(tmp_path: Path, files: dict[str, str], roles: dict[str, str]) -> None:
    lib = tmp_path / "code/lib"
    lib.mkdir(parents=True)
    (lib / "pyproject.toml").write_text('[project]\nname = "lib"\nversion = "1.0"\n')
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    ws = load_workspace(tmp_path)
    assert {p.normalized: role(ws, p) for p in ws.projects} == roles
