"""The release's pure rules: Conventional Commits to levels, the 0.x rule, Poetry constraints,
Keep a Changelog entries, and re-pinning a constraint in each form a consumer writes it."""

from __future__ import annotations

import pytest

from nexusify.affected.git import Commit
from nexusify.errors import UsageError
from nexusify.model.project import IndexDependency
from nexusify.release.bump import auto_level, bump_version, commit_level
from nexusify.release.edits import changelog, repin, replace_assignment
from nexusify.syntax.constraints import constraint_admits, poetry_to_pep440


@pytest.mark.parametrize(("subject", "body", "level"), [
    pytest.param("fix: x", "", "patch", id="fix"),
    pytest.param("fix(core-db): x", "", "patch", id="scoped-fix"),
    pytest.param("perf: x", "", "patch", id="perf"),
    pytest.param("feat: x", "", "minor", id="feat"),
    pytest.param("feat!: x", "", "major", id="bang"),
    pytest.param("refactor(api)!: x", "", "major", id="scoped-bang"),
    pytest.param("fix: x", "BREAKING CHANGE: the old name is gone", "major", id="footer"),
    pytest.param("chore: x", "", None, id="chore-bumps-nothing"),
    pytest.param("Update readme", "", None, id="not-conventional"),
])
def test_commit_levels(subject: str, body: str, level: str | None) -> None:
    assert commit_level(Commit("a" * 40, subject, body)) == level


def test_auto_level_takes_the_highest_and_falls_back_to_patch() -> None:
    commits = [Commit("1" * 40, "fix: a", ""), Commit("2" * 40, "feat: b", ""), Commit("3" * 40, "docs: c", "")]
    level, counted = auto_level(commits)
    assert level == "minor" and [c.subject for c in counted] == ["fix: a", "feat: b"]
    assert auto_level([Commit("4" * 40, "wip", "")]) == ("patch", [])


@pytest.mark.parametrize(("version", "level", "explicit", "new"), [
    pytest.param("0.1.0", "patch", False, "0.1.1", id="patch"),
    pytest.param("0.1.3", "minor", False, "0.2.0", id="minor"),
    pytest.param("0.1.3", "major", False, "0.2.0", id="0.x-breaking-bumps-minor"),
    pytest.param("0.1.3", "major", True, "1.0.0", id="explicit-major-is-major"),
    pytest.param("1.4.2", "major", False, "2.0.0", id="1.x-breaking"),
    pytest.param("1.4.2.dev3", "patch", False, "1.4.3", id="dev-dropped"),
    pytest.param("2", "minor", False, "2.1.0", id="short"),
    pytest.param("1!2.0.0", "patch", False, "1!2.0.1", id="epoch-kept"),
    pytest.param("1!0.4.2", "major", False, "1!0.5.0", id="epoch-0.x-rule"),
    pytest.param("2!1.0.0rc1", "major", True, "2!2.0.0", id="epoch-pre-release-dropped"),
])
def test_bump_version(version: str, level: str, explicit: bool, new: str) -> None:
    assert bump_version(version, level, explicit=explicit) == new


def test_bump_refuses_what_it_cannot_read() -> None:
    with pytest.raises(UsageError):
        bump_version("banana", "patch")
    with pytest.raises(UsageError):
        bump_version("1.0.0", "huge")


@pytest.mark.parametrize(("constraint", "pep440", "admits_0_2"), [
    pytest.param("^0.1.0", "<0.2.0,>=0.1.0", False, id="caret-0x"),
    pytest.param("^0.2", "<0.3.0,>=0.2", True, id="caret-short"),
    pytest.param("~0.1.0", "<0.2.0,>=0.1.0", False, id="tilde"),
    pytest.param("0.1.0", "==0.1.0", False, id="exact"),
    pytest.param(">=0.1.0", ">=0.1.0", True, id="minimum"),
    pytest.param("*", "", True, id="any"),
])
def test_poetry_constraints(constraint: str, pep440: str, admits_0_2: bool) -> None:
    assert poetry_to_pep440(constraint) == pep440
    assert constraint_admits(constraint, "0.2.0", poetry=True) is admits_0_2
    assert poetry_to_pep440("^1.0 || ^2.0") is None


