"""A Dockerfile is attached to the project it builds (issue 19), not to every project whose folder
holds it: a side image built from a service's folder that installs nothing of it (navigator-backend's
``data-in-pipeline/Dockerfile.duckdb``: a script and third-party names) or a bare tool base
(presidio's ``Dockerfile.dev``: ``pip install poetry``) builds no consumer; every verb sees the same
attachment, and the side image is still judged as a Dockerfile nobody owns."""

from __future__ import annotations

import json
from pathlib import Path

from nexusify.model import load_workspace

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}

SVC = ('[project]\nname = "svc"\nversion = "0.1.0"\ndependencies = ["common"]\n'
       '[tool.uv.sources]\ncommon = { path = "../libs/common" }\n'
       '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
LIB = ('[project]\nname = "common"\nversion = "0.1.0"\n'
       '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')


def _repo(root: Path, dockerfiles: dict[str, str]) -> Path:
    files = {"pyproject.toml": '[project]\nname = "root"\nversion = "0"\n',  # a root project holds every folder
             "libs/common/pyproject.toml": LIB, "svc/pyproject.toml": SVC, "svc/app/scripts/serve.py": "app = None\n",
             **dockerfiles}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _attached(root: Path) -> dict[str, list[str]]:
    ws = load_workspace(root)
    return {p.rel(ws.root): sorted(b.dockerfile.relative_to(ws.root).as_posix() for b in ws.dockerfiles_of(p))
            for p in ws.consumers()}


def test_side_images_built_from_a_service_folder_build_no_consumer(run_cli, tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", {
        "svc/Dockerfile": "FROM python:3.12\nWORKDIR /app\nCOPY . /app\nRUN pip install /app\n",
        "svc/Dockerfile.duckdb": "FROM python:3.12\nWORKDIR /app\nCOPY app/scripts/serve.py .\n"
                                 "RUN pip install fastapi uvicorn duckdb\nCMD [\"uvicorn\", \"serve:app\"]\n",
        "svc/Dockerfile.dev": "FROM python:3.12\nRUN apt-get update && apt-get install -y build-essential\n"
                              "RUN pip install poetry==2.3.2\n",
    })
    assert _attached(root) == {"svc": ["svc/Dockerfile"]}
    ws = load_workspace(root)
    assert sorted(b.dockerfile.name for b in ws.unmatched_builds) == ["Dockerfile.dev", "Dockerfile.duckdb"]
    res = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    assert res.exit_code in (0, 1), res.output
    listed = {s["path"]: s["dockerfiles"] for s in json.loads(res.stdout)["services"]}
    assert listed == {"svc": ["svc/Dockerfile"]}


def test_what_installs_the_project_attaches_it(tmp_path: Path) -> None:
    """Each way of installing the folder's project keeps the Dockerfile attached: its manifest or
    requirements copied, a bind mount of its lock, a folder holding its manifest, its tool's install,
    another project's code copied in (the shared-code rule then judges it as this consumer's)."""
    shapes = {
        "manifest": "FROM python:3.12\nCOPY pyproject.toml /app/\nRUN pip install /app\n",
        "requirements": "FROM python:3.12\nCOPY app /app\nRUN pip install -r /app/reqs.txt\n",
        "mount": ("FROM python:3.12\nRUN --mount=type=bind,source=uv.lock,target=uv.lock "
                  "--mount=type=bind,source=pyproject.toml,target=pyproject.toml uv sync --frozen\n"),
        "glob": "FROM python:3.12\nCOPY *.toml /app/\nCOPY app /app/app\n",
        "parent": "FROM python:3.12\nCOPY ./ /src/\n",
        "shared code": "FROM python:3.12\nCOPY ../libs /libs\nRUN pip install /libs/common fastapi\n",
    }
    for name, text in shapes.items():
        root = _repo(tmp_path / name, {"svc/Dockerfile": text})
        assert _attached(root) == {"svc": ["svc/Dockerfile"]}, name


def test_one_root_dockerfile_with_a_stage_per_project_built_by_a_ci_matrix(tmp_path: Path) -> None:
    """dataset-viewer: one root Dockerfile, a stage per project (`FROM base AS cache_maintenance`,
    `COPY jobs/cache_maintenance`); compose builds the services by `target`, the CD workflow builds
    every image with `target: ${{ matrix.project }}` over a matrix `include` list. Each project gets
    the Dockerfile, the jobs too (compose does not list them)."""
    lib = LIB
    app = ('[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = ["common"]\n'
           '[tool.uv.sources]\ncommon = {{ path = "../../libs/common" }}\n'
           '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    stages = "".join(f"FROM base AS {n}\nCOPY {d}/{n} /src/{d}/{n}\nRUN pip install /src/libs/common /src/{d}/{n}\n"
                     for d, n in (("services", "api"), ("jobs", "cache_maintenance"), ("jobs", "mongodb_migration")))
    files = {
        "libs/common/pyproject.toml": lib,
        "services/api/pyproject.toml": app.format(name="api"),
        "jobs/cache_maintenance/pyproject.toml": app.format(name="cache-maintenance"),
        "jobs/mongodb_migration/pyproject.toml": app.format(name="mongodb-migration"),
        "Dockerfile": "FROM python:3.12 AS base\nCOPY libs/common /src/libs/common\n" + stages,
        "docker-compose.yml": "services:\n  api:\n    build:\n      context: .\n      target: api\n",
        ".github/workflows/cd.yml":
            "jobs:\n  build:\n    strategy:\n      matrix:\n        include:\n"
            "          - directory: services\n            project: api\n"
            "          - directory: jobs\n            project: cache_maintenance\n"
            "          - directory: jobs\n            project: mongodb_migration\n"
            "    runs-on: ubuntu-latest\n    steps:\n      - uses: docker/build-push-action@v5\n        with:\n"
            "          context: .\n          file: Dockerfile\n          target: ${{ matrix.project }}\n"
            "          tags: x/${{ matrix.directory }}-${{ matrix.project }}\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert _attached(tmp_path) == {"jobs/cache_maintenance": ["Dockerfile"], "jobs/mongodb_migration": ["Dockerfile"],
                                   "services/api": ["Dockerfile", "Dockerfile"]}
    ws = load_workspace(tmp_path)
    assert sorted(b.target for b in ws.dockerfiles_of(ws.by_name["api"])) == ["api", "api"]
