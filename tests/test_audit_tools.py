"""audit says which tools the consumers' lockfiles need (rewrite re-locks with them, verify checks
with them), which are missing, and how to install them (issue 24, item 1)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .conftest import SAMPLE


def _monorepo(root: Path) -> Path:
    lib = root / "shared" / "packages" / "a"
    (lib / "a").mkdir(parents=True)
    (lib / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "1.0.0"\n'
                                        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    for name, body, lock in (
        ("web", '[tool.poetry]\nname = "web"\nversion = "0.1.0"\n[tool.poetry.dependencies]\npython = "^3.11"\n'
                'a = {path = "../../shared/packages/a"}\n', "poetry.lock"),
        ("api", '[project]\nname = "api"\nversion = "0.1.0"\ndependencies = ["a"]\n'
                '[tool.uv.sources]\na = { path = "../../shared/packages/a" }\n', "uv.lock"),
    ):
        svc = root / "services" / name
        svc.mkdir(parents=True)
        (svc / "pyproject.toml").write_text(body)
        (svc / lock).write_text("# a lockfile\n")
    return root


def _fake_tool(folder: Path, name: str) -> None:
    folder.mkdir(exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_audit_names_the_tools_consumers_need_and_the_missing_ones(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _monorepo(tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "uv")
    env = {"NO_COLOR": "1", "HOME": str(tmp_path), "PATH": str(bin_dir)}
    r = run_cli("audit", "--offline", "--json", "--root", str(root), env=env)
    data = json.loads(r.stdout)
    tools = {t["tool"]: t for t in data["tools"]}
    assert tools["poetry"]["consumers"] == ["services/web"] and tools["poetry"]["found"] is False
    assert tools["poetry"]["install"] == "pip install poetry"
    assert tools["uv"]["consumers"] == ["services/api"] and tools["uv"]["found"] is True
    missing = [p for p in data["problems"] if p["code"] == "tool-missing"]
    assert len(missing) == 1 and "poetry" in missing[0]["message"] and "services/web" in missing[0]["message"]
    assert missing[0]["hint"] == "install it: `pip install poetry`"
    text = run_cli("audit", "--offline", "--root", str(root), env=env).stdout
    assert "Tools the consumers need: poetry (missing: `pip install poetry`), uv (found)" in text
    _fake_tool(bin_dir, "poetry")
    data = json.loads(run_cli("audit", "--offline", "--json", "--root", str(root), env=env).stdout)
    assert all(t["found"] for t in data["tools"]) and not [p for p in data["problems"] if p["code"] == "tool-missing"]


def test_a_monorepo_without_lockfiles_needs_no_tool(run_cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run_cli("audit", "--offline", "--json", "--root", str(SAMPLE),
                              env={"NO_COLOR": "1", "PATH": os.environ.get("PATH", "")}).stdout)
    assert data["tools"] == []
