"""``--help`` pages rendered from nexusify's own data, laid out like uv's and ruff's.

argparse parses; it does not lay out the help. Its formatter's hooks are implementation details
(Python's documentation: only the formatter classes' names are public), and a release that
renames one would break every ``--help``. So each parser records the :class:`argparse.Action`
objects ``add_argument`` returns (public attributes only: ``option_strings``, ``metavar``,
``nargs``, ``choices``, ``help``, ``dest``), each under a section title, and this module renders
them: ``Usage:``, the description, the sections (invocation column, wrapped help), the epilog.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_HELP_POSITION = 34  # where the help column starts at most (longer invocations get their own line)
INDENT = 2


def width() -> int:
    """The text width: the terminal's (``COLUMNS`` first) less 2, as argparse does."""
    columns = os.environ.get("COLUMNS", "")
    cols = int(columns) if columns.isdigit() else shutil.get_terminal_size().columns
    return max(cols - 2, 20)


def metavar_of(action: argparse.Action, default: str) -> str:
    """The name a value is shown as: its metavar, else its choices ``{a,b}``, else ``default``."""
    if isinstance(action.metavar, str):
        return action.metavar
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return default


def format_args(action: argparse.Action, default: str) -> str:
    """The values an argument takes, by its ``nargs`` (``X``, ``[X]``, ``[X ...]``, ``X [X ...]``)."""
    m = metavar_of(action, default)
    nargs = action.nargs
    if nargs is None:
        return m
    if nargs == argparse.OPTIONAL:
        return f"[{m}]"
    if nargs == argparse.ZERO_OR_MORE:
        return f"[{m} ...]"
    if nargs == argparse.ONE_OR_MORE:
        return f"{m} [{m} ...]"
    if isinstance(nargs, int):
        return " ".join([m] * nargs)
    return "..."


def invocation(action: argparse.Action) -> str:
    """How an argument is written in the help's left column: ``SERVICE``, ``--check``,
    ``-e, --environment NAME``."""
    if not action.option_strings:
        return metavar_of(action, action.dest)
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return names
    return f"{names} {format_args(action, action.dest.upper())}"


@dataclass
class Entry:
    """One line of the left column and its help text."""

    left: str
    help: str


@dataclass
class Section:
    title: str
    entries: list[Entry] = field(default_factory=list)


def from_actions(title: str, actions: Sequence[argparse.Action]) -> Section:
    """A section of the arguments whose help is not suppressed."""
    return Section(title, [Entry(invocation(a), a.help or "") for a in actions
                           if a.help != argparse.SUPPRESS])


def render(usage: str, description: str | None, sections: Sequence[Section], epilog: str | None,
           *, outdent: Sequence[str] = ()) -> str:
    """The whole page. ``outdent``: titles of sections whose help column sits two places left of
    the others' (the verbs under ``Commands:``, as the help has always shown them)."""
    total = width()
    shown = [s for s in sections if s.entries]
    # argparse measured a nested list (the verbs) one level deeper, then showed it a level up
    longest = max((len(e.left) + INDENT + (INDENT if s.title in outdent else 0) for s in shown for e in s.entries),
                  default=0)
    help_position = min(longest + 2, min(MAX_HELP_POSITION, max(total - 20, 2 * INDENT)))
    parts = [f"Usage: {usage}\n"]
    if description:
        parts.append(description.rstrip("\n") + "\n")
    for section in shown:
        lines = [f"{section.title}:"]
        column = help_position - (INDENT if section.title in outdent else 0)
        for entry in section.entries:
            lines.extend(_entry_lines(entry, column, total - help_position))
        parts.append("\n".join(lines) + "\n")
    if epilog:
        parts.append(epilog.rstrip("\n") + "\n")
    return "\n".join(parts)


_SPACES = re.compile(r"\s+")


def _entry_lines(entry: Entry, column: int, wrap: int) -> list[str]:
    """argparse's layout: the invocation padded to the help ``column``, or on its own line when
    it does not fit; the help wrapped at ``wrap`` characters."""
    indent = INDENT
    left_width = column - indent - 2
    text = _SPACES.sub(" ", entry.help).strip()
    wrapped = textwrap.wrap(text, max(wrap, 11)) if text else []
    if len(entry.left) <= left_width and wrapped:
        first = f"{' ' * indent}{entry.left:<{left_width}}  {wrapped[0]}"
        rest = wrapped[1:]
    else:
        first = f"{' ' * indent}{entry.left}"
        rest = wrapped
    return [first.rstrip(), *(f"{' ' * column}{line}" for line in rest)]


__all__ = ["Entry", "Section", "format_args", "from_actions", "invocation", "metavar_of", "render", "width"]
