"""The tree listed once per load (model/tree.py): the same folders, files and order as os.walk,
pruning included, symbolic links to folders listed and not entered; outside a load, os.walk."""

from __future__ import annotations

import os
from pathlib import Path

from nexusify.model import tree


def _tree(root: Path) -> None:
    for d in ("a/b/c", "a/skip/deep", "z", "m/n"):
        (root / d).mkdir(parents=True)
    for f in ("top.txt", "a/pyproject.toml", "a/b/Dockerfile", "a/skip/deep/x", "m/n/y"):
        (root / f).write_text("x")
    (root / "link").symlink_to(root / "a", target_is_directory=True)
    (root / "m" / "pyvenv.cfg").write_text("home = /usr\n")


def _walked(walk, root: Path) -> list[tuple[str, list[str], list[str]]]:  # type: ignore[no-untyped-def]
    out = []
    for dirpath, dirnames, filenames in walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "skip")
        out.append((dirpath, list(dirnames), sorted(filenames)))
    return out


def test_walk_is_os_walk_listed_once(tmp_path: Path) -> None:
    _tree(tmp_path)
    expected = _walked(os.walk, tmp_path)
    assert any(p.endswith("link") for _d, dirs, _f in expected for p in dirs)  # listed, never entered
    assert not any(d.endswith(os.sep + "link") for d, _dirs, _f in expected)
    calls: list[str] = []
    real = os.scandir

    def counting(path):  # type: ignore[no-untyped-def]
        calls.append(os.fspath(path))
        return real(path)

    @tree.listed_once
    def twice() -> tuple[list[tuple[str, list[str], list[str]]], ...]:
        os.scandir = counting
        try:
            return _walked(tree.walk, tmp_path), _walked(tree.walk, tmp_path)
        finally:
            os.scandir = real

    first, second = twice()
    assert first == second == expected
    assert sorted(calls) == sorted({d for d, _dirs, _f in expected})  # each folder listed once
    assert tree.is_virtualenv(str(tmp_path / "m")) and not tree.is_virtualenv(str(tmp_path / "a"))
    assert _walked(tree.walk, tmp_path) == expected  # outside a load: os.walk itself
