"""Roles by use, not by folder (issue 19): a project is shared when another project of the monorepo
depends on it, a consumer when it installs shared code at run time, wherever it lives (the root
included), and it can be both; one closure and one reverse closure answer every verb; a Dockerfile
outside its service's folder is attached to the service it builds."""

from __future__ import annotations

import json
from pathlib import Path

from nexusify.model import load_workspace

from .helpers import role

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
URL = "http://127.0.0.1:9/simple/"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _lib(name: str, deps: str = "") -> str:
    return (f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = [{deps}]\n'
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')


def _audit_consumers(run_cli, root: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    res = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    assert res.exit_code in (0, 1), res.output
    return {s["path"]: s for s in json.loads(res.stdout)["services"]}


def test_a_nameless_pdm_root_installing_its_own_packages_is_a_consumer(run_cli, tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nrequires-python = ">=3.11"\ndependencies = []\n'
                          '[project.optional-dependencies]\nserver = ["api @ file:///${PROJECT_ROOT}/src/api"]\n'
                          '[tool.pdm.dev-dependencies]\ndev = ["-e file:///${PROJECT_ROOT}/src/api"]\n'
                          '[tool.pdm]\ndistribution = false\n',
        "src/api/pyproject.toml": _lib("api"),
        "Dockerfile": "FROM python:3.11\nWORKDIR /app\nCOPY pyproject.toml ./\nCOPY src ./src\n"
                      "RUN pip install pdm && pdm install --prod -G server\n",
    })
    ws = load_workspace(root)
    assert role(ws, ws.project_at(root)) == "consumer" and role(ws, ws.by_name["api"]) == "shared"
    assert "api" in (ws.why_consumer(ws.project_at(root)) or "")
    listed = _audit_consumers(run_cli, root)
    assert list(listed) == ["."] and listed["."]["shared_dependencies"] == ["api"]
    assert listed["."]["dockerfiles"] == ["Dockerfile"]


def test_a_deployable_project_under_packages_that_nothing_uses_is_a_consumer(run_cli, tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "packages/core/pyproject.toml": _lib("core"),
        "packages/web/pyproject.toml": _lib("web", '"core"') + '[tool.uv.sources]\ncore = { path = "../core" }\n',
        "packages/web/Dockerfile": "FROM python:3.11\nCOPY . /app\nRUN pip install /app\n",
        "packages/tool/pyproject.toml": _lib("tool"),  # a library nothing uses yet: published
    })
    ws = load_workspace(root)
    assert {p.rel(root): role(ws, p) for p in ws.projects} == {
        "packages/core": "shared", "packages/tool": "shared", "packages/web": "consumer"}
    check = run_cli("rewrite", "--root", str(root), "--index-url", URL, "--check", "packages/web", env=ENV)
    assert "not a consumer" not in check.output and "packages/web/pyproject.toml" in check.output, check.output


def test_a_server_its_siblings_extend_is_shared_and_a_consumer(tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "libs/common/pyproject.toml": _lib("common"),
        "servers/base/pyproject.toml": _lib("base", '"common"') + '[tool.uv.sources]\ncommon = { path = "../../libs/common" }\n',
        "servers/base/Dockerfile": "FROM python:3.11\nCOPY . /app\n",
        "servers/mail/pyproject.toml": _lib("mail", '"base"') + '[tool.uv.sources]\nbase = { path = "../base" }\n',
        "servers/mail/Dockerfile": "FROM python:3.11\nCOPY . /app\n",
    })
    ws = load_workspace(root)
    assert role(ws, ws.by_name["base"]) == "shared+consumer"
    assert role(ws, ws.by_name["mail"]) == "consumer" and role(ws, ws.by_name["common"]) == "shared"
    assert [p.name for p in ws.consumers()] == ["base", "mail"]
    assert ws.dependents(["common"]) == {"common": [], "base": ["common"]}


def test_one_closure_follows_versions_paths_and_asked_extras(tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "libs/a/pyproject.toml": _lib("a", '"b>=0.1"') + '[project.optional-dependencies]\nx = ["c"]\n'
                                 '[tool.uv.sources]\nc = { path = "../c" }\n',
        "libs/b/pyproject.toml": _lib("b"),
        "libs/c/pyproject.toml": _lib("c"),
        "svc/pyproject.toml": _lib("svc", '"a"') + '[dependency-groups]\ndev = ["b"]\n'
                              '[tool.uv.sources]\na = { path = "../libs/a" }\nb = { path = "../libs/b" }\n',
    })
    ws = load_workspace(root)
    svc = ws.project_at(root / "svc")
    assert svc is not None
    assert ws.closure(["a"], extras={"a": []}) == {"b": "a"}  # a version dependency is an edge too
    assert ws.closure(["a"], extras={"a": ["x"]}) == {"b": "a", "c": "a"}
    assert sorted(ws.closure([svc])) == ["a", "b", "c"]  # every extra counts when none is asked
    assert ws.dependents(["b"]) == {"b": [], "a": ["b"]}


