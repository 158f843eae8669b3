"""The command line: verbs, version, exit codes, error rendering, secrets never printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nexusify import __version__

from .conftest import SAMPLE


def test_help_lists_every_verb() -> None:
    proc = subprocess.run([sys.executable, "-m", "nexusify", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    for verb in ("audit", "publish", "rewrite", "deploy", "rollback", "history"):
        assert verb in proc.stdout


def test_version(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run([sys.executable, "-m", "nexusify", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_unknown_option_is_usage_error(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--no-such-flag")
    assert r.exit_code == 2
    assert "unrecognized arguments" in r.stderr


def test_missing_root_is_usage_error(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("--root", str(tmp_path / "nope"), "audit")
    assert r.exit_code == 2
    assert "no such folder" in r.stderr


def test_config_typo_exit_2_with_suggestion(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nexusify.toml").write_text('sourcename = "nexus"\n')
    r = run_cli("--root", str(tmp_path), "audit")
    assert r.exit_code == 2
    assert "did you mean `source-name`" in r.stderr
    assert "nexusify.toml:1" in r.stderr


def test_config_error_as_json(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nexusify.toml").write_text('constraint = "nope"\n')
    r = run_cli("--root", str(tmp_path), "audit", "--json")
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["error"] == "ConfigError" and data["exit_code"] == 2


def test_global_and_verb_position_options_both_work(run_cli) -> None:  # type: ignore[no-untyped-def]
    a = run_cli("--root", str(SAMPLE), "audit", "--json")
    b = run_cli("audit", "--root", str(SAMPLE), "--json")
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_password_never_printed_even_in_errors(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = "Sup3r-S3cret-Value"
    (tmp_path / "nexusify.toml").write_text(f'nexus-url = "http://admin:{secret}@127.0.0.1:9"\nrepositry = 1\n')
    r = run_cli("--root", str(tmp_path), "audit", env={"NEXUS_PASSWORD": secret, "NO_COLOR": "1"})
    assert r.exit_code == 2
    assert secret not in r.output
