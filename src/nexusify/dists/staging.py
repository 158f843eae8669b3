"""Staging a shared package: the files a build sees, their fingerprint, and a clean copy to build from.

:func:`stage_project` copies a package's folder (minus VCS, caches, build output) into a
staging folder, writes its ``pyproject.toml`` with internal path dependencies replaced by
version constraints (:func:`nexusify.formats.pyproject_edit.versionize`, publish-staging mode),
and normalises every file's mtime and mode, so setuptools' egg-info or pdm's ``.pdm-build`` land
in the copy, and archives come out byte-identical on any machine. :func:`fingerprint` hashes
the same files, so an unchanged package is recognised without building it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexusify.errors import BuildError

# 1980-01-01T00:00:00Z, the earliest time a zip archive can hold
SOURCE_DATE_EPOCH = 315532800

SKIP_DIR_NAMES = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
    "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".nexusify", ".eggs",
    ".idea", ".vscode", ".pdm-build", ".cache", "htmlcov", ".ipynb_checkpoints",
})
SKIP_FILE_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
SKIP_FILE_NAMES = frozenset({".DS_Store", "Thumbs.db"})


def iter_source_files(folder: Path) -> list[tuple[str, Path]]:
    """(posix relative path, path) of every file a build could see, sorted; stable everywhere."""
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIR_NAMES and not d.endswith(".egg-info")
            and not (base / d / "pyvenv.cfg").is_file()
        )
        for name in filenames:
            if name in SKIP_FILE_NAMES or name.endswith(SKIP_FILE_SUFFIXES):
                continue
            path = base / name
            if path.is_symlink() and not path.exists():
                continue
            out.append((path.relative_to(folder).as_posix(), path))
    out.sort(key=lambda item: item[0])
    return out


def fingerprint(folder: Path, pyproject_text: str, extra: Mapping[str, Any]) -> str:
    """A content hash of a package: its files (the staged pyproject in place of the real one),
    file modes' executable bit, and ``extra`` (backend, requirements, staging rules)."""
    h = hashlib.sha256()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for rel, path in iter_source_files(folder):
        h.update(b"\0F" + rel.encode())
        if rel == "pyproject.toml":
            h.update(pyproject_text.encode("utf-8"))
            continue
        try:
            st = path.stat()
            h.update(b"x" if st.st_mode & 0o111 else b"-")
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    h.update(chunk)
        except OSError as exc:
            raise BuildError(f"cannot read {path}: {exc.strerror}", path=path) from exc
    return h.hexdigest()


def stage_project(folder: Path, pyproject_text: str, dest: Path) -> Path:
    """Copy ``folder`` into ``dest`` (created, must not exist) with ``pyproject_text`` as its
    pyproject.toml; every mtime set to SOURCE_DATE_EPOCH and modes normalised (0644/0755)."""
    dest.mkdir(parents=True)
    for rel, path in iter_source_files(folder):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel == "pyproject.toml":
            target.write_bytes(pyproject_text.encode("utf-8"))
            mode = 0o644
        else:
            shutil.copyfile(path, target)
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        os.chmod(target, mode)
        os.utime(target, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    for dirpath, _dirnames, _files in os.walk(dest):
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    if not (dest / "pyproject.toml").exists():
        (dest / "pyproject.toml").write_text(pyproject_text, encoding="utf-8")
    return dest
