"""Verdicts of the model that every writing verb relies on: an error in anything a target
reaches blocks it (never silently left out), and a dynamic version nobody can resolve is an
error, not 0.0.0."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexusify.model import Workspace, load_workspace

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
    assert ws.is_shared(p) and p.version is None
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


def _lib(root: Path, folder: str, name: str, deps: str = "", extra: str = "") -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = [{deps}]\n{extra}'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')


def test_two_packages_renamed_to_one_name_are_a_duplicate_not_a_cycle(tmp_path: Path) -> None:
    _lib(tmp_path, "libs/a", "same", '"same"', '[tool.uv.sources]\nsame = { path = "../b" }\n')
    _lib(tmp_path, "libs/b", "same")
    ws = load_workspace(tmp_path)
    codes = sorted(p.code for p in ws.problems if p.severity == "error")
    assert "duplicate-name" in codes and "dependency-cycle" not in codes, codes
    assert ws.cycles() == []


def test_a_string_uv_source_is_an_error_at_its_line(tmp_path: Path) -> None:
    _lib(tmp_path, "libs/common", "common")
    _lib(tmp_path, "services/api", "api", '"common"', '[tool.uv.sources]\ncommon = "../../libs/common"\n')
    ws = load_workspace(tmp_path)
    [problem] = [p for p in ws.problems if p.code == "bad-source"]
    assert (problem.severity, problem.path, problem.line) == ("error", "services/api/pyproject.toml", 6)
    assert "common = { path = '../../libs/common' }" in (problem.hint or "")
    assert ws.errors_reaching([ws.by_name["api"]]) == [problem]


def test_include_group_to_a_missing_group_and_group_cycles_are_errors(tmp_path: Path) -> None:
    _lib(tmp_path, "services/api", "api", "",
         '[dependency-groups]\ndev = [{include-group = "test"}, "ruff"]\ntest = [{include-group = "dev"}]\n'
         'lint = [{include-group = "nope"}]\n')
    ws = load_workspace(tmp_path)
    found = sorted((p.code, p.line) for p in ws.problems)
    assert found == [("group-cycle", 6), ("group-missing", 8)], [str(p) for p in ws.problems]


def test_a_malformed_line_naming_a_shared_package_is_an_error(tmp_path: Path) -> None:
    _lib(tmp_path, "libs/common", "common")
    _lib(tmp_path, "services/api", "api", '"common>=0.1,<", "six>=1,<"')
    (tmp_path / "services/worker").mkdir(parents=True)
    (tmp_path / "services/worker/requirements.txt").write_text("common>=0.1,<\nsix>=1,<\n")
    ws = load_workspace(tmp_path)
    found = sorted((p.severity, p.path, p.line) for p in ws.problems if p.code == "bad-requirement")
    assert ("error", "services/api/pyproject.toml", 4) in found
    assert ("error", "services/worker/requirements.txt", 1) in found
    assert ("warning", "services/worker/requirements.txt", 2) in found  # six is not ours: pip's business


@pytest.mark.parametrize(("make", "says"), [
    pytest.param(lambda d: os.symlink(d / "gone", d / "libs/a"), "is a symbolic link to", id="dangling"),
    pytest.param(lambda d: os.symlink(d / "libs/a", d / "libs/a"), "is a symbolic link loop", id="loop"),
    pytest.param(lambda d: None, "does not exist", id="missing"),
])
def test_a_path_that_cannot_be_used_says_why(tmp_path: Path, make, says: str) -> None:
    (tmp_path / "libs").mkdir()
    make(tmp_path)
    _lib(tmp_path, "services/api", "api", '"a"', '[tool.uv.sources]\na = { path = "../../libs/a" }\n')
    ws = load_workspace(tmp_path)
    [problem] = [p for p in ws.problems if p.path == "services/api/pyproject.toml"]
    assert says in problem.message and problem.line == 6, str(problem)


def _same_as_closure(ws: Workspace, backwards: bool = False) -> None:
    starts = [*ws.projects, *ws.by_name, "not-a-project"]
    for start in starts[::-1] if backwards else starts:
        for runtime in (True, False):
            expected = set(ws.closure([start], runtime=runtime))
            assert ws.reached(start, runtime=runtime) == expected, (start, runtime)


def test_reached_is_closures_names_on_a_dag_a_cycle_and_a_duplicate(tmp_path: Path) -> None:
    # a DAG with a diamond, dev-only edges, then a cycle (core <-> util) below it
    _lib(tmp_path, "libs/util", "util", '"core"', '[tool.uv.sources]\ncore = { path = "../core" }\n')
    _lib(tmp_path, "libs/core", "core", '"util"', '[tool.uv.sources]\nutil = { path = "../util" }\n')
    _lib(tmp_path, "libs/left", "left", '"core"', '[tool.uv.sources]\ncore = { path = "../core" }\n')
    _lib(tmp_path, "libs/right", "right", '"base"', '[tool.uv.sources]\nbase = { path = "../base" }\n')
    _lib(tmp_path, "libs/base", "base")
    _lib(tmp_path, "libs/top", "top", '"left", "right"',
         '[dependency-groups]\ndev = ["base"]\n[tool.uv.sources]\nleft = { path = "../left" }\n'
         'right = { path = "../right" }\nbase = { path = "../base" }\n')
    _lib(tmp_path, "services/api", "api", '"top", "right"',
         '[dependency-groups]\ndev = ["util"]\n[tool.uv.sources]\ntop = { path = "../../libs/top" }\n'
         'right = { path = "../../libs/right" }\nutil = { path = "../../libs/util" }\n')
    _lib(tmp_path, "services/dup", "top", '"base"', '[tool.uv.sources]\nbase = { path = "../../libs/base" }\n')
    ws = load_workspace(tmp_path)
    assert ws.reached("top") == {"left", "right", "core", "util", "base"}
    assert ws.reached("core") == {"util", "core"}  # a cycle reaches its start again
    _same_as_closure(ws)
    _same_as_closure(load_workspace(tmp_path), backwards=True)  # the caches filled in another order
