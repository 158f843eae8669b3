"""The development habits hold: ruff is clean, mypy is strict-clean on src/."""

from __future__ import annotations

import shutil
import subprocess
import sys

from .conftest import REPO, missing


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                       capture_output=True, check=False).returncode != 0:
        missing("ruff", "the dev extras are not installed")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, check=False)
    if "No module named mypy" in proc.stderr:
        missing("mypy", "the dev extras are not installed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
