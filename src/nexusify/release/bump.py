"""New versions: Conventional Commits to a bump level, and a version bumped by a level.

Levels from commit subjects touching a package's folder since its last release tag
(``<name>-v<version>``): ``fix:``/``perf:`` -> patch, ``feat:`` -> minor, ``type!:`` or a
``BREAKING CHANGE:`` footer -> major. Other types (``chore:``, ``docs:``...) bump nothing by
themselves; a package whose content changed with no such commit gets a patch.

The 0.x rule: below 1.0.0 a breaking change bumps the minor (0.4.2 -> 0.5.0), as ``^0.4`` and
SemVer treat the minor of a 0.x version as the breaking position; a feature bumps the minor too,
a fix the patch. An explicit ``--bump major`` always bumps the major (0.4.2 -> 1.0.0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.version import InvalidVersion, Version

from nexusify.affected.git import Commit
from nexusify.errors import UsageError

LEVELS = ("patch", "minor", "major")
_SUBJECT = re.compile(r"^(?P<type>[A-Za-z]+)(?:\([^)]*\))?(?P<bang>!)?:\s*(?P<desc>.+)$")
_BREAKING = re.compile(r"^BREAKING[ -]CHANGE:", re.M)


def commit_level(commit: Commit) -> str | None:
    """The bump a commit asks for, or None (not a Conventional Commit, or a type that bumps nothing)."""
    m = _SUBJECT.match(commit.subject)
    if m is None:
        return None
    if m.group("bang") or _BREAKING.search(commit.body):
        return "major"
    kind = m.group("type").lower()
    return "minor" if kind == "feat" else "patch" if kind in ("fix", "perf") else None


def auto_level(commits: Sequence[Commit]) -> tuple[str, list[Commit]]:
    """The highest level the commits ask for (patch when none asks), and the commits that count."""
    counted = [(commit_level(c), c) for c in commits]
    levels = [lv for lv, _ in counted if lv]
    best = max(levels, key=LEVELS.index) if levels else "patch"
    return best, [c for lv, c in counted if lv]


def bump_version(version: str, level: str, *, explicit: bool = False) -> str:
    """``version`` bumped by ``level`` (pre-release, dev and local parts dropped, the epoch kept;
    0.x rule above)."""
    if level not in LEVELS:
        raise UsageError(f"unknown bump level {level!r}", hint="use patch, minor, major or auto")
    try:
        v = Version(version)
    except InvalidVersion as exc:
        raise UsageError(f"{version!r} is not a PEP 440 version, so it cannot be bumped",
                         hint="give the package a version like 0.1.0") from exc
    major, minor, micro = [*v.release, 0, 0, 0][:3]
    epoch = f"{v.epoch}!" if v.epoch else ""  # an epoch orders every version after it: kept
    if level == "major" and major == 0 and not explicit:
        level = "minor"  # the 0.x rule
    if level == "major":
        return f"{epoch}{major + 1}.0.0"
    if level == "minor":
        return f"{epoch}{major}.{minor + 1}.0"
    return f"{epoch}{major}.{minor}.{micro + 1}"


def section_of(commit: Commit) -> str:
    """Keep a Changelog section for a commit: Added (feat), Fixed (fix), Changed (anything else)."""
    m = _SUBJECT.match(commit.subject)
    kind = m.group("type").lower() if m else ""
    if m and (m.group("bang") or _BREAKING.search(commit.body)):
        return "Changed"
    return {"feat": "Added", "fix": "Fixed", "perf": "Fixed"}.get(kind, "Changed")


def entry_line(commit: Commit) -> str:
    m = _SUBJECT.match(commit.subject)
    text = m.group("desc") if m else commit.subject
    breaking = m is not None and (m.group("bang") or _BREAKING.search(commit.body))
    return ("**Breaking:** " if breaking else "") + text + f" ({commit.sha[:7]})"
