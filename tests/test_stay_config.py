"""`stay-in-workspace`: uv workspace members a team keeps in the workspace. rewrite leaves them
(so the CI gate `rewrite --check` can pass), audit shows them, verify says n/a with the reason
(issue 24, item 12)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nexusify.model import STAYS

from .conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
INDEX = ("--index-url", "http://127.0.0.1:9/simple/")


def _repo(tmp_path: Path, config: str | None) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    if config is not None:
        (root / "nexusify.toml").write_text(config)
    return root


def test_without_the_key_the_ci_gate_fails_while_members_would_move(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _repo(tmp_path, None)
    assert run_cli("rewrite", "--check", "--no-lock", "--root", str(root), *INDEX, env=ENV).exit_code == 1


def test_listed_members_stay_and_the_ci_gate_passes(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _repo(tmp_path, 'stay-in-workspace = ["services/*"]\n')
    check = run_cli("rewrite", "--check", "--json", "--root", str(root), *INDEX, env=ENV)
    assert check.exit_code == 0, check.output
    data = json.loads(check.stdout)
    assert {"services/api", "services/worker"} <= set(data["staying"]) and not data["changed"]
    text = run_cli("rewrite", "--check", "--root", str(root), *INDEX, env=ENV)
    assert f"services/api: {STAYS}, unchanged" in text.stdout and text.exit_code == 0
    audit = run_cli("audit", "--offline", "--json", "--root", str(root), env=ENV)
    services = {s["path"]: s for s in json.loads(audit.stdout)["services"]}
    assert services["services/api"]["uv_workspace"] == {"root": ".", "strategy": STAYS, "configured": True}
    shown = run_cli("audit", "--offline", "--root", str(root), env=ENV).stdout
    assert "services/api: uv workspace member (root .): stays in the uv workspace (stay-in-workspace)" in shown
    verify = run_cli("verify", "--json", "--root", str(root), *INDEX, "services/api", env=ENV)
    checks = json.loads(verify.stdout)["consumers"][0]["checks"]
    assert checks["lock"] == {"status": "n/a", "detail": STAYS, "findings": []}


def test_naming_a_listed_member_still_moves_it(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _repo(tmp_path, 'stay-in-workspace = ["services/*"]\n')
    check = run_cli("rewrite", "--check", "--no-lock", "--json", "--root", str(root), *INDEX, "services/api", env=ENV)
    assert check.exit_code == 1 and json.loads(check.stdout)["changed"]


def test_a_listed_folder_that_cannot_stay_is_a_warning(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _repo(tmp_path, 'stay-in-workspace = ["services/nope", "libs/common"]\n')
    problems = json.loads(run_cli("audit", "--offline", "--json", "--root", str(root), env=ENV).stdout)["problems"]
    stay = sorted(p["message"] for p in problems if p["code"] == "stay-in-workspace")
    assert len(stay) == 2 and "services/nope" in stay[1] and "libs/common" in stay[0]
    assert all(p["path"] == "nexusify.toml" and p["line"] == 1 for p in problems if p["code"] == "stay-in-workspace")
