"""`nexusify init` writes a config audit accepts and never overwrites without --force."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import FIXTURES


def test_init_writes_config_that_audit_accepts(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("--root", str(monorepo), "init")
    assert r.exit_code == 0, r.output
    cfg = monorepo / "nexusify.toml"
    data = tomllib.loads(cfg.read_text())
    assert data["source-name"] == "nexus"
    assert data["constraint"] == "caret"
    assert data["path-aliases"] == {"/shared/packages": "shared/packages"}
    assert "services/quality-fabric" in cfg.read_text()
    audit = run_cli("--root", str(monorepo), "audit", "--json")
    assert audit.exit_code == 0, audit.output
    assert len(json.loads(audit.stdout)["services"]) == 4  # reporting installs no shared code


def test_init_pins_unconventional_layout(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "components" / "common"
    svc = tmp_path / "deployables" / "web"
    lib.mkdir(parents=True)
    svc.mkdir(parents=True)
    (lib / "pyproject.toml").write_text(
        '[project]\nname = "acme-common"\nversion = "1.0.0"\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    (svc / "pyproject.toml").write_text(
        '[project]\nname = "web"\nversion = "0.1.0"\ndependencies = ["acme-common"]\n'
        '[tool.uv.sources]\nacme-common = { path = "../../components/common", editable = true }\n'
    )
    assert run_cli("--root", str(tmp_path), "init").exit_code == 0
    data = tomllib.loads((tmp_path / "nexusify.toml").read_text())
    assert data["shared"] == ["components/*"]
    assert data["services"] == ["deployables/*"]


def test_init_refuses_to_overwrite(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    (monorepo / "nexusify.toml").write_text("# mine\n")
    r = run_cli("--root", str(monorepo), "init")
    assert r.exit_code == 2
    assert "--force" in r.stderr
    assert (monorepo / "nexusify.toml").read_text() == "# mine\n"
    assert run_cli("--root", str(monorepo), "init", "--force").exit_code == 0
    assert "source-name" in (monorepo / "nexusify.toml").read_text()


def test_completion_scripts() -> None:
    for shell, marker in (("bash", "complete"), ("zsh", "compdef"), ("fish", "complete")):
        proc = subprocess.run([sys.executable, "-m", "nexusify", "completion", shell],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0
        assert marker in proc.stdout and "nexusify" in proc.stdout


def test_completion_completes_verbs(tmp_path: Path) -> None:
    """Drive argcomplete's protocol the way the shell does and read back the candidates."""
    import os

    out = tmp_path / "candidates"
    line = "nexusify pu"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    subprocess.run([sys.executable, "-m", "nexusify"], env=env, capture_output=True, check=False, timeout=60)
    candidates = out.read_text().split()
    assert "publish" in candidates
    assert "audit" not in candidates


@pytest.mark.parametrize("layout", sorted(p.name for p in (FIXTURES / "layouts").iterdir() if p.is_dir()))
def test_init_on_real_world_layouts_writes_a_config_audit_accepts(run_cli, tmp_path: Path, layout: str) -> None:  # type: ignore[no-untyped-def]
    """Layouts modelled on public monorepos (poetry libs/, uv DAG, uv workspace, PDM, src/, nested)."""
    root = tmp_path / layout
    shutil.copytree(FIXTURES / "layouts" / layout, root)
    before = json.loads(run_cli("--root", str(root), "audit", "--json", "--offline").stdout)
    r = run_cli("--root", str(root), "init")
    assert r.exit_code == 0, r.output
    after_run = run_cli("--root", str(root), "audit", "--json", "--offline")
    assert after_run.exit_code in (0, 1), after_run.output  # 2 would mean the config was refused
    after = json.loads(after_run.stdout)
    assert sorted(p["name"] for p in after["packages"]) == sorted(p["name"] for p in before["packages"])
    assert sorted(s["path"] for s in after["services"]) == sorted(s["path"] for s in before["services"])  # a nameless root too
