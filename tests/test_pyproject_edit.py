"""The pyproject editing core shared by rewrite and publish: exact, minimal, byte-preserving."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nexusify.errors import Problem, ProblemsFound
from nexusify.formats.pyproject_edit import (
    AddedDependency,
    SourceSpec,
    edit_pyproject,
    local_entries_left,
    versionize,
)
from nexusify.model import Project
from nexusify.model.readers.pep621 import read_pep621_deps as _read_pep621_deps
from nexusify.model.readers.poetry import read_poetry_deps as _read_poetry_deps

URL = "http://127.0.0.1:9/simple/"
NEXUS = SourceSpec("nexus", URL)
VERSIONS = {"shared-a": "0.1.0", "shared-b": "1.2.3", "shared-c": "2.0.0rc1"}


def deps_of(text: str, folder: Path = Path("/repo/services/svc")):
    """The local dependencies the workspace reader finds in ``text`` (no resolution needed)."""
    data = tomllib.loads(text.removeprefix("\ufeff"))
    project = Project(path=folder, pyproject=folder / "pyproject.toml", data=data, text=text)
    problems: list[Problem] = []
    _read_poetry_deps(project, "pyproject.toml", problems)
    _read_pep621_deps(project, "pyproject.toml", problems)
    assert not problems
    return project.local_deps


def rewrite(text: str, **kwargs):
    return edit_pyproject(text, deps_of(text), VERSIONS, **kwargs)


POETRY = """\
[tool.poetry]
name = "svc"  # the service
version = "1.0.0"

[tool.poetry.dependencies]
python = "^3.11"
# shared code
shared-a = {path = "../../shared/a", develop = true, extras = ["db", "x"], optional = true}
shared-b = { path = '../../shared/b', markers = "sys_platform == 'linux'", python = ">=3.11", allow-prereleases = true }
requests = "^2.31"   # third party

[tool.poetry.group.test.dependencies]
shared-c = {path="../../shared/c"}

[tool.poetry.extras]
db = ["shared-a"]

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
"""


def test_poetry_entries_keep_their_keys_style_and_everything_else() -> None:
    result = rewrite(POETRY, source=NEXUS)
    out = result.text
    assert 'shared-a = {version = "^0.1.0", source = "nexus", extras = ["db", "x"], optional = true}\n' in out
    assert ("shared-b = { version = \"^1.2.3\", source = \"nexus\", markers = \"sys_platform == 'linux'\", "
            'python = ">=3.11", allow-prereleases = true }\n') in out
    # a pre-release gets a range that admits it; spacing `a="b"` kept
    assert 'shared-c = {version=">=2.0.0rc1,<3.0.0", source="nexus"}\n' in out
    assert '[[tool.poetry.source]]\nname = "nexus"\nurl = "http://127.0.0.1:9/simple/"\npriority = "explicit"\n' in out
    # every other line is byte-identical and in order
    untouched = [ln for ln in POETRY.splitlines() if not ln.startswith("shared-")]
    out_lines = out.splitlines()
    it = iter(out_lines)
    assert all(any(ln == o for o in it) for ln in untouched)
    assert local_entries_left(out, ["shared-a", "shared-b", "shared-c"]) == []
    data = tomllib.loads(out)
    assert data["tool"]["poetry"]["dependencies"]["requests"] == "^2.31"
    assert data["tool"]["poetry"]["extras"] == {"db": ["shared-a"]}
    assert [e.line for e in result.edits][:2] == [8, 13]
    assert "shared-a: path dependency -> version ^0.1.0" in result.edits[0].reason


def test_source_table_is_placed_after_the_poetry_tables_before_the_next_tables_comments() -> None:
    text = POETRY.replace("[build-system]", "# how to build\n[build-system]")
    out = versionize(text, deps_of(text), VERSIONS, source=NEXUS)
    assert 'db = ["shared-a"]\n\n[[tool.poetry.source]]\n' in out
    assert 'priority = "explicit"\n\n# how to build\n[build-system]' in out


def test_second_run_is_a_no_op() -> None:
    once = versionize(POETRY, deps_of(POETRY), VERSIONS, source=NEXUS)
    again = edit_pyproject(once, deps_of(once), VERSIONS, source=NEXUS)
    assert again.text == once and not again.edits


def test_existing_source_with_the_same_name_is_updated_not_duplicated() -> None:
    text = POETRY + '\n[[tool.poetry.source]]\nname = "nexus"\nurl = "http://old/simple/"\npriority = "supplemental"\n'
    out = versionize(text, deps_of(text), VERSIONS, source=NEXUS)
    assert out.count("[[tool.poetry.source]]") == 1
    assert tomllib.loads(out)["tool"]["poetry"]["source"] == [
        {"name": "nexus", "url": URL, "priority": "explicit"}]


def test_supplemental_priority_is_the_seeds_layout() -> None:
    out = versionize(POETRY, deps_of(POETRY), VERSIONS, source=SourceSpec("nexus", URL, "supplemental"))
    assert 'priority = "supplemental"' in out


def test_crlf_bom_and_missing_final_newline_survive() -> None:
    text = "\ufeff" + POETRY.replace("\n", "\r\n").rstrip("\r\n")
    out = versionize(text, deps_of(text), VERSIONS, source=NEXUS)
    assert out.startswith("\ufeff[tool.poetry]\r\n")
    assert "\n" not in out.replace("\r\n", "")
    assert 'shared-a = {version = "^0.1.0"' in out
    assert out.endswith('build-backend = "poetry.core.masonry.api"')  # still no final newline


def test_poetry_sub_table_form() -> None:
    text = '[tool.poetry.dependencies]\npython = "^3.11"\n\n[tool.poetry.dependencies.shared-a]\npath = "../a"\ndevelop = true\nextras = ["db"]\n\n[build-system]\nrequires = []\n'
    out = versionize(text, deps_of(text), VERSIONS, source=NEXUS)
    assert '[tool.poetry.dependencies.shared-a]\nversion = "^0.1.0"\nsource = "nexus"\nextras = ["db"]\n\n' in out


def test_poetry_transitive_shared_packages_are_declared_with_the_source() -> None:
    text = '[tool.poetry.dependencies]\npython = "^3.11"\nshared-a = { path = "../a" }\nshared-b = "^1.0"\n\n[build-system]\nrequires = []\n'
    out = versionize(text, deps_of(text), VERSIONS, source=NEXUS,
                     add=[AddedDependency("shared-c", via="shared-a"), AddedDependency("shared-b")])
    deps = tomllib.loads(out)["tool"]["poetry"]["dependencies"]
    assert deps["shared-c"] == {"version": ">=2.0.0rc1,<3.0.0", "source": "nexus"}
    assert deps["shared-b"] == {"version": "^1.0", "source": "nexus"}  # the user's constraint kept
    assert 'shared-a = { version = "^0.1.0", source = "nexus" }\nshared-b = {version = "^1.0", source = "nexus"}\n' \
           'shared-c = { version = ">=2.0.0rc1,<3.0.0", source = "nexus" }\n\n[[tool.poetry.source]]' in out


PEP621 = """\
[project]
name = "svc"
version = "1.0.0"
dependencies = [
    "shared-a[db] @ file:///${PROJECT_ROOT}/../../shared/a ; python_version >= '3.11'",  # note
    'shared-b',
    "shared-c>=2.0.0rc1",
    "httpx>=0.27",
]