def test_a_dockerfile_in_docker_is_attached_to_the_service_it_builds(tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "libs/common/pyproject.toml": _lib("common"),
        "apps/api/pyproject.toml": _lib("api", '"common"') + '[tool.uv.sources]\ncommon = { path = "../../libs/common" }\n',
        "apps/worker/pyproject.toml": _lib("worker", '"common"') + '[tool.uv.sources]\ncommon = { path = "../../libs/common" }\n',
        # one Dockerfile per app through a compose build arg, one named after its app
        "docker/Dockerfile": "FROM python:3.11\nARG APP_NAME=none\nCOPY . /src\nWORKDIR /src\n"
                             "RUN uv sync --frozen --package ${APP_NAME}\n",
        "docker/Dockerfile.worker": "FROM python:3.11\nCOPY . /src\nRUN pip install /src/apps/* /src/libs/*\n",
        "compose.yaml": "services:\n  api-svc:\n    build:\n      context: .\n      dockerfile: docker/Dockerfile\n"
                        "      args:\n        APP_NAME: api\n",
    })
    ws = load_workspace(root)
    built = {p.name: sorted(b.dockerfile.relative_to(root).as_posix() for b in ws.dockerfiles_of(p))
             for p in ws.consumers()}
    assert built == {"api": ["docker/Dockerfile"], "worker": ["docker/Dockerfile.worker"]}
    assert {b.context for p in ws.consumers() for b in ws.dockerfiles_of(p)} == {root.resolve()}


def test_ci_workflows_say_how_a_dockerfile_is_built(tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "libs/common/pyproject.toml": _lib("common"),
        "apps/api/pyproject.toml": _lib("api", '"common"') + '[tool.uv.sources]\ncommon = { path = "../../libs/common" }\n',
        "apps/job/pyproject.toml": _lib("job", '"common"') + '[tool.uv.sources]\ncommon = { path = "../../libs/common" }\n',
        "build/images/one.Containerfile": "FROM python:3.11\nARG APP\nCOPY . /src\nRUN uv sync --package $APP\n",
        "ops/Dockerfile": "FROM python:3.11\nCOPY . /src\nRUN pip install /src/apps/job\n",
        ".github/workflows/images.yml":
            "jobs:\n  api:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - uses: docker/build-push-action@v6\n        with:\n          context: .\n"
            "          file: build/images/one.Containerfile\n          build-args: |\n            APP=api\n"
            "  job:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - run: docker build -t job:latest -f ops/Dockerfile .\n",
    })
    ws = load_workspace(root)
    built = {p.name: [(b.dockerfile.relative_to(root).as_posix(), b.origin) for b in ws.dockerfiles_of(p)]
             for p in ws.consumers()}
    assert built == {"api": [("build/images/one.Containerfile", "ci:.github/workflows/images.yml:api")],
                     "job": [("ops/Dockerfile", "ci:.github/workflows/images.yml:job")]}
    assert ws.unmatched_builds == []


def test_a_root_dockerfile_copying_a_library_builds_the_package_it_syncs(tmp_path: Path) -> None:
    """JasperHG90/uv-monorepo's shape: the root Dockerfile copies shared/utils and runs
    `uv sync --package=$PACKAGE` with `ARG PACKAGE="core"`: it builds src/core, not the library;
    a Dockerfile beside no project, copying only files of its own folder, builds nothing here."""
    root = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "mono"\nversion = "0"\n[tool.uv]\npackage = false\n'
                          '[tool.uv.workspace]\nmembers = ["shared/*", "src/*"]\n',
        "shared/utils/pyproject.toml": _lib("utils"),
        "src/core/pyproject.toml": _lib("core", '"utils"') + '[tool.uv.sources]\nutils = { workspace = true }\n',
        "Dockerfile": 'FROM python:3.11\nARG PACKAGE="core"\nCOPY shared/utils /app/shared/utils\n'
                      "RUN uv sync --frozen --package=$PACKAGE\nCOPY src/$PACKAGE /app/src/$PACKAGE\n",
        "docs/sample/Dockerfile": "FROM python:3.11\nCOPY requirements.txt .\nRUN useradd core\n",
        "docs/sample/requirements.txt": "six\n",
    })
    ws = load_workspace(root)
    assert [b.dockerfile for b in ws.dockerfiles_of(ws.by_name["core"])] == [(root / "Dockerfile").resolve()]
    assert ws.dockerfiles_of(ws.by_name["utils"]) == []
    assert [b.dockerfile for b in ws.unmatched_builds] == [(root / "docs/sample/Dockerfile").resolve()]


def test_a_package_folder_above_the_projects_does_not_hide_them(tmp_path: Path) -> None:
    """ya-mori/python-monorepo's shape: libs/__init__.py above the libraries; a pyproject.toml
    inside a library's own package stays part of that library."""
    root = _write(tmp_path / "repo", {
        "libs/__init__.py": "",
        "libs/one/pyproject.toml": _lib("one"),
        "libs/one/one/__init__.py": "",
        "libs/one/one/plugin/pyproject.toml": _lib("plugin"),
        "projects/app/pyproject.toml": _lib("app", '"one"') + '[tool.uv.sources]\none = { path = "../../libs/one" }\n',
    })
    ws = load_workspace(root)
    assert sorted(p.rel(root) for p in ws.projects) == ["libs/one", "projects/app"]
    assert role(ws, ws.by_name["one"]) == "shared" and role(ws, ws.by_name["app"]) == "consumer"
