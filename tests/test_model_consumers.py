"""Consumers wherever they are, and the Dockerfiles that build them, on layouts shaped like real
public monorepos: a uv workspace whose virtual root lists every member in a dev group (one root
uv.lock, Dockerfiles under docker/ built from the root through docker-compose.yml), and a PDM
project whose root consumes its own sub-packages (PDM's unnamed `-e file:///${PROJECT_ROOT}/...`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from nexusify.model import load_workspace

from .conftest import FIXTURES
from .helpers import role

LAYOUTS = FIXTURES / "layouts"


def builds(ws, rel: str) -> list[tuple[str, str, str]]:
    p = ws.project_at(ws.root / rel)
    return [(b.dockerfile.relative_to(ws.root).as_posix(), b.context.relative_to(ws.root).as_posix(), b.origin)
            for b in p.docker_builds]


def test_a_virtual_roots_dev_group_makes_no_consumer_a_shared_package() -> None:
    ws = load_workspace(LAYOUTS / "uv-root-lock-compose")
    roles = {p.rel(ws.root): role(ws, p) for p in ws.projects}
    assert roles == {".": "consumer", "libs/common": "shared", "libs/models": "shared",
                     "services/api": "consumer", "services/worker": "consumer"}
    assert ws.problems == []
    api = ws.by_name["api"]
    assert api.tool == "uv" and api.lockfiles == [ws.root / "uv.lock"]
    assert sorted(ws.closure([api])) == ["common", "models"]


def test_dockerfiles_under_docker_built_through_compose_belong_to_their_service() -> None:
    ws = load_workspace(LAYOUTS / "uv-root-lock-compose")
    assert builds(ws, "services/api") == [("docker/Dockerfile.api", ".", "compose:docker-compose.yml:api")]
    assert builds(ws, "services/worker") == [("docker/Dockerfile.worker", ".", "compose:docker-compose.yml:worker")]
    assert ws.project_at(ws.root).docker_builds == [] and ws.unmatched_builds == []


def test_a_dockerfile_under_docker_without_compose_is_matched_by_what_it_copies(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(LAYOUTS / "uv-root-lock-compose", root)
    (root / "docker-compose.yml").unlink()
    ws = load_workspace(root)
    assert builds(ws, "services/api") == [("docker/Dockerfile.api", ".", "folder")]
    assert builds(ws, "services/worker") == [("docker/Dockerfile.worker", ".", "folder")]


def test_a_pdm_root_consumes_its_own_packages() -> None:
    ws = load_workspace(LAYOUTS / "pdm-root-consumer")
    root = ws.project_at(ws.root)
    assert root is not None and role(ws, root) == "consumer" and root.tool == "pdm"
    assert ws.problems == []  # PDM's documented unnamed -e form is valid
    by_group = sorted((d.name, d.group, d.editable) for d in root.local_deps)
    assert by_group == [("api", "dev", True), ("api", "extra:server", False), ("schemas", "dev", True)]
    assert [p.name for p in ws.shared()] == ["api", "schemas"]
    assert builds(ws, ".") == [("Dockerfile", ".", "folder")]
    assert sorted(ws.closure([root], runtime=False)) == ["api", "schemas"]


def test_an_unnamed_editable_path_that_points_nowhere_is_an_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\n[tool.pdm.dev-dependencies]\ndev = [\n'
        '    "-e ./libs/missing",\n]\n')
    ws = load_workspace(tmp_path)
    [problem] = ws.problems
    assert (problem.code, problem.path, problem.line) == ("missing-path", "pyproject.toml", 6)


APP_WITH_GROUPS = """[tool.poetry]
name = "api"
version = "0.1.0"
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"

[tool.poetry.group.runtime.dependencies]
acme-kit = {{ path = "../../libs/kit", develop = true }}
{extra}"""


def _poetry_app_repo(tmp_path: Path, group_table: str, extra: str = "") -> Path:
    root = tmp_path / "repo"
    (root / "libs/kit/src/kit").mkdir(parents=True)
    (root / "libs/kit/src/kit/__init__.py").write_text("")
    (root / "libs/kit/pyproject.toml").write_text(
        '[project]\nname = "acme-kit"\nversion = "2.1.0"\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n')
    (root / "svc/api").mkdir(parents=True)
    text = APP_WITH_GROUPS.format(extra=extra).replace("[tool.poetry.group.runtime.dependencies]", group_table)
    (root / "svc/api/pyproject.toml").write_text(text)
    return root


def test_a_poetry_applications_installed_group_makes_it_a_consumer_wherever_it_is(tmp_path: Path,
                                                                                   run_cli) -> None:
    """`poetry install` installs every non-optional group of an application (package-mode = false),
    so a path dependency there is one its image needs: svc/api (no services/ folder) is a service,
    and a Dockerfile looping over the copied libraries is an error of `rewrite --check`, not a green."""
    root = _poetry_app_repo(tmp_path, "[tool.poetry.group.runtime.dependencies]")
    (root / "svc/api/Dockerfile").write_text(
        'FROM python:3.11-slim\nCOPY libs /libs\nRUN for d in /libs/*; do pip install "$d"; done\nCOPY svc/api /app\n')
    (root / "docker-compose.yml").write_text(
        "services:\n  api:\n    build:\n      context: .\n      dockerfile: svc/api/Dockerfile\n")
    ws = load_workspace(root)
    assert role(ws, ws.project_at(root / "svc/api")) == "consumer"
    result = run_cli("rewrite", "--check", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/")
    assert result.exit_code == 1, result.output
    assert "svc/api/Dockerfile:3" in result.output and "dockerfile-uses-shared-code" in result.output


def test_a_poetry_applications_dev_and_optional_groups_stay_development_only(tmp_path: Path) -> None:
    for table in ("[tool.poetry.group.dev.dependencies]", "[tool.poetry.group.docs.dependencies]"):
        extra = "\n[tool.poetry.group.docs]\noptional = true\n" if "docs" in table else ""
        root = _poetry_app_repo(tmp_path / table[19:23], table, extra)
        ws = load_workspace(root)
        assert role(ws, ws.project_at(root / "svc/api")) == "other", table
        assert [d.runtime for d in ws.project_at(root / "svc/api").local_deps] == [False], table
