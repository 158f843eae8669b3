"""Dockerfiles as data: a real instruction parser with 1-based line ranges.

:func:`parse` follows the Dockerfile reference: parser directives at the top (``# escape=``
changes the line-continuation character, e.g. to a backtick on Windows images), line
continuations, comment lines inside a continued instruction, empty continuation lines,
heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``; several per instruction), JSON (exec) form,
leading flags (``--from=``, ``--chown=``, ``--mount=``, ``--platform=``), ``FROM ... AS name``
stages. Each :class:`Instruction` knows its 1-based first and last physical line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_KNOWN_DIRECTIVES = {"escape", "syntax", "check"}
_HEREDOC = re.compile(r"(?<!<)<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")


@dataclass(frozen=True)
class Heredoc:
    delimiter: str
    strip_tabs: bool
    first_line: int  # first body line (1-based)
    last_line: int  # the line holding the closing delimiter


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    start: int  # 1-based first physical line
    end: int  # 1-based last physical line (heredoc bodies included)
    args: str  # the logical arguments after the keyword, continuations joined, flags included
    flags: list[tuple[str, str | None]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # arguments after the flags (JSON items or words)
    json_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    stage: int = -1  # index of the FROM stage it belongs to (-1 = before the first FROM)
    stage_name: str | None = None

    def flag(self, name: str) -> str | None:
        for n, v in self.flags:
            if n == name:
                return v if v is not None else ""
        return None

    def has_flag(self, name: str) -> bool:
        return any(n == name for n, _ in self.flags)

    @property
    def sources(self) -> list[str]:
        """COPY/ADD sources (heredoc sources appear as ``<<NAME``)."""
        if self.keyword not in ("COPY", "ADD") or len(self.words) < 2:
            return []
        return self.words[:-1]

    @property
    def dest(self) -> str | None:
        if self.keyword not in ("COPY", "ADD") or not self.words:
            return None
        return self.words[-1]

    @property
    def image(self) -> str | None:
        return self.words[0] if self.keyword == "FROM" and self.words else None

    @property
    def alias(self) -> str | None:
        if self.keyword == "FROM" and len(self.words) >= 3 and self.words[1].lower() == "as":
            return self.words[2]
        return None


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    directives: dict[str, str]
    escape: str
    lines: list[str]  # physical lines, with their line endings

    @property
    def newline(self) -> str:
        return "\r\n" if any(line.endswith("\r\n") for line in self.lines) else "\n"


class DockerfileSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, with 1-based line ranges (see the module docstring)."""
    return parse_file(text).instructions


def parse_file(text: str) -> Dockerfile:
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].rstrip("\r\n"))
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        i += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileSyntaxError(1, f"invalid escape directive {escape!r} (only \\ and ` are allowed)")
    out: list[Instruction] = []
    stage, stage_name = -1, None
    n = len(lines)
    while i < n:
        raw = lines[i].rstrip("\r\n")
        if not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        start = i
        logical = ""
        while True:
            body = lines[i].rstrip("\r\n")
            stripped = body.rstrip()
            if stripped.endswith(escape):
                logical += stripped[: -len(escape)]
                i += 1
                # comment lines and empty lines inside a continuation are dropped
                while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= n:
                    break
                continue
            logical += body
            i += 1
            break
        end = i  # exclusive, 0-based
        keyword, _, args = logical.strip().partition(" ")
        if "\t" in keyword:
            keyword, _, rest = keyword.partition("\t")
            args = rest + " " + args
        keyword = keyword.upper()
        args = args.strip()
        instr = Instruction(keyword=keyword, start=start + 1, end=end, args=args)
        _split_args(instr)
        if keyword in ("RUN", "COPY", "ADD"):
            for m in _HEREDOC.finditer(args):
                strip_tabs, delim = m.group(1) == "-", m.group(3)
                first = i
                while i < n:
                    candidate = lines[i].rstrip("\r\n")
                    if strip_tabs:
                        candidate = candidate.lstrip("\t")
                    i += 1
                    if candidate == delim:
                        break
                else:
                    raise DockerfileSyntaxError(start + 1, f"heredoc <<{delim} is never closed")
                instr.heredocs.append(Heredoc(delim, strip_tabs, first + 1, i))
            instr.end = i if instr.heredocs else end
        if keyword == "FROM":
            stage += 1
            stage_name = instr.alias
        instr.stage, instr.stage_name = stage, stage_name
        out.append(instr)
    return Dockerfile(out, directives, escape, lines)


def _split_args(instr: Instruction) -> None:
    rest = instr.args
    if instr.keyword in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            name, eq, value = token[2:].partition("=")
            instr.flags.append((name, value if eq else None))
    if rest.startswith("["):
        items: object
        try:
            items = json.loads(rest)
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            instr.words, instr.json_form = items, True
            return
    instr.words = rest.split()


__all__ = ["Dockerfile", "DockerfileSyntaxError", "Heredoc", "Instruction", "parse", "parse_file"]
