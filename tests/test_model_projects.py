"""Projects and lines real monorepos have: setup.py/setup.cfg-only libraries are packages, a
pyproject.toml inside a library's source tree is not a project of the monorepo, a FIFO where a
pyproject.toml should be is an error (never a hang), and `-e file:/abs/lib[extra]` is valid."""

from __future__ import annotations

import os
from pathlib import Path

from nexusify.model import load_workspace


def _tree(root: Path) -> None:
    (root / "libs/oldlib/oldlib").mkdir(parents=True)
    (root / "libs/oldlib/setup.py").write_text(
        'from setuptools import setup, find_packages\nsetup(name="oldlib", version="2.1.0", packages=find_packages())\n')
    (root / "libs/oldlib/oldlib/__init__.py").write_text("")
    (root / "libs/cfglib").mkdir(parents=True)
    (root / "libs/cfglib/setup.cfg").write_text("[metadata]\nname = cfglib\nversion = 0.4.0\n")
    (root / "libs/computed/computed").mkdir(parents=True)
    (root / "libs/computed/setup.py").write_text(
        'from setuptools import setup\nVERSION = ".".join(["3", "2", "1"])\nsetup(name="computed", version=VERSION, packages=["computed"])\n')
    (root / "libs/computed/computed/__init__.py").write_text("")
    plugin = root / "libs/modern/src/modern/plugins/foo"
    plugin.mkdir(parents=True)
    (root / "libs/modern/pyproject.toml").write_text(
        '[project]\nname = "modern"\nversion = "1.0.0"\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    (root / "libs/modern/src/modern/__init__.py").write_text("")
    (plugin / "pyproject.toml").write_text('[project]\nname = "modern"\nversion = "0.0.1"\n')  # same name: not a project
    (root / "services/api").mkdir(parents=True)
    (root / "services/api/pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "1.0.0"\ndependencies = ["oldlib", "cfglib", "modern", "computed"]\n'
        '[tool.uv.sources]\noldlib = { path = "../../libs/oldlib" }\ncfglib = { path = "../../libs/cfglib" }\n'
        'modern = { path = "../../libs/modern" }\ncomputed = { path = "../../libs/computed" }\n')
    (root / "services/worker").mkdir(parents=True)
    (root / "services/worker/requirements.txt").write_text(f"-e file:{root}/libs/oldlib[extra]\n")


def test_setup_py_and_setup_cfg_libraries_are_packages(tmp_path: Path) -> None:
    _tree(tmp_path)
    ws = load_workspace(tmp_path)
    assert ws.problems == [], [str(p) for p in ws.problems]
    versions = {p.name: (p.version, p.manifest.name) for p in ws.shared()}
    assert versions == {"oldlib": ("2.1.0", "setup.py"), "cfglib": ("0.4.0", "setup.cfg"),
                        "computed": ("3.2.1", "setup.py"), "modern": ("1.0.0", "pyproject.toml")}
    assert sorted(ws.closure([ws.by_name["api"]])) == ["cfglib", "computed", "modern", "oldlib"]
    assert ws.publish_order() == ["cfglib", "computed", "modern", "oldlib"]


def test_a_pyproject_inside_a_librarys_source_tree_is_not_a_project(tmp_path: Path) -> None:
    _tree(tmp_path)
    ws = load_workspace(tmp_path)
    assert [p.rel(ws.root) for p in ws.projects if p.name == "modern"] == ["libs/modern"]
    assert not [p for p in ws.problems if p.code == "duplicate-name"]


def test_a_file_url_with_extras_in_a_requirements_file(tmp_path: Path) -> None:
    _tree(tmp_path)
    ws = load_workspace(tmp_path)
    worker = ws.project_at(tmp_path / "services/worker")
    assert worker is not None
    [dep] = worker.local_deps
    assert (dep.name, dep.extras, dep.resolved, dep.editable) == ("oldlib", ["extra"], tmp_path / "libs/oldlib", True)


def test_a_fifo_pyproject_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "odd").mkdir()
    os.mkfifo(tmp_path / "odd" / "pyproject.toml")
    ws = load_workspace(tmp_path)  # would block forever reading the FIFO
    [problem] = ws.problems
    assert (problem.code, problem.path, problem.severity) == ("unreadable", "odd/pyproject.toml", "error")
