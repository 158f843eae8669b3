"""The one TOML key -> line locator (for file:line in every message), and a safe table walk.

``tomllib`` gives values without positions; :class:`TomlLines` indexes a file's table headers once
and finds the line of a key, a string or a pattern, so every problem can name ``file:line``.
"""

from __future__ import annotations

import re
from typing import Any

_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]+?)\s*\]")


def split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for raw in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', dotted):
        part = raw.strip()
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


class TomlLines:
    """A file's lines with an index of its table headers, built once."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: dict[tuple[str, ...], int] = {}
        self.header_numbers: list[int] = []
        for number, line in enumerate(self.lines, start=1):
            if "[" not in line:
                continue
            m = _HEADER.match(line)
            if m:
                self.headers.setdefault(split_key(m.group(1)), number)
                self.header_numbers.append(number)
            elif line.lstrip().startswith("[["):
                self.header_numbers.append(number)

    def header(self, table: tuple[str, ...]) -> int | None:
        return self.headers.get(table)

    def _section_end(self, start: int) -> int:
        for n in self.header_numbers:
            if n > start:
                return n - 1
        return len(self.lines)

    def key(self, table: tuple[str, ...], key: str) -> int | None:
        """The line of ``key = `` in ``[table]``, else of a dotted ``...key =`` anywhere."""
        candidates = (key, f'"{key}"', f"'{key}'")
        start = self.header(table)
        if start is not None:
            for n in range(start + 1, self._section_end(start) + 1):
                s = self.lines[n - 1].lstrip()
                for c in candidates:
                    if s.startswith(c) and s[len(c):].lstrip().startswith("="):
                        return n
        # a sub-table header ([tool.uv.sources.name]) or a dotted key (sources.name = ...)
        sub = self.header((*table, key))
        if sub is not None:
            return sub
        for n, line in enumerate(self.lines, start=1):
            s = line.lstrip()
            for c in candidates:
                i = s.find(c)
                if i > 0 and s[i - 1] == "." and s[i + len(c):].lstrip().startswith("="):
                    return n
        return None

    def string(self, value: str, after: int | None = None) -> int | None:
        """The line of the quoted string ``value``, searching from ``after`` first."""
        needles = (f'"{value}"', f"'{value}'", value)
        start = after or 1
        for needle in needles:
            for n in range(start, len(self.lines) + 1):
                if needle in self.lines[n - 1]:
                    return n
        if start > 1:
            return self.string(value)
        return None

    def pattern(self, rx: re.Pattern[str]) -> int | None:
        for n, line in enumerate(self.lines, start=1):
            if rx.search(line):
                return n
        return None



def subtable(data: dict[str, Any], *path: str) -> dict[str, Any]:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict):
            return {}
        cur = cur.get(key, {})
    return cur if isinstance(cur, dict) else {}