[dependency-groups]
dev = ["shared-a @ file:///${PROJECT_ROOT}/../../shared/a"]

[tool.uv.sources]
shared-b = { path = "../../shared/b", editable = true }
shared-c = { workspace = true, marker = "sys_platform == 'linux'" }

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


def test_pep621_file_urls_and_uv_sources() -> None:
    result = rewrite(PEP621, source=NEXUS)
    out = result.text
    assert "    \"shared-a[db]>=0.1.0,<0.2.0; python_version >= '3.11'\",  # note\n" in out
    assert "    'shared-b>=1.2.3,<2.0.0',\n" in out  # literal-string quoting kept
    assert '    "shared-c>=2.0.0rc1",\n' in out  # an admitting specifier is kept
    assert 'dev = ["shared-a>=0.1.0,<0.2.0"]\n' in out
    assert 'shared-b = { index = "nexus" }\n' in out
    assert "shared-c = { index = \"nexus\", marker = \"sys_platform == 'linux'\" }\n" in out
    assert '[[tool.uv.index]]\nname = "nexus"\nurl = "http://127.0.0.1:9/simple/"\nexplicit = true\n\n[build-system]' in out
    assert local_entries_left(out, VERSIONS) == []


def test_pep621_staging_drops_uv_path_sources_and_adds_no_index() -> None:
    out = versionize(PEP621, deps_of(PEP621), VERSIONS, source=None)
    data = tomllib.loads(out)
    assert data["tool"]["uv"]["sources"] == {}
    assert "index" not in data["tool"]["uv"]
    assert data["project"]["dependencies"][1] == "shared-b>=1.2.3,<2.0.0"


def test_poetry_staging_writes_plain_versions() -> None:
    out = versionize(POETRY, deps_of(POETRY), VERSIONS, mode="exact", source=None)
    deps = tomllib.loads(out)["tool"]["poetry"]["dependencies"]
    assert deps["shared-a"] == {"version": "0.1.0", "extras": ["db", "x"], "optional": True}
    assert "source" not in out


