"""A uv re-lock that needs an interpreter nobody installed fails fast and says so, with the
project's requires-python, instead of a long wait on a download (issue 24, item 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nexusify.credentials import tool_env

INDEX = "http://127.0.0.1:9/simple/"
NOWHERE = ">=3.15"  # a Python no machine running the tests has (uv downloads are off)


def test_uv_never_downloads_an_interpreter_unless_the_user_says_so() -> None:
    assert tool_env("uv", "nexus", None, {})["UV_PYTHON_DOWNLOADS"] == "never"
    assert tool_env("uv", "nexus", None, {"UV_PYTHON_DOWNLOADS": "automatic"})["UV_PYTHON_DOWNLOADS"] == "automatic"
    assert "UV_PYTHON_DOWNLOADS" not in tool_env("poetry", "nexus", None, {})


def test_rewrite_names_the_missing_interpreter_and_fails_fast(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "shared" / "packages" / "a"
    (lib / "a").mkdir(parents=True)
    (lib / "a" / "__init__.py").write_text("")
    (lib / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "1.0.0"\n'
                                        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    svc = tmp_path / "services" / "svc"
    svc.mkdir(parents=True)
    (svc / "pyproject.toml").write_text(f'[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = "{NOWHERE}"\n'
                                        'dependencies = ["a"]\n[tool.uv.sources]\na = { path = "../../shared/packages/a" }\n')
    (svc / "uv.lock").write_text("version = 1\n")
    start = time.monotonic()
    r = run_cli("rewrite", "--json", "--root", str(tmp_path), "--index-url", INDEX)
    assert time.monotonic() - start < 60
    stale = [p for p in json.loads(r.stdout)["problems"] if p["code"] == "stale-lockfile"]
    assert stale, r.output
    message = stale[0]["message"]
    assert f"requires-python `{NOWHERE}`" in message and "services/svc/pyproject.toml" in message
    assert "UV_PYTHON_DOWNLOADS" in message and f"uv python install '{NOWHERE}'" in message
