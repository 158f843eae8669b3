"""The span editor (``formats/pyproject_spans.py``) writes byte for byte what the tomlkit editor
writes, or steps aside: every ``pyproject.toml`` edit ``rewrite`` plans on the fixtures, on a
generated monorepo and on tricky TOML is done both ways and compared (text and edits)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nexusify.config import resolve_settings
from nexusify.formats import pyproject_edit
from nexusify.formats.pyproject_spans import SpanEditor
from nexusify.rewrite import plan as rewrite_plan
from nexusify.syntax.toml_spans import Unsure, scan

from .conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
URL = "http://127.0.0.1:9/simple/"


class Compared:
    def __init__(self) -> None:
        self.spliced = 0
        self.fell_back = 0
        self.mismatches: list[str] = []


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[Compared]:
    """Every span edit is redone by the tomlkit editor and compared."""
    seen = Compared()
    original = SpanEditor.edit

    def edit(self: SpanEditor, deps: list[Any], add: Any) -> Any:
        try:
            fast = original(self, deps, add)
        except Unsure:
            seen.fell_back += 1
            raise
        slow = pyproject_edit._Editor(self.original, self.versions, self.mode, self.source, self.path,
                                      None).run(list(deps), list(add))
        seen.spliced += 1
        if fast.text != slow.text or fast.edits != slow.edits:
            seen.mismatches.append(f"{self.where}:\n--- tomlkit\n{slow.text}\n--- spans\n{fast.text}\n"
                                   f"{slow.edits}\n{fast.edits}")
        return fast

    monkeypatch.setattr(SpanEditor, "edit", edit)
    monkeypatch.setattr(rewrite_plan, "PARALLEL_FROM", 10**9)  # in this process, where the patch is
    yield seen


def _plan(root: Path, **options: str) -> None:
    rewrite_plan.plan_rewrite(resolve_settings(root, {"index_url": URL, **options}, ENV), [], env=ENV, lock=False)


def _fixtures() -> list[Path]:
    found = [FIXTURES / "monorepo"]
    for group in ("layouts", "publish"):
        found += sorted(p for p in (FIXTURES / group).iterdir() if p.is_dir())
    return found


@pytest.mark.parametrize("priority", ["explicit", "supplemental"])
def test_fixtures_spliced_as_tomlkit_writes_them(compared: Compared, tmp_path: Path, priority: str) -> None:
    for fixture in _fixtures():
        root = tmp_path / fixture.relative_to(FIXTURES).as_posix().replace("/", "-")
        shutil.copytree(fixture, root)
        _plan(root, priority=priority)
    assert not compared.mismatches, "\n\n".join(compared.mismatches)
    assert compared.spliced >= 10, "the span editor took (almost) no file: nothing was compared"


def test_generated_monorepo_spliced_as_tomlkit_writes_it(compared: Compared, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_audit", FIXTURES.parent / "benchmarks" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp_path, 120, 30)
    _plan(tmp_path)
    assert not compared.mismatches, "\n\n".join(compared.mismatches[:3])
    assert compared.spliced == 120 and compared.fell_back == 0


LIB_POETRY = """[tool.poetry]
name = "acme-core"
version = "1.2.0"
description = ""
authors = ["A <a@example.com>"]