@pytest.mark.parametrize(("mode", "poetry", "pep440"), [
    pytest.param("caret", "^1.2.3", ">=1.2.3,<2.0.0", id="caret"),
    pytest.param("tilde", "~1.2.3", ">=1.2.3,<1.3.0", id="tilde"),
    pytest.param("exact", "1.2.3", "==1.2.3", id="exact"),
    pytest.param("minimum", ">=1.2.3", ">=1.2.3", id="minimum"),
])
def test_constraint_modes(mode: str, poetry: str, pep440: str) -> None:
    out = versionize(POETRY, deps_of(POETRY), VERSIONS, mode=mode, source=NEXUS)
    assert tomllib.loads(out)["tool"]["poetry"]["dependencies"]["shared-b"]["version"] == poetry
    out = versionize(PEP621, deps_of(PEP621), VERSIONS, mode=mode, source=NEXUS)
    assert tomllib.loads(out)["project"]["dependencies"][1] == "shared-b" + pep440


def test_pdm_project_gets_a_pdm_source_restricted_to_the_shared_packages() -> None:
    text = '[project]\nname = "svc"\nversion = "1"\ndependencies = [\n    "shared-a @ file:///${PROJECT_ROOT}/../a",\n]\n\n[tool.pdm.build]\nincludes = ["svc"]\n'
    out = versionize(text, deps_of(text), VERSIONS, source=NEXUS, add=[AddedDependency("shared-b")])
    data = tomllib.loads(out)
    assert data["project"]["dependencies"] == ["shared-a>=0.1.0,<0.2.0", "shared-b>=1.2.3,<2.0.0"]
    assert data["tool"]["pdm"]["source"] == [
        {"name": "nexus", "url": URL, "include_packages": ["shared-a", "shared-b"]}]


def test_a_specifier_excluding_the_version_is_an_error_with_file_and_line() -> None:
    text = PEP621.replace("\"shared-c>=2.0.0rc1\"", "\"shared-c>=3\"")
    with pytest.raises(ProblemsFound) as info:
        edit_pyproject(text, deps_of(text), VERSIONS, source=NEXUS, path=Path("svc/pyproject.toml"))
    assert "svc/pyproject.toml:7" in str(info.value)
    assert "does not admit version 2.0.0rc1" in str(info.value)


def test_a_missing_version_is_an_error() -> None:
    with pytest.raises(ProblemsFound, match="shared-a: no version known"):
        edit_pyproject(POETRY, deps_of(POETRY), {"shared-b": "1.0.0", "shared-c": "1.0.0"}, source=NEXUS)


def test_a_list_of_poetry_constraints_is_reported_not_guessed() -> None:
    text = '[tool.poetry.dependencies]\nshared-a = [\n  {path = "../a", python = "<3.12"},\n  {version = "^0.1", python = ">=3.12"},\n]\n'
    with pytest.raises(ProblemsFound, match="list of constraints"):
        edit_pyproject(text, deps_of(text), VERSIONS, source=NEXUS)


@pytest.mark.parametrize("text", [POETRY, PEP621], ids=["poetry", "pep621"])
def test_the_self_check_sees_every_local_entry_before_and_none_after(text: str) -> None:
    from nexusify.formats.pyproject_base import _still_local

    deps = deps_of(text)
    assert deps and all(_still_local(tomllib.loads(text), d) for d in deps)
    out = versionize(text, deps, VERSIONS, source=NEXUS)
    assert not any(_still_local(tomllib.loads(out), d) for d in deps)
    staged = versionize(text, deps, VERSIONS, source=None)
    assert not any(_still_local(tomllib.loads(staged), d) for d in deps)


def test_insert_key_after_uses_public_tomlkit_only_and_keeps_order_and_trivia() -> None:
    """tomlkit 0.15.3 removed the private ``Container._insert_after`` the editor called; the
    replacement keeps key order, each key's own comment, and never lands in the next table."""
    import tomlkit

    from nexusify.formats.pyproject_base import _item, insert_key_after

    doc = tomlkit.parse('[deps]\npython = "^3.11"  # py\ncore = {path = "../core"}\n\n'
                        '[deps.big]\npath = "../big"\ndevelop = true  # keep\n\n[other]\nx = 1\n')
    deps = doc["deps"]
    insert_key_after(deps, "python", "a", _item('"1"'))
    insert_key_after(deps, "core", "b", _item('"2"'))
    big = deps["big"]
    insert_key_after(big, "path", "version", _item('"^1"'))
    del big["path"]
    text = tomlkit.dumps(doc)
    assert list(tomlkit.parse(text)["deps"]) == ["python", "a", "core", "b", "big"]
    assert list(tomlkit.parse(text)["deps"]["big"]) == ["version", "develop"]
    assert 'python = "^3.11"  # py\n' in text and "develop = true  # keep\n" in text
    assert tomlkit.parse(text)["other"] == {"x": 1}
    assert text.index('b = "2"') < text.index("[deps.big]")
