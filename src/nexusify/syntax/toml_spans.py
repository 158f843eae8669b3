"""Where things are in a TOML text: the offsets of each table header, key/value statement and
array element, for editors that splice text at known positions instead of round-tripping the
whole document through a format-preserving parser.

:func:`scan` reads the statements at the top of each table (not their meaning: duplicate keys or
tables are not checked, the caller parses with tomllib for that) and raises :class:`Unsure` for
anything it does not read with certainty; a caller then takes the slow, general road.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class Unsure(Exception):
    """The text holds something this scanner does not locate with certainty."""


@dataclass
class KeyValue:
    """``key = value`` at the top of a table: ``parts`` the dotted key's parts (unquoted),
    ``start`` the line's first offset, ``key_start`` where the key begins (after the indent),
    ``value`` the value's ``(start, end)``, ``end`` the offset after the statement's line ending."""

    parts: tuple[str, ...]
    start: int
    key_start: int
    value: tuple[int, int]
    end: int
    newline: bool  # the statement's line ends with a line feed (else the text ends there)


@dataclass
class Section:
    """One table: its header's path (``()`` for the root), whether it is ``[[...]]``, its
    statements, and whether comment lines follow its last statement."""

    path: tuple[str, ...]
    aot: bool
    entries: list[KeyValue] = field(default_factory=list)
    comment_after: bool = False


_BARE = re.compile(r"[A-Za-z0-9_-]+")
_WS = re.compile(r"[ \t]*")
_SCALAR = re.compile(r"[A-Za-z0-9_+\-.:]+")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ ]\d{2}:\d{2}[A-Za-z0-9_+\-.:]*")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)

    def ws(self, i: int) -> int:
        if i >= self.n or self.text[i] not in " \t":
            return i
        m = _WS.match(self.text, i)
        assert m is not None
        return m.end()

    def ws_lines(self, i: int) -> int:
        """Skip blanks, line endings and comments (inside arrays)."""
        t = self.text
        while i < self.n:
            c = t[i]
            if c in " \t\n":
                i += 1
            elif c == "\r" and t.startswith("\r\n", i):
                i += 2
            elif c == "#":
                i = self.comment(i)
            else:
                break
        return i

    def comment(self, i: int) -> int:
        end = self.text.find("\n", i)
        end = self.n if end < 0 else end
        return end - 1 if end > i and self.text[end - 1] == "\r" else end

    def key(self, i: int) -> tuple[tuple[str, ...], int]:
        parts: list[str] = []
        while True:
            i = self.ws(i)
            part, i = self.key_part(i)
            parts.append(part)
            j = self.ws(i)
            if j < self.n and self.text[j] == ".":
                i = j + 1
                continue
            return tuple(parts), i

    def key_part(self, i: int) -> tuple[str, int]:
        t = self.text
        if i < self.n and t[i] == '"':
            end = self.basic(i)
            raw = t[i + 1:end - 1]
            if "\\" in raw:
                raise Unsure("escaped key")
            return raw, end
        if i < self.n and t[i] == "'":
            end = self.literal(i)
            return t[i + 1:end - 1], end
        m = _BARE.match(t, i)
        if m is None:
            raise Unsure(f"no key at {i}")
        return m.group(), m.end()

    def basic(self, i: int) -> int:
        t = self.text
        j = i + 1
        while j < self.n:
            c = t[j]
            if c == "\\":
                j += 2
            elif c == '"':
                return j + 1
            elif c == "\n":
                break
            else:
                j += 1
        raise Unsure("unterminated string")

    def literal(self, i: int) -> int:
        end = self.text.find("'", i + 1)
        if end < 0 or "\n" in self.text[i:end]:
            raise Unsure("unterminated string")
        return end + 1

    def multiline(self, i: int, quote: str) -> int:
        t = self.text
        j = i + 3
        while True:
            k = t.find(quote * 3, j)
            if k < 0:
                raise Unsure("unterminated string")
            if quote == '"':
                backslashes = len(t[j:k]) - len(t[j:k].rstrip("\\"))
                if backslashes % 2:
                    j = k + 1
                    continue
            end = k + 3
            extra = 0
            while end < self.n and t[end] == quote and extra < 2:
                end += 1
                extra += 1
            return end

    def value(self, i: int) -> int:
        t = self.text
        if i >= self.n:
            raise Unsure("no value")
        c = t[i]
        if c == '"':
            return self.multiline(i, '"') if t.startswith('"""', i) else self.basic(i)
        if c == "'":
            return self.multiline(i, "'") if t.startswith("'''", i) else self.literal(i)
        if c == "[":
            i = self.ws_lines(i + 1)
            while i < self.n and t[i] != "]":
                i = self.ws_lines(self.value(i))
                if i < self.n and t[i] == ",":
                    i = self.ws_lines(i + 1)
                elif i >= self.n or t[i] != "]":
                    raise Unsure("bad array")
            if i >= self.n:
                raise Unsure("unterminated array")
            return i + 1
        if c == "{":
            return self.inline(i)[1]
        m = _DATE_TIME.match(t, i) or _SCALAR.match(t, i)
        if m is None:
            raise Unsure(f"no value at {i}")
        return m.end()

    def inline(self, i: int) -> tuple[list[tuple[tuple[str, ...], int, int, int, int]], int]:
        """An inline table at ``i``: its entries as (parts, key start, key end, value start,
        value end), and the offset after its ``}``."""
        t = self.text
        entries: list[tuple[tuple[str, ...], int, int, int, int]] = []
        i = self.ws(i + 1)
        if i < self.n and t[i] == "}":
            return entries, i + 1
        while True:
            ks = self.ws(i)
            parts, ke = self.key(ks)
            j = self.ws(ke)
            if j >= self.n or t[j] != "=":
                raise Unsure("bad inline table")
            vs = self.ws(j + 1)
            ve = self.value(vs)
            entries.append((parts, ks, ke, vs, ve))
            i = self.ws(ve)
            if i < self.n and t[i] == ",":
                i += 1
                continue
            if i < self.n and t[i] == "}":
                return entries, i + 1
            raise Unsure("bad inline table")

    def line_end(self, i: int) -> tuple[int, bool, bool]:
        """After a statement: blanks, an optional comment, the line ending. Returns the offset
        after it, whether a line feed was there, whether a comment was."""
        t = self.text
        i = self.ws(i)
        had_comment = i < self.n and t[i] == "#"
        if had_comment:
            i = self.comment(i)
        if i >= self.n:
            return i, False, had_comment
        if t.startswith("\r\n", i):
            return i + 2, True, had_comment
        if t[i] == "\n":
            return i + 1, True, had_comment
        raise Unsure(f"unexpected text at {i}")