[tool.poetry.dependencies]
python = "^3.11"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
"""

LIB_UTIL = LIB_POETRY.replace("acme-core", "acme-util").replace("1.2.0", "0.3.1").replace(
    'python = "^3.11"\n', 'python = "^3.11"\nacme-core = {path = "../core"}\n')

HEAD = '[tool.poetry]\nname = "svc"\nversion = "0.1.0"\ndescription = ""\nauthors = ["A <a@example.com>"]\n\n'
TAIL = '\n[build-system]\nrequires = ["poetry-core>=1.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n'
DEPS = "[tool.poetry.dependencies]\n"

POETRY_CASES = {
    "plain": DEPS + 'python = "^3.11"\nacme-util = {path = "../../libs/util", develop = true}\n',
    "spaced": DEPS + 'acme-util = { path = "../../libs/util" , develop=true }   # local\n',
    "tab": DEPS + 'acme-util = {\tpath = "../../libs/util"}\nother = { version = "1" }\n',
    "extras-kept": DEPS + 'acme-util = {path = "../../libs/util", extras = ["a", "b"], optional = true}\n',
    "quoted-key": DEPS + '"acme-util" = {"path" = "../../libs/util"}\n',
    "literal": DEPS + "acme-util = {path = '../../libs/util'}\n",
    "dotted": DEPS + 'acme-util.path = "../../libs/util"\n',
    "sub-table": "[tool.poetry.dependencies.acme-util]\npath = \"../../libs/util\"\ndevelop = true\n",
    "comment-after": DEPS + 'acme-util = {path = "../../libs/util"}\n# the end\n',
    "blank-lines": DEPS + 'acme-util = {path = "../../libs/util"}\n\n\n\n',
    "indented": DEPS + '  python = "^3.11"\n  acme-util = {path = "../../libs/util"}\n',
    "multiline-string": 'x = """\n[tool.poetry.dependencies]\nacme-util = {path = "no"}\n"""\n\n' + DEPS
                        + 'acme-util = {path = "../../libs/util"}\n',
    "source-exists": DEPS + 'acme-util = {path = "../../libs/util"}\n\n[[tool.poetry.source]]\nname = "nexus"\n'
                     'url = "http://old.example/simple/"\npriority = "explicit"\n',
}


def _poetry_repo(root: Path, service: str, *, crlf: bool = False, bom: bool = False, eof_newline: bool = True) -> None:
    for name, text in (("core", LIB_POETRY), ("util", LIB_UTIL)):
        (root / "libs" / name).mkdir(parents=True)
        (root / "libs" / name / "pyproject.toml").write_text(text)
    (root / "services" / "svc").mkdir(parents=True)
    text = HEAD + service + TAIL
    if not eof_newline:
        text = HEAD + TAIL + "\n" + service.rstrip("\n")
    if crlf:
        text = text.replace("\n", "\r\n")
    if bom:
        text = "\ufeff" + text
    (root / "services" / "svc" / "pyproject.toml").write_bytes(text.encode())


@pytest.mark.parametrize("case", sorted(POETRY_CASES))
def test_poetry_shapes(compared: Compared, tmp_path: Path, case: str) -> None:
    _poetry_repo(tmp_path, POETRY_CASES[case])
    _plan(tmp_path)
    assert not compared.mismatches, "\n\n".join(compared.mismatches)


@pytest.mark.parametrize("shape", ["crlf", "bom", "no-final-newline"])
def test_poetry_file_forms(compared: Compared, tmp_path: Path, shape: str) -> None:
    _poetry_repo(tmp_path, POETRY_CASES["plain"], crlf=shape == "crlf", bom=shape == "bom",
                 eof_newline=shape != "no-final-newline")
    _plan(tmp_path)
    assert not compared.mismatches, "\n\n".join(compared.mismatches)


LIB_UV = """[project]
name = "acme-core"
version = "1.2.0"
requires-python = ">=3.11"
dependencies = []

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""
LIB_UV_UTIL = LIB_UV.replace("acme-core", "acme-util").replace("1.2.0", "0.3.1").replace(
    "dependencies = []", 'dependencies = ["acme-core"]\n\n[tool.uv.sources]\nacme-core = { path = "../core" }')

