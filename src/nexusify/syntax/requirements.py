"""pip requirements files: finding, parsing (the line forms pip accepts) and rewriting lines.

Pure text work, no monorepo model: :mod:`nexusify.model` turns the local entries found here
into :class:`~nexusify.workspace.LocalDependency` objects and resolves them with the same
resolver as ``pyproject.toml`` paths; :mod:`nexusify.rewrite.plan` plans the edits.

Parsing follows pip's own order: physical lines ending in ``\\`` are joined, then comments
(``#`` at the start or after whitespace, so ``#egg=`` fragments stay) are dropped. A logical
line is then an option (``-e``/``--editable``, ``-r``/``-c`` includes, ``--index-url``...) or a
requirement: a path (``./x``, ``../../libs/x``, ``/shared/packages/x``, ``x[extra] ; marker``),
a ``file:`` URL (``file:../x#egg=name``), a PEP 508 ``name @ file:///...``, or a named
requirement (``requests>=2``), each possibly followed by per-requirement options (``--hash``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

FILE_GLOBS = ("requirements*.txt", "requirements/*.txt")
_DEV_WORDS = frozenset({"dev", "develop", "development", "test", "tests", "testing", "lint", "docs", "doc",
                        "ci", "typing", "types", "check", "qa", "tools", "local"})
_COMMENT = re.compile(r"(^|\s+)#.*$")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")
_EXTRAS = re.compile(r"^(.+?)(\[[^\]]*\])$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_OPTION = re.compile(r"^(--[A-Za-z][\w-]*|-[A-Za-z])(?:=|\s+|(?=\S))?(.*)$", re.S)
_LONG = {"-e": "--editable", "-r": "--requirement", "-c": "--constraint", "-i": "--index-url",
         "-f": "--find-links"}

IssueSeverity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    """Something wrong on one line of a requirements file (the caller makes a Problem of it)."""

    severity: IssueSeverity
    code: str
    line: int
    message: str
    hint: str | None = None
    subject: str | None = None  # the (normalised) name a malformed requirement line starts with


@dataclass(frozen=True)
class LocalEntry:
    """A requirement on local code: a path, a ``file:`` URL or ``name @ file:...``."""

    line: int  # first physical line (1-based)
    end: int  # last physical line (continuations)
    written: str  # the path or URL as written (extras and markers removed)
    is_url: bool
    name: str | None  # from ``name @`` or ``#egg=``; None for a bare path
    editable: bool
    extras: tuple[str, ...] = ()
    markers: str | None = None
    options: str = ""  # per-requirement options after it (``--config-settings ...``)


@dataclass(frozen=True)
class OptionLine:
    line: int
    option: str  # the long spelling: "--index-url", "--extra-index-url", "--no-index"...
    value: str


@dataclass(frozen=True)
class Include:
    line: int
    option: str  # "--requirement" or "--constraint"
    written: str
    target: Path


@dataclass
class RequirementsFile:
    path: Path
    text: str
    entries: list[LocalEntry] = field(default_factory=list)
    names: list[tuple[str, int]] = field(default_factory=list)  # (normalised name, line) of named requirements
    options: list[OptionLine] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def index_urls(self) -> list[OptionLine]:
        return [o for o in self.options if o.option == "--index-url"]

    def extra_index_urls(self) -> list[OptionLine]:
        return [o for o in self.options if o.option == "--extra-index-url"]


# --------------------------------------------------------------------------- finding


def find_requirements_files(folder: Path) -> list[Path]:
    """``requirements*.txt`` and ``requirements/*.txt`` in ``folder``, sorted."""
    found: set[Path] = set()
    for pattern in FILE_GLOBS:
        found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


def file_group(path: Path) -> tuple[str, bool]:
    """(group, runtime?) a requirements file stands for: ``requirements-dev.txt`` and
    ``requirements/test.txt`` are dev-time groups, everything else the service's runtime."""
    stem = path.stem.lower()
    stem = stem[len("requirements"):] if stem.startswith("requirements") else stem
    words = {w for w in re.split(r"[-_.]", stem) if w}
    dev = sorted(words & _DEV_WORDS)
    return (dev[0], False) if dev else ("main", True)


# --------------------------------------------------------------------------- lines


def logical_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(first line, last line, content) of every non-blank logical line, as pip reads them:
    continuations joined, comments removed, whitespace stripped."""
    pending: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        is_comment = bool(_COMMENT.match(line))
        if line.endswith("\\") and not is_comment:
            if not pending:
                first = number
            pending.append(line[:-1])
            continue
        if pending:
            pending.append(" " + line if is_comment else line)
            joined, start = "".join(pending), first
            pending = []
        else:
            joined, start = line, number
        content = _COMMENT.sub("", joined).strip()
        if content:
            yield start, number, content
    if pending:
        content = _COMMENT.sub("", "".join(pending)).strip()
        if content:
            yield first, first + len(pending) - 1, content


def parse_requirements(text: str, path: Path) -> RequirementsFile:
    """Parse one requirements file (includes are recorded, not followed)."""
    result = RequirementsFile(path, text)
    for first, last, content in logical_lines(text):
        if content.startswith("-"):
            _parse_option(content, first, last, result)
        else:
            _parse_requirement(content, first, last, False, result)
    return result


def _parse_option(content: str, first: int, last: int, out: RequirementsFile) -> None:
    m = _OPTION.match(content)
    if m is None:
        out.issues.append(Issue("warning", "requirements-syntax", first, f"cannot read the option {content!r}"))
        return
    option = _LONG.get(m.group(1), m.group(1))
    value = m.group(2).strip()
    if option == "--editable":
        if not value:
            out.issues.append(Issue("error", "requirements-syntax", first, "-e needs a path or URL"))
            return
        _parse_requirement(value, first, last, True, out)
    elif option in ("--requirement", "--constraint"):
        written = value.strip("'\"")
        if _URL.match(written):
            out.options.append(OptionLine(first, option, value))
            return
        out.includes.append(Include(first, option, written, Path(out.path.parent, written)))
    else:
        out.options.append(OptionLine(first, option, value))


def _split_options(content: str) -> tuple[str, str]:
    """(requirement, per-requirement options): options start at the first token beginning
    with ``-`` (pip's ``break_args_options``)."""
    tokens = content.split(" ")
    for i, token in enumerate(tokens[1:], start=1):
        if token.startswith("-"):
            return " ".join(tokens[:i]).strip(), " ".join(tokens[i:]).strip()
    return content.strip(), ""


def _looks_like_path(req: str) -> bool:
    return req.startswith((".", "/", "~")) or ("/" in req and "@" not in req.split("/", 1)[0])


def _parse_requirement(content: str, first: int, last: int, editable: bool, out: RequirementsFile) -> None:
    req, options = _split_options(content)
    if req.lower().startswith("file:"):
        out.entries.append(_file_url_entry(req, first, last, editable, options))
        return
    if _URL.match(req):
        return  # a remote URL (git+https://, https://...): not local code
    if "@" in req and not _looks_like_path(req):
        _parse_named(req, first, last, editable, options, out)
        return
    if _looks_like_path(req):
        out.entries.append(_path_entry(req, first, last, editable, options))
        return
    _parse_named(req, first, last, editable, options, out)


def _parse_named(req: str, first: int, last: int, editable: bool, options: str, out: RequirementsFile) -> None:
    try:
        parsed = Requirement(req)
    except InvalidRequirement as exc:
        named = re.match(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)", req)
        out.issues.append(Issue("warning", "bad-requirement", first, f"{req!r} is not a valid requirement: {exc}",
                                "pip will refuse this line too; fix it",
                                canonicalize_name(named.group(1)) if named else None))
        return
    url = parsed.url or ""
    if url.lower().startswith("file:"):
        out.entries.append(LocalEntry(first, last, url, True, parsed.name, editable, tuple(sorted(parsed.extras)),
                                      str(parsed.marker) if parsed.marker else None, options))
    elif not url:
        out.names.append((canonicalize_name(parsed.name), first))


def _split_marker(req: str, separator: str) -> tuple[str, str | None]:
    body, sep, marker = req.partition(separator)
    return (body.strip(), marker.strip() or None) if sep else (req.strip(), None)


def _split_extras(text: str) -> tuple[str, tuple[str, ...]]:
    m = _EXTRAS.match(text)
    if m is None:
        return text, ()
    extras = tuple(e.strip() for e in m.group(2)[1:-1].split(",") if e.strip())
    return m.group(1), extras


def _path_entry(req: str, first: int, last: int, editable: bool, options: str) -> LocalEntry:
    body, marker = _split_marker(req, ";")  # pip splits a path's marker at any ";"
    path, extras = _split_extras(body)
    return LocalEntry(first, last, path, False, None, editable, extras, marker, options)


def _file_url_entry(req: str, first: int, last: int, editable: bool, options: str) -> LocalEntry:
    body, marker = _split_marker(req, "; ")  # a URL may hold ";", so its marker needs "; "
    egg = _EGG.search(body)
    name = egg.group(1) if egg else None
    extras: tuple[str, ...] = ()
    if egg and egg.group(2):
        extras = tuple(e.strip() for e in egg.group(2)[1:-1].split(",") if e.strip())
    url = _EGG.sub("", body).rstrip("#&") if egg else body
    if not extras:  # pip also takes `file:/abs/lib[extra]` (extras after the path, no #egg=)
        url, extras = _split_extras(url)
    return LocalEntry(first, last, url, True, name, editable, extras, marker, options)


# --------------------------------------------------------------------------- files and includes


def read_requirements(path: Path) -> RequirementsFile | Issue:
    """Read and parse ``path``; an Issue (on line 0) when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        return Issue("error", "unreadable", 0, f"cannot read: {exc.strerror}")
    except UnicodeDecodeError:
        return Issue("error", "unreadable", 0, "not UTF-8 text", "save the file as UTF-8")
    return parse_requirements(text, path)


def read_tree(tops: list[Path], known: dict[Path, RequirementsFile] | None = None) -> dict[Path, RequirementsFile]:
    """``tops`` and every file they include (``-r``/``-c``, relative to the including file),
    each parsed once; include cycles are followed once. A missing or unreadable include is an
    issue of the line that includes it."""
    files: dict[Path, RequirementsFile] = {} if known is None else known
    stack = [p.resolve() for p in reversed(tops)]
    while stack:
        path = stack.pop()
        if path in files:
            continue
        parsed = read_requirements(path)
        if isinstance(parsed, Issue):
            files[path] = RequirementsFile(path, "", issues=[parsed])
            continue
        files[path] = parsed
        for inc in parsed.includes:
            target = inc.target.resolve()
            if not target.is_file():
                parsed.issues.append(Issue(
                    "error", "missing-include", inc.line, f"{inc.option} {inc.written}: no such file",
                    "fix the path; pip reads it relative to the file that includes it"))
                continue
            stack.append(target)
    return files


def tree_of(path: Path, files: dict[Path, RequirementsFile]) -> list[RequirementsFile]:
    """``path`` and every file it includes, transitively (each once, cycles guarded)."""
    out: dict[Path, RequirementsFile] = {}
    stack = [path]
    while stack:
        p = stack.pop()
        f = files.get(p)
        if f is None or p in out:
            continue
        out[p] = f
        stack.extend(inc.target.resolve() for inc in f.includes)
    return list(out.values())


# --------------------------------------------------------------------------- rewriting


def requirement_line(name: str, specifier: str, entry: LocalEntry) -> str:
    """``name[extras]specifier ; marker`` plus the entry's per-requirement options."""
    extras = f"[{','.join(entry.extras)}]" if entry.extras else ""
    text = f"{name}{extras}{specifier}"
    if entry.markers:
        text += f" ; {entry.markers}"
    Requirement(text)  # never write a line pip cannot read
    if entry.options:
        text += f" {entry.options}"
    return text


def replace_lines(text: str, replacements: dict[int, tuple[int, str]], first_line: str | None = None) -> str:
    """``text`` with each logical line ``start -> (end, new)`` replaced by ``new`` (an inline
    comment on its last physical line and its line ending kept), and ``first_line`` inserted
    at the top. Every other byte stays as it was."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    number = 1
    while number <= len(lines):
        if number not in replacements:
            out.append(lines[number - 1])
            number += 1
            continue
        end, new = replacements[number]
        last = lines[end - 1]
        body = last.rstrip("\r\n")
        ending = last[len(body):]
        comment = _COMMENT.search(body)
        tail = f"  {comment.group(0).strip()}" if comment and comment.group(0).strip() else ""
        out.append(new + tail + ending)
        number = end + 1
    result = "".join(out)
    if first_line is not None:
        newline = "\r\n" if "\r\n" in text else "\n"
        result = first_line + newline + result
    return result


def requirement_name(item: object) -> str | None:
    """The normalised name of a PEP 508 requirement string (PDM's ``-e name @ url`` included), or
    None when it is not one: the one parser of a requirement's name (packaging's), for every reader
    and editor that only needs the name."""
    if not isinstance(item, str):
        return None
    return _requirement_name(str(item))  # str(): a tomlkit String is a str subclass


@functools.lru_cache(maxsize=16384)
def _requirement_name(item: str) -> str | None:
    """(the same strings recur in every service of a monorepo: parsed once each)"""
    text = item.strip()
    for flag in ("-e ", "--editable "):
        if text.startswith(flag):
            text = text[len(flag):].strip()
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


__all__ = [
    "FILE_GLOBS",
    "Include",
    "Issue",
    "LocalEntry",
    "OptionLine",
    "RequirementsFile",
    "file_group",
    "find_requirements_files",
    "logical_lines",
    "parse_requirements",
    "read_requirements",
    "read_tree",
    "replace_lines",
    "requirement_line",
    "requirement_name",
    "tree_of",
]
