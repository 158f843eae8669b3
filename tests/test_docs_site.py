"""The documentation site builds with `mkdocs build --strict` (a broken link fails it), and its
generated pages are current (tests/test_readme.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, check=False, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(site.parent)})


def test_the_site_builds_strict(tmp_path: Path) -> None:
    proc = _build(REPO, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
    assert (tmp_path / "site" / "schema" / "output.schema.json").is_file()
    assert "site/" in (REPO / ".gitignore").read_text().splitlines()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(REPO / "mkdocs.yml", copy)
    shutil.copytree(REPO / "docs", copy / "docs")
    with (copy / "docs" / "index.md").open("a") as fh:
        fh.write("\nSee [the page that is not there](nowhere.md).\n")
    proc = _build(copy, tmp_path / "site")
    assert proc.returncode != 0 and "nowhere.md" in proc.stderr
