"""A consumer that names a shared package by version in one table and takes it by path in another
(thomasvanhees/python-monorepo-poetry: `xyz_lib_a = "0.1.0"` in the main table, the path only in
the dev group; dermidgen/python-monorepo: `libmq = ""`) gets the source on every entry: without it
`poetry install --only main` (the image) takes the package from PyPI, and an empty constraint is
one Poetry cannot parse. verify's static check then agrees with the rewrite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import missing

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
POETRY_CORE = '[build-system]\nrequires = ["poetry-core>=1.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n'


def _lib(name: str, version: str) -> str:
    return f'[tool.poetry]\nname = "{name}"\nversion = "{version}"\ndescription = ""\nauthors = ["a <a@b.c>"]\n' \
           '[tool.poetry.dependencies]\npython = "^3.10"\n' + POETRY_CORE


def test_every_entry_of_a_shared_package_gets_the_source(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    files = {
        "libs/lib_a/pyproject.toml": _lib("lib_a", "0.1.0"),
        "libs/libmq/pyproject.toml": _lib("libmq", "0.2.0"),
        "apps/app/pyproject.toml": '[tool.poetry]\nname = "app"\nversion = "0.1.0"\ndescription = ""\n'
                                   'authors = ["a <a@b.c>"]\n\n[tool.poetry.dependencies]\npython = "^3.10"\n'
                                   'lib_a = "0.1.0"\nlibmq = ""\n\n[tool.poetry.group.dev.dependencies]\n'
                                   'lib_a = { path = "../../libs/lib_a/", develop = true }\n'
                                   'libmq = { path = "../../libs/libmq", develop = true }\n\n' + POETRY_CORE,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    result = run_cli("rewrite", "--root", str(root), "--index-url", URL, env=ENV)
    assert result.exit_code == 0, result.output
    data = tomllib.loads((root / "apps/app/pyproject.toml").read_text())
    poetry = data["tool"]["poetry"]
    assert poetry["dependencies"]["lib_a"] == {"version": "0.1.0", "source": "nexus"}
    assert poetry["dependencies"]["libmq"] == {"version": "^0.2.0", "source": "nexus"}
    assert poetry["group"]["dev"]["dependencies"] == {"lib_a": {"version": "^0.1.0", "source": "nexus"},
                                                      "libmq": {"version": "^0.2.0", "source": "nexus"}}
    check = run_cli("rewrite", "--root", str(root), "--index-url", URL, "--check", env=ENV)
    assert check.exit_code == 0, check.output
    # the user's tool reads what was written
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("poetry") is None:
        missing("poetry", "`poetry` is not on PATH (a dev extra)")
    checked = subprocess.run(["poetry", "check"], cwd=root / "apps/app", capture_output=True, text=True, check=False,
                             env={**os.environ, "HOME": str(tmp_path)})
    said = checked.stdout + checked.stderr
    # Poetry 2.0 (the lowest declared) exits 1 on its own deprecation warnings about [tool.poetry]
    # metadata, which rewrite does not touch; anything else it says (an unparsable constraint) fails
    other = [ln for ln in said.splitlines() if ln.strip() and not ln.startswith("Warning: [tool.poetry.")
             and not ln.startswith("If you want to set the version dynamically")]
    assert checked.returncode == 0 or (said.strip() and not other), said
