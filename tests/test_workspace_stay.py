"""A consumer that stays in its uv workspace (the virtual root whose dev group takes the libraries
with `{ workspace = true }`, the acceptance run's S1 root) keeps working as is: audit lists it with
that strategy, `rewrite --check` says so, verify shows n/a with the reason; an image of it that no
longer brings the shared code is still an error (rewrite --check and verify), a warning in audit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
INDEX = ("--index-url", "http://127.0.0.1:9/simple/")
STAYS = "stays in the uv workspace: every shared package it takes is a workspace member, so it keeps working as is"
KEEPS = "FROM python:3.11-slim\nWORKDIR /app\nRUN pip install uv\nCOPY . .\nRUN uv sync --frozen\n"
LOST = "FROM python:3.11-slim\nWORKDIR /app\nCOPY README.md ./\nRUN pip install uv\n"


def _repo(tmp_path: Path, dockerfile: str | None = None) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    if dockerfile is not None:
        (root / "Dockerfile").write_text(dockerfile)
    return root


def _checks(run_cli, root: Path) -> tuple[int, dict[str, tuple[str, str]]]:  # type: ignore[no-untyped-def]
    result = run_cli("verify", "--root", str(root), *INDEX, "--json", str(root), env=ENV)
    checks = json.loads(result.stdout)["consumers"][0]["checks"]
    return result.exit_code, {k: (v["status"], v["detail"]) for k, v in checks.items()}


def test_the_workspace_root_consumer_stays_and_keeps_working(run_cli, tmp_path: Path) -> None:
    root = _repo(tmp_path, KEEPS)
    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    assert audit.exit_code == 0, audit.output
    listed = {s["path"]: s for s in json.loads(audit.stdout)["services"]}
    assert listed["."]["uv_workspace"] == {"root": ".", "strategy": STAYS}
    assert listed["."]["shared_dependencies"][:2] == ["common", "models"]
    assert not [p for p in json.loads(audit.stdout)["problems"] if p["path"] == "Dockerfile"]

    check = run_cli("rewrite", "--root", str(root), *INDEX, "--check", env=ENV)
    assert f".: {STAYS}, unchanged" in check.output
    assert "Dockerfile:" not in check.output.replace("docker/Dockerfile", "")

    code, checks = _checks(run_cli, root)
    assert code == 0
    assert checks == {name: ("n/a", STAYS) for name in ("static", "lock", "resolve")}


def test_a_staying_consumer_whose_image_lost_the_shared_code_is_an_error(run_cli, tmp_path: Path) -> None:
    root = _repo(tmp_path, LOST)
    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    found = [(p["path"], p["code"], p["severity"]) for p in json.loads(audit.stdout)["problems"]]
    assert ("Dockerfile", "dockerfile-lost-shared", "warning") in found

    check = run_cli("rewrite", "--root", str(root), *INDEX, "--check", env=ENV)
    assert check.exit_code == 1 and "Dockerfile: error[dockerfile-lost-shared]" in check.output, check.output

    code, checks = _checks(run_cli, root)
    assert code == 1
    assert checks["static"][0] == "fail" and checks["lock"] == ("n/a", STAYS)


def test_an_application_only_the_workspace_root_takes_is_a_consumer_that_stays(run_cli, tmp_path: Path) -> None:
    """Kiln-AI/Kiln's shape: the root lists its desktop app (no Dockerfile builds it) beside the
    libraries, and the app takes a library at run time from the workspace. The app is a consumer
    (it runs what it takes) and, like the root, stays in the workspace: audit, `--check` and verify
    agree, and rewrite moves nothing."""
    root = tmp_path / "repo"
    files = {
        "pyproject.toml": '[project]\nname = "root"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
                          'dependencies = ["lib", "desktop"]\n\n[tool.uv]\npackage = false\n\n'
                          '[tool.uv.sources]\nlib = { workspace = true }\ndesktop = { workspace = true }\n\n'
                          '[tool.uv.workspace]\nmembers = ["libs/lib", "app/desktop"]\n',
        "libs/lib/pyproject.toml": '[project]\nname = "lib"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n\n'
                                   '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
        "app/desktop/pyproject.toml": '[project]\nname = "desktop"\nversion = "1.0.0"\nrequires-python = ">=3.11"\n'
                                      'dependencies = ["lib"]\n\n[tool.uv.sources]\nlib = { workspace = true }\n\n'
                                      '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    listed = {s["path"]: s for s in json.loads(audit.stdout)["services"]}
    assert set(listed) == {".", "app/desktop"}, audit.output
    assert listed["app/desktop"]["uv_workspace"]["strategy"] == STAYS
    assert "only the monorepo or uv workspace root takes" in listed["app/desktop"]["why"]
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    rewrite = run_cli("rewrite", "--root", str(root), *INDEX, "--no-lock", env=ENV)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before, rewrite.output
    verify = run_cli("verify", "--root", str(root), *INDEX, "--json", env=ENV)
    rows = {c["path"]: c for c in json.loads(verify.stdout)["consumers"]}
    assert set(rows) == {".", "app/desktop"}, verify.output