UV_HEAD = '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
UV_CASES = {
    "plain": UV_HEAD + 'dependencies = [\n    "httpx",\n    "acme-util",\n]\n\n[tool.uv.sources]\n'
             'acme-util = { path = "../../libs/util", editable = true }\n',
    "one-line-array": UV_HEAD + 'dependencies = ["httpx", "acme-util>=0.1"]\n\n[tool.uv.sources]\n'
                      'acme-util = { path = "../../libs/util" }\n',
    "array-comments": UV_HEAD + 'dependencies = [\n    "httpx",  # http\n    "acme-util",\n]\n\n'
                      '[tool.uv.sources]\nacme-util = { path = "../../libs/util" }\n',
    "no-trailing-comma": UV_HEAD + 'dependencies = [\n    "httpx",\n    "acme-util"\n]\n\n[tool.uv.sources]\n'
                         'acme-util = {path="../../libs/util"}\n',
    "literal": UV_HEAD + "dependencies = [\n    'acme-util[x] ; python_version >= \"3.11\"',\n]\n\n"
               "[tool.uv.sources]\nacme-util = { path = '../../libs/util' }\n",
    "sources-sub-table": UV_HEAD + 'dependencies = [\n    "acme-util",\n]\n\n[tool.uv.sources.acme-util]\n'
                         'path = "../../libs/util"\n',
    "project-sub-tables": UV_HEAD + 'dependencies = [\n    "acme-util",\n]\n\n[project.urls]\nx = "y"\n\n'
                          '[tool.uv.sources]\nacme-util = { path = "../../libs/util" }\n',
    "file-url": UV_HEAD + 'dependencies = [\n    "acme-util @ file:///${PROJECT_ROOT}/../../libs/util",\n]\n',
    "file-url-marker": UV_HEAD + 'dependencies = [\n    "acme-util @ file:///${PROJECT_ROOT}/../../libs/util ; '
                       "python_version >= '3.11'\",\n]\n",
    "sources-comment-after": UV_HEAD + 'dependencies = [\n    "acme-util",\n]\n\n[tool.uv.sources]\n'
                             'acme-util = { path = "../../libs/util" }\n# end\n',
    "index-exists": UV_HEAD + 'dependencies = [\n    "acme-util",\n]\n\n[tool.uv.sources]\n'
                    'acme-util = { path = "../../libs/util" }\n\n[[tool.uv.index]]\nname = "nexus"\nurl = "http://x/"\n',
}


@pytest.mark.parametrize("case", sorted(UV_CASES))
def test_pep621_shapes(compared: Compared, tmp_path: Path, case: str) -> None:
    libs = (("core", LIB_UV), ("util", LIB_UV_UTIL))
    if "file-url" in case:
        libs = (("core", LIB_UV), ("util", LIB_UV_UTIL.replace('"acme-core"]', '"acme-core @ file:///${PROJECT_ROOT}/../core"]')
                .replace('\n\n[tool.uv.sources]\nacme-core = { path = "../core" }', "")))
    for name, text in libs:
        (tmp_path / "libs" / name).mkdir(parents=True)
        (tmp_path / "libs" / name / "pyproject.toml").write_text(text)
    (tmp_path / "services" / "svc").mkdir(parents=True)
    (tmp_path / "services" / "svc" / "pyproject.toml").write_text(
        UV_CASES[case] + '\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    _plan(tmp_path)
    assert not compared.mismatches, "\n\n".join(compared.mismatches)


def test_scan_locates_statements_and_refuses_what_it_cannot_read() -> None:
    text = 'a = 1\n[t]\nb = { c = "}", d = [1, 2] }  # x\ns = """\n[u]\n"""\n[[aot]]\n"q.k" = 2\n'
    sections = scan(text)
    assert [(s.path, s.aot, [e.parts for e in s.entries]) for s in sections] == [
        ((), False, [("a",)]), (("t",), False, [("b",), ("s",)]), (("aot",), True, [("q.k",)])]
    b = sections[1].entries[0]
    assert text[b.value[0]:b.value[1]] == '{ c = "}", d = [1, 2] }'
    for bad in ('a = "unterminated\n', "a = 1 b\n", "[t\n", '"a\\u0041" = 1\n'):
        with pytest.raises(Unsure):
            scan(bad)
