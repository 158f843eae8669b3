"""Verdicts of the model that every writing verb relies on: an error in anything a target
reaches blocks it (never silently left out), and a dynamic version nobody can resolve is an
error, not 0.0.0."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexusify.model import load_workspace

CORE_CONFIG = "shared/packages/core-config/pyproject.toml"


def _break(root: Path, how: str) -> None:
    pp = root / CORE_CONFIG
    text = pp.read_text()
    if how == "invalid-toml":
        pp.write_text(text + "\nname = = 1\n")
    elif how == "duplicate-key":
        pp.write_text(text.replace("[tool.poetry]\n", '[tool.poetry]\nname = "x"\n', 1)
                      if "[tool.poetry]\n" in text else text.replace("[project]\n", '[project]\nname = "x"\n', 1))
    elif how == "bad-utf8":
        pp.write_bytes(text.encode() + b"\n# \xff\xfe\n")
    elif how == "empty":
        pp.write_text("")
    elif how == "dangling-symlink":
        pp.unlink()
        os.symlink(root / "nowhere.toml", pp)
    elif how == "missing-name":
        pp.write_text("\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("name")) + "\n")


@pytest.mark.parametrize("how", ["invalid-toml", "duplicate-key", "bad-utf8", "empty", "dangling-symlink", "missing-name"])
def test_an_unreadable_shared_package_is_an_error_for_every_consumer_that_reaches_it(monorepo: Path, how: str) -> None:
    _break(monorepo, how)
    ws = load_workspace(monorepo)
    gateway = ws.project_at(monorepo / "services/gateway")  # gateway -> core-auth -> core-config
    reporting = ws.project_at(monorepo / "services/reporting")  # no shared dependency
    assert gateway is not None and reporting is not None
    errors = ws.errors_reaching([gateway])
    assert errors, f"{how}: gateway reaches core-config, whose pyproject.toml is broken"
    assert any(e.path == CORE_CONFIG for e in errors), [str(e) for e in errors]
    assert ws.errors_reaching([reporting]) == []


def test_a_cycle_blocks_the_consumers_that_reach_it(monorepo: Path) -> None:
    pp = monorepo / "shared/packages/core-config/pyproject.toml"
    text = pp.read_text()
    assert "[tool.poetry.dependencies]" in text
    pp.write_text(text.replace("[tool.poetry.dependencies]\n",
                               '[tool.poetry.dependencies]\nmaestro-core-auth = {path = "../core-auth"}\n', 1))
    ws = load_workspace(monorepo)
    cycles = [p for p in ws.problems if p.code == "dependency-cycle"]
    assert len(cycles) == 1 and set(cycles[0].subjects) == {"maestro-core-auth", "maestro-core-config"}
    gateway = ws.project_at(monorepo / "services/gateway")
    assert gateway is not None
    assert [e.code for e in ws.errors_reaching([gateway]) if e.code == "dependency-cycle"] == ["dependency-cycle"]


def _setuptools_project(folder: Path, version_file: str | None) -> None:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "dyn"\ndynamic = ["version"]\n'
        '[tool.setuptools.dynamic]\nversion = {file = "VERSION.txt"}\n'
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n')
    if version_file is not None:
        (folder / "VERSION.txt").write_text(version_file)


def test_an_unresolvable_dynamic_version_is_an_error_with_the_backends_words(tmp_path: Path, capfd) -> None:
    _setuptools_project(tmp_path / "libs" / "dyn", None)
    ws = load_workspace(tmp_path)
    p = ws.by_name["dyn"]
    assert p.role == "shared" and p.version is None
    [problem] = [x for x in ws.problems if x.code == "version-unresolved"]
    assert problem.severity == "error" and problem.line == 3
    assert "0.0.0" in problem.message and "VERSION.txt" in problem.message
    out, err = capfd.readouterr()
    assert "VERSION.txt" not in out + err  # the backend's warning is kept in the problem, not printed


@pytest.mark.parametrize("stated", ["0.0.0\n", "1.4.0\n"])
def test_a_stated_version_is_taken_even_when_it_is_0_0_0(tmp_path: Path, stated: str) -> None:
    _setuptools_project(tmp_path / "libs" / "dyn", stated)
    ws = load_workspace(tmp_path)
    assert ws.by_name["dyn"].version == stated.strip()
    assert not [x for x in ws.problems if x.code == "version-unresolved"]