def scan(text: str) -> list[Section]:
    """The tables of ``text`` in order, the root first (raises :class:`Unsure`)."""
    s = _Scanner(text)
    sections = [Section((), False)]
    i = 0
    n = len(text)
    while i < n:
        start = i
        i = s.ws(i)
        if i >= n:
            break
        c = text[i]
        if c in "\r\n" or c == "#":
            if c == "#":
                sections[-1].comment_after = True
            i, _, _ = s.line_end(i)
            continue
        if c == "[":
            aot = text.startswith("[[", i)
            path, j = s.key(i + (2 if aot else 1))
            j = s.ws(j)
            close = "]]" if aot else "]"
            if not text.startswith(close, j):
                raise Unsure("bad header")
            i, _, _ = s.line_end(j + len(close))
            sections.append(Section(path, aot))
            continue
        parts, ke = s.key(i)
        j = s.ws(ke)
        if j >= n or text[j] != "=":
            raise Unsure("bad statement")
        vs = s.ws(j + 1)
        ve = s.value(vs)
        i, newline, _ = s.line_end(ve)
        sections[-1].entries.append(KeyValue(parts, start, s.ws(start), (vs, ve), i, newline))
        sections[-1].comment_after = False
    return sections


def inline_entries(text: str, start: int) -> tuple[list[tuple[tuple[str, ...], int, int, int, int]], int]:
    """The entries of the inline table at ``start`` (see ``_Scanner.inline``)."""
    return _Scanner(text).inline(start)


def array_elements(text: str, start: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each value of the array at ``start``."""
    s = _Scanner(text)
    out = []
    i = s.ws_lines(start + 1)
    while i < s.n and text[i] != "]":
        end = s.value(i)
        out.append((i, end))
        i = s.ws_lines(end)
        if i < s.n and text[i] == ",":
            i = s.ws_lines(i + 1)
    return out


__all__ = ["KeyValue", "Section", "Unsure", "array_elements", "inline_entries", "scan"]