def test_changelog_entry_goes_below_unreleased_and_above_the_newest() -> None:
    new = changelog(None, "0.1.1", "2026-11-30", {"Fixed": ["a bug (abc1234)"]})
    assert new.startswith("# Changelog") and "## [Unreleased]\n\n## [0.1.1] - 2026-11-30\n\n### Fixed\n\n- a bug" in new
    newer = changelog(new, "0.2.0", "2026-12-01", {"Added": ["a thing"], "Changed": ["**Breaking:** x"]})
    assert newer.index("## [0.2.0]") < newer.index("## [0.1.1]") and newer.index("### Added") < newer.index("### Changed")
    plain = changelog("# Changes\n\nhand-written intro\n", "1.0.1", "2026-11-30", {"Fixed": ["y"]})
    assert plain == "# Changes\n\nhand-written intro\n\n## [1.0.1] - 2026-11-30\n\n### Fixed\n\n- y\n"


def _dep(location: tuple[str, tuple[str, ...], str | int], spec: str = "") -> IndexDependency:
    from pathlib import Path

    return IndexDependency("acme-core", "acme-core", spec, "main", True, Path("x"), 1, location)


def test_repin_each_form_keeps_everything_else() -> None:
    poetry = ('[tool.poetry.dependencies]\npython = "^3.11"  # keep\n'
              'acme-core = {version = "^0.1.0", source = "nexus", extras = ["db"]}\n')
    text, spec = repin(poetry, _dep(("poetry", ("tool", "poetry", "dependencies"), "acme-core")), "0.2.0", "caret") or ("", "")
    assert spec == "^0.2.0"
    assert text == poetry.replace('"^0.1.0"', '"^0.2.0"')
    pep621 = '[project]\nname = "svc"\ndependencies = [\n    "six",\n    "acme-core[db]>=0.1.0,<0.2.0; python_version >= \'3.8\'",\n]\n'
    text, spec = repin(pep621, _dep(("pep508", ("project", "dependencies"), 1)), "0.2.0", "caret") or ("", "")
    assert spec == ">=0.2.0,<0.3.0"
    assert text == pep621.replace(">=0.1.0,<0.2.0", ">=0.2.0,<0.3.0")
    reqs = "--index-url http://x/simple/\nsix\nacme-core>=0.1.0,<0.2.0  # shared\n"
    text, spec = repin(reqs, _dep(("requirements", (), 3)), "0.2.0", "tilde") or ("", "")
    assert spec == ">=0.2.0,<0.3.0"
    assert text == reqs.replace(">=0.1.0,<0.2.0", ">=0.2.0,<0.3.0")


DOCSTRING_FIRST = '"""acme.\n\nUsage::\n\n__version__ = "0.0.1"\n"""\n\n__version__ = "0.3.0"  # keep\n'


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param(DOCSTRING_FIRST, DOCSTRING_FIRST.replace('"0.3.0"', '"0.4.0"'), id="docstring-example-untouched"),
    pytest.param("# __version__ = '9'\n__version__: str = '0.3.0'\n", "# __version__ = '9'\n__version__: str = '0.4.0'\n",
                 id="comment-untouched-annotated-quotes-kept"),
    pytest.param("def f():\n    __version__ = '1'\n__version__ = 'ü0'\n", "def f():\n    __version__ = '1'\n__version__ = '0.4.0'\n",
                 id="nested-untouched-utf8-columns"),
    pytest.param("__version__ = (\n    '1'\n)\n", "__version__ = (\n    '0.4.0'\n)\n", id="parenthesised"),
])
def test_version_is_edited_through_the_ast(source: str, expected: str) -> None:
    assert replace_assignment(source, "__version__", "0.4.0") == (expected, "")


@pytest.mark.parametrize(("source", "why"), [
    pytest.param('"""__version__ = "0.0.1"."""\n', "no module-level", id="only-in-a-docstring"),
    pytest.param("__version__ = '1'\n__version__ = '2'\n", "assigned 2 times", id="ambiguous"),
    pytest.param("__version__ = get()\n", "not assigned a plain string", id="computed"),
    pytest.param('__version__ = """\n1\n"""\n', "spans several lines", id="multi-line"),
    pytest.param("__version__ = '1' '2'\n", "not one plain literal", id="concatenated"),
    pytest.param("__version__ = = '1'\n", "does not parse", id="syntax-error"),
])
def test_version_edit_refuses_what_it_cannot_place(source: str, why: str) -> None:
    edited, reason = replace_assignment(source, "__version__", "0.4.0")
    assert edited is None and why in reason
